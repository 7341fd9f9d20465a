"""Creating custom modules and fields: POST /settings/modules and POST /settings/fields?module=… (crm-oas
modules.json "Create Custom Modules", fields.json "Create Field").

What the OAS gives: the bodies `{"modules": [module, …]}` and `{"fields": [field, …]}`, the answers `{"modules":
[{"code": "SUCCESS", "details": {"id"}, "message": "module created", "status": "success"}]}` (200) and `{"fields":
[{"code": "SUCCESS", "details": {"id"}, "message": …, "status": "success"}]}` (201), and the errors
MANDATORY_NOT_FOUND, INVALID_DATA, DUPLICATE_DATA and LIMIT_EXCEEDED with `api_name` and `json_path`. What it does
not say, and how the emulator reads it (strict, so a client that works here survives the other reading):

- a module needs `singular_label`, `plural_label` and `profiles` (ids of existing profiles); a field needs
  `field_label` and `data_type`, and a text field its `length`;
- the API name is the given `api_name`, else derived from the label (`Store Transactions` → `Store_Transactions`,
  as Zoho derives custom field names); a taken name or label is DUPLICATE_DATA;
- a new module has one field of its own, the mandatory `Name` (its display field), plus the system fields;
- `unique: {"casesensitive": "false"}` makes a field unique (what upserts can match on); a textarea's
  `textarea: {"type": "large"}` holds 32,000 characters, `small` 2,000.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import BadBody, json_response, read_json, state_of
from connector.sandbox.crm import _fail, _handler
from connector.sandbox.crm_meta import module_param
from connector.sandbox.metadata import field_meta
from connector.sandbox.records import RecordError, batch_status
from connector.sandbox.state import JSON, FieldDef, ModuleDef, SandboxState

MAX_LABEL = 25  # Zoho's limit on module labels
MAX_FIELD_LABEL = 50
TEXT_LENGTH = 255
TEXTAREA_LENGTHS = {"small": 2_000, "large": 32_000, "rich_text": 50_000}
FIELD_TYPES = (
    "text",
    "textarea",
    "email",
    "phone",
    "website",
    "integer",
    "bigint",
    "double",
    "currency",
    "percent",
    "boolean",
    "date",
    "datetime",
)
UNIQUE_TYPES = {"text", "email", "phone", "website", "integer", "bigint"}


def api_name_of(label: str) -> str:
    """Zoho's API name for a label: runs of other characters become one underscore."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")


async def _items(request: Request, key: str) -> list[Any]:
    try:
        body = await read_json(request)
    except BadBody:
        raise _fail("INVALID_DATA", "body", reason="the request body is not valid JSON") from None
    if not isinstance(body, dict) or key not in body:
        raise _fail("MANDATORY_NOT_FOUND", "required field not found", api_name=key, json_path=f"$.{key}")
    items = body[key]
    if not isinstance(items, list) or not items:
        raise _fail("INVALID_DATA", "invalid data", api_name=key, json_path=f"$.{key}", expected_data_type="jsonarray")
    return items


def _missing(name: str, path: str) -> RecordError:
    return RecordError("MANDATORY_NOT_FOUND", "required field not found", {"api_name": name, "json_path": path})


def _invalid(name: str, path: str, **extra: Any) -> RecordError:
    return RecordError("INVALID_DATA", "invalid data", {"api_name": name, "json_path": path, **extra})


def _label(item: JSON, name: str, path: str, most: int) -> str:
    value = item.get(name)
    if value is None or value == "":
        raise _missing(name, f"{path}.{name}")
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise _invalid(name, f"{path}.{name}", maximum_length=most)
    return value.strip()


def _new_module(state: SandboxState, item: Any, path: str) -> JSON:
    if not isinstance(item, dict):
        raise _invalid("modules", path, expected_data_type="jsonobject")
    singular = _label(item, "singular_label", path, MAX_LABEL)
    plural = _label(item, "plural_label", path, MAX_LABEL)
    profiles = item.get("profiles")
    if not profiles:
        raise _missing("profiles", f"{path}.profiles")
    known = {u["profile"]["id"] for u in state.users.values()}
    if not isinstance(profiles, list) or any(not isinstance(p, dict) or p.get("id") not in known for p in profiles):
        raise _invalid("profiles", f"{path}.profiles")
    name = item.get("api_name") or api_name_of(plural)
    if not isinstance(name, str) or not name.isidentifier():
        raise _invalid("api_name", f"{path}.api_name")
    if state.module(name) is not None or any(m.plural_label.lower() == plural.lower() for m in state.modules.values()):
        raise RecordError(
            "DUPLICATE_DATA", "duplicate data", {"api_name": "plural_label", "json_path": f"{path}.plural_label"}
        )
    own = [FieldDef("Name", "text", f"{singular} Name", mandatory=True, length=120)]
    module = state.add_module(name, own, singular_label=singular)
    module.plural_label = plural
    return {"code": "SUCCESS", "details": {"id": module.id}, "message": "module created", "status": "success"}


@_handler
async def create_modules(request: Request) -> Response:
    state = state_of(request)
    results: list[JSON] = []
    for i, item in enumerate(await _items(request, "modules")):
        try:
            results.append(_new_module(state, item, f"$.modules[{i}]"))
        except RecordError as exc:
            results.append(exc.row())
    return json_response({"modules": results}, batch_status(results, 200))


def _new_field(state: SandboxState, module: ModuleDef, item: Any, path: str) -> JSON:
    if not isinstance(item, dict):
        raise _invalid("fields", path, expected_data_type="jsonobject")
    label = _label(item, "field_label", path, MAX_FIELD_LABEL)
    kind = item.get("data_type")
    if kind is None:
        raise _missing("data_type", f"{path}.data_type")
    if kind not in FIELD_TYPES:
        raise _invalid("data_type", f"{path}.data_type", supported_values=list(FIELD_TYPES))
    length = item.get("length")
    if kind == "text":
        if length is None:
            raise _missing("length", f"{path}.length")
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= TEXT_LENGTH:
            raise _invalid("length", f"{path}.length", maximum_length=TEXT_LENGTH)
    elif kind == "textarea":
        area = item.get("textarea") or {"type": "small"}
        if not isinstance(area, dict) or area.get("type") not in TEXTAREA_LENGTHS:
            raise _invalid("textarea", f"{path}.textarea", supported_values=list(TEXTAREA_LENGTHS))
        length = TEXTAREA_LENGTHS[area["type"]]
    else:
        length = None
    unique = item.get("unique")
    if unique is not None and (not isinstance(unique, dict) or kind not in UNIQUE_TYPES):
        raise _invalid("unique", f"{path}.unique")
    name = item.get("api_name") or api_name_of(label)
    if not isinstance(name, str) or not name.isidentifier():
        raise _invalid("api_name", f"{path}.api_name")
    taken = any(f.api_name.lower() == name.lower() or (f.label or "").lower() == label.lower() for f in module.fields)
    if taken:
        raise RecordError("DUPLICATE_DATA", "duplicate data", {"api_name": "field_label", "json_path": f"{path}"})
    field = FieldDef(name, kind, label, length=length, unique=unique is not None, custom=True)
    module.fields.append(field)
    state.touch(module.api_name)
    fid = field_meta(module, field, len(module.fields))["id"]
    return {"code": "SUCCESS", "details": {"id": fid}, "message": "field created", "status": "success"}


@_handler
async def create_fields(request: Request) -> Response:
    state, module = state_of(request), module_param(request)
    results: list[JSON] = []
    for i, item in enumerate(await _items(request, "fields")):
        try:
            results.append(_new_field(state, module, item, f"$.fields[{i}]"))
        except RecordError as exc:
            results.append(exc.row())
    return json_response({"fields": results}, batch_status(results, 201))


routes = [
    Route("/crm/v8/settings/modules", create_modules, methods=["POST"]),
    Route("/crm/v8/settings/fields", create_fields, methods=["POST"]),
]
