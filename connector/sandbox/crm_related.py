"""CRM attachments (multipart upload under `file`, or a link) and notes, top level and per record."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, no_content, now_of, state_of
from connector.sandbox.clock import crm_time
from connector.sandbox.crm import (
    MAX_PER_PAGE,
    MAX_WRITE,
    _fail,
    _handler,
    _unknown_id,
    data_rows,
    fields_param,
    int_param,
    module_of,
    user_of,
)
from connector.sandbox.records import RecordError, batch_status, project
from connector.sandbox.state import JSON, Attachment, ModuleDef, SandboxState

MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024


def _parent(request: Request) -> tuple[ModuleDef, JSON]:
    state, module = state_of(request), module_of(request)
    row = state.records[module.api_name].get(request.path_params["record_id"])
    if row is None:
        raise _fail(
            "INVALID_DATA",
            "the related id given seems to be invalid",
            resource_path_index=1,
            id=request.path_params["record_id"],
        )
    return module, row


def _page(request: Request, items: list[JSON], wanted: list[str] | None) -> Response:
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    if not chunk:
        return no_content()
    info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": len(items) > page * per_page}
    return json_response({"data": [project(i, wanted) for i in chunk], "info": info})


def _who(state: SandboxState, uid: str) -> JSON:
    return state.user_ref(uid)


def _success(row: JSON, message: str) -> JSON:
    details = {k: row[k] for k in ("Modified_Time", "Modified_By", "Created_Time", "id", "Created_By")}
    return {"code": "SUCCESS", "details": details, "message": message, "status": "success"}


# attachments ---------------------------------------------------------------------------------------------------------


def attachment_json(state: SandboxState, a: Attachment) -> JSON:
    owner = _who(state, a.owner_id)
    module = state.module(a.module)
    parent = state.records.get(a.module, {}).get(a.record_id, {})
    return {
        "Owner": owner,
        "Modified_By": owner,
        "Created_By": owner,
        "Parent_Id": {"id": a.record_id, "name": str(parent.get(module.display_field) if module else "")},
        "$sharing_permission": "full_access",
        "$attachment_type": 3 if a.link_url else 1,
        "id": a.id,
        "Modified_Time": a.created_time,
        "Created_Time": a.created_time,
        "File_Name": a.file_name,
        "Size": str(len(a.content)),
        "$editable": True,
        "$file_id": f"sandbox_{a.id}",
        "$type": "Link URL" if a.link_url else "Attachment",
        "$se_module": a.module,
        "$state": "save",
        "$link_url": a.link_url,
    }


@_handler
async def list_attachments(request: Request) -> Response:
    state = state_of(request)
    module, row = _parent(request)
    items = [
        attachment_json(state, a)
        for a in reversed(state.attachments.values())
        if a.module == module.api_name and a.record_id == row["id"]
    ]
    return _page(request, items, fields_param(request, required=True))


@_handler
async def add_attachment(request: Request) -> Response:
    """Multipart with the file under `file`, or `attachmentUrl` (+ `title`) in the query string."""
    state, now = state_of(request), now_of(request)
    module, row = _parent(request)
    url = request.query_params.get("attachmentUrl")
    if url:
        name: str | None = request.query_params.get("title") or url
        content, ctype = b"", "text/uri-list"
    else:
        form = await request.form(max_part_size=MAX_ATTACHMENT_BYTES + 1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="file")
        content = await upload.read()
        name, ctype = upload.filename, upload.content_type or "application/octet-stream"
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise _fail("FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "file size is more than the allowed size", limit=100)
    a = Attachment(
        id=state.new_crm_id(),
        module=module.api_name,
        record_id=row["id"],
        file_name=name,
        content=content,
        content_type=ctype,
        link_url=url or None,
        created_time=crm_time(now),
        owner_id=user_of(request),
    )
    state.attachments[a.id] = a
    return json_response({"data": [_success(attachment_json(state, a), "attachment uploaded successfully")]})


def _attachment(request: Request, aid: str) -> Attachment | None:
    module, row = _parent(request)
    a = state_of(request).attachments.get(aid)
    if a is None or a.module != module.api_name or a.record_id != row["id"]:
        return None
    return a


@_handler
async def download_attachment(request: Request) -> Response:
    """The stored bytes, as Zoho streams them; 204 for an unknown attachment id."""
    a = _attachment(request, request.path_params["attachment_id"])
    if a is None:
        return no_content()
    if a.link_url:
        raise _fail("INVALID_DATA", "invalid data", reason="a link attachment has no content", id=a.id)
    headers = {"Content-Disposition": f'attachment; filename="{a.file_name or "file"}"'}
    return Response(a.content, media_type=a.content_type, headers=headers)


def _delete_attachment(request: Request, aid: str) -> JSON:
    a = _attachment(request, aid)
    if a is None:
        return RecordError("INVALID_DATA", "the id given seems to be invalid", {"id": aid}).row()
    del state_of(request).attachments[a.id]
    return {"code": "SUCCESS", "details": {"id": aid}, "message": "record deleted", "status": "success"}


@_handler
async def delete_attachment(request: Request) -> Response:
    aid = request.path_params["attachment_id"]
    if _attachment(request, aid) is None:
        raise _unknown_id(aid)
    results = [_delete_attachment(request, aid)]
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def delete_attachments(request: Request) -> Response:
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]
    if not ids:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="ids")
    results = [_delete_attachment(request, aid) for aid in ids[:MAX_WRITE]]
    return json_response({"data": results}, batch_status(results, 200))


# notes ---------------------------------------------------------------------------------------------------------------


def _note_row(
    state: SandboxState, data: Any, path: str, parent: tuple[ModuleDef, JSON] | None, uid: str, now: float
) -> JSON:
    if not isinstance(data, dict):
        return RecordError("INVALID_DATA", "invalid data", {"json_path": path}).row()
    content = data.get("Note_Content")
    if not isinstance(content, str) or not content:
        return RecordError(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            {"api_name": "Note_Content", "json_path": f"{path}.Note_Content"},
        ).row()
    if parent is None:
        ref = data.get("Parent_Id")
        mod_name = data.get("se_module")
        if isinstance(ref, dict):
            mod_name = (ref.get("module") or {}).get("api_name", mod_name)
            ref = ref.get("id")
        module = state.module(mod_name) if isinstance(mod_name, str) else None
        row = state.records[module.api_name].get(ref) if module and isinstance(ref, str) else None
        if module is None or row is None:
            return RecordError(
                "INVALID_DATA", "invalid data", {"api_name": "Parent_Id", "json_path": f"{path}.Parent_Id"}
            ).row()
        parent = (module, row)
    module, row = parent
    me, stamp = _who(state, uid), crm_time(now)
    note: JSON = {
        "id": state.new_crm_id(),
        "Note_Title": data.get("Note_Title"),
        "Note_Content": content,
        "Parent_Id": {
            "module": {"api_name": module.api_name, "id": module.id},
            "id": row["id"],
            "name": row.get(module.display_field),
        },
        "Owner": me,
        "Created_By": me,
        "Modified_By": me,
        "Created_Time": stamp,
        "Modified_Time": stamp,
        "$attachments": [],
        "$editable": True,
        "$is_shared_to_client": False,
        "$sharing_permission": "full_access",
        "$size": str(len(content)),
        "$state": "save",
        "$voice_note": False,
    }
    state.notes[note["id"]] = note
    return _success(note, "record added")


def _update_note(state: SandboxState, nid: Any, data: Any, path: str, uid: str, now: float) -> JSON:
    note = state.notes.get(nid) if isinstance(nid, str) else None
    if note is None or not isinstance(data, dict):
        return RecordError(
            "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id", "json_path": f"{path}.id"}
        ).row()
    for key in ("Note_Title", "Note_Content"):
        if key in data:
            if key == "Note_Content" and not data[key]:
                return RecordError(
                    "MANDATORY_NOT_FOUND", "required field not found", {"api_name": key, "json_path": f"{path}.{key}"}
                ).row()
            note[key] = data[key]
    note.update(Modified_By=_who(state, uid), Modified_Time=crm_time(now), **{"$size": str(len(note["Note_Content"]))})
    return _success(note, "record updated")


def _delete_note(state: SandboxState, nid: str) -> JSON:
    note = state.notes.pop(nid, None)
    if note is None:
        return RecordError("INVALID_DATA", "the id given seems to be invalid", {"id": nid}).row()
    return _success(note, "record deleted")  # notes.json requires the full details even on delete


@_handler
async def list_notes(request: Request) -> Response:
    state = state_of(request)
    wanted = fields_param(request, required=True)
    return _page(request, list(reversed(state.notes.values())), wanted)


@_handler
async def record_notes(request: Request) -> Response:
    state = state_of(request)
    _module, row = _parent(request)
    wanted = fields_param(request, required=True)
    items = [n for n in reversed(state.notes.values()) if n["Parent_Id"]["id"] == row["id"]]
    return _page(request, items, wanted)


@_handler
async def create_notes(request: Request) -> Response:
    state, now, uid = state_of(request), now_of(request), user_of(request)
    parent = _parent(request) if "record_id" in request.path_params else None
    _, rows = await data_rows(request)
    results = [_note_row(state, r, f"$.data[{i}]", parent, uid, now) for i, r in enumerate(rows)]
    return json_response({"data": results}, batch_status(results, 201))


@_handler
async def update_notes(request: Request) -> Response:
    state, now, uid = state_of(request), now_of(request), user_of(request)
    _, rows = await data_rows(request)
    fixed = request.path_params.get("note_id")
    if fixed and fixed not in state.notes:
        raise _unknown_id(fixed)
    results = [
        _update_note(state, fixed or (r.get("id") if isinstance(r, dict) else None), r, f"$.data[{i}]", uid, now)
        for i, r in enumerate(rows[:1] if fixed else rows)
    ]
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def get_note(request: Request) -> Response:
    note = state_of(request).notes.get(request.path_params["note_id"])
    if note is None:
        return no_content()
    return json_response({"data": [project(note, fields_param(request, required=False))]})


@_handler
async def delete_notes(request: Request) -> Response:
    state = state_of(request)
    fixed = request.path_params.get("note_id")
    if fixed and fixed not in state.notes:
        raise _unknown_id(fixed)
    ids = [fixed] if fixed else [i for i in request.query_params.get("ids", "").split(",") if i]
    if not ids:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="ids")
    results = [_delete_note(state, nid) for nid in ids[:MAX_WRITE]]
    return json_response({"data": results}, batch_status(results, 200))


routes = [
    Route("/crm/v8/Notes", list_notes, methods=["GET"]),
    Route("/crm/v8/Notes", create_notes, methods=["POST"]),
    Route("/crm/v8/Notes", update_notes, methods=["PUT"]),
    Route("/crm/v8/Notes", delete_notes, methods=["DELETE"]),
    Route("/crm/v8/Notes/{note_id}", get_note, methods=["GET"]),
    Route("/crm/v8/Notes/{note_id}", update_notes, methods=["PUT"]),
    Route("/crm/v8/Notes/{note_id}", delete_notes, methods=["DELETE"]),
    Route("/crm/v8/{module}/{record_id}/Attachments", list_attachments, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/Attachments", add_attachment, methods=["POST"]),
    Route("/crm/v8/{module}/{record_id}/Attachments", delete_attachments, methods=["DELETE"]),
    Route("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}", download_attachment, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/Attachments/{attachment_id}", delete_attachment, methods=["DELETE"]),
    Route("/crm/v8/{module}/{record_id}/Notes", record_notes, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}/Notes", create_notes, methods=["POST"]),
]
