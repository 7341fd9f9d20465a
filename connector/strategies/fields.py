"""Field schemas: one entry of a product's field metadata as the JSON Schema of a value of that field.

    crm_field   an entry of CRM's /settings/fields: `data_type`, `length`, `pick_list_values`, `system_mandatory`,
                `read_only`, `display_label` → {"type", "maxLength", "enum", "format", "title", "readOnly"}

`describe` expands an input such as `fieldValues` into the module's real fields with these, so an engine can
render a form and validate values before anything is sent. A strategy returns the schema and whether the field
must be given when creating a record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = ["FIELD_SCHEMAS", "FieldSchema"]


class FieldSchema(NamedTuple):
    schema: dict[str, Any]
    mandatory: bool


FieldSchemaRule = Callable[[Mapping[str, Any]], FieldSchema]

_CRM_TEXT = {"text", "textarea", "email", "phone", "website", "autonumber", "profileimage", "fileupload"}
_CRM_NUMBERS = {"double": "number", "currency": "number", "percent": "number", "decimal": "number"}
_CRM_FORMATS = {"email": "email", "date": "date", "datetime": "date-time", "website": "uri"}
_CRM_LOOKUPS = {"lookup", "ownerlookup", "userlookup"}


def crm_field(entry: Mapping[str, Any]) -> FieldSchema:
    kind = str(entry.get("data_type") or "")
    picklist = [v.get("actual_value") for v in entry.get("pick_list_values") or [] if isinstance(v, Mapping)]
    schema: dict[str, Any] = {"title": entry.get("display_label") or entry.get("field_label") or entry.get("api_name")}
    if kind == "picklist" and picklist:
        schema.update(type="string", enum=picklist)
    elif kind == "multiselectpicklist":
        schema.update(type="array", items={"type": "string", **({"enum": picklist} if picklist else {})})
    elif kind in _CRM_LOOKUPS:
        schema.update(
            type=["object", "string"],
            properties={"id": {"type": "string"}},
            required=["id"],
            description='A record id, or {"id": …}',
        )
    elif kind in ("integer", "bigint"):
        schema["type"] = "integer"
    elif kind in _CRM_NUMBERS:
        schema["type"] = _CRM_NUMBERS[kind]
    elif kind == "boolean":
        schema["type"] = "boolean"
    elif kind in _CRM_TEXT or kind in ("date", "datetime"):
        schema["type"] = "string"
    length = entry.get("length")
    if schema.get("type") == "string" and "enum" not in schema and isinstance(length, int) and length > 0:
        schema["maxLength"] = length
    if kind in _CRM_FORMATS:
        schema["format"] = _CRM_FORMATS[kind]
    if entry.get("read_only") or entry.get("field_read_only"):
        schema["readOnly"] = True
    schema["x-data-type"] = kind
    mandatory = bool(entry.get("system_mandatory") or entry.get("mandatory")) and not schema.get("readOnly")
    return FieldSchema(schema, mandatory)


FIELD_SCHEMAS: dict[str, FieldSchemaRule] = {"crm_field": crm_field}
