"""The quick validator (connector._fastschema) never calls valid what jsonschema rejects, nor the reverse when it
answers at all: per keyword, over generated schemas, and over every bundled input schema with generated inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from connector import Connector, _fastschema
from connector._fastschema import decide
from connector.connection import _shape
from connector.manifest import data_root
from tests.fuzz.strategies import json_values, valid_inputs

_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _jsonschema_valid(schema: Any, value: Any) -> bool:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return bool(validator.is_valid(value))


def _agrees(schema: Any, value: Any) -> bool | None:
    """decide's answer, after checking it is jsonschema's whenever it gives one."""
    answer = decide(schema, value)
    if answer is not None:
        assert answer == _jsonschema_valid(schema, value), (schema, value, answer)
    return answer


def test_its_keywords_are_the_ones_jsonschema_asserts_with_and_annotations_are_not() -> None:
    asserted = set(Draft202012Validator.VALIDATORS)
    assert _fastschema.ASSERTIONS - {"then", "else"} <= asserted  # then/else are read by `if`
    assert not _fastschema.ANNOTATIONS & asserted


# (schema, value, the answer: True, False, or None when it must leave it to jsonschema)
_COMMON = json.loads((data_root() / "schemas/common.json").read_text())["$defs"]
DATE_TIME, HTTP_URL = _COMMON["dateTime"]["pattern"], _COMMON["httpUrl"]["pattern"]

CASES: list[tuple[Any, Any, bool | None]] = [
    # type: 2020-12 counts 1.0 as an integer; booleans are not numbers; tuples are not arrays (and not plain JSON)
    ({"type": "integer"}, 1, True),
    ({"type": "integer"}, 1.0, True),
    ({"type": "integer"}, 1.5, False),
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
    ({"type": "number"}, 2.5, True),
    ({"type": "number"}, Decimal("1"), None),
    ({"type": "boolean"}, 0, False),
    ({"type": "string"}, "x", True),
    ({"type": "null"}, None, True),
    ({"type": "null"}, 0, False),
    ({"type": "array"}, [], True),
    ({"type": "array"}, (1,), None),
    ({"type": "object"}, {}, True),
    ({"type": "object"}, {1: "a"}, None),
    ({"type": ["string", "null"]}, None, True),
    ({"type": ["string", "null"]}, 3, False),
    ({"minimum": 0}, float("nan"), None),
    # enum and const: 1 == 1.0 but True != 1, recursively
    ({"enum": [1, "a"]}, 1.0, True),
    ({"enum": [1, "a"]}, True, False),
    ({"enum": [[1, True]]}, [1.0, True], True),
    ({"enum": [[1, True]]}, [True, 1], False),
    ({"const": {"a": [0]}}, {"a": [0.0]}, True),
    ({"const": {"a": [0]}}, {"a": [False]}, False),
    ({"const": False}, 0, False),
    ({"const": None}, None, True),
    ({"enum": ["asc", "desc"]}, "ASC", False),
    # numbers, strings (length in code points; pattern is a search, not a full match), arrays
    ({"minimum": 1, "maximum": 3}, 3, True),
    ({"minimum": 1, "maximum": 3}, 3.5, False),
    ({"minimum": 1}, "0", True),
    ({"minimum": 1}, True, True),
    ({"exclusiveMinimum": 1}, 1, False),
    ({"exclusiveMaximum": 1}, 0.5, True),
    ({"maxLength": 1}, "\U0001f600", True),
    ({"minLength": 2}, "\U0001f600", False),
    ({"pattern": "b"}, "abc", True),
    ({"pattern": "^b"}, "abc", False),
    ({"pattern": "^b"}, 5, True),
    # common.json's dateTime and httpUrl patterns, what date-time and uri inputs are checked by
    ({"pattern": DATE_TIME}, "2026-11-20T10:15:00+05:30", True),
    ({"pattern": DATE_TIME}, "2026-11-20T04:45:00.25Z", True),
    ({"pattern": DATE_TIME}, "yesterday", False),
    ({"pattern": DATE_TIME}, "2026-11-20T10:15:00", False),
    ({"pattern": HTTP_URL}, "https://example.com/a?b=1", True),
    ({"pattern": HTTP_URL}, "https://", False),
    ({"minItems": 1, "maxItems": 2}, [1, 2, 3], False),
    ({"items": {"type": "string"}}, ["a", 1], False),
    ({"items": False}, [], True),
    ({"items": False}, [1], False),
    ({"uniqueItems": True}, ["a", "b"], True),
    ({"uniqueItems": True}, ["a", "a"], False),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [True, 1], None),
    ({"uniqueItems": True}, [{"a": 1}, {"a": 1}], None),
    ({"uniqueItems": False}, ["a", "a"], True),
    # objects
    ({"required": ["a"]}, {"a": None}, True),
    ({"required": ["a"]}, {}, False),
    ({"required": ["a"]}, [], True),
    ({"properties": {"a": {"type": "string"}}}, {"a": 1}, False),
    ({"properties": {"a": {"type": "string"}}}, {"b": 1}, True),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}, False),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}, {"a": "x", "b": 2}, True),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}, {"b": "x"}, False),
    ({"patternProperties": {"^x-": {}}, "additionalProperties": False}, {"x-a": 1}, True),
    ({"patternProperties": {"^x-": {"type": "string"}}}, {"x-a": 1}, False),
    ({"patternProperties": {"^x-": {}, "^y-": {}}, "additionalProperties": False}, {"y-a": 1, "z": 1}, False),
    ({"minProperties": 1}, {}, False),
    ({"maxProperties": 1}, {"a": 1, "b": 2}, False),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ab": 1}, True),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"A": 1}, False),
    ({"dependentRequired": {"a": ["b"]}}, {"a": 1}, False),
    ({"dependentRequired": {"a": ["b"]}}, {"b": 1}, True),
    # combinators
    ({"anyOf": [{"type": "string"}, {"minimum": 2}]}, 1, False),
    ({"anyOf": [{"type": "string"}, {"minimum": 2}]}, 3, True),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 1, False),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 0.5, True),
    ({"allOf": [{"minimum": 0}, {"maximum": 1}]}, 2, False),
    ({"not": {"type": "string"}}, "x", False),
    ({"not": {"type": "number"}}, Decimal("1"), None),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"c": 1}, True),
    ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {"c": 1}, False),
    ({"then": {"required": ["b"]}}, {}, True),
    (True, 1, True),
    (False, 1, False),
    # format asserts (as jsonschema is run here); only email is judged here, and only strings are checked
    ({"format": "email"}, "a@b", True),
    ({"format": "email"}, "ab", False),
    ({"format": "date-time"}, "2026-12-02T10:00:00Z", None),
    ({"format": "date-time"}, 5, True),
    ({"format": "uri"}, "x", None),
    # keywords it does not know: never judged
    ({"multipleOf": 2}, 4, None),
    ({"$ref": "#/$defs/a", "$defs": {"a": {}}}, 1, None),
    ({"format": "ipv4"}, "1.2.3.4", None),
    ({"properties": {"a": {"contains": {}}}}, {}, None),
    # annotations and extensions change nothing
    ({"title": "t", "description": "d", "default": 1, "examples": [1], "x-role": "id", "writeOnly": True}, 1, True),
]


@pytest.mark.parametrize(
    ("schema", "value", "answer"), CASES, ids=[f"{i}-{json.dumps(c[0])[:40]}" for i, c in enumerate(CASES)]
)
def test_each_keyword(schema: Any, value: Any, answer: bool | None) -> None:
    assert _agrees(schema, value) is answer


# --- generated schemas over the keywords it knows, and generated values -----------------------------------------

_names = st.sampled_from(["a", "b", "x-c", "1"])
_leaf_schemas = st.one_of(
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["string", "integer", "number", "object", "array", "boolean", "null"])
            | st.lists(st.sampled_from(["string", "integer", "null", "boolean"]), min_size=1, max_size=2, unique=True),
            "enum": st.lists(json_values, min_size=1, max_size=3),
            "const": json_values,
            "minimum": st.integers(-2, 2) | st.floats(-2, 2),
            "maximum": st.integers(-2, 2),
            "exclusiveMinimum": st.integers(-2, 2),
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(0, 3),
            "pattern": st.sampled_from(["^a", "b", "^[0-9]+$", "x|y"]),
            "minItems": st.integers(0, 2),
            "maxItems": st.integers(0, 2),
            "uniqueItems": st.booleans(),
            "required": st.lists(_names, max_size=2, unique=True),
            "minProperties": st.integers(0, 2),
            "maxProperties": st.integers(0, 2),
            "dependentRequired": st.dictionaries(_names, st.lists(_names, max_size=2, unique=True), max_size=2),
            "format": st.sampled_from(["email", "date-time", "uri"]),
        },
    ),
)


def _composite(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {},
        optional={
            "properties": st.dictionaries(_names, inner, max_size=2),
            "patternProperties": st.dictionaries(st.sampled_from(["^x-", "[0-9]", "^b$"]), inner, max_size=2),
            "additionalProperties": inner,
            "propertyNames": inner,
            "items": inner,
            "anyOf": st.lists(inner, min_size=1, max_size=2),
            "allOf": st.lists(inner, min_size=1, max_size=2),
            "oneOf": st.lists(inner, min_size=1, max_size=2),
            "not": inner,
            "if": inner,
            "then": inner,
            "else": inner,
            "type": st.sampled_from(["object", "array", "integer"]),
        },
    )


_schemas = st.recursive(_leaf_schemas, _composite, max_leaves=6)
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 1.0, 1.5, -2.0])
    | st.sampled_from(["", "a", "b", "ab", "x-c", "1", "a@b", "10", "\U0001f600"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names | st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(_SETTINGS, max_examples=600)
@given(schema=_schemas, value=_values)
def test_generated_schemas_and_values(schema: Any, value: Any) -> None:
    Draft202012Validator.check_schema(schema)
    _agrees(schema, value)


# --- every bundled input schema ----------------------------------------------------------------------------------

_CONNECTOR = Connector.load()
_MANIFEST = _CONNECTOR.manifest
_BUNDLED: dict[str, Mapping[str, Any]] = {
    **{f"action {k}": a.input_schema for k, a in _MANIFEST.actions.items()},
    **{f"trigger {k}": t.input_schema for k, t in _MANIFEST.triggers.items()},
    **{f"connection {k}": c.input_schema for k, c in _MANIFEST.connections.items()},
    **{f"connection {k} (checked shape)": _shape(c.input_schema) for k, c in _MANIFEST.connections.items()},
}


@pytest.mark.parametrize("key", sorted(_BUNDLED))
def test_every_bundled_schema_is_one_it_judges(key: str) -> None:
    """Otherwise an action's valid inputs import jsonschema on the run path (≈ 0.1 s of a cold start)."""
    assert _fastschema.supported(_BUNDLED[key])


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one node somewhere inside it replaced, dropped, retyped or given a sibling."""
    nodes: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        nodes.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(value, ())
    path = draw(st.sampled_from(nodes))
    old = _at(value, path)
    options: list[Any] = [json_values, st.just([old]), st.just({"x": old})]
    if isinstance(old, bool):
        options.append(st.just(int(old)))
    elif isinstance(old, int | float):
        options += [st.just(float(old)), st.just(str(old)), st.just(-old), st.just(old + 1)]
    elif isinstance(old, str):
        options += [st.just(old + "\n"), st.just(old.upper()), st.just(old[:-1]), st.just(old * 30)]
    elif isinstance(old, dict):
        options.append(st.tuples(st.text(max_size=6), json_values).map(lambda kv: {**old, kv[0]: kv[1]}))
        if old:
            options.append(st.sampled_from(sorted(old)).map(lambda k: {n: v for n, v in old.items() if n != k}))
    elif isinstance(old, list):
        options += [st.just([*old, *old]), st.just([]), st.just(old[1:])]
    new = draw(st.one_of(options))
    return _replaced(value, path, new)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [*value[:head], _replaced(value[head], rest, new), *value[head + 1 :]]


_INPUT_KEYS = sorted([*_MANIFEST.actions, *_MANIFEST.triggers])


@pytest.mark.parametrize("key", _INPUT_KEYS)
def test_every_action_and_trigger_schema_with_generated_inputs(key: str) -> None:
    schema = _BUNDLED[f"action {key}"] if key in _MANIFEST.actions else _BUNDLED[f"trigger {key}"]
    seen: list[bool | None] = []

    @_SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        valid = data.draw(valid_inputs(key))
        seen.append(_agrees(schema, valid))
        seen.append(_agrees(schema, data.draw(_mutated(valid))))
        seen.append(_agrees(schema, data.draw(_mutated(data.draw(_mutated(valid))))))

    check()
    assert False in seen
    # it does say yes to valid inputs, unless one is required to be a date-time or uri (those go to jsonschema)
    formatted = any(f'"format": "{f}"' in json.dumps(schema) for f in ("date-time", "uri"))
    assert True in seen or formatted


def test_a_valid_run_does_not_import_jsonschema() -> None:
    """The point of it all: a cold `run` with valid inputs and connection leaves jsonschema unimported."""
    code = """
import sys
from connector import Connector
from connector.connection import resolve_connection
from connector._inputs import checked_inputs
connector = Connector.load()
action = connector.actions["crmGetRecord"]
resolve_connection(connector.manifest.connections[action.connection], {"access_token": "t", "region": "eu"})
checked_inputs(action.key, action.input_schema, {"recordType": "Leads", "recordId": "1"})
assert "jsonschema" not in sys.modules, "jsonschema imported"
"""
    subprocess.run([sys.executable, "-c", "from connector import Connector; Connector.load()"], check=True)  # cache
    subprocess.run([sys.executable, "-c", code], check=True)
