"""The field metadata of Notes and Attachments: Zoho's own modules, which /settings/fields describes like any other
(`GET /settings/fields?module=Notes`) but which are not record modules here. Their records live apart
(state.notes, state.attachments, crm_related.py) and they are not listed, searched or created through
/{module}, so they stay out of state.modules; only the fields listing knows them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox import crm_meta
from connector.sandbox._http import json_response
from connector.sandbox.metadata import field_meta
from connector.sandbox.state import CRM_ID_BASE, SYSTEM_FIELDS, FieldDef, ModuleDef

__all__ = ["SYSTEM_MODULES", "routes"]


def _module(api_name: str, seq: int, singular: str, fields: list[FieldDef]) -> ModuleDef:
    return ModuleDef(
        api_name=api_name,
        id=str(CRM_ID_BASE + 900 + seq),  # fixed, below any id the state hands out to records
        singular_label=singular,
        plural_label=api_name,
        fields=[*fields, *SYSTEM_FIELDS],
        display_field=fields[0].api_name,
    )


SYSTEM_MODULES = {
    m.api_name.lower(): m
    for m in (
        _module(
            "Notes",
            1,
            "Note",
            [
                FieldDef("Note_Title", "text", "Note Title", length=120),
                FieldDef("Note_Content", "textarea", "Note Content", length=32_000),
                FieldDef("Parent_Id", "lookup", "Parent ID", mandatory=True),
            ],
        ),
        _module(
            "Attachments",
            2,
            "Attachment",
            [
                FieldDef("File_Name", "text", "File Name", read_only=True, length=255),
                FieldDef("Size", "text", "Size", read_only=True),
                FieldDef("Parent_Id", "lookup", "Parent ID", read_only=True),
                FieldDef("$link_url", "website", "Link URL", read_only=True),
                FieldDef("$type", "text", "Type", read_only=True),
                FieldDef("$file_id", "text", "File ID", read_only=True),
            ],
        ),
    )
}


async def list_fields(request: Request) -> Response:
    """/settings/fields for Notes and Attachments; every other module as crm_meta answers it."""
    module = SYSTEM_MODULES.get((request.query_params.get("module") or "").lower())
    if module is None:
        return await crm_meta.list_fields(request)
    return json_response({"fields": [field_meta(module, f, i + 1) for i, f in enumerate(module.fields)]})


routes = [Route("/crm/v8/settings/fields", list_fields, methods=["GET"])]
