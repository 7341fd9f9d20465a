"""Automation files: checked at deploy time (every problem at once, naming file, step and input), references resolved
with their types, and run locally step by step."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.automations import (
    Automation,
    AutomationError,
    Step,
    StepFailed,
    check_automation,
    cron_problem,
    load_automation,
    references,
    resolve,
    run_automation,
    step_calls,
)
from connector.errors import ConnectorError, ManifestError, Violation, ZohoAPIError
from connector.manifest import bundled_manifest, load_manifest
from connector.models import Manifest

SEARCH = {"recordType": "Leads", "criteria": "(Last_Name:equals:Doe)"}


def automation(*steps: dict[str, Any], trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "test", "trigger": trigger or {"schedule": {"cron": "0 */2 * * *"}}, "steps": list(steps)}


def find() -> dict[str, Any]:
    return {"name": "find", "action": "crmSearchRecords", "inputs": dict(SEARCH)}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    """The bundled manifest plus two triggers (a poll and a webhook), whatever triggers main ships."""
    base = bundled_manifest()
    schema = {
        "type": "object",
        "properties": {"recordType": {"type": "string", "title": "t", "description": "d"}},
        "required": ["recordType"],
        "additionalProperties": False,
    }
    fake = {
        "crmNewThings": ("poll", schema),
        "crmThingsChanged": ("webhook", schema),
    }
    triggers = dict(base.triggers)
    for key, (kind, input_schema) in fake.items():
        triggers[key] = type("T", (), {"kind": kind, "input_schema": input_schema})()
    return dataclasses.replace(base, triggers=triggers)


def problems(manifest: Manifest, data: Any) -> list[Violation]:
    with pytest.raises(AutomationError) as caught:
        load_automation(data, manifest)
    return caught.value.problems


def only(manifest: Manifest, data: Any) -> Violation:
    found = problems(manifest, data)
    assert len(found) == 1, found
    return found[0]


# --- a sound automation ----------------------------------------------------------------------------------------


def test_a_sound_automation_loads_with_its_steps(manifest: Manifest, tmp_path: Path) -> None:
    file = tmp_path / "leads.yaml"
    file.write_text(
        """
name: tidy-leads
description: Mark every Doe lead.
trigger: {schedule: {cron: "30 6 * * MON-FRI"}}
steps:
  - name: find
    action: crmSearchRecords
    inputs: {recordType: Leads, criteria: "(Last_Name:equals:Doe)"}
  - name: mark
    action: crmUpdateRecord
    for_each: ${steps.find.data.data}
    inputs:
      recordType: Leads
      recordId: ${item.id}
      fieldValues: {Company: Acme, Description: "${item.Last_Name}"}
"""
    )
    loaded = load_automation(file, manifest)
    assert loaded.name == "tidy-leads"
    assert loaded.description == "Mark every Doe lead."
    assert loaded.source == str(file)
    assert loaded.trigger == {"schedule": {"cron": "30 6 * * MON-FRI"}}
    assert loaded.trigger_kind == "schedule"
    assert loaded.steps == (
        Step("find", "crmSearchRecords", SEARCH),
        Step(
            "mark",
            "crmUpdateRecord",
            {
                "recordType": "Leads",
                "recordId": "${item.id}",
                "fieldValues": {"Company": "Acme", "Description": "${item.Last_Name}"},
            },
            "${steps.find.data.data}",
        ),
    )
    assert Automation.from_dict(json.loads(json.dumps(loaded.to_dict()))) == loaded


def test_json_files_and_parsed_mappings_load_too(manifest: Manifest, tmp_path: Path) -> None:
    data = automation(find())
    file = tmp_path / "a.json"
    file.write_text(json.dumps(data))
    assert load_automation(file, manifest).steps == load_automation(data, manifest).steps


def test_yaml_dates_stay_strings(manifest: Manifest, tmp_path: Path) -> None:
    """`2024-01-01` in YAML is a date to PyYAML; an input schema wants the string the user wrote."""
    file = tmp_path / "a.yaml"
    file.write_text(
        "name: t\ntrigger: {schedule: {cron: '0 0 * * *'}}\nsteps:\n"
        "  - {name: q, action: crmSearchRecords, inputs: {recordType: Leads, criteria: x, word: 2024-01-01}}\n"
    )
    assert load_automation(file, manifest).steps[0].inputs["word"] == "2024-01-01"


# --- the file's shape ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "label", "pointer", "message"),
    [
        (lambda d: d.pop("steps"), "(automation)", "/steps", "is required"),
        (lambda d: d.update(steps=[]), "(automation)", "/steps", "should be non-empty"),
        (lambda d: d.update(colour="red"), "(automation)", "/colour", "unknown field; expected one of"),
        (lambda d: d.update(name="my automation"), "(automation)", "/name", "does not match"),
        (lambda d: d["steps"][0].update(name="2nd"), "2nd", "/steps/0/name", "a step's name is an identifier"),
        (lambda d: d["steps"][0].pop("action"), "find", "/steps/0/action", "is required"),
        (lambda d: d["steps"][0].update(inputs=[1]), "find", "/steps/0/inputs", "is not of type 'object'"),
        (lambda d: d["steps"][0].update(for_each="records"), "find", "/steps/0/for_each", "for_each is a reference"),
        (
            lambda d: d.update(trigger={"schedule": {"cron": "* * * * *"}, "poll": {"trigger": "crmNewThings"}}),
            "trigger",
            "/trigger",
            "expected exactly one of {schedule: {cron}}, {poll: {trigger, inputs}}, {webhook: {trigger, inputs}}",
        ),
        (lambda d: d.update(trigger={"schedule": {}}), "trigger", "/trigger/schedule/cron", "is required"),
        (
            lambda d: d.update(trigger={"poll": {"trigger": "crmNewThings", "every": 5}}),
            "trigger",
            "/trigger/poll/every",
            "unknown field; expected one of: cron, inputs, trigger",
        ),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(
    manifest: Manifest, change: Any, label: str, pointer: str, message: str
) -> None:
    data = automation(find())
    change(data)
    found = problems(manifest, data)
    assert any(p.input == label and p.pointer == pointer and message in p.message for p in found), found


def test_an_unquoted_reference_in_flow_style_gets_a_hint(manifest: Manifest, tmp_path: Path) -> None:
    file = tmp_path / "flow.yaml"
    file.write_text(
        "name: t\ntrigger: {schedule: {cron: '0 0 * * *'}}\nsteps: [{name: a, action: b, inputs: {x: ${item}}}]\n"
    )
    problem = problems(manifest, file)[0]
    assert problem.message.startswith('not valid YAML (inside { } or [ ], write a reference in quotes: "${item.id}")')


def test_a_file_that_is_not_yaml_names_the_file(manifest: Manifest, tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("name: [unclosed\n")
    with pytest.raises(AutomationError) as caught:
        load_automation(file, manifest)
    assert caught.value.file == str(file)
    assert caught.value.problems[0].message.startswith("not valid YAML")
    assert caught.value.exit_code == 2
    with pytest.raises(AutomationError, match="cannot read the file"):
        load_automation(tmp_path / "missing.yaml", manifest)


# --- checks against the manifest ----------------------------------------------------------------------------


def test_an_unknown_action_says_which_it_may_be(manifest: Manifest) -> None:
    step = {"name": "get", "action": "crmGetRecrod", "inputs": {"recordType": "Leads", "recordId": "1"}}
    problem = only(manifest, automation(step))
    assert problem == Violation(
        "get",
        "/steps/0/action",
        "unknown action 'crmGetRecrod'; did you mean crmGetRecord, crmGetRecords, crmCreateRecord?",
    )


def test_literal_inputs_are_checked_against_the_action_schema(manifest: Manifest) -> None:
    step = {"name": "get", "action": "crmGetRecord", "inputs": {"recordType": 5, "recordId": "1", "colour": "red"}}
    found = problems(manifest, automation(step))
    assert [(p.input, p.pointer) for p in found] == [
        ("get", "/steps/0/inputs/colour"),
        ("get", "/steps/0/inputs/recordType"),
    ]
    assert "unknown input 'colour'" in found[0].message
    assert found[1].message == "5 is not of type 'string'"


def test_a_missing_required_input_is_reported_even_beside_references(manifest: Manifest) -> None:
    step = {
        "name": "get",
        "action": "crmGetRecord",
        "for_each": "${trigger.records}",
        "inputs": {"recordId": "${item.id}"},
    }
    problem = only(
        manifest, automation(step, trigger={"poll": {"trigger": "crmNewThings", "inputs": {"recordType": "Leads"}}})
    )
    assert problem == Violation("get", "/steps/0/inputs/recordType", "is required")


def test_a_missing_alternative_is_reported_even_beside_references(manifest: Manifest) -> None:
    """crmSearchRecords needs one of criteria, email, phone, word: a reference elsewhere cannot supply one."""
    search = {"name": "s", "action": "crmSearchRecords", "inputs": {"recordType": "${steps.find.data.data.0.x}"}}
    problem = only(manifest, automation(find(), search))
    assert problem.pointer == "/steps/1/inputs"
    assert problem.message.startswith("give one of criteria, email, phone or word")


def test_a_reference_stands_for_a_value_of_any_type(manifest: Manifest) -> None:
    """References in places that want an integer, an object, a list or a pattern-checked string are not errors:
    only what holds whatever they resolve to is."""
    steps = [
        find(),
        {
            "name": "again",
            "action": "crmSearchRecords",
            "inputs": {
                "recordType": "${steps.find.data.data.0.Module}",  # a pattern-checked string
                "email": "${steps.find.data.data.0.Email}",
                "per_page": "${steps.find.data.info.per_page}",  # an integer
                "fields": "${steps.find.data.fields}",  # a list
            },
        },
        {
            "name": "update",
            "action": "crmUpdateRecord",
            "for_each": "${steps.again.data.data}",
            "inputs": {"recordType": "Leads", "recordId": "${item.id}", "fieldValues": "${item}"},  # anyOf list|object
        },
        {
            "name": "each",
            "action": "crmGetRecord",
            "inputs": {"recordType": "Leads", "recordId": "${steps.update.0.data.0.details.id}"},
        },
    ]
    loaded = load_automation(automation(*steps), manifest)
    assert [s.name for s in loaded.steps] == ["find", "again", "update", "each"]


def test_strings_an_engine_would_coerce_pass_as_they_would_at_run_time(manifest: Manifest) -> None:
    step = {"name": "s", "action": "crmSearchRecords", "inputs": {**SEARCH, "per_page": "10", "fetchAll": "true"}}
    load_automation(automation(step), manifest)
    bad = {"name": "s", "action": "crmSearchRecords", "inputs": {**SEARCH, "per_page": "ten"}}
    assert only(manifest, automation(bad)).pointer == "/steps/0/inputs/per_page"


def test_a_value_inside_a_reference_object_is_not_guessed(manifest: Manifest) -> None:
    """A literal beside a reference in the same object is still checked."""
    step = {
        "name": "u",
        "action": "crmUpdateRecord",
        "inputs": {"recordType": "Le ads", "recordId": "${steps.find.data.data.0.id}"},
    }
    problem = only(manifest, automation(find(), step))
    assert problem.pointer == "/steps/1/inputs/recordType"
    assert "does not match" in problem.message


# --- references ------------------------------------------------------------------------------------------------


def get(record_id: str) -> dict[str, Any]:
    return {"name": "get", "action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": record_id}}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "${steps.later.data}",
            "${steps.later.data}: step 'later' runs after this one; a step reads only earlier steps",
        ),
        ("${steps.get.data}", "${steps.get.data}: a step cannot read its own result"),
        ("${steps.fnid.data}", "${steps.fnid.data}: no earlier step is named 'fnid'; did you mean find?"),
        ("${steps.find.date}", "${steps.find.date}: step 'find''s result is {data: …}; use ${steps.find.data…}"),
        ("${steps}", "${steps}: name a step, e.g. ${steps.NAME.data}"),
        ("${item.id}", "${item.id}: the current element (item) exists only inside a step with for_each"),
        (
            "${trigger.records}",
            "${trigger.records}: this automation's trigger hands out no records (only poll and webhook triggers do)",
        ),
        ("${record.id}", "${record.id}: a reference starts with trigger, steps or item"),
        (
            "${steps..id}",
            "${steps..id}: a reference is a dotted path without spaces or empty parts, e.g. ${steps.NAME.data}",
        ),
        (
            "Lead ${steps.find.data}",
            "a reference is a whole string, e.g. ${steps.NAME.data.data.0.id}: it cannot sit inside text",
        ),
    ],
)
def test_a_reference_must_name_something_that_exists_when_the_step_runs(
    manifest: Manifest, reference: str, message: str
) -> None:
    later = {"name": "later", "action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "1"}}
    assert only(manifest, automation(find(), get(reference), later)) == Violation(
        "get", "/steps/1/inputs/recordId", message
    )


def test_references_to_a_for_each_step_index_its_list(manifest: Manifest) -> None:
    each = {**get("${item.id}"), "name": "each", "for_each": "${steps.find.data.data}"}
    problem = only(manifest, automation(find(), each, get("${steps.each.data.0.id}")))
    assert problem.message == (
        "${steps.each.data.0.id}: step 'each' runs for_each: its result is a list of {data: …}, "
        "e.g. ${steps.each.0.data}"
    )


def test_for_each_needs_a_list_and_an_earlier_source(manifest: Manifest) -> None:
    on_object = {**get("${item.id}"), "for_each": "${steps.find}"}
    assert only(manifest, automation(find(), on_object)) == Violation(
        "get", "/steps/1/for_each", "step 'find''s result is an object {data: …}, not a list"
    )
    on_item = {**get("${item.id}"), "for_each": "${item}"}
    assert only(manifest, automation(on_item)).pointer == "/steps/0/for_each"


def test_trigger_records_exist_for_poll_and_webhook_triggers(manifest: Manifest) -> None:
    each = {**get("${item.id}"), "for_each": "${trigger.records}"}
    for kind, key in (("poll", "crmNewThings"), ("webhook", "crmThingsChanged")):
        load_automation(automation(each, trigger={kind: {"trigger": key, "inputs": {"recordType": "Leads"}}}), manifest)
    wrong = {**get("${item.id}"), "for_each": "${trigger.events}"}
    problem = only(
        manifest, automation(wrong, trigger={"poll": {"trigger": "crmNewThings", "inputs": {"recordType": "Leads"}}})
    )
    assert problem.message == "${trigger.events}: the trigger hands out {records: […]}; use ${trigger.records…}"


def test_the_trigger_is_checked_against_the_manifest(manifest: Manifest) -> None:
    step = get("1")
    unknown = only(manifest, automation(step, trigger={"poll": {"trigger": "crmNewThing"}}))
    assert unknown == Violation(
        "trigger", "/trigger/poll/trigger", "unknown trigger 'crmNewThing'; did you mean crmNewThings?"
    )
    wrong_kind = problems(
        manifest, automation(step, trigger={"webhook": {"trigger": "crmNewThings", "inputs": {"recordType": "Leads"}}})
    )
    assert wrong_kind == [
        Violation("trigger", "/trigger/webhook/trigger", "crmNewThings is a poll trigger, not webhook")
    ]
    bad_inputs = problems(
        manifest,
        automation(step, trigger={"poll": {"trigger": "crmNewThings", "inputs": {"recordType": "${steps.x}"}}}),
    )
    assert bad_inputs == [
        Violation(
            "trigger",
            "/trigger/poll/inputs/recordType",
            "a trigger's inputs are literal values: nothing runs before it",
        )
    ]
    missing = only(manifest, automation(step, trigger={"poll": {"trigger": "crmNewThings"}}))
    assert missing == Violation("trigger", "/trigger/poll/inputs/recordType", "is required")


def test_step_names_are_unique(manifest: Manifest) -> None:
    assert only(manifest, automation(find(), find())) == Violation(
        "find", "/steps/1/name", "another step is already named 'find': names are unique"
    )


def test_every_problem_is_reported_at_once_naming_file_step_and_input(manifest: Manifest, tmp_path: Path) -> None:
    data = automation(
        find(),
        {"name": "get", "action": "crmGetRecrod", "inputs": {"recordId": "${steps.nope.data}"}},
        {"name": "update", "action": "crmUpdateRecord", "inputs": {"recordType": 1, "recordId": "${item.id}"}},
        trigger={"schedule": {"cron": "0 25 * * *"}},
    )
    file = tmp_path / "many.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(AutomationError) as caught:
        load_automation(file, manifest)
    error = caught.value
    assert [(p.input, p.pointer) for p in error.problems] == [
        ("trigger", "/trigger/schedule/cron"),
        ("get", "/steps/1/inputs/recordId"),
        ("get", "/steps/1/action"),
        ("update", "/steps/2/inputs/recordId"),
        ("update", "/steps/2/inputs/recordType"),
    ]
    text = str(error)
    assert text.startswith(f"{file}: invalid automation:\n")
    assert "  - update (/steps/2/inputs/recordType): 1 is not of type 'string'" in text
    payload = error.to_dict()["error"]
    assert payload["type"] == "invalid_input"
    assert payload["subject"] == str(file)
    assert len(payload["violations"]) == 5


# --- cron ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    [
        "0 */2 * * *",
        "30 6 * * MON-FRI",
        "0 0 1 jan,jul *",
        "*/15 8-18 * * 1-5",
        "0 0 * * 7",
        "5,10 0 L"[:0] + "0 0 31 12 0",
    ],
)
def test_valid_cron_expressions(cron: str) -> None:
    assert cron_problem(cron) is None


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("0 */2 * *", "has 4 fields; expected 5: minute hour day-of-month month day-of-week"),
        ("@daily", "has 1 fields; expected 5"),
        ("60 * * * *", "minute '60': 60 is outside 0-59"),
        ("0 24 * * *", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day of month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "month '13': 13 is outside 1-12"),
        ("0 0 * * 8", "day of week '8': 8 is outside 0-7"),
        ("0 0 * * FUN", "day of week 'FUN': 'FUN' is not a number from 0 to 7 or SUN-SAT"),
        ("*/0 * * * *", "minute '*/0': the step after / must be a whole number from 1"),
        ("0 18-8 * * *", "hour '18-8': the range 18-8 runs backwards"),
        ("0 0 ? * *", "day of month '?': '?' is not a number from 1 to 31"),
    ],
)
def test_invalid_cron_expressions_say_which_field(cron: str, problem: str) -> None:
    found = cron_problem(cron)
    assert found is not None and problem in found, found


# --- resolve and step_calls ------------------------------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "trigger": {"records": [{"id": "7", "Amount": 12.5}, {"id": "8", "Amount": None}]},
    "steps": {
        "find": {"data": {"data": [{"id": "1", "tags": ["a", "b"], "count": 3, "ok": True}], "info": {"more": False}}},
        "each": [{"data": {"id": "x"}}, {"data": {"id": "y"}}],
    },
}


def test_resolve_keeps_each_values_type() -> None:
    value = {
        "list": "${trigger.records}",
        "number": "${steps.find.data.data.0.count}",
        "float": "${trigger.records.0.Amount}",
        "null": "${trigger.records.1.Amount}",
        "bool": "${steps.find.data.info.more}",
        "nested": ["${steps.find.data.data.0.tags.1}", {"deep": "${steps.each.1.data.id}"}],
        "text": "plain text",
        "number_literal": 5,
    }
    before = copy.deepcopy(CONTEXT)
    assert resolve(value, CONTEXT) == {
        "list": CONTEXT["trigger"]["records"],
        "number": 3,
        "float": 12.5,
        "null": None,
        "bool": False,
        "nested": ["b", {"deep": "y"}],
        "text": "plain text",
        "number_literal": 5,
    }
    assert before == CONTEXT  # pure: the context is not changed


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("${steps.find.data.data.1.id}", "steps.find.data.data has 1 items; there is no item 1"),
        ("${steps.find.data.rows}", "steps.find.data has no member 'rows' (it has: data, info)"),
        ("${steps.find.data.data.first}", "steps.find.data.data is a list; index it with a number, not 'first'"),
        ("${steps.find.data.data.0.count.x}", "steps.find.data.data.0.count is a number, which has no member 'x'"),
        ("${item}", "nothing is named 'item' here"),
    ],
)
def test_a_path_that_does_not_exist_says_where_it_stopped(reference: str, message: str) -> None:
    with pytest.raises(AutomationError) as caught:
        resolve({"recordId": reference}, CONTEXT)
    assert caught.value.problems == [Violation("(references)", "/recordId", f"{reference}: {message}")]


def test_step_calls_make_one_call_or_one_per_element() -> None:
    single = Step("get", "crmGetRecord", {"recordType": "Leads", "recordId": "${steps.find.data.data.0.id}"})
    assert step_calls(single, CONTEXT) == [{"recordType": "Leads", "recordId": "1"}]
    each = Step(
        "get", "crmGetRecord", {"recordType": "Leads", "recordId": "${item.id}", "all": "${item}"}, "${trigger.records}"
    )
    assert step_calls(each, CONTEXT) == [
        {"recordType": "Leads", "recordId": "7", "all": {"id": "7", "Amount": 12.5}},
        {"recordType": "Leads", "recordId": "8", "all": {"id": "8", "Amount": None}},
    ]
    tags = Step("tag", "crmGetRecord", {"all": "${item}"}, "${steps.find.data.data.0.tags}")
    assert step_calls(tags, CONTEXT) == [{"all": "a"}, {"all": "b"}]


def test_step_calls_name_the_step_when_a_reference_fails() -> None:
    each = Step("mark", "crmGetRecord", {"recordId": "${item.id}"}, "${steps.find.data}")
    with pytest.raises(AutomationError) as caught:
        step_calls(each, CONTEXT)
    assert caught.value.problems == [Violation("mark", "/for_each", "${steps.find.data} is dict, not a list")]
    broken = Step("mark", "crmGetRecord", {"recordId": "${item.nope}"}, "${trigger.records}")
    with pytest.raises(AutomationError) as caught:
        step_calls(broken, CONTEXT)
    assert caught.value.problems[0].input == "mark"
    assert caught.value.problems[0].pointer == "/inputs/recordId"


def test_references_lists_them_in_order() -> None:
    assert references({"a": "${trigger.records}", "b": ["x", {"c": "${item.id}"}], "d": "text ${x}"}) == [
        "${trigger.records}",
        "${item.id}",
    ]


# --- running ---------------------------------------------------------------------------------------------------


class FakeConnector:
    """Answers each action from a script and records the calls; optionally polls."""

    def __init__(self, answers: dict[str, Any], *, records: list[Any] | None = None) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any], Any]] = []
        self.polls: list[tuple[str, Any, Any, Any]] = []
        self.records = records

    def run(self, action: str, inputs: dict[str, Any], *, connection: Any) -> dict[str, Any]:
        self.calls.append((action, inputs, connection))
        answer = self.answers[action]
        if isinstance(answer, ConnectorError):
            raise answer
        data = answer(inputs) if callable(answer) else answer
        return {"data": data}


class PollingConnector(FakeConnector):
    def poll(self, trigger: str, inputs: Any, state: Any, *, connection: Any) -> dict[str, Any]:
        self.polls.append((trigger, inputs, state, connection))
        return {"records": self.records or [], "state": {"cursor": len(self.polls)}}


def three_steps(trigger: dict[str, Any] | None = None) -> Automation:
    data = automation(
        {
            "name": "find",
            "action": "crmSearchRecords",
            "inputs": {"recordType": "Leads", "criteria": "(Last_Name:equals:Doe)"},
        },
        {
            "name": "update",
            "action": "crmUpdateRecord",
            "for_each": "${steps.find.data.data}",
            "inputs": {"recordType": "Leads", "recordId": "${item.id}", "fieldValues": {"Company": "Acme"}},
        },
        {
            "name": "check",
            "action": "crmGetRecord",
            "inputs": {"recordType": "Leads", "recordId": "${steps.update.1.data.0.details.id}"},
        },
        trigger=trigger,
    )
    return Automation.from_dict({**data, "source": "three.yaml"})


ANSWERS: dict[str, Any] = {
    "crmSearchRecords": {"data": [{"id": "1"}, {"id": "2"}]},
    "crmUpdateRecord": lambda inputs: [{"details": {"id": inputs["recordId"]}}],
    "crmGetRecord": lambda inputs: {"id": inputs["recordId"], "Company": "Acme"},
}


def test_a_scheduled_automation_runs_each_step_with_earlier_results() -> None:
    connector = FakeConnector(ANSWERS)
    events: list[dict[str, Any]] = []
    outcome = run_automation(connector, three_steps(), connection="default", on_step=events.append)
    assert [(a, i) for a, i, _ in connector.calls] == [
        ("crmSearchRecords", {"recordType": "Leads", "criteria": "(Last_Name:equals:Doe)"}),
        ("crmUpdateRecord", {"recordType": "Leads", "recordId": "1", "fieldValues": {"Company": "Acme"}}),
        ("crmUpdateRecord", {"recordType": "Leads", "recordId": "2", "fieldValues": {"Company": "Acme"}}),
        ("crmGetRecord", {"recordType": "Leads", "recordId": "2"}),
    ]
    assert {c for _, _, c in connector.calls} == {"default"}
    assert events == [
        {"step": "find", "action": "crmSearchRecords", "calls": 1, "ok": True},
        {"step": "update", "action": "crmUpdateRecord", "calls": 2, "ok": True},
        {"step": "check", "action": "crmGetRecord", "calls": 1, "ok": True},
    ]
    assert outcome["ran"] is True
    assert outcome["steps"]["update"] == [{"data": [{"details": {"id": "1"}}]}, {"data": [{"details": {"id": "2"}}]}]
    assert outcome["steps"]["check"] == {"data": {"id": "2", "Company": "Acme"}}


def test_a_failing_step_stops_the_run_and_keeps_zohos_error() -> None:
    refused = ZohoAPIError(status=400, code="INVALID_DATA", message="invalid id", details={"api_name": "id"})
    connector = FakeConnector({**ANSWERS, "crmUpdateRecord": refused})
    events: list[dict[str, Any]] = []
    with pytest.raises(StepFailed) as caught:
        run_automation(connector, three_steps(), connection="default", on_step=events.append)
    error = caught.value
    assert error.step == "update" and error.call == 0 and error.cause is refused
    assert "step 'update' (crmUpdateRecord, call 0) failed: Zoho answered HTTP 400 INVALID_DATA: invalid id" in str(
        error
    )
    payload = error.to_dict()["error"]
    assert (payload["type"], payload["code"], payload["details"], payload["step"]) == (
        "zoho_error",
        "INVALID_DATA",
        {"api_name": "id"},
        "update",
    )
    assert [a for a, _, _ in connector.calls] == ["crmSearchRecords", "crmUpdateRecord"]  # nothing after the failure
    assert events[-1]["step"] == "update" and events[-1]["ok"] is False and events[-1]["calls"] == 1


def test_a_reference_that_fails_at_run_time_names_the_file_and_step() -> None:
    connector = FakeConnector({**ANSWERS, "crmSearchRecords": {"data": []}})
    with pytest.raises(AutomationError) as caught:
        run_automation(connector, three_steps(), connection="default")
    assert caught.value.file == "three.yaml"
    assert caught.value.problems == [
        Violation(
            "check",
            "/inputs/recordId",
            "${steps.update.1.data.0.details.id}: steps.update has 0 items; there is no item 1",
        )
    ]


POLL = {"poll": {"trigger": "crmNewThings", "inputs": {"recordType": "Leads"}}}


def test_a_poll_trigger_polls_from_the_state_and_returns_the_new_one() -> None:
    data = automation({**get("${item.id}"), "for_each": "${trigger.records}"}, trigger=POLL)
    flow = Automation.from_dict(data)
    connector = PollingConnector(ANSWERS, records=[{"id": "7"}, {"id": "8"}])
    events: list[dict[str, Any]] = []
    outcome = run_automation(connector, flow, connection="c", state={"cursor": 0}, on_step=events.append)
    assert connector.polls == [("crmNewThings", {"recordType": "Leads"}, {"cursor": 0}, "c")]
    assert [i["recordId"] for _, i, _ in connector.calls] == ["7", "8"]
    assert outcome["state"] == {"cursor": 1}
    assert events[0] == {"trigger": "crmNewThings", "records": 2, "more": False}


def test_a_poll_without_new_records_runs_no_step() -> None:
    flow = Automation.from_dict(automation(get("1"), trigger=POLL))
    connector = PollingConnector(ANSWERS, records=[])
    outcome = run_automation(connector, flow, connection="c", state=None)
    assert connector.calls == []
    assert outcome["ran"] is False and outcome["state"] == {"cursor": 1}


def test_records_given_by_the_caller_are_not_polled() -> None:
    flow = Automation.from_dict(automation({**get("${item.id}"), "for_each": "${trigger.records}"}, trigger=POLL))
    connector = PollingConnector(ANSWERS)
    run_automation(connector, flow, connection="c", trigger={"records": [{"id": "9"}]})
    assert connector.polls == []
    assert [i["recordId"] for _, i, _ in connector.calls] == ["9"]


def test_a_connector_that_cannot_poll_says_so() -> None:
    flow = Automation.from_dict(automation(get("1"), trigger=POLL))
    with pytest.raises(ConnectorError, match="cannot poll triggers"):
        run_automation(FakeConnector(ANSWERS), flow, connection="c")


def test_a_webhook_automation_needs_the_delivered_events() -> None:
    flow = Automation.from_dict(
        automation(get("1"), trigger={"webhook": {"trigger": "crmThingsChanged", "inputs": {}}})
    )
    with pytest.raises(ConnectorError, match="starts from a webhook"):
        run_automation(FakeConnector(ANSWERS), flow, connection="c")


# --- shipped automations in the manifest ---------------------------------------------------------------------


def ship(tree: Path, name: str, data: dict[str, Any]) -> None:
    folder = tree / "automations" / "tests"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))
    manifest = yaml.safe_load((tree / "manifest.yaml").read_text())
    manifest.setdefault("automations", []).append(f"automations/tests/{name}.yaml")
    (tree / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def test_a_shipped_automation_is_checked_when_the_manifest_loads(tree: Path) -> None:
    ship(tree, "good", {**automation(find()), "name": "good"})
    assert load_manifest(tree, use_cache=False).automations["good"] == "automations/tests/good.yaml"
    ship(tree, "bad", {**automation(get("${steps.nope.data}")), "name": "bad"})
    with pytest.raises(ManifestError) as caught:
        load_manifest(tree, use_cache=False)
    assert caught.value.file == "automations/tests/bad.yaml"
    assert "get (/steps/0/inputs/recordId): ${steps.nope.data}: no earlier step is named 'nope'" in caught.value.problem


def test_shipped_automation_names_are_unique(tree: Path) -> None:
    ship(tree, "one", automation(find()))
    ship(tree, "two", automation(find()))
    with pytest.raises(ManifestError, match="duplicate automation name 'test'"):
        load_manifest(tree, use_cache=False)


def test_an_edited_automation_is_checked_again_despite_the_cache(tree: Path) -> None:
    ship(tree, "good", automation(find()))
    assert load_manifest(tree).automations["test"] == "automations/tests/good.yaml"
    file = tree / "automations" / "tests" / "good.yaml"
    file.write_text(file.read_text().replace("crmSearchRecords", "crmSearchRecordz"))
    with pytest.raises(ManifestError, match="unknown action 'crmSearchRecordz'"):
        load_manifest(tree)


def test_the_bundled_manifests_automations_load(manifest: Manifest) -> None:
    bundled = bundled_manifest()
    for name, file in bundled.automations.items():
        assert load_automation(bundled.root / file, bundled).name == name


def test_check_automation_works_on_plain_data() -> None:
    """What manifest.py and engines without a Manifest call: schemas by action key, triggers by key."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    found = check_automation(
        automation({"name": "a", "action": "xDo", "inputs": {"n": "x"}}), actions={"xDo": schema}, triggers={}
    )
    assert found == [Violation("a", "/steps/0/inputs/n", "'x' is not of type 'integer'")]


def test_the_readme_example_is_a_valid_automation(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Automations", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    file = tmp_path / "readme.yaml"
    file.write_text(example)
    loaded = load_automation(file, bundled_manifest())
    assert [s.name for s in loaded.steps] == ["find", "move", "check"]
