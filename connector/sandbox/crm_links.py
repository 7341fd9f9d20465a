"""CRM related records: GET/PUT/DELETE /{module}/{id}/{related_list}[/{related_id}].

A related list of module M is another module X with a lookup field pointing at M (Accounts → Contacts through
Contacts.Account_Name): listing reads X's records whose lookup holds the id, linking sets that lookup, delinking
clears it. Notes and Attachments have their own routes (crm_related.py), registered before these.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, now_of, state_of
from connector.sandbox.crm import _fail, _handler, data_rows, fields_param, module_of, user_of
from connector.sandbox.crm_related import _page, _parent
from connector.sandbox.records import Batch, RecordError, batch_status, project
from connector.sandbox.state import JSON, FieldDef, ModuleDef, SandboxState


def related_lists(state: SandboxState, module: ModuleDef) -> list[tuple[ModuleDef, FieldDef]]:
    """(related module, its lookup field to `module`) for every lookup that points at `module`."""
    return [
        (m, f)
        for m in state.modules.values()
        for f in m.fields
        if f.data_type == "lookup" and f.lookup == module.api_name
    ]


def _related(request: Request) -> tuple[ModuleDef, FieldDef]:
    """The related list the path names; a name that is no related list of the module is a URL that does not exist."""
    name = request.path_params["related_list"]
    for related, lookup in related_lists(state_of(request), module_of(request)):
        if related.api_name.lower() == name.lower():
            return related, lookup
    raise _fail("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", status=404)


@_handler
async def list_related(request: Request) -> Response:
    state = state_of(request)
    related, lookup = _related(request)
    _module, row = _parent(request)
    wanted = fields_param(request, required=False)
    items = [
        r
        for r in state.sorted_records(related.api_name, "id", "desc")
        if isinstance(r.get(lookup.api_name), dict) and r[lookup.api_name].get("id") == row["id"]
    ]
    return _page(request, items, wanted)


def _set_link(request: Request, value_of: bool) -> JSON:
    state, now = state_of(request), now_of(request)
    related, lookup = _related(request)
    module, row = _parent(request)
    rid = request.path_params["related_id"]
    target = state.records[related.api_name].get(rid)
    if target is None:
        return RecordError("INVALID_DATA", "the related id given seems to be invalid", {"id": rid}).row()
    value = target.get(lookup.api_name)
    if value_of:
        value = {"id": row["id"], "name": str(row.get(module.display_field) or "")}
    elif isinstance(value, dict) and value.get("id") == row["id"]:
        value = None
    # Through Batch, the one writer of CRM records, so the related record's edit is notified like any other.
    Batch(state, related, now, user_of(request)).set_fields(rid, {lookup.api_name: value})
    message = "relation added" if value_of else "relation removed"  # related_records.json's words
    return {"code": "SUCCESS", "details": {"id": rid}, "message": message, "status": "success"}


@_handler
async def get_related(request: Request) -> Response:
    """GET one related record; 204 when it is not related to the record."""
    state = state_of(request)
    related, lookup = _related(request)
    _module, row = _parent(request)
    target = state.records[related.api_name].get(request.path_params["related_id"])
    link = target.get(lookup.api_name) if target else None
    if target is None or not isinstance(link, dict) or link.get("id") != row["id"]:
        return Response(status_code=204)
    return json_response({"data": [project(target, fields_param(request, required=False))]})


@_handler
async def link_related(request: Request) -> Response:
    """PUT with {"data": [{relation fields}]}: the body is required even when the relation has no fields."""
    await data_rows(request)
    results = [_set_link(request, True)]
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def delink_related(request: Request) -> Response:
    results = [_set_link(request, False)]
    return json_response({"data": results}, batch_status(results, 200))


routes = [
    Route("/crm/v8/{module}/{record_id}/{related_list}", list_related, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/{related_list}/{related_id}", get_related, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/{related_list}/{related_id}", link_related, methods=["PUT"]),
    Route("/crm/v8/{module}/{record_id}/{related_list}/{related_id}", delink_related, methods=["DELETE"]),
]
