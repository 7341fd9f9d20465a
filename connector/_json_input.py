"""JSON read from a caller (a command-line flag, `@file`, an invoke request, a served request): strict, since
Zoho's JSON has no NaN or infinities, and every problem an input error that names where the JSON came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.errors import InputValidationError, Violation

__all__ = ["argument", "loads"]


def argument(flag: str, value: str, *, want_object: bool = False) -> Any:
    """A flag's value: JSON as written, or `@file` holding JSON."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise _error(flag, flag, f"cannot read {value[1:]}: {exc.strerror}") from None
    parsed = loads(flag, flag, text)
    if want_object and not isinstance(parsed, dict):
        raise _error(flag, flag, "expected a JSON object")
    return parsed


def loads(subject: str, name: str, text: str) -> Any:
    """Strict JSON: NaN and infinities are refused, and nesting too deep for Python is an input error rather than a
    RecursionError."""
    try:
        return json.loads(text or "null", parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _error(subject, name, "not valid JSON here: nested too deeply") from None
    except ValueError as exc:
        raise _error(subject, name, f"not valid JSON: {exc}") from None


def _error(subject: str, name: str, problem: str) -> InputValidationError:
    return InputValidationError(subject, [Violation(name, "", problem)])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a number")
    return value
