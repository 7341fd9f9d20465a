"""CRM search criteria: `((Field:op:value)and(Field:op:value))or(...)`, parsed into a predicate.

Values escape `(`, `)` and `,` with a backslash, as Zoho's search API documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.sandbox.records import RecordError
from connector.sandbox.state import JSON, ModuleDef

Predicate = Callable[[JSON], bool]
OPERATORS = {
    "equals",
    "not_equal",
    "starts_with",
    "in",
    "not_in",
    "greater_than",
    "greater_equal",
    "less_than",
    "less_equal",
    "between",
}
_NUMERIC = {"integer", "bigint", "double", "currency", "percent"}
MAX_CRITERIA = 10
MAX_IN_VALUES = 100


def _bad(reason: str, api_name: str = "criteria", **extra: Any) -> RecordError:
    return RecordError("INVALID_QUERY", "Invalid query formed", {"reason": reason, "api_name": api_name, **extra})


@dataclass
class _Parser:
    text: str
    module: ModuleDef
    pos: int = 0
    conditions: int = 0

    def parse(self) -> Predicate:
        pred = self._or()
        if self.pos != len(self.text):
            raise _bad(f"unexpected text at position {self.pos}")
        return pred

    def _peek_word(self, word: str) -> bool:
        return self.text[self.pos : self.pos + len(word)].lower() == word

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_word("or"):
            self.pos += 2
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._group()]
        while self._peek_word("and"):
            self.pos += 3
            parts.append(self._group())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def _group(self) -> Predicate:
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise _bad(f"expected '(' at position {self.pos}")
        self.pos += 1
        pred = self._or() if self.text.startswith("(", self.pos) else self._condition()
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise _bad(f"expected ')' at position {self.pos}")
        self.pos += 1
        return pred

    def _condition(self) -> Predicate:
        raw: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != ")":
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                raw.append(self.text[self.pos : self.pos + 2])
                self.pos += 2
            else:
                raw.append(self.text[self.pos])
                self.pos += 1
        body = "".join(raw)
        name, _, rest = body.partition(":")
        op, _, value = rest.partition(":")
        name, op = name.strip(), op.strip().lower()
        self.conditions += 1
        if self.conditions > MAX_CRITERIA:
            raise RecordError(
                "CRITERIA_LIMIT_EXCEEDED",
                f"no of criterium that can be given exceed the limit {MAX_CRITERIA}",
                {},
            )
        f = self.module.field(name) if name != "id" else None
        if name != "id" and f is None:
            raise _bad("the field is not available", name)
        if op not in OPERATORS:
            raise _bad("invalid operator found", name, operator=op)
        values = _split(value) if op in {"in", "not_in", "between"} else [_unescape(value)]
        if op in {"in", "not_in"} and len(values) > MAX_IN_VALUES:
            raise RecordError("INVALID_QUERY", 'Only 100 values are allowed in "IN" criteria', {"api_name": name})
        if op == "between" and len(values) != 2:
            raise _bad("between needs two values", name, operator=op)
        numeric = f is not None and f.data_type in _NUMERIC
        if numeric:
            try:
                nums = [float(v) for v in values]
            except ValueError:
                raise RecordError(
                    "INVALID_QUERY",
                    "Invalid query formed",
                    {"expected_data_type": f.data_type if f else "", "reason": "invalid value", "api_name": name},
                ) from None
            return _compare(name, op, nums, numeric=True)
        return _compare(name, op, [v.lower() for v in values], numeric=False)


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _split(value: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            cur.append(value[i + 1])
            i += 2
            continue
        if value[i] == ",":
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(value[i])
        i += 1
    parts.append("".join(cur).strip())
    return parts


def comparable(value: Any) -> Any:
    """A record value as criteria see it: lookups by id, text case-folded."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value.lower()
    return value


def _compare(name: str, op: str, values: list[Any], *, numeric: bool) -> Predicate:
    def pred(row: JSON) -> bool:
        have = comparable(row.get(name))
        if have is None:
            return op in {"not_equal", "not_in"}
        if numeric:
            have = float(have)
        elif not isinstance(have, str):
            have = str(have).lower()
        first = values[0]
        match op:
            case "equals":
                return bool(have == first)
            case "not_equal":
                return bool(have != first)
            case "starts_with":
                return str(have).startswith(str(first))
            case "in":
                return have in values
            case "not_in":
                return have not in values
            case "greater_than":
                return bool(have > first)
            case "greater_equal":
                return bool(have >= first)
            case "less_than":
                return bool(have < first)
            case "less_equal":
                return bool(have <= first)
            case _:  # between, inclusive
                return bool(values[0] <= have <= values[1])

    return pred


def parse_criteria(text: str, module: ModuleDef) -> Predicate:
    return _Parser(text.strip(), module).parse()
