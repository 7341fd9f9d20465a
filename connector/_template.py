"""The small language action files use to turn validated inputs into a request.

The language is specified in docs/template-language.md; tests/fixtures/templates/*.json holds cases any engine can
replay. In short:

Path and method templates:
    {name}     the input as one path segment, percent-encoded ("a/b" becomes "a%2Fb")
    {+name}    the input as a path that may hold slashes ("settings/taxes")
    [ ... ]    an optional part, sent when every input inside it is given and left out when none is

Value expressions (query, headers, body, form, files):
    {$input: name}                  the input's value; an absent input makes the member disappear
    {$input: name, $join: ","}      a list input joined into one string
    {$input: name, $translate: {…}} the input's value looked up in a table ({ascending: A}); others as they are
    {$merge: [expr, ...]}           one object from several, each an object or a list of {key, value} entries
    {$files: expr, $names: expr}    upload parts from {field: contents} and {field: file name}
    any other object or list        built member by member; members that evaluate to nothing are dropped

`render` turns a whole request template into a `Rendered` request, without the product's base path, organization
or authorization: those belong to the connection and are added by connector._request.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Final, NamedTuple
from urllib.parse import quote, unquote

__all__ = [
    "MISSING",
    "FilePart",
    "Rendered",
    "TemplateError",
    "evaluate",
    "expand_method",
    "expand_path",
    "expression_inputs",
    "file_bytes",
    "pairs",
    "path_inputs",
    "render",
    "text",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

_PLACEHOLDER = re.compile(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)\}")
_OPERATORS = frozenset({"$input", "$join", "$translate", "$merge", "$files", "$names"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: header names and methods
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # what httpx can send: printable ASCII, space and tab


class TemplateError(ValueError):
    """A template that cannot be filled from these inputs. `input` names the input at fault, when one is."""

    def __init__(self, reason: str, input: str | None = None) -> None:
        super().__init__(f"input {input!r} {reason}" if input else reason)
        self.reason = reason
        self.input = input


# --- path and method templates ------------------------------------------------------------------------------------


class _Slot(NamedTuple):
    name: str
    reserved: bool


_Piece = str | _Slot


@dataclass(frozen=True)
class _Group:
    """An optional [ … ] part."""

    pieces: tuple[_Piece, ...]


_Part = _Piece | _Group


@functools.lru_cache(maxsize=1024)  # a manifest's templates are few and fixed: parsed once each, not per call
def _parse(template: str) -> tuple[_Part, ...]:
    """Literal text, placeholders and optional groups, in order. Raises TemplateError for a malformed template."""
    parts: list[_Part] = []
    group: list[_Piece] | None = None
    pos = 0
    for match in re.finditer(r"\{[^{}]*\}|[\[\]{}]", template):
        literal = template[pos : match.start()]
        pos = match.end()
        target: list[Any] = parts if group is None else group
        if literal:
            target.append(literal)
        found = match.group()
        if found == "[":
            if group is not None:
                raise TemplateError(f"nested [ ] in {template!r}")
            group = []
        elif found == "]":
            if group is None:
                raise TemplateError(f"unbalanced [ ] in {template!r}")
            parts.append(_Group(tuple(group)))
            group = None
        else:
            slot = _PLACEHOLDER.fullmatch(found)
            if slot is None:
                raise TemplateError(f"malformed placeholder {found!r} in {template!r}")
            target.append(_Slot(slot.group(2), slot.group(1) == "+"))
    if group is not None:
        raise TemplateError(f"unbalanced [ ] in {template!r}")
    if template[pos:]:
        parts.append(template[pos:])
    return tuple(parts)


def path_inputs(template: str) -> tuple[set[str], set[str]]:
    """(inputs always named, inputs named inside optional parts) of a path template."""
    always: set[str] = set()
    optional: set[str] = set()
    for part in _parse(template):
        if isinstance(part, _Slot):
            always.add(part.name)
        elif isinstance(part, _Group):
            optional |= {p.name for p in part.pieces if isinstance(p, _Slot)}
    return always, optional


def expand_path(template: str, inputs: Mapping[str, Any]) -> str:
    """Fill a path template from the inputs. Raises TemplateError naming the input at fault."""
    out = ""
    first: str | None = None  # the input that begins the path, if one does
    for part in _parse(template):
        pieces = part.pieces if isinstance(part, _Group) else (part,)
        if isinstance(part, _Group):
            names = [p.name for p in part.pieces if isinstance(p, _Slot)]
            given = [n for n in names if _given(inputs.get(n))]
            if not given:
                continue
            missing = [n for n in names if n not in given]
            if missing:  # leaving the group out would silently address another endpoint
                raise TemplateError(f"is required together with {given[0]!r}", missing[0])
        for piece in pieces:
            if isinstance(piece, str):
                out += piece
                continue
            if not out and first is None:
                first = piece.name
            out += _segment(piece, inputs.get(piece.name, MISSING), at_start=not out)
    if not out.startswith("/"):
        reason = "must start with '/'" if first else f"path template {template!r} must start with '/'"
        raise TemplateError(reason, first)
    return out


def expand_method(template: str, inputs: Mapping[str, Any]) -> str:
    """The HTTP method: a literal or one placeholder, upper-cased; it must be an HTTP token."""
    out = ""
    for part in _parse(template):
        if isinstance(part, _Group):
            raise TemplateError(f"a method template has no optional parts: {template!r}")
        if isinstance(part, str):
            out += part
            continue
        value = inputs.get(part.name, MISSING)
        if not _given(value):
            raise TemplateError("is required here", part.name)
        method = text(value)
        if not _TOKEN.fullmatch(method):
            raise TemplateError("is not an HTTP method", part.name)
        out += method
    if not _TOKEN.fullmatch(out):
        raise TemplateError(f"method template {template!r} does not give an HTTP method")
    return out.upper()


def _segment(slot: _Slot, value: Any, *, at_start: bool) -> str:
    name = slot.name
    if not _given(value):
        raise TemplateError("is required here", name)
    if isinstance(value, Mapping | list):
        raise TemplateError("must be text or a number to go in the path", name)
    value = text(value)
    if value == "":
        raise TemplateError("may not be empty in the path", name)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise TemplateError("may not contain control characters (line breaks, NUL, …) in the path", name)
    if not slot.reserved:
        # Encoded, "/" cannot split the segment, so only the whole value can be a dot segment; refuse its
        # percent-encoded forms too, for a server that decodes before it normalizes (or decodes twice).
        if _dot_segment(_decoded(value)):
            raise TemplateError(
                "may not be '.' or '..' (even percent-encoded or in look-alike dots): it would change the endpoint",
                name,
            )
        return quote(value, safe="")
    if "\\" in value:
        raise TemplateError("may not contain '\\' in the path", name)
    if "%" in value:
        raise TemplateError("may not contain '%' in the path: give it unencoded, it is encoded when sent", name)
    body = value
    if at_start:
        if not value.startswith("/"):
            raise TemplateError("must start with '/'", name)
        body = value[1:]
    elif value.startswith("/"):
        raise TemplateError("may not start with '/' here", name)
    segments = body.split("/")
    if any(_dot_segment(s) for s in segments):
        raise TemplateError("may not contain '.' or '..' path segments (nor look-alike dots)", name)
    if any(s == "" for s in segments):
        raise TemplateError("may not contain an empty path segment ('//' or a trailing '/')", name)
    return quote(value, safe="/")


def _dot_segment(segment: str) -> bool:
    """Whether a server could read `segment` as "." or "..": as it is, or after Unicode compatibility folding
    (fullwidth U+FF0E, the one-dot leader U+2024, the two-dot leader U+2025) with invisible format characters
    (zero-width space, soft hyphen, …) dropped, as a server or proxy that normalizes Unicode would."""
    if segment in (".", ".."):
        return True
    if segment.isascii() or len(segment) > 16:
        return False
    folded = "".join(c for c in unicodedata.normalize("NFKC", segment) if unicodedata.category(c) != "Cf")
    return folded in (".", "..")


# Overlong UTF-8 for "." (%C0%AE, %E0%80%AE): never valid UTF-8, yet some old servers decoded it as a dot.
_OVERLONG_DOT = re.compile(r"%(?:c0|e0%80)%ae", flags=re.IGNORECASE)


def _decoded(value: str) -> str:
    """Percent-decoded until nothing changes, as the most trusting server along the way could read it."""
    for _ in range(8):
        decoded = unquote(_OVERLONG_DOT.sub(".", value))
        if decoded == value:
            break
        value = decoded
    return value


def _given(value: Any) -> bool:
    return value is not None and value is not MISSING


# --- value expressions --------------------------------------------------------------------------------------------


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
        if "$translate" in expr:
            value = _translated(expr["$translate"], value)
        if "$join" in expr and isinstance(value, list):
            items = [text(v) for v in value if v is not None]
            return str(expr["$join"]).join(items) if items else MISSING
        return value
    if "$merge" in expr:
        merged: dict[str, Any] = {}
        for part in expr["$merge"]:
            merged.update((k, v) for k, v, _ in _members(part, inputs))
        return merged
    if "$files" in expr:
        return {field: part for field, part, _ in _file_members(expr, inputs)} or MISSING
    return {k: v for k, v in ((k, evaluate(v, inputs)) for k, v in expr.items()) if v is not MISSING}


def _translated(table: Mapping[str, Any], value: Any) -> Any:
    """A value (each item of a list) replaced by its entry in `table`, looked up by its text; kept without one."""
    if isinstance(value, list):
        return [_translated(table, v) for v in value]
    if isinstance(value, Mapping) or value is None:
        return value
    return table.get(text(value), value)


def pairs(value: Any) -> list[tuple[str, Any]]:
    """Key/value entries of an object or of a list of {key, value} items; nothing for MISSING or None.

    An entry without a `value` member is absent and left out.
    """
    if value is MISSING or value is None:
        return []
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        entries = []
        for item in value:
            if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
                raise TemplateError("expected {key, value} entries, each with a text key")
            if "value" in item:
                entries.append((item["key"], item["value"]))
        return entries
    raise TemplateError(f"expected an object or a list of key/value entries, got {type(value).__name__}")


def _members(expr: Any, inputs: Mapping[str, Any]) -> list[tuple[str, Any, str | None]]:
    """The key/value entries an expression makes, each with the input it came from (for error messages)."""
    if expr is None:
        return []
    if isinstance(expr, dict) and "$merge" in expr:
        merged: dict[str, tuple[Any, str | None]] = {}
        for part in expr["$merge"]:
            merged.update((k, (v, source)) for k, v, source in _members(part, inputs))
        return [(k, v, source) for k, (v, source) in merged.items()]
    if isinstance(expr, dict) and "$files" in expr:
        return _file_members(expr, inputs)
    if isinstance(expr, dict) and "$input" not in expr:  # built member by member
        return [(str(k), v, _source(sub)) for k, sub in expr.items() if (v := evaluate(sub, inputs)) is not MISSING]
    source = _source(expr)
    try:
        return [(k, v, source) for k, v in pairs(evaluate(expr, inputs))]
    except TemplateError as exc:
        raise TemplateError(exc.reason, source) from None


def _file_members(expr: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[tuple[str, Any, str | None]]:
    names = {k: v for k, v, _ in _members(expr.get("$names"), inputs)}
    return [
        (field, {"content": body, "filename": text(names.get(field, field))}, source)
        for field, body, source in _members(expr["$files"], inputs)
    ]


def _source(expr: Any) -> str | None:
    """The input an expression's value comes from: for a file part, the input holding its contents."""
    if isinstance(expr, dict) and "content" in expr:
        expr = expr["content"]
    names = sorted(expression_inputs(expr))
    return names[0] if names else None


def expression_inputs(expr: Any) -> set[str]:
    """Every input an expression names (checked against the schema at load time)."""
    if isinstance(expr, list):
        return set().union(*(expression_inputs(item) for item in expr)) if expr else set()
    if not isinstance(expr, dict):
        return set()
    unknown = {k for k in expr if k.startswith("$")} - _OPERATORS
    if unknown:
        raise TemplateError(f"unknown operator(s) {sorted(unknown)}; known: {sorted(_OPERATORS)}")
    if "$translate" in expr:
        table = expr["$translate"]
        if "$input" not in expr or not isinstance(table, Mapping) or not table:
            raise TemplateError("$translate goes with $input and takes a non-empty object of value → value")
        if any(isinstance(v, Mapping | list) for v in table.values()):
            raise TemplateError("$translate's values are text, numbers, booleans or null, not objects or lists")
    names = {expr["$input"]} if "$input" in expr else set()
    return names | set().union(*(expression_inputs(v) for k, v in expr.items() if k not in ("$input", "$translate")))


# --- values as text -----------------------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A value as query, header, form or path text: true/false, integral numbers without a fraction, lists joined
    by commas (nulls skipped), objects as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ",".join(json_text(v) if isinstance(v, list | Mapping) else text(v) for v in value if v is not None)
    if value is None:
        return ""
    return json_text(value)


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _form_text(value: Any) -> str:
    return json_text(value) if isinstance(value, list | Mapping) else text(value)


def file_bytes(content: Any) -> tuple[bytes | IO[bytes], str]:
    """Contents of a file input: text, bytes, {"base64": …, "contentType": …}, or from Python an Upload (a file
    streamed as it is sent). Raises TemplateError."""
    from connector.files import Upload

    if isinstance(content, Upload):
        return content.open(), content.content_type
    if isinstance(content, bytes):
        return content, "application/octet-stream"
    if isinstance(content, Mapping):
        if not isinstance(content.get("base64"), str):
            raise TemplateError('file contents must be text or {"base64": …, "contentType": …}')
        try:
            data = base64.b64decode(content["base64"], validate=True)
        except binascii.Error:
            raise TemplateError("file contents: base64 is not valid") from None
        return data, text(content.get("contentType", "application/octet-stream"))
    if isinstance(content, list):
        raise TemplateError('file contents must be text or {"base64": …, "contentType": …}')
    return text(content).encode("utf-8"), "text/plain"


# --- whole requests -----------------------------------------------------------------------------------------------


class FilePart(NamedTuple):
    field: str
    filename: str
    content: bytes | IO[bytes]
    content_type: str


@dataclass(frozen=True)
class Rendered:
    """A request as its template describes it: no base path, organization or authorization yet."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    json: Any  # MISSING when there is no JSON body
    content: bytes | None  # a raw text body
    form: dict[str, str] | None
    files: list[FilePart] | None


def render(request: Mapping[str, Any], inputs: Mapping[str, Any]) -> Rendered:
    """The request an action's `request:` template makes from validated inputs. Raises TemplateError."""
    method = expand_method(request["method"], inputs)
    path = expand_path(request["path"], inputs)
    query = [(k, text(v)) for k, v, _ in _members(request.get("query"), inputs) if v is not None]
    headers: dict[str, str] = {}
    for name, value, source in _members(request.get("headers"), inputs):
        if value is None:
            continue
        if not _TOKEN.fullmatch(name):
            raise TemplateError(f"header name {name!r} is not a valid HTTP header name", source)
        header = text(value)
        if not _HEADER_VALUE.fullmatch(header):
            raise TemplateError(
                f"header {name!r}: the value may hold only printable ASCII (no line breaks, controls or accents)",
                source,
            )
        headers[name] = header
    body = MISSING if request.get("body") is None else evaluate(request["body"], inputs)
    content = None
    if isinstance(body, str | bytes):  # a text body is sent as is, not as a JSON string
        content, body = (body.encode("utf-8") if isinstance(body, str) else body), MISSING
    form = None
    if request.get("form") is not None and evaluate(request["form"], inputs) is not MISSING:
        form = {k: _form_text(v) for k, v, _ in _members(request["form"], inputs) if v is not None}
    files = _files(request.get("files"), inputs)
    if (files is not None or form is not None) and body is not MISSING:
        # a multipart or urlencoded request has no room for a JSON body: the API names the form field that holds it
        field = request.get("json_form_field")
        if not field:
            raise TemplateError("a JSON body sent with a form or files needs the request's json_form_field")
        form = {**(form or {}), field: json_text(body)}
        body = MISSING
    return Rendered(method, path, query, headers, body, content, form, files)


def _files(expr: Any, inputs: Mapping[str, Any]) -> list[FilePart] | None:
    parts = []
    for field, part, source in _members(expr, inputs):
        if isinstance(part, Mapping) and ("content" in part or "filename" in part) and "base64" not in part:
            if "content" not in part:  # a file name for contents that were not given
                continue
            content, filename = part["content"], part.get("filename")
        else:
            content, filename = part, None
        if content is None:
            continue
        try:
            data, content_type = file_bytes(content)
        except TemplateError as exc:
            raise TemplateError(exc.reason, source) from None
        if filename in (None, ""):
            filename = getattr(content, "filename", None) or field
        parts.append(FilePart(field, text(filename), data, content_type))
    return parts or None
