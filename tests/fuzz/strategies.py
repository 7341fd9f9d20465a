"""Inputs for any action or trigger, from its own input schema: valid ones, and near-misses and garbage."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from connector import Connector

__all__ = ["ACTIONS", "TRIGGERS", "invalid_inputs", "json_values", "valid_inputs"]

_CONNECTOR = Connector.load()
ACTIONS: list[str] = sorted(_CONNECTOR.actions)  # every action, present and future
TRIGGERS: list[str] = sorted(_CONNECTOR.manifest.triggers)  # and every trigger

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "-1", "true", "10", "1e400", "null", "/", "{x}", "..", "%00", "\u00e9\u4e2d"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _schema(key: str) -> Mapping[str, Any]:
    """An action's or a trigger's input schema (they share one namespace of keys)."""
    found = _CONNECTOR.actions.get(key) or _CONNECTOR.manifest.triggers[key]
    return found.input_schema


@cache
def valid_inputs(key: str) -> st.SearchStrategy[Any]:
    return from_schema(dict(_schema(key)))


@cache
def invalid_inputs(key: str) -> st.SearchStrategy[Any]:
    """Near-misses of valid inputs (one value replaced, a required one dropped, an unknown one added), arbitrary
    objects over the action's input names, and inputs that are not an object at all."""
    schema = _schema(key)
    names = sorted(schema.get("properties", {}))
    required = sorted(schema.get("required", []))
    valid = valid_inputs(key)
    kinds = [
        st.tuples(valid, st.sampled_from(names), json_values).map(lambda t: {**t[0], t[1]: t[2]}),
        st.tuples(valid, st.text(min_size=1, max_size=8), json_values).map(lambda t: {**t[0], t[1]: t[2]}),
        st.dictionaries(st.sampled_from(names) | st.text(max_size=8), json_values, max_size=5),
        json_values.filter(lambda v: not isinstance(v, dict)),
    ]
    if required:
        kinds.append(
            st.tuples(valid, st.sampled_from(required)).map(lambda t: {k: v for k, v in t[0].items() if k != t[1]})
        )
    return st.one_of(kinds)
