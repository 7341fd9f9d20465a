"""A quick, certain "valid" for the common case, so that a process running one action needn't import jsonschema.

jsonschema's import costs about as much as the rest of a run's own code (≈ 0.1 s). Most inputs are valid, and the
input schemas use a small set of keywords, so `decide` judges a value under exactly Draft 2020-12's semantics as
jsonschema applies them here (format checking on), for that set only. It answers True or False only when it is
certain, and None when it is not: a schema with any other keyword, a value that is not plain JSON (a tuple, a
Decimal, a non-string key), a `format` it doesn't check itself, a `uniqueItems` over objects. A caller trusts only
True; on False or None it asks jsonschema, which also words the errors, so errors stay exactly as jsonschema finds
them. `decide` never says True where jsonschema rejects: tests/connector/test_schema_fast.py compares the two over
every bundled schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ANNOTATIONS", "ASSERTIONS", "accepts", "decide", "supported"]

# Keywords jsonschema does not assert with (Draft 2020-12), besides any `x-` extension.
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
    }
)
# Formats whose check jsonschema skips for a non-string; a string under one is judged here only for `email`
# (jsonschema's check is "contains @"); `date-time` and `uri` checks depend on optional packages.
_FORMATS = frozenset({"email", "date-time", "uri"})
_TYPES = frozenset({"string", "integer", "number", "object", "array", "boolean", "null"})
_ONE = frozenset({"items", "additionalProperties", "propertyNames", "not", "if", "then", "else"})
_LISTS = frozenset({"anyOf", "allOf", "oneOf"})
_MAPS = frozenset({"properties", "patternProperties"})


class _Undecided(Exception):
    """The value is outside what this module judges with certainty."""


def accepts(schema: Mapping[str, Any], value: Any) -> bool:
    """True only when `value` is certainly valid under `schema`."""
    return decide(schema, value) is True


def decide(schema: Mapping[str, Any], value: Any) -> bool | None:
    """Whether `value` is valid under `schema`, or None when this module cannot be certain."""
    if not supported(schema) or not _plain(value):
        return None
    try:
        return _valid(schema, value)
    except _Undecided:
        return None


_supported: dict[int, tuple[Mapping[str, Any], bool]] = {}


def supported(schema: Mapping[str, Any]) -> bool:
    """Whether every keyword of `schema`, at every depth, is one this module judges; computed once per schema."""
    cached = _supported.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, _uses_only_known(schema))
        _supported[id(schema)] = cached
    return cached[1]


def _uses_only_known(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    for key, arg in schema.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key not in ASSERTIONS:
            return False
        if key in _ONE:
            ok = _uses_only_known(arg)
        elif key in _LISTS:
            ok = isinstance(arg, list) and all(_uses_only_known(s) for s in arg)
        elif key in _MAPS:
            ok = isinstance(arg, dict) and all(_uses_only_known(s) for s in arg.values())
        elif key == "type":
            ok = arg in _TYPES if isinstance(arg, str) else isinstance(arg, list) and set(arg) <= _TYPES
        elif key == "format":
            ok = arg in _FORMATS
        else:
            ok = True
        if not ok:
            return False
    return True


def _plain(value: Any) -> bool:
    """Whether the value is made of JSON's types only: dicts with string keys, lists, str, int, finite float, bool,
    None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):  # NaN compares false to everything: leave it to jsonschema
                return False
        elif not (item is None or isinstance(item, str | int)):  # bool is an int
            return False
    return True


def _valid(schema: Any, value: Any) -> bool:
    if schema is True or schema is False:
        return schema
    for key, arg in schema.items():
        check = _KEYWORDS.get(key)
        if check is not None and not check(arg, value, schema):
            return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":  # 2020-12: 1.0 is an integer; a boolean is not a number
        return _is_number(value) and (isinstance(value, int) or value.is_integer())
    if kind == "number":
        return _is_number(value)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    raise _Undecided


def _type(arg: Any, value: Any, _: Any) -> bool:
    kinds = [arg] if isinstance(arg, str) else arg
    return any(_is_type(value, kind) for kind in kinds)


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's equality: 1 == 1.0, but True != 1, recursively."""
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return len(one) == len(two) and all(k in two and _equal(v, two[k]) for k, v in one.items())
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def _unique(items: list[Any]) -> bool:
    if all(isinstance(item, str) for item in items) or all(_is_number(item) for item in items):
        return len(set(items)) == len(items)  # 1 and 1.0 are one item, as jsonschema counts them
    raise _Undecided


def _format(arg: Any, value: Any, _: Any) -> bool:
    if not isinstance(value, str):
        return True
    if arg == "email":
        return "@" in value
    raise _Undecided


def _extras(value: dict[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = "|".join(schema.get("patternProperties", {}))
    return [k for k in value if k not in properties and not (patterns and re.search(patterns, k))]


def _additional(arg: Any, value: Any, schema: Any) -> bool:
    if not isinstance(value, dict):
        return True
    extras = _extras(value, schema)
    if isinstance(arg, dict):
        return all(_valid(arg, value[k]) for k in extras)
    return bool(arg) or not extras


def _if(arg: Any, value: Any, schema: Any) -> bool:
    branch = "then" if _valid(arg, value) else "else"
    return branch not in schema or _valid(schema[branch], value)


def _obj(check: Callable[[Any, dict[str, Any]], bool]) -> Callable[[Any, Any, Any], bool]:
    return lambda arg, value, _: not isinstance(value, dict) or check(arg, value)


def _arr(check: Callable[[Any, list[Any]], bool]) -> Callable[[Any, Any, Any], bool]:
    return lambda arg, value, _: not isinstance(value, list) or check(arg, value)


def _str(check: Callable[[Any, str], bool]) -> Callable[[Any, Any, Any], bool]:
    return lambda arg, value, _: not isinstance(value, str) or check(arg, value)


def _num(check: Callable[[Any, int | float], bool]) -> Callable[[Any, Any, Any], bool]:
    return lambda arg, value, _: not _is_number(value) or check(arg, value)


# keyword → check(argument, value, the schema holding it); `then` and `else` are `if`'s, read from the schema
_KEYWORDS: dict[str, Callable[[Any, Any, Any], bool]] = {
    "type": _type,
    "enum": lambda arg, value, _: any(_equal(each, value) for each in arg),
    "const": lambda arg, value, _: _equal(arg, value),
    "format": _format,
    "allOf": lambda arg, value, _: all(_valid(s, value) for s in arg),
    "anyOf": lambda arg, value, _: any(_valid(s, value) for s in arg),
    "oneOf": lambda arg, value, _: sum(1 for s in arg if _valid(s, value)) == 1,
    "not": lambda arg, value, _: not _valid(arg, value),
    "if": _if,
    "minimum": _num(lambda arg, n: n >= arg),
    "maximum": _num(lambda arg, n: n <= arg),
    "exclusiveMinimum": _num(lambda arg, n: n > arg),
    "exclusiveMaximum": _num(lambda arg, n: n < arg),
    "minLength": _str(lambda arg, s: len(s) >= arg),
    "maxLength": _str(lambda arg, s: len(s) <= arg),
    "pattern": _str(lambda arg, s: re.search(arg, s) is not None),
    "items": _arr(lambda arg, items: all(_valid(arg, item) for item in items)),
    "minItems": _arr(lambda arg, items: len(items) >= arg),
    "maxItems": _arr(lambda arg, items: len(items) <= arg),
    "uniqueItems": _arr(lambda arg, items: not arg or _unique(items)),
    "required": _obj(lambda arg, obj: all(name in obj for name in arg)),
    "minProperties": _obj(lambda arg, obj: len(obj) >= arg),
    "maxProperties": _obj(lambda arg, obj: len(obj) <= arg),
    "properties": _obj(lambda arg, obj: all(_valid(s, obj[k]) for k, s in arg.items() if k in obj)),
    "patternProperties": _obj(
        lambda arg, obj: all(_valid(s, v) for p, s in arg.items() for k, v in obj.items() if re.search(p, k))
    ),
    "additionalProperties": _additional,
    "propertyNames": _obj(lambda arg, obj: all(_valid(arg, k) for k in obj)),
    "dependentRequired": _obj(
        lambda arg, obj: all(each in obj for name, needed in arg.items() if name in obj for each in needed)
    ),
}
ASSERTIONS = frozenset({*_KEYWORDS, "then", "else"})
