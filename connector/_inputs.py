"""Check an action's inputs against its schema, after the coercions engines need, and fill in defaults.

Engines often store every configured value as a string ("10", "true"); a top-level input whose schema wants an
integer, number or boolean accepts the string form. Python callers may pass bytes for a file. Everything else must
match the schema as written, and every violation is reported at once.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from connector import _schema
from connector.errors import InputValidationError, Violation

__all__ = ["checked_inputs"]

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
    found = _schema.violations(schema, values)
    if found:
        raise InputValidationError(subject, found)
    for name, prop in properties.items():
        if name not in values and isinstance(prop, Mapping) and "default" in prop:
            values[name] = prop["default"]
    return values


def _coerce(prop: Any, value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
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
