"""The small language action files use to turn inputs into a request.

Path templates (RFC 6570 flavoured):
    {name}     the input as one path segment, percent-encoded ("a/b" becomes "a%2Fb")
    {+name}    the input as a path that may hold slashes ("settings/taxes"); ".." segments are refused
    [ ... ]    an optional part, sent only when every input inside it is given

Value expressions (query, headers, body, form, files):
    {$input: name}                  the input's value; an absent input makes the member disappear
    {$input: name, $join: ","}      a list input joined into one string
    {$merge: [expr, ...]}           one object from several, each an object or a list of {key, value} entries
    {$files: expr, $names: expr}    upload parts from {field: contents} and {field: file name}
    any other object or list        built member by member; members that evaluate to nothing are dropped
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

__all__ = ["MISSING", "TemplateError", "evaluate", "expand_path", "expression_inputs", "pairs", "path_inputs"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

_PLACEHOLDER = re.compile(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_OPERATORS = frozenset({"$input", "$join", "$merge", "$files", "$names"})


class TemplateError(ValueError):
    pass


def path_inputs(template: str) -> tuple[set[str], set[str]]:
    """(inputs always named, inputs named inside optional parts) of a path template."""
    if template.count("[") != template.count("]"):
        raise TemplateError(f"unbalanced [ ] in {template!r}")
    optional = {name for part in _OPTIONAL.findall(template) for _, name in _PLACEHOLDER.findall(part)}
    always = {name for _, name in _PLACEHOLDER.findall(_OPTIONAL.sub("", template))}
    return always, optional


def expand_path(template: str, inputs: Mapping[str, Any]) -> str:
    """Fill a path template from the inputs. Raises TemplateError for a missing required input or a bad value."""

    def optional(match: re.Match[str]) -> str:
        names = [name for _, name in _PLACEHOLDER.findall(match.group(1))]
        return _fill(match.group(1), inputs) if all(_given(inputs.get(n)) for n in names) else ""

    return _fill(_OPTIONAL.sub(optional, template), inputs)


def _fill(text: str, inputs: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        reserved, name = match.groups()
        value = inputs.get(name)
        if not _given(value):
            raise TemplateError(f"input {name!r} is required here")
        text = str(value)
        if not reserved:
            return quote(text, safe="")
        if any(segment in ("..", ".") for segment in text.split("/")):
            raise TemplateError(f"input {name!r} may not contain '.' or '..' path segments")
        return quote(text, safe="/")

    return _PLACEHOLDER.sub(one, text)


def _given(value: Any) -> bool:
    return value is not None and value is not MISSING and value != ""


def evaluate(expr: Any, inputs: Mapping[str, Any]) -> Any:
    """The value of an expression for these inputs, or MISSING when it names only absent inputs."""
    if isinstance(expr, list):
        return [v for v in (evaluate(item, inputs) for item in expr) if v is not MISSING]
    if not isinstance(expr, dict):
        return expr
    if "$input" in expr:
        value = inputs.get(expr["$input"], MISSING)
        if value is None or value is MISSING:
            return MISSING
        if "$join" in expr and isinstance(value, list):
            return expr["$join"].join(map(str, value)) if value else MISSING
        return value
    if "$merge" in expr:
        merged: dict[str, Any] = {}
        for part in expr["$merge"]:
            merged.update(pairs(evaluate(part, inputs)))
        return merged
    if "$files" in expr:
        contents = dict(pairs(evaluate(expr["$files"], inputs)))
        names = dict(pairs(evaluate(expr.get("$names"), inputs)))
        if not contents:
            return MISSING
        return {field: {"content": body, "filename": str(names.get(field, field))} for field, body in contents.items()}
    out = {k: v for k, v in ((k, evaluate(v, inputs)) for k, v in expr.items()) if v is not MISSING}
    return out


def pairs(value: Any) -> list[tuple[str, Any]]:
    """Key/value entries of an object or of a list of {key, value} items; nothing for MISSING or None."""
    if value is MISSING or value is None:
        return []
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(item["key"]), item.get("value")) for item in value if isinstance(item, Mapping)]
    raise TemplateError(f"expected an object or a list of key/value entries, got {type(value).__name__}")


def expression_inputs(expr: Any) -> set[str]:
    """Every input an expression names (checked against the schema at load time)."""
    if isinstance(expr, list):
        return set().union(*(expression_inputs(item) for item in expr)) if expr else set()
    if not isinstance(expr, dict):
        return set()
    unknown = {k for k in expr if k.startswith("$")} - _OPERATORS
    if unknown:
        raise TemplateError(f"unknown operator(s) {sorted(unknown)}; known: {sorted(_OPERATORS)}")
    names = {expr["$input"]} if "$input" in expr else set()
    return names | set().union(*(expression_inputs(v) for k, v in expr.items() if k != "$input"))
