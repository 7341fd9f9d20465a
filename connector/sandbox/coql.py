"""COQL: a tokenizer, a recursive-descent parser and an evaluator over the sandbox's records.

Grammar (keywords case-insensitive):
    query   := SELECT field ("," field)* FROM ident WHERE expr [ORDER BY order ("," order)*] [LIMIT limit]
    limit   := int ["," int | OFFSET int]          -- LIMIT is 1..2,000
    expr    := atom [(AND | OR) atom]              -- at most two conditions per bracket level
    atom    := "(" expr ")" | field cmp
    cmp     := op value | [NOT] IN "(" value ("," value)* ")" | IS [NOT] NULL
             | [NOT] BETWEEN value AND value | [NOT] LIKE string
    field   := ident ("." ident)?          -- a dotted name reads through a lookup

Zoho requires the WHERE clause and rejects three or more conditions unless they are bracketed in pairs, as in
`((A and B) and C)` (help.zoho.com "Kaizen #171: FAQs on COQL API"); both are syntax errors here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

from connector.sandbox.records import RecordError
from connector.sandbox.state import JSON, ModuleDef, SandboxState

MAX_LIMIT = 2000
MAX_ROWS = 100_000
DEFAULT_LIMIT = 200
_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "like",
    "between",
    "order",
    "by",
    "asc",
    "desc",
    "limit",
    "offset",
    "true",
    "false",
}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.*])
    """,
    re.VERBOSE,
)
_NUMERIC = {"integer", "bigint", "double", "currency", "percent"}


def syntax_error(near: str, column: int) -> RecordError:
    return RecordError(
        "SYNTAX_ERROR", "error occurred while parsing the query", {"line": 1, "column": column, "near": near}
    )


def invalid_query(message: str, **details: Any) -> RecordError:
    return RecordError("INVALID_QUERY", message, details)


@dataclass
class Token:
    kind: Literal["string", "number", "ident", "keyword", "op", "punct", "end"]
    text: str
    column: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise syntax_error(text[pos : pos + 10], pos + 1)
        kind, raw = m.lastgroup, m.group()
        if kind == "string":
            body = raw[1:-1]
            value = re.sub(r"\\(.)|''", lambda g: g.group(1) or "'", body)
            tokens.append(Token("string", raw, pos + 1, value))
        elif kind == "number":
            tokens.append(Token("number", raw, pos + 1, float(raw) if "." in raw else int(raw)))
        elif kind == "ident":
            is_kw = raw.lower() in _KEYWORDS
            tokens.append(Token("keyword" if is_kw else "ident", raw.lower() if is_kw else raw, pos + 1))
        elif kind in {"op", "punct"}:
            tokens.append(Token("op" if kind == "op" else "punct", "!=" if raw == "<>" else raw, pos + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


@dataclass
class Cond:
    field: str
    op: str  # =, !=, <, <=, >, >=, in, not in, is null, is not null, between, not between, like, not like
    values: list[Any]
    column: int


@dataclass
class BoolOp:
    op: Literal["and", "or"]
    parts: list[Expr]


Expr = Cond | BoolOp


@dataclass
class Query:
    fields: list[str]
    module: str
    where: Expr | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0


class Parser:
    def __init__(self, text: str, limit_comma: str = "offset_first") -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.limit_comma = limit_comma

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _fail(self) -> RecordError:
        return syntax_error(self.tok.text or "<end of query>", self.tok.column)

    def _accept(self, kind: str, text: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return t
        return None

    def _expect(self, kind: str, text: str | None = None) -> Token:
        t = self._accept(kind, text)
        if t is None:
            raise self._fail()
        return t

    def parse(self) -> Query:
        self._expect("keyword", "select")
        fields = [self._field()]
        while self._accept("punct", ","):
            fields.append(self._field())
        if not self._accept("keyword", "from"):
            raise RecordError("SYNTAX_ERROR", "error occurred while parsing the query", {"clause": "from"})
        query = Query(fields=fields, module=self._expect("ident").text)
        if not self._accept("keyword", "where"):
            raise RecordError("SYNTAX_ERROR", "error occurred while parsing the query", {"clause": "where"})
        query.where = self._expr()
        if self._accept("keyword", "order"):
            self._expect("keyword", "by")
            query.order.append(self._order())
            while self._accept("punct", ","):
                query.order.append(self._order())
        if self._accept("keyword", "limit"):
            first = self._int()
            if self._accept("punct", ","):
                second = self._int()
                if self.limit_comma == "offset_first":
                    query.offset, query.limit = first, second
                else:
                    query.limit, query.offset = first, second
            elif self._accept("keyword", "offset"):
                query.limit, query.offset = first, self._int()
            else:
                query.limit = first
        if self.tok.kind != "end":
            raise self._fail()
        return query

    def _int(self) -> int:
        t = self._expect("number")
        if not isinstance(t.value, int) or t.value < 0:
            raise syntax_error(t.text, t.column)
        return t.value

    def _field(self) -> str:
        t = self.tok
        if t.kind == "punct" and t.text == "*":
            raise invalid_query("invalid query formed", reason="select * is not supported", clause="select")
        name = self._expect("ident").text
        if self._accept("punct", "("):
            raise invalid_query("invalid query formed", reason="aggregate functions are not supported", clause="select")
        if self._accept("punct", "."):
            name += "." + self._expect("ident").text
        return name

    def _order(self) -> tuple[str, bool]:
        name = self._field()
        if self._accept("keyword", "desc"):
            return name, True
        self._accept("keyword", "asc")
        return name, False

    def _expr(self) -> Expr:
        """One condition, or two joined by AND/OR; a third at the same level is left for parse() to reject."""
        left = self._atom()
        if self._accept("keyword", "and"):
            return BoolOp("and", [left, self._atom()])
        if self._accept("keyword", "or"):
            return BoolOp("or", [left, self._atom()])
        return left

    def _atom(self) -> Expr:
        if self._accept("punct", "("):
            inner = self._expr()
            self._expect("punct", ")")
            return inner
        column = self.tok.column
        name = self._field()
        if op := self._accept("op"):
            return Cond(name, op.text, [self._value()], column)
        if self._accept("keyword", "is"):
            negate = self._accept("keyword", "not") is not None
            self._expect("keyword", "null")
            return Cond(name, "is not null" if negate else "is null", [], column)
        negate = self._accept("keyword", "not") is not None
        prefix = "not " if negate else ""
        if self._accept("keyword", "in"):
            self._expect("punct", "(")
            values = [self._value()]
            while self._accept("punct", ","):
                values.append(self._value())
            self._expect("punct", ")")
            return Cond(name, prefix + "in", values, column)
        if self._accept("keyword", "between"):
            low = self._value()
            self._expect("keyword", "and")
            return Cond(name, prefix + "between", [low, self._value()], column)
        if self._accept("keyword", "like"):
            return Cond(name, prefix + "like", [self._expect("string").value], column)
        raise self._fail()

    def _value(self) -> Any:
        t = self.tok
        if t.kind in {"string", "number"}:
            self.i += 1
            return t.value
        if t.kind == "keyword" and t.text in {"true", "false"}:
            self.i += 1
            return t.text == "true"
        raise self._fail()


# evaluation ----------------------------------------------------------------------------------------------------------


class Evaluator:
    def __init__(self, state: SandboxState, module: ModuleDef) -> None:
        self.state, self.module = state, module

    def _type(self, name: str, clause: str) -> str:
        """The data type of a (possibly dotted) field; unknown names are INVALID_QUERY like Zoho."""
        base, _, sub = name.partition(".")
        f = self.module.field(base) if base != "id" else None
        if base != "id" and f is None:
            raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
        if not sub:
            return f.data_type if f else "bigint"
        if f is None or f.data_type not in {"lookup", "ownerlookup"}:
            raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
        if f.data_type == "ownerlookup":
            return "text"
        target = self.state.module(f.lookup or "")
        tf = target.field(sub) if target else None
        if sub != "id" and tf is None:
            raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
        return tf.data_type if tf else "bigint"

    def value(self, row: JSON, name: str) -> Any:
        base, _, sub = name.partition(".")
        value = row.get(base)
        if not sub:
            return {"id": value["id"]} if isinstance(value, dict) else value
        if not isinstance(value, dict):
            return None
        f = self.module.field(base)
        if f is not None and f.data_type == "ownerlookup":
            return self.state.users.get(value["id"], {}).get(sub)
        target = self.state.module(f.lookup or "") if f else None
        linked = self.state.records.get(target.api_name, {}).get(value["id"]) if target else None
        return None if linked is None else linked.get(sub)

    def check(self, expr: Expr) -> None:
        if isinstance(expr, BoolOp):
            for part in expr.parts:
                self.check(part)
            return
        kind = self._type(expr.field, "where")
        for v in expr.values:
            is_number = isinstance(v, int | float) and not isinstance(v, bool)
            if kind in {"lookup", "ownerlookup", "bigint"}:
                ok = is_number or (isinstance(v, str) and v.isdigit())
            elif kind in _NUMERIC:
                ok = is_number
            elif kind == "boolean":
                ok = isinstance(v, bool)
            else:
                ok = isinstance(v, str)
            if not ok:
                raise invalid_query(
                    "value given seems to be invalid for the column", column_name=expr.field, clause="where"
                )

    def matches(self, expr: Expr, row: JSON) -> bool:
        if isinstance(expr, BoolOp):
            results = (self.matches(p, row) for p in expr.parts)
            return all(results) if expr.op == "and" else any(results)
        have = _norm(self.value(row, expr.field))
        op = expr.op
        if op == "is null":
            return have is None
        if op == "is not null":
            return have is not None
        if have is None:
            return op.startswith("not ") or op == "!="
        vals = [_norm(v) for v in expr.values]
        try:
            return _apply(op, have, vals)
        except TypeError:
            return False


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str):
        if value.isdigit() and len(value) > 12:
            return int(value)  # ids compare numerically
        if len(value) >= 19 and value[4] == "-" and value[10] == "T":
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        return value.lower()
    return value


def _apply(op: str, have: Any, vals: list[Any]) -> bool:
    negate = op.startswith("not ")
    base = op.removeprefix("not ")
    if base == "in":
        result = have in vals
    elif base == "between":
        result = vals[0] <= have <= vals[1]
    elif base == "like":
        pattern = "^" + ".*".join(re.escape(p) for p in str(vals[0]).split("%")) + "$"
        result = re.match(pattern, str(have), re.IGNORECASE | re.DOTALL) is not None
    else:
        want = vals[0]
        result = {
            "=": have == want,
            "!=": have != want,
            "<": have < want,
            "<=": have <= want,
            ">": have > want,
            ">=": have >= want,
        }[base]
    return bool(result) != negate


def _sort_key(ev: Evaluator, name: str) -> Callable[[JSON], Any]:
    return lambda row: _norm(ev.value(row, name))


def module_name(text: str) -> str | None:
    """The module after FROM, for the scope check; None when the query does not get that far."""
    try:
        tokens = tokenize(text)
    except RecordError:
        return None
    for t, after in pairwise(tokens):
        if t.kind == "keyword" and t.text == "from" and after.kind == "ident":
            return after.text
    return None


def run(state: SandboxState, text: str) -> tuple[list[JSON], bool]:
    """Rows for a select_query and whether more rows lie beyond its LIMIT; raises RecordError like Zoho."""
    query = Parser(text, state.options.coql_limit_comma).parse()
    module = state.module(query.module)
    if module is None:
        raise invalid_query(
            "invalid query formed", module=query.module, reason="the module name given seems to be invalid"
        )
    if query.limit < 1:
        # Zoho documents no code for LIMIT 0; LIMIT_EXCEEDED (the code for an out-of-range LIMIT) is the closest.
        raise RecordError(
            "LIMIT_EXCEEDED", "limit exceeded", {"by": "limit", "limit": MAX_LIMIT, "reason": "LIMIT must be 1 to 2000"}
        )
    if query.limit > MAX_LIMIT:
        raise RecordError("LIMIT_EXCEEDED", "limit exceeded", {"by": "limit", "limit": MAX_LIMIT})
    if query.offset + query.limit > MAX_ROWS:
        raise RecordError("LIMIT_EXCEEDED", "limit exceeded", {"by": "offset", "limit": MAX_ROWS})
    ev = Evaluator(state, module)
    for name in query.fields:
        ev._type(name, "select")
    for name, _ in query.order:
        ev._type(name, "order by")
    if query.where is not None:
        ev.check(query.where)
    where = query.where
    rows = [r for r in state.sorted_records(module.api_name, "id", "asc") if where is None or ev.matches(where, r)]
    for name, desc in reversed(query.order):
        present = [r for r in rows if ev.value(r, name) is not None]
        absent = [r for r in rows if ev.value(r, name) is None]
        present.sort(key=_sort_key(ev, name), reverse=desc)
        rows = present + absent
    page = rows[query.offset : query.offset + query.limit]
    out = []
    for r in page:
        item = {name: ev.value(r, name) for name in query.fields}
        item["id"] = r["id"]
        out.append(item)
    return out, len(rows) > query.offset + query.limit
