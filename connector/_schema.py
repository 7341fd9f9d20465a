"""JSON Schema plumbing: inline `$ref`s across the schema files, and validate values with readable violations.

Input schemas are dereferenced once at load time into standalone documents, so an engine (or this runtime) can
validate an action's inputs without a reference registry, and a dangling `$ref` is a load-time error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from connector import _fastschema
from connector.errors import Violation

__all__ = ["DanglingRef", "dereference", "validator_for", "violations"]

# What a `pattern` stands for when the schema also names its `format`: said instead of the regular expression.
_FORMATS = {
    "date-time": "an ISO 8601 date-time with a time zone, e.g. 2026-11-20T10:15:00+05:30 or 2026-11-20T04:45:00Z",
    "uri": "an http(s) URL, e.g. https://example.com/path",
}

# Keywords that only annotate; where a $ref has siblings, these may override the target's without changing
# what validates.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment"}
)


class DanglingRef(Exception):
    def __init__(self, ref: str, where: str) -> None:
        super().__init__(f"$ref {ref!r} at {where or '/'} does not resolve")


def dereference(schema: Any, file: Path, load: Callable[[Path], Any]) -> Any:
    """Inline every `$ref` of `schema` (read from `file`); `load` reads another schema file by path."""
    return _deref(schema, file, schema, load, "", ())


def _deref(node: Any, file: Path, doc: Any, load: Callable[[Path], Any], where: str, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_deref(item, file, doc, load, f"{where}/{i}", seen) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {k: _deref(v, file, doc, load, f"{where}/{k}", seen) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if ref is None:
        return out
    if not isinstance(ref, str):
        raise DanglingRef(repr(ref), where)
    target_file, pointer = _split(ref, file)
    key = f"{target_file}#{pointer}"
    if key in seen:
        raise DanglingRef(ref, where + " (a reference cycle)")
    target_doc = doc if target_file == file else _load_or_fail(load, target_file, ref, where)
    target = _resolve_pointer(target_doc, pointer, ref, where)
    inlined = _deref(target, target_file, target_doc, load, where, (*seen, key))
    if not isinstance(inlined, dict):
        raise DanglingRef(ref, where + " (target is not a schema object)")
    inlined = {k: v for k, v in inlined.items() if k not in ("$schema", "$defs", "$id")}
    # `x-` keywords (x-options, x-role, …) only annotate too: a sibling replaces the target's
    if {k for k in set(out) & set(inlined) if not k.startswith("x-")} - _ANNOTATIONS:
        return {"allOf": [inlined], **out}  # both constrain the same keyword: keep both in force
    return {**inlined, **out}


def _split(ref: str, file: Path) -> tuple[Path, str]:
    location, _, pointer = ref.partition("#")
    target = (file.parent / location).resolve() if location else file
    return target, pointer


def _load_or_fail(load: Callable[[Path], Any], path: Path, ref: str, where: str) -> Any:
    try:
        return load(path)
    except FileNotFoundError:
        raise DanglingRef(ref, where + f" (no file {path.name})") from None


def _resolve_pointer(doc: Any, pointer: str, ref: str, where: str) -> Any:
    node = doc
    for raw in pointer.split("/")[1:] if pointer else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DanglingRef(ref, where)
    return node


_validators: dict[int, Any] = {}


def validator_for(schema: Mapping[str, Any]) -> Any:
    """A compiled Draft 2020-12 validator for `schema`, built once per schema object and cached."""
    cached = _validators.get(id(schema))
    if cached is None or cached.schema is not schema:
        from jsonschema import Draft202012Validator  # imported on first validation: keeps `import connector` light

        cached = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        _validators[id(schema)] = cached
    return cached


def violations(schema: Mapping[str, Any], value: Any) -> list[Violation]:
    """Every way `value` breaks `schema`, each naming the input and what was expected. Empty when valid."""
    if _fastschema.accepts(schema, value):  # certainly valid: jsonschema (and its import) is only for the rest
        return []
    validator = validator_for(schema)
    found = [_violation(error, schema) for error in validator.iter_errors(value)]
    return sorted(found, key=lambda v: (v.pointer, v.message))


def _violation(error: Any, root: Mapping[str, Any]) -> Violation:
    path = [str(p) for p in error.absolute_path]
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        path = [*path, missing]
        message = "is required"
    elif kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extras = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        path = [*path, extras[0]] if len(extras) == 1 else path
        message = f"unknown input {', '.join(map(repr, extras))}; expected one of: {', '.join(known)}"
    elif kind == "dependentRequired":
        # one error per missing input: name that input (the one to add), not the whole object
        pair = re.fullmatch(r"'(.+)' is a dependency of '(.+)'", str(error.message))
        if pair is not None:
            path = [*path, pair[1]]
            message = f"is required together with {pair[2]}"
        else:
            message = error.message.replace("is a dependency of", "is required together with")
    elif kind == "pattern" and error.schema.get("format") in _FORMATS:
        shown = "the value" if _is_secret(root, error.absolute_path) else repr(error.instance)
        message = f"{shown} is not {_FORMATS[error.schema['format']]}"
    elif kind in ("anyOf", "oneOf") and error.validator_value is not root.get(kind):
        message = f"expected {_expected(error.schema)}"
    elif kind == "anyOf" and "x-anyOf-message" in root:
        message = str(root["x-anyOf-message"])
    else:
        message = _without_instance(error, root)
    pointer = "/" + "/".join(path) if path else ""
    return Violation(input=path[0] if path else "(inputs)", pointer=pointer, message=message)


def _expected(schema: Mapping[str, Any]) -> str:
    """A short phrase for what a schema accepts: 'integer', 'one of asc, desc', 'a list or an object', …"""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " or ".join(_expected(s) for s in schema[combinator])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if items.get("type") == "object" and "required" in items:
            return "a list of {" + ", ".join(items["required"]) + "} entries"
        return "a list"
    if kind == "object":
        if "required" in schema:
            return "an object with " + ", ".join(schema["required"])
        return "an object"
    if isinstance(kind, str):
        return kind
    return "a valid value"


def _without_instance(error: Any, root: Mapping[str, Any]) -> str:
    """jsonschema's message, minus the offending value when it is secret or long."""
    secret = _is_secret(root, error.absolute_path)
    text = str(error.message)
    shown = repr(error.instance)
    if secret or len(shown) > 80:
        text = text.replace(shown, "the value")
    return text


def _is_secret(root: Mapping[str, Any], path: Iterable[Any]) -> bool:
    node: Any = root
    for part in path:
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        node = props.get(part, {})
    return isinstance(node, dict) and bool(node.get("writeOnly") or node.get("x-secret"))
