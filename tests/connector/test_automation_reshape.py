"""What the Partner Store sync added to automations: `$map`, `$json` and optional `?` segments in inputs (checked at
deploy time, pure at run time), a poll trigger's `cron`, windows polled until the poll says no more (the state
handed over after each), and a batch step whose items were not all written failing the run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.automations import (
    Automation,
    AutomationError,
    StepFailed,
    item_failures,
    load_automation,
    resolve,
    run_automation,
)
from connector.errors import TransientError, ZohoAPIError
from connector.manifest import bundled_manifest
from connector.models import Manifest

RECORDS = [{"id": "1", "amount": 2.5, "tags": ["a"]}, {"id": "2"}]
MAPPED = {
    "$map": "${trigger.records}",
    "to": {"Store_Id": "${item.id}", "Amount": "${item.amount?}", "Payload": {"$json": "${item}"}},
}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return bundled_manifest()


def upsert(records: Any, **inputs: Any) -> dict[str, Any]:
    return {
        "name": "upsert",
        "action": "crmUpsertRecords",
        "inputs": {"recordType": "Store_Things", "duplicateCheckFields": ["Store_Id"], "records": records, **inputs},
    }


def poll_automation(*steps: dict[str, Any], cron: str | None = None) -> dict[str, Any]:
    poll: dict[str, Any] = {"trigger": "storeNewTransactions", "inputs": {"window": 2}}
    if cron is not None:
        poll["cron"] = cron
    return {"name": "things", "trigger": {"poll": poll}, "steps": list(steps)}


# --- resolve ---------------------------------------------------------------------------------------------------


def test_map_builds_one_element_per_record_with_json_and_optional_members() -> None:
    out = resolve({"records": MAPPED}, {"trigger": {"records": RECORDS}, "steps": {}})
    assert out == {
        "records": [
            {"Store_Id": "1", "Amount": 2.5, "Payload": '{"id":"1","amount":2.5,"tags":["a"]}'},
            {"Store_Id": "2", "Amount": None, "Payload": '{"id":"2"}'},
        ]
    }
    assert json.loads(out["records"][0]["Payload"]) == RECORDS[0]


def test_map_hides_a_for_each_item_and_maps_literal_lists() -> None:
    value = {"$map": [{"n": 1}, {"n": 2}], "to": {"inner": "${item.n}"}}
    assert resolve(value, {"item": {"n": 9}, "steps": {}}) == [{"inner": 1}, {"inner": 2}]
    assert resolve({"$map": [], "to": "${item}"}, {"steps": {}}) == []


def test_a_plain_missing_member_is_still_an_error_and_map_needs_a_list() -> None:
    with pytest.raises(AutomationError, match="has no member 'amount'"):
        resolve({"$map": "${trigger.records}", "to": "${item.amount}"}, {"trigger": {"records": RECORDS}})
    with pytest.raises(AutomationError, match=r"\$map takes a list, not dict"):
        resolve({"$map": "${trigger}", "to": "${item}"}, {"trigger": {"records": RECORDS}})
    assert resolve("${trigger.records.5?}", {"trigger": {"records": RECORDS}}) is None
    assert resolve("${trigger.nothing?.deeper}", {"trigger": {}}) is None


def test_an_object_with_other_keys_is_not_an_operator() -> None:
    value = {"$map": "${trigger.records}", "to": {}, "extra": 1}
    assert resolve(value, {"trigger": {"records": []}}) == {"$map": [], "to": {}, "extra": 1}


# --- deploy-time checks ----------------------------------------------------------------------------------------


def test_a_mapped_upsert_passes_deploy_time_checks(manifest: Manifest) -> None:
    loaded = load_automation(poll_automation(upsert(MAPPED), cron="0 */2 * * *"), manifest)
    assert loaded.trigger["poll"]["cron"] == "0 */2 * * *"


def test_item_outside_a_map_and_bad_references_inside_are_reported(manifest: Manifest) -> None:
    bad = {"$map": "${trigger.records}", "to": {"Store_Id": "${steps.later.id}", "Name": "text ${item.id}"}}
    with pytest.raises(AutomationError) as caught:
        load_automation(poll_automation(upsert(bad, trigger="${item.id}")), manifest)
    pointers = {p.pointer: p.message for p in caught.value.problems}
    assert "only inside a step with for_each" in pointers["/steps/0/inputs/trigger"]
    assert "no earlier step is named 'later'" in pointers["/steps/0/inputs/records/to/Store_Id"]
    assert "cannot sit inside text" in pointers["/steps/0/inputs/records/to/Name"]


def test_literal_inputs_next_to_a_map_are_still_checked(manifest: Manifest) -> None:
    with pytest.raises(AutomationError) as caught:
        load_automation(poll_automation(upsert(MAPPED, duplicateCheckFields="Store_Id")), manifest)
    assert [p.pointer for p in caught.value.problems] == ["/steps/0/inputs/duplicateCheckFields"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"poll": {"trigger": "storeNewTransactions", "cron": "0 */2 * *"}}, "has 4 fields"),
        ({"poll": {"trigger": "storeNewTransactions", "cron": "61 * * * *"}}, "outside 0-59"),
    ],
)
def test_a_poll_cron_is_checked(manifest: Manifest, trigger: dict[str, Any], message: str) -> None:
    with pytest.raises(AutomationError) as caught:
        load_automation({"name": "x", "trigger": trigger, "steps": [upsert(MAPPED)]}, manifest)
    assert [p.pointer for p in caught.value.problems] == ["/trigger/poll/cron"]
    assert message in caught.value.problems[0].message


# --- running: windows, state, items ----------------------------------------------------------------------------


class Windows:
    """A connector whose poll hands out `pages` one window at a time; upserts answer per item."""

    def __init__(self, pages: list[list[dict[str, Any]]], answers: list[list[dict[str, Any]]] | None = None) -> None:
        self.pages, self.answers = pages, answers
        self.polled_from: list[Any] = []
        self.sent: list[list[dict[str, Any]]] = []

    def poll(self, trigger: str, inputs: Any, state: Any, *, connection: Any) -> dict[str, Any]:
        self.polled_from.append(state)
        n = 0 if state is None else state["n"]
        return {"records": self.pages[n], "state": {"n": n + 1}, "more": n + 1 < len(self.pages)}

    def run(self, action: str, inputs: Any, *, connection: Any) -> dict[str, Any]:
        self.sent.append(inputs["records"])
        if self.answers is not None:
            return {"data": self.answers[len(self.sent) - 1]}
        return {
            "data": [{"index": i, "status": "success", "id": r["Store_Id"]} for i, r in enumerate(inputs["records"])]
        }


def things(manifest: Manifest) -> Automation:
    return load_automation(poll_automation(upsert(MAPPED)), manifest)


def test_a_poll_with_more_is_polled_again_and_the_state_handed_over_after_each_window(manifest: Manifest) -> None:
    connector = Windows([[{"id": "1"}, {"id": "2"}], [], [{"id": "3"}]])
    saved: list[Any] = []
    events: list[dict[str, Any]] = []
    outcome = run_automation(connector, things(manifest), connection="c", on_state=saved.append, on_step=events.append)
    assert connector.polled_from == [None, {"n": 1}, {"n": 2}]
    assert [[r["Store_Id"] for r in sent] for sent in connector.sent] == [["1", "2"], ["3"]]  # no call for nothing
    assert saved == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert (outcome["state"], outcome["ran"], outcome["polls"]) == ({"n": 3}, True, 3)
    assert [e.get("more") for e in events if "trigger" in e] == [True, True, False]


def test_items_not_written_fail_the_step_and_keep_the_state_of_the_last_good_window(manifest: Manifest) -> None:
    doubt = {"type": "transient", "message": "timed out", "status": None, "may_have_acted": True}
    answers = [
        [{"index": 0, "status": "success"}, {"index": 1, "status": "success"}],
        [{"index": 0, "status": "success"}, {"index": 1, "status": "in_doubt", "id": None, "error": doubt}],
    ]
    connector = Windows([[{"id": "1"}, {"id": "2"}], [{"id": "3"}, {"id": "4"}], [{"id": "5"}]], answers)
    saved: list[Any] = []
    with pytest.raises(StepFailed) as caught:
        run_automation(connector, things(manifest), connection="c", on_state=saved.append)
    assert saved == [{"n": 1}]  # the second window's records are polled again next time
    cause = caught.value.cause
    assert isinstance(cause, TransientError) and cause.retryable and cause.may_have_acted
    assert str(cause) == "1 of 2 items were not written (1 in doubt): timed out"
    assert caught.value.to_dict()["error"]["step"] == "upsert"


def test_a_refused_item_fails_with_zohos_code_and_details(manifest: Manifest) -> None:
    refused = {
        "index": 1,
        "status": "error",
        "code": "INVALID_DATA",
        "message": "invalid data",
        "details": {"api_name": "Amount", "json_path": "$.data[1].Amount"},
    }
    connector = Windows([[{"id": "1"}, {"id": "2"}]], [[{"index": 0, "status": "success"}, refused]])
    with pytest.raises(StepFailed) as caught:
        run_automation(connector, things(manifest), connection="c")
    cause = caught.value.cause
    assert isinstance(cause, ZohoAPIError) and (cause.status, cause.code) == (207, "INVALID_DATA")
    assert cause.details == {
        "index": 1,
        "details": refused["details"],
        "summary": "1 of 2 items were not written (0 in doubt)",
    }


def test_item_failures_reads_only_per_item_answers() -> None:
    assert item_failures({"data": [{"index": 0, "status": "error", "code": "X"}]}) == [
        {"index": 0, "status": "error", "code": "X"}
    ]
    assert item_failures({"data": [{"status": "error"}]}) == []  # not a batch answer: no index
    assert item_failures({"data": {"status": "error"}}) == []
    assert item_failures({"data": []}) == [] and item_failures(None) == []
