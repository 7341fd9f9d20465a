"""Automation files: deploy-time configuration of what starts an automation and the actions it runs, step by step.

    name: new-leads-to-books
    trigger: {poll: {trigger: crmNewRecords, inputs: {recordType: Leads}}}
    steps:
      - name: contacts
        action: booksCreateRecord
        for_each: ${trigger.records}
        inputs: {recordType: contacts, fieldValues: {contact_name: ${item.Last_Name}}}

A string input that is exactly `${trigger.records}`, `${steps.NAME.data.data.0.id}` or `${item}` (a dotted path;
numbers index lists) is replaced by that value, with its type, when the step runs. `${item}` is the current element
inside a step with `for_each`; `${trigger.…}` exists only for triggers that hand out records (poll, webhook).

`load_automation` checks a file at deploy time, before anything runs: the shape (schemas/automation.json), that
every action and trigger exists, that literal inputs match the action's input schema (a reference stands for a value
of any type: only what no reference can change is reported), that references point to earlier steps, and the cron
expression. Every problem is reported at once, naming the file, the step and the input (a JSON pointer).

`resolve` and `step_calls` are pure and deterministic (no I/O, no clock, no randomness), so a Temporal workflow can
call them; `run_automation` runs an automation in this process.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector import _reshape
from connector.errors import ConnectorError, InputValidationError, TransientError, Violation, ZohoAPIError

if TYPE_CHECKING:
    from connector.models import Manifest

__all__ = [
    "Automation",
    "AutomationError",
    "Step",
    "StepFailed",
    "check_automation",
    "item_failures",
    "items_error",
    "load_automation",
    "parse",
    "references",
    "resolve",
    "run_automation",
    "step_calls",
    "valid_cron",
]

# A reference is a whole string: `${` … `}` around a dotted path.
_REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_SEGMENT = re.compile(r"[^.\s{}]+")
TRIGGER_KINDS = ("schedule", "poll", "webhook")


class AutomationError(InputValidationError):
    """An automation file is broken, or a reference cannot be resolved. Lists every problem; nothing was run.

    `file` is the automation's file; each problem is a Violation whose `input` is the step's name ("trigger",
    "(automation)" for the file as a whole) and whose `pointer` points into the file (`/steps/1/inputs/recordId`).
    Its JSON form is the protocol's invalid_input error, with the file as its subject."""

    def __init__(self, file: str, problems: list[Violation]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        ConnectorError.__init__(self, f"{file}: invalid automation:\n{lines}")
        self.subject = file
        self.violations = problems
        self.file = file

    @property
    def problems(self) -> list[Violation]:
        return self.violations


class StepFailed(ConnectorError):
    """A step's action failed: the run stopped there. Keeps the action's error (`cause`: its type, retryable,
    retry_after, may_have_acted, Zoho's details) and names the step and, for a for_each step, the call."""

    def __init__(self, automation: str, step: Step, call: int | None, cause: ConnectorError) -> None:
        where = f"step {step.name!r} ({step.action}" + (f", call {call}" if call is not None else "") + ")"
        super().__init__(
            f"automation {automation!r}: {where} failed: {cause}",
            retryable=cause.retryable,
            retry_after=cause.retry_after,
            may_have_acted=cause.may_have_acted,
        )
        self.step = step.name
        self.call = call
        self.cause = cause

    def to_dict(self) -> dict[str, Any]:
        error = {**self.cause.to_dict()["error"], "message": self.message, "step": self.step}
        if self.call is not None:
            error["call"] = self.call
        return {"error": error}


@dataclass(frozen=True)
class Step:
    """One step: an action, its inputs (literals and references) and, optionally, the list it runs for."""

    name: str
    action: str
    inputs: dict[str, Any] = field(default_factory=dict)
    for_each: str | None = None


@dataclass(frozen=True)
class Automation:
    """A checked automation file. `trigger` is one of {schedule: {cron}}, {poll: {trigger, inputs}},
    {webhook: {trigger, inputs}}; `source` names the file it came from."""

    name: str
    trigger: dict[str, Any]
    steps: tuple[Step, ...]
    source: str
    description: str | None = None

    @property
    def trigger_kind(self) -> str:
        """schedule, poll or webhook."""
        return next(iter(self.trigger))

    def to_dict(self) -> dict[str, Any]:
        """The automation as plain JSON (what an engine passes to a workflow; `from_dict` reads it back)."""
        steps = []
        for step in self.steps:
            entry: dict[str, Any] = {"name": step.name, "action": step.action, "inputs": step.inputs}
            if step.for_each is not None:
                entry["for_each"] = step.for_each
            steps.append(entry)
        out: dict[str, Any] = {"name": self.name, "trigger": self.trigger, "steps": steps, "source": self.source}
        if self.description is not None:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Automation:
        """An automation `to_dict` wrote, already checked: no I/O and no checks, so a workflow may call it."""
        return cls(
            name=data["name"],
            trigger=dict(data["trigger"]),
            steps=tuple(
                Step(s["name"], s["action"], dict(s.get("inputs") or {}), s.get("for_each")) for s in data["steps"]
            ),
            source=data.get("source", data["name"]),
            description=data.get("description"),
        )


# --- loading and checking --------------------------------------------------------------------------------------


def load_automation(source: str | os.PathLike[str] | Mapping[str, Any], manifest: Manifest) -> Automation:
    """Read an automation file (YAML or JSON; a str is a path) or take its parsed content (a mapping), and check it
    against schemas/automation.json and the manifest. Raises AutomationError listing every problem."""
    if isinstance(source, Mapping):
        file, data = "(automation)", source
    else:
        file = str(source)
        data = _parse(Path(source))
    actions = {key: action.input_schema for key, action in manifest.actions.items()}
    triggers = {key: {"kind": t.kind, "input_schema": t.input_schema} for key, t in manifest.triggers.items()}
    problems = check_automation(data, actions=actions, triggers=triggers)
    if problems:
        raise AutomationError(file, problems)
    return _automation(data, file)


def _automation(data: Mapping[str, Any], file: str) -> Automation:
    trigger = {kind: dict(value) for kind, value in data["trigger"].items()}
    for kind in ("poll", "webhook"):
        if kind in trigger:
            trigger[kind].setdefault("inputs", {})
    steps = tuple(Step(s["name"], s["action"], dict(s.get("inputs") or {}), s.get("for_each")) for s in data["steps"])
    return Automation(data["name"], trigger, steps, file, data.get("description"))


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AutomationError(
            str(path), [Violation("(automation)", "", f"cannot read the file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise AutomationError(str(path), [Violation("(automation)", "", "not UTF-8 text")]) from None
    return parse(text, str(path))


def parse(text: str, file: str) -> Any:
    """An automation file's content: JSON when the file's name ends in .json, else YAML (timestamps stay strings)."""
    if file.lower().endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise AutomationError(file, [Violation("(automation)", "", f"not valid JSON: {exc}")]) from None
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        hint = ""
        if "${" in text and "flow" in str(exc):
            hint = ' (inside { } or [ ], write a reference in quotes: "${item.id}")'
        raise AutomationError(file, [Violation("(automation)", "", f"not valid YAML{hint}: {exc}")]) from None


@cache
def _loader() -> Any:
    """YAML's safe loader, minus timestamps: `since: 2024-01-01` stays the string an input schema expects."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


@cache
def file_schema() -> dict[str, Any]:
    """schemas/automation.json: the shape of an automation file (the runtime's, whatever manifest is loaded)."""
    from connector.manifest import data_root

    schema: dict[str, Any] = json.loads((data_root() / "schemas" / "automation.json").read_text(encoding="utf-8"))
    return schema


def check_automation(
    data: Any,
    *,
    actions: Mapping[str, Mapping[str, Any]],
    triggers: Mapping[str, Mapping[str, Any]],
) -> list[Violation]:
    """Every problem of an automation's parsed content, in file order. `actions` maps an action key to its input
    schema; `triggers` maps a trigger key to {"kind", "input_schema"}. Empty when the automation is sound."""
    problems = _shape_problems(data)
    if not isinstance(data, Mapping):
        return problems
    records = _trigger_problems(data.get("trigger"), triggers, problems)
    steps = data.get("steps")
    if isinstance(steps, list):
        names = [s.get("name") if isinstance(s, Mapping) else None for s in steps]
        earlier: dict[str, bool] = {}  # step name → runs for_each (its result is then a list)
        for index, step in enumerate(steps):
            if isinstance(step, Mapping):
                _step_problems(index, step, names, earlier, records, actions, problems)
                name = step.get("name")
                if isinstance(name, str) and name not in earlier:
                    earlier[name] = step.get("for_each") is not None
    return _unique(problems)


def _unique(problems: list[Violation]) -> list[Violation]:
    seen: set[Violation] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def _label(data: Any, path: Sequence[Any]) -> str:
    """Who a problem at `path` concerns: a step (by name when it has one), the trigger, or the file."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        step = data["steps"][path[1]]
        name = step.get("name") if isinstance(step, Mapping) else None
        return name if isinstance(name, str) and name else f"step {path[1] + 1}"
    if path and path[0] == "trigger":
        return "trigger"
    return "(automation)"


def _pointer(path: Sequence[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _shape_problems(data: Any) -> list[Violation]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(file_schema())
    problems = []
    for error in validator.iter_errors(data):
        for path, message in _shape_messages(data, error):
            problems.append(Violation(_label(data, path), _pointer(path), message))
    return sorted(problems, key=lambda p: p.pointer)


def _shape_messages(data: Any, error: Any) -> Iterator[tuple[list[Any], str]]:
    path = list(error.absolute_path)
    if error.validator == "oneOf" and path == ["trigger"]:
        trigger = error.instance
        chosen = [k for k in TRIGGER_KINDS if isinstance(trigger, Mapping) and k in trigger]
        if len(chosen) == 1 and len(trigger) == 1:  # the right kind, something wrong inside: say what
            branch = TRIGGER_KINDS.index(chosen[0])
            for sub in error.context:
                if sub.relative_schema_path[0] == branch:
                    yield from _shape_messages(data, sub)
            return
        yield (
            path,
            "expected exactly one of {schedule: {cron}}, {poll: {trigger, inputs}}, {webhook: {trigger, inputs}}",
        )
        return
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        yield [*path, missing], "is required"
    elif error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        for extra in sorted(set(error.instance) - set(known), key=str):
            yield [*path, extra], f"unknown field; expected one of: {', '.join(known)}"
    elif error.validator == "pattern" and path and path[-1] == "name" and "steps" in path:
        yield path, "a step's name is an identifier: letters, digits and _, not starting with a digit"
    elif error.validator == "pattern" and path and path[-1] == "for_each":
        yield path, "for_each is a reference, e.g. ${trigger.records} or ${steps.NAME.data.data}"
    else:
        yield path, str(error.message)


def _trigger_problems(trigger: Any, triggers: Mapping[str, Mapping[str, Any]], problems: list[Violation]) -> bool:
    """Check the trigger against the manifest; True when it hands out records (so ${trigger.records} exists)."""
    if not isinstance(trigger, Mapping) or len(trigger) != 1:
        return False
    kind, body = next(iter(trigger.items()))
    if kind == "schedule":
        cron = body.get("cron") if isinstance(body, Mapping) else None
        if isinstance(cron, str):
            problem = cron_problem(cron)
            if problem:
                problems.append(Violation("trigger", "/trigger/schedule/cron", problem))
        return False
    if kind not in ("poll", "webhook") or not isinstance(body, Mapping):
        return False
    key = body.get("trigger")
    if not isinstance(key, str):
        return True
    definition = triggers.get(key)
    if definition is None:
        problems.append(Violation("trigger", f"/trigger/{kind}/trigger", _unknown("trigger", key, triggers)))
        return True
    if definition["kind"] != kind:
        problems.append(
            Violation("trigger", f"/trigger/{kind}/trigger", f"{key} is a {definition['kind']} trigger, not {kind}")
        )
    cron = body.get("cron")
    if isinstance(cron, str):  # how often a poll runs
        problem = cron_problem(cron) if kind == "poll" else "only a poll trigger has a cron: Zoho calls a webhook"
        if problem:
            problems.append(Violation("trigger", f"/trigger/{kind}/cron", problem))
    inputs = body.get("inputs", {})
    if isinstance(inputs, Mapping):
        for pointer, _ in _strings_with_references(inputs, f"/trigger/{kind}/inputs"):
            problems.append(
                Violation("trigger", pointer, "a trigger's inputs are literal values: nothing runs before it")
            )
        for violation in _literal_problems(definition["input_schema"], inputs, []):
            problems.append(Violation("trigger", f"/trigger/{kind}/inputs{violation.pointer}", violation.message))
    return True


def _unknown(what: str, key: str, known: Mapping[str, Any]) -> str:
    near = get_close_matches(key, list(known), n=3)
    listing = "actions" if what == "action" else "triggers"
    hint = f"; did you mean {', '.join(near)}?" if near else f"; `zoho-connector {listing}` lists them"
    return f"unknown {what} {key!r}{hint}"


def _step_problems(
    index: int,
    step: Mapping[str, Any],
    names: Sequence[Any],
    earlier: Mapping[str, bool],
    records: bool,
    actions: Mapping[str, Mapping[str, Any]],
    problems: list[Violation],
) -> None:
    name = step.get("name")
    label = name if isinstance(name, str) and name else f"step {index + 1}"
    at = f"/steps/{index}"
    if isinstance(name, str) and name in earlier:
        problems.append(Violation(label, f"{at}/name", f"another step is already named {name!r}: names are unique"))
    later = {n for n in names[index + 1 :] if isinstance(n, str)} | ({name} if isinstance(name, str) else set())

    def reference_problem(pointer: str, text: str, *, item: bool) -> None:
        problem = _reference_problem(text, earlier=earlier, later=later, current=name, records=records, item=item)
        if problem:
            problems.append(Violation(label, pointer, problem))

    for_each = step.get("for_each")
    if isinstance(for_each, str) and _REFERENCE.fullmatch(for_each):
        reference_problem(f"{at}/for_each", for_each, item=False)
        path = _REFERENCE.fullmatch(for_each).group(1).split(".")  # type: ignore[union-attr]
        if len(path) == 2 and path[0] == "steps" and earlier.get(path[1]) is False:
            problems.append(
                Violation(label, f"{at}/for_each", f"step {path[1]!r}'s result is an object {{data: …}}, not a list")
            )
    inputs = step.get("inputs", {})
    if not isinstance(inputs, Mapping):
        return
    refs: list[tuple[str, ...]] = [tuple(_unpointer(p)) for p in _reshape.operator_pointers(inputs)]
    scopes = _reshape.map_scopes(inputs)  # inside a $map's `to`, ${item} is the element being mapped
    for pointer, text in _strings_with_references(inputs, ""):
        if _REFERENCE.fullmatch(text):
            mapped = any(pointer == scope or pointer.startswith(scope + "/") for scope in scopes)
            reference_problem(f"{at}/inputs{pointer}", text, item=for_each is not None or mapped)
            refs.append(tuple(_unpointer(pointer)))
        else:
            problems.append(
                Violation(
                    label,
                    f"{at}/inputs{pointer}",
                    "a reference is a whole string, e.g. ${steps.NAME.data.data.0.id}: it cannot sit inside text",
                )
            )
    action = step.get("action")
    if not isinstance(action, str):
        return
    schema = actions.get(action)
    if schema is None:
        problems.append(Violation(label, f"{at}/action", _unknown("action", action, actions)))
        return
    for violation in _literal_problems(schema, inputs, refs):
        problems.append(Violation(label, f"{at}/inputs{violation.pointer}", violation.message))


def _reference_problem(
    text: str,
    *,
    earlier: Mapping[str, bool],
    later: set[str],
    current: Any,
    records: bool,
    item: bool,
) -> str | None:
    match = _REFERENCE.fullmatch(text)
    assert match is not None
    path = match.group(1).split(".")
    if not all(_SEGMENT.fullmatch(part) for part in path):
        return f"{text}: a reference is a dotted path without spaces or empty parts, e.g. ${{steps.NAME.data}}"
    root = path[0]
    if root == "item":
        return None if item else f"{text}: the current element (item) exists only inside a step with for_each"
    if root == "trigger":
        if not records:
            return f"{text}: this automation's trigger hands out no records (only poll and webhook triggers do)"
        if len(path) > 1 and path[1] != "records":
            return f"{text}: the trigger hands out {{records: […]}}; use ${{trigger.records…}}"
        return None
    if root != "steps":
        return f"{text}: a reference starts with trigger, steps or item"
    if len(path) == 1:
        return f"{text}: name a step, e.g. ${{steps.NAME.data}}"
    name = path[1]
    if name not in earlier:
        if name == current:
            return f"{text}: a step cannot read its own result"
        if name in later:
            return f"{text}: step {name!r} runs after this one; a step reads only earlier steps"
        near = get_close_matches(name, list(earlier), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        return f"{text}: no earlier step is named {name!r}{hint}"
    if len(path) > 2:
        if earlier[name] and not path[2].isdigit():
            example = f"${{steps.{name}.0.data}}"
            return f"{text}: step {name!r} runs for_each: its result is a list of {{data: …}}, e.g. {example}"
        if not earlier[name] and path[2] != "data":
            return f"{text}: step {name!r}'s result is {{data: …}}; use ${{steps.{name}.data…}}"
    return None


def _strings_with_references(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, string) for every string under `value` that holds `${`."""
    if isinstance(value, str):
        if "${" in value:
            yield pointer, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings_with_references(item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings_with_references(item, f"{pointer}/{i}")


def _unpointer(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


# Keywords whose verdict depends on an object's keys or a list's length, never on a member's value: certain even
# when a member is a reference.
_STRUCTURAL = frozenset(
    {"required", "additionalProperties", "minProperties", "maxProperties", "minItems", "maxItems", "dependentRequired"}
)
_CONDITIONAL = frozenset({"if", "then", "else", "not", "dependentSchemas", "contains", "unevaluatedProperties"})


def _literal_problems(
    schema: Mapping[str, Any], inputs: Mapping[str, Any], refs: list[tuple[str, ...]]
) -> list[Violation]:
    """The violations of `inputs` that hold whatever values the references turn out to have, after the coercions
    a run applies (connector._inputs): a reference is a value of any type."""
    from connector import _schema
    from connector._inputs import _coerce

    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    values = {
        name: _coerce(properties.get(name), value)
        for name, value in inputs.items()
        if value is not None and (value != "" or name in required)  # what a run treats as not given
    }
    found = []
    for error in _schema.validator_for(schema).iter_errors(values):
        if _certain(error, refs, bool(refs)):
            violation = _schema._violation(error, schema)
            found.append(violation)
    return sorted(set(found), key=lambda v: (v.pointer, v.message))


def _certain(error: Any, refs: list[tuple[str, ...]], any_refs: bool) -> bool:
    """Whether the error holds whatever the references resolve to."""
    path = tuple(str(p) for p in error.absolute_path)
    if any(path[: len(ref)] == ref for ref in refs):
        return False  # at or inside a reference
    if any_refs and _CONDITIONAL & {str(p) for p in error.absolute_schema_path}:
        return False  # a reference may change which branch of a condition applies
    inside = [ref for ref in refs if ref[: len(path)] == path]
    if not inside:
        return True
    if error.validator in ("anyOf", "oneOf"):
        if not error.context:
            return False  # oneOf matched several branches: a reference may make it one
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        # certain only when every branch fails for a reason no reference can change
        return all(
            any(_certain(sub, refs, any_refs) for sub in branches.get(i, [])) for i in range(len(error.validator_value))
        )
    return error.validator in _STRUCTURAL


# --- cron ------------------------------------------------------------------------------------------------------

_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


def cron_problem(expression: str) -> str | None:
    """What is wrong with a five-field cron expression, or None. The subset every engine reads the same way
    (Temporal schedules, Celery's crontab, Unix cron): *, numbers, names, ranges a-b, lists and /steps."""
    fields = expression.split()
    if len(fields) != 5:
        return f"cron {expression!r} has {len(fields)} fields; expected 5: minute hour day-of-month month day-of-week"
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            problem = _cron_part(part, what, low, high, names)
            if problem:
                return f"cron {expression!r}: {what} {text!r}: {problem}"
    return None


def valid_cron(expression: str) -> bool:
    return cron_problem(expression) is None


def _cron_part(part: str, what: str, low: int, high: int, names: Sequence[str]) -> str | None:
    base, slash, step = part.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return f"the step after / must be a whole number from 1, not {step!r}"
    if base == "*":
        return None
    first, dash, last = base.partition("-")
    values = []
    for value in (first, last) if dash else (first,):
        number = _cron_value(value, names)
        if number is None:
            named = f" or {names[0]}-{names[-1]}" if names else ""
            return f"{value!r} is not a number from {low} to {high}{named}"
        if not low <= number <= high:
            return f"{number} is outside {low}-{high}"
        values.append(number)
    if dash and values[0] > values[1]:
        return f"the range {base} runs backwards"
    return None


def _cron_value(text: str, names: Sequence[str]) -> int | None:
    if text.isdigit():
        return int(text)
    upper = text.upper()
    if upper in names:
        return names.index(upper) + (1 if len(names) == 12 else 0)  # months count from 1, days from 0 (Sunday)
    return None


# --- references ------------------------------------------------------------------------------------------------


def references(value: Any) -> list[str]:
    """Every reference in a value (inputs), e.g. ["${trigger.records}"], in order of appearance."""
    return [text for _, text in _strings_with_references(value, "") if _REFERENCE.fullmatch(text)]


def resolve(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every string that is exactly a reference replaced by the value it names in `context`
    ({"trigger": {...}, "steps": {name: result}, "item": …}), with its type; dicts and lists are walked.
    Pure and deterministic. A path that does not exist raises AutomationError naming the reference."""
    return _resolve(value, context, "")


def _resolve(value: Any, context: Mapping[str, Any], pointer: str) -> Any:
    if isinstance(value, str):
        match = _REFERENCE.fullmatch(value)
        return value if match is None else _lookup(value, match.group(1).split("."), context, pointer)
    if isinstance(value, Mapping):
        if _reshape.is_operator(value):  # $map, $json (connector/_reshape.py)
            return _reshape.apply(value, context, pointer, _resolve)
        return {k: _resolve(v, context, f"{pointer}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, context, f"{pointer}/{i}") for i, v in enumerate(value)]
    return value


def _lookup(text: str, path: list[str], context: Mapping[str, Any], pointer: str) -> Any:
    def fail(problem: str) -> AutomationError:
        return AutomationError("(automation)", [Violation("(references)", pointer, f"{text}: {problem}")])

    if path[0] not in context:
        raise fail(f"nothing is named {path[0]!r} here")
    node = context[path[0]]
    for depth, segment in enumerate(path[1:], start=1):
        walked = ".".join(path[:depth])
        optional = len(segment) > 1 and segment.endswith("?")  # `${item.plan?}`: null when missing
        part = segment[:-1] if optional else segment
        if isinstance(node, Mapping):
            if part not in node:
                if optional:
                    return None
                keys = ", ".join(sorted(map(str, node))[:10]) or "nothing"
                raise fail(f"{walked} has no member {part!r} (it has: {keys})")
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit():
                raise fail(f"{walked} is a list; index it with a number, not {part!r}")
            if int(part) >= len(node):
                if optional:
                    return None
                raise fail(f"{walked} has {len(node)} items; there is no item {part}")
            node = node[int(part)]
        elif optional and node is None:
            return None
        else:
            raise fail(f"{walked} is {_json_type(node)}, which has no member {part!r}")
    return node


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def step_calls(step: Step, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inputs of each call the step makes: one call, or one per element of its for_each list (with `${item}`
    that element). Pure and deterministic. Raises AutomationError naming the step when a reference fails."""
    try:
        if step.for_each is None:
            return [_resolve(step.inputs, context, "/inputs")]
        elements = _resolve(step.for_each, context, "/for_each")
        if not isinstance(elements, list):
            raise AutomationError(
                "(automation)",
                [Violation("(references)", "/for_each", f"{step.for_each} is {_json_type(elements)}, not a list")],
            )
        return [_resolve(step.inputs, {**context, "item": element}, "/inputs") for element in elements]
    except AutomationError as exc:
        raise AutomationError(exc.file, [Violation(step.name, p.pointer, p.message) for p in exc.problems]) from None


# --- running locally -------------------------------------------------------------------------------------------


def run_automation(
    connector: Any,
    automation: Automation,
    *,
    connection: Any,
    trigger: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_state: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run an automation in this process, step after step, and return {"automation", "trigger", "steps", "state",
    "ran", "polls"}.

    `trigger` is what the trigger handed out ({"records": […]}) when the caller already has it (a webhook's
    events, an engine's poll). Otherwise a schedule runs the steps once, and a poll trigger polls first, from
    `state` (the poll's state from the previous run, None the first time): with no new records the steps do not
    run. A poll that answers `more: true` (it handed out a bounded window of what is new) is followed, once the
    steps ran on that window, by the next poll from its state, until the poll says nothing more: `on_state`
    receives the state after each window whose steps succeeded, for the caller to store (a run that fails later
    resumes from there; a failed window polls the same records again). The last state is returned too.

    A step whose action fails stops the run: StepFailed names it and keeps the action's error. So does a step of
    many items (a batch action, one result per item) where any item was refused or is in doubt: the other items'
    results are kept in Zoho, but the run, and the poll's state, do not move past records that were not written.
    `on_step` receives {"step", "action", "calls", "ok", "error"?} after each step (and {"trigger", "records",
    "more"} after a poll)."""
    kind = automation.trigger_kind
    new_state: Any = dict(state) if state is not None else None
    if trigger is None and kind == "poll":
        poll = getattr(connector, "poll", None)
        if poll is None:
            raise ConnectorError(
                "this connector cannot poll triggers (Connector.poll is missing): update zoho-connector, or pass "
                "the trigger's records with trigger={'records': [...]}"
            )
        spec = automation.trigger["poll"]
        ran, polls = False, 0
        while True:
            answer = poll(spec["trigger"], spec.get("inputs", {}), new_state, connection=connection)
            polls += 1
            more = bool(answer.get("more"))
            if on_step is not None:
                on_step({"trigger": spec["trigger"], "records": len(answer["records"]), "more": more})
            context = _context({"records": answer["records"]})
            if answer["records"]:
                _run_steps(connector, automation, context, connection, on_step)
                ran = True
            new_state = answer["state"]
            if on_state is not None:
                on_state(new_state)
            if not more:
                return {**_outcome(automation, context), "state": new_state, "ran": ran, "polls": polls}
    if trigger is None and kind == "webhook":
        raise ConnectorError(
            f"automation {automation.name!r} starts from a webhook: pass the events it delivered, "
            "trigger={'records': [...]} (on the command line: --trigger)"
        )
    context = _context(trigger or {})
    if kind != "schedule" and not context["trigger"].get("records"):
        return {**_outcome(automation, context), "state": new_state, "ran": False, "polls": 0}
    _run_steps(connector, automation, context, connection, on_step)
    return {**_outcome(automation, context), "state": new_state, "ran": True, "polls": 0}


def _context(trigger: Mapping[str, Any]) -> dict[str, Any]:
    return {"trigger": dict(trigger), "steps": {}}


def _outcome(automation: Automation, context: Mapping[str, Any]) -> dict[str, Any]:
    return {"automation": automation.name, "trigger": context["trigger"], "steps": context["steps"]}


def _run_steps(
    connector: Any,
    automation: Automation,
    context: dict[str, Any],
    connection: Any,
    on_step: Callable[[dict[str, Any]], None] | None,
) -> None:
    for step in automation.steps:
        try:
            calls = step_calls(step, context)
        except AutomationError as exc:
            error = AutomationError(automation.source, exc.problems)
            _report(on_step, step, 0, error)
            raise error from None
        results = []
        for index, inputs in enumerate(calls):
            call = index if step.for_each is not None else None
            try:
                results.append(connector.run(step.action, inputs, connection=connection))
            except ConnectorError as exc:
                failed = StepFailed(automation.name, step, call, exc)
                _report(on_step, step, index + 1, failed)
                raise failed from exc
            failures = item_failures(results[-1])
            if failures:
                failed = StepFailed(automation.name, step, call, items_error(failures, len(results[-1]["data"])))
                _report(on_step, step, index + 1, failed)
                raise failed
        context["steps"][step.name] = results if step.for_each is not None else results[0]
        if on_step is not None:
            on_step({"step": step.name, "action": step.action, "calls": len(calls), "ok": True})


def item_failures(result: Any) -> list[dict[str, Any]]:
    """The items a batch action did not write, from its answer ({"data": [{"index", "status", …}, …]}, one result
    per item): refused ("error") and in doubt ("in_doubt"). Empty for any other answer. Pure: engines use it to
    decide that a step failed."""
    data = result.get("data") if isinstance(result, Mapping) else None
    if not isinstance(data, list) or not data:
        return []
    if not all(isinstance(item, Mapping) and "index" in item and "status" in item for item in data):
        return []
    return [dict(item) for item in data if item["status"] != "success"]


def items_error(failures: Sequence[Mapping[str, Any]], total: int) -> ConnectorError:
    """One error for the items a batch step did not write: Zoho's refusal of the first refused item (its code and
    details), or, when every failed item is in doubt or was not sent, a transient error. `may_have_acted` is set:
    the step wrote its other items."""
    doubtful = sum(1 for item in failures if item["status"] == "in_doubt")
    summary = f"{len(failures)} of {total} items were not written ({doubtful} in doubt)"
    refused = next((item for item in failures if item.get("code") and "error" not in item), None)
    if refused is not None:
        details = {"index": refused["index"], "details": refused.get("details"), "summary": summary}
        return ZohoAPIError(
            status=207 if len(failures) < total else 400,
            code=str(refused["code"]),
            message=f"{refused.get('message') or ''} (item {refused['index']}; {summary})".strip(),
            details=details,
            may_have_acted=True,
        )
    first = failures[0].get("error") or {}
    reason = first.get("message") if isinstance(first, Mapping) else None
    return TransientError(
        f"{summary}: {reason or 'no answer about them'}",
        status=first.get("status") if isinstance(first, Mapping) else None,
        retryable=True,
        may_have_acted=True,
    )


def _report(on_step: Callable[[dict[str, Any]], None] | None, step: Step, calls: int, error: ConnectorError) -> None:
    if on_step is not None:
        on_step({"step": step.name, "action": step.action, "calls": calls, "ok": False, **error.to_dict()})
