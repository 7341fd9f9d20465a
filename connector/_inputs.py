"""Check an action's inputs against its schema, after the coercions engines need, and fill in defaults.

Engines often store every configured value as a string ("10", "true"); a top-level input whose schema wants an
integer, number or boolean accepts the string form, and one that takes the strings "true" and "false" (CRM's
`converted`) accepts a boolean. Python callers may pass a path, an open binary file or bytes
for a file (`connector.files.Upload`: streamed, never copied). Everything else must match the schema as written,
and every violation is reported at once.

Values JSON cannot carry are refused up front, wherever they sit: a lone surrogate in a string (it would fail as a
UnicodeEncodeError while the request is built), NaN or an infinity (Zoho's JSON has neither), and nesting so deep
that checking it would exhaust the stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from connector import _schema
from connector.errors import InputValidationError, Violation
from connector.files import Upload, is_file_like, placeholder

__all__ = ["checked_inputs", "unsafe_values"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def checked_inputs(subject: str, schema: Mapping[str, Any], inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated inputs with defaults applied. Raises InputValidationError listing every violation."""
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InputValidationError(subject, [Violation("(inputs)", "", "inputs must be a JSON object")])
    properties: Mapping[str, Any] = schema.get("properties", {})
    values = {name: _coerce(properties.get(name), value) for name, value in (inputs or {}).items()}
    required = set(schema.get("required", []))
    # null, and "" for an optional input, mean "not given": engines send both for inputs left empty
    values = {n: v for n, v in values.items() if v is not None and (v != "" or n in required)}
    found = unsafe_values(values) or _schema.violations(schema, placeholder(values))
    if found:
        raise InputValidationError(subject, found)
    for name, prop in properties.items():
        if name not in values and isinstance(prop, Mapping) and "default" in prop:
            values[name] = prop["default"]
    return values


MAX_DEPTH = 100  # Zoho's records nest a few levels; far deeper would exhaust Python's stack in the validator
_SURROGATE = re.compile("[\ud800-\udfff]")


def unsafe_values(values: Mapping[str, Any]) -> list[Violation]:
    """Every lone surrogate (in a string or a key), every NaN or infinity, and nesting beyond MAX_DEPTH."""
    found: list[Violation] = []
    too_deep: set[str] = set()
    stack: list[tuple[Any, list[str]]] = [(values, [])]
    while stack:  # a loop, not recursion: the depth of the value is the caller's choice
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            if path[0] not in too_deep:  # once per input, however many branches go too deep
                too_deep.add(path[0])
                found.append(_unsafe(path[:1], f"nested more than {MAX_DEPTH} levels deep"))
            continue
        if isinstance(value, dict | Mapping):  # dict first: an ABC check costs more
            members: Any = value.items()
        elif isinstance(value, list | tuple):
            members = enumerate(value)
        else:
            _check_leaf(value, path, found)
            continue
        deepest = len(path) >= MAX_DEPTH  # its members are too deep, whatever they are
        for key, item in members:
            if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                found.append(_unsafe(path, "a key contains a lone surrogate, not valid Unicode"))
            # Plain strings and numbers (nearly every value of a bulk write) are checked here, not pushed: a path
            # list is made only for containers and for a value found unsafe.
            if deepest:
                stack.append((item, [*path, str(key)]))
            elif isinstance(item, str):
                if not item.isascii() and _SURROGATE.search(item):  # isascii: a fast no for most text
                    _check_leaf(item, [*path, str(key)], found)
            elif isinstance(item, float):
                if not math.isfinite(item):
                    _check_leaf(item, [*path, str(key)], found)
            elif isinstance(item, dict | list | tuple | Mapping):
                stack.append((item, [*path, str(key)]))
    return sorted(found, key=lambda v: v.pointer)


def _check_leaf(value: Any, path: list[str], found: list[Violation]) -> None:
    if isinstance(value, str):
        match = _SURROGATE.search(value)
        if match:
            found.append(_unsafe(path, f"contains a lone surrogate ({ord(match.group()):#06x}), not valid Unicode"))
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(_unsafe(path, f"{value} is not a JSON number"))


def _unsafe(path: list[str], message: str) -> Violation:
    # a key with a lone surrogate is shown escaped, so that the error itself can be printed
    shown = [part.encode("utf-8", "backslashreplace").decode("utf-8") for part in path]
    pointer = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in shown)
    return Violation(shown[0] if shown else "(inputs)", pointer, message)


def _coerce(prop: Any, value: Any) -> Any:
    if is_file_like(value):
        return Upload(bytes(value) if isinstance(value, bytearray) else value)
    if isinstance(value, bool) and isinstance(prop, Mapping) and prop.get("type") == "string":
        # a string choice of "true" / "false" (/ "both"): a Python caller's True means "true"
        text = "true" if value else "false"
        return text if text in prop.get("enum", ()) else value
    if not isinstance(value, str) or not isinstance(prop, Mapping):
        return value
    kind = prop.get("type")
    text = value.strip()
    if kind == "integer" and _is_int(text):
        return int(text)
    if kind == "number":
        try:
            return float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return value
    if kind == "boolean" and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    return value


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()
