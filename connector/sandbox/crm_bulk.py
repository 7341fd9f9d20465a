"""CRM bulk read (/crm/bulk/v8/read): create a job, watch it go ADDED → IN PROGRESS → COMPLETED, download a ZIP.

Shapes follow crm-oas `bulk_read.json`: the 201 `{"data": [{"status", "code": "ADDED_SUCCESSFULLY", "details"}],
"info": {}}`, the job `{"data": [{"id", "operation", "state", "query", "created_by", "created_time", "result",
"file_type"}]}` and a ZIP holding one CSV (first column `Id`, then the requested fields). A job covers
`bulk_read_page_rows` rows (200,000 on Zoho); beyond that its result says `more_records` and a `next_page_token`
for the next job. A job's state advances with each status read (`bulk_read_polls` reads before COMPLETED), so a
client that polls is exercised without anyone waiting.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from connector.sandbox import scopes
from connector.sandbox._http import BadBody, crm_error, json_response, now_of, read_json, state_of
from connector.sandbox.clock import crm_time
from connector.sandbox.crm import _fail, _handler, user_of
from connector.sandbox.state import JSON, ModuleDef, SandboxState

MAX_FIELDS = 200  # fields per bulk read query
MAX_PAGE = 50  # `page` runs 1..50 (crm-oas Query.page pattern)
COMPARATORS = frozenset(
    {
        "equal",
        "not_equal",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "greater_than",
        "greater_equal",
        "less_than",
        "less_equal",
        "between",
        "not_between",
    }
)
_NUMERIC = {"integer", "bigint", "double", "currency", "percent"}


@dataclass
class Job:
    id: str
    module: ModuleDef
    fields: list[str]
    criteria: JSON | None
    cvid: str | None
    file_type: str
    offset: int
    page: int
    created_by: JSON
    created_time: str
    callback: JSON | None
    query: JSON
    polls: int = 0
    rows: list[str] | None = None  # ids of the exported rows, fixed when the job completes
    more: bool = False
    next_token: str | None = None


@dataclass
class BulkReads:
    jobs: dict[str, Job] = field(default_factory=dict)
    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)  # page token → (module, offset)


def _reads(request: Request) -> BulkReads:
    app_state = request.app.state
    reads = getattr(app_state, "bulk_reads", None)
    if not isinstance(reads, BulkReads):
        reads = app_state.bulk_reads = BulkReads()
    return reads


def _bad_criteria(reason: str, **details: Any) -> Exception:
    return _fail("INVALID_CRITERIA", f"invalid criteria: {reason}", **details)


def _check_criteria(module: ModuleDef, node: Any, depth: int = 0) -> int:
    """Count the conditions of a structured criteria object, refusing what Zoho refuses."""
    if not isinstance(node, dict) or depth > 5:
        raise _bad_criteria("expected an object")
    if "group" in node:
        if node.get("group_operator") not in ("and", "or"):
            raise _fail("GROUP_OPERATOR_NOT_SUPPORTED", "group_operator must be and or or", api_name="group_operator")
        group = node["group"]
        if not isinstance(group, list) or not group:
            raise _bad_criteria("group must be a non-empty list")
        return sum(_check_criteria(module, item, depth + 1) for item in group)
    api_name = (node.get("field") or {}).get("api_name") if isinstance(node.get("field"), dict) else None
    if not isinstance(api_name, str) or (api_name != "id" and module.field(api_name) is None):
        raise _fail("FIELD_IN_CRITERIA_NOT_SUPPORTED", "the field in criteria is not available", api_name=api_name)
    if node.get("comparator") not in COMPARATORS:
        raise _fail(
            "FIELD_COMPARATOR_IN_CRITERIA_NOT_SUPPORTED",
            "the comparator is not supported",
            api_name=api_name,
            supported_values=sorted(COMPARATORS),
        )
    if "value" not in node:
        raise _bad_criteria("a condition needs a value", api_name=api_name)
    return 1


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("id")
    return value


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _matches(record: JSON, node: JSON, module: ModuleDef) -> bool:
    if "group" in node:
        results = (_matches(record, item, module) for item in node["group"])
        return all(results) if node["group_operator"] == "and" else any(results)
    api_name = node["field"]["api_name"]
    definition = module.field(api_name)
    numeric = definition is not None and definition.data_type in _NUMERIC
    have = _plain(record.get(api_name))
    want = node["value"]
    op = node["comparator"]
    if numeric:
        have = _number(have)
        want = [_number(v) for v in want] if isinstance(want, list) else _number(want)
    text = "" if have is None else str(have).lower()
    try:
        if op == "equal":
            return bool(have == want)
        if op == "not_equal":
            return bool(have != want)
        if op == "in":
            return have in (want if isinstance(want, list) else [want])
        if op == "not_in":
            return have not in (want if isinstance(want, list) else [want])
        if op == "contains":
            return str(want).lower() in text
        if op == "not_contains":
            return str(want).lower() not in text
        if op == "starts_with":
            return text.startswith(str(want).lower())
        if op == "ends_with":
            return text.endswith(str(want).lower())
        if have is None:
            return False
        if op in ("between", "not_between"):
            low, high = want if isinstance(want, list) and len(want) == 2 else (None, None)
            inside = low is not None and bool(low <= have <= high)
            return inside if op == "between" else not inside
        return bool(
            {
                "greater_than": have > want,
                "greater_equal": have >= want,
                "less_than": have < want,
                "less_equal": have <= want,
            }[op]
        )
    except TypeError:  # comparing a number with text: no match, as Zoho does
        return False


def _views(state: SandboxState, module: ModuleDef) -> dict[str, str | None]:
    """Custom view id → owner filter (None: every record), as crm_views serves them."""
    from connector.sandbox.crm_views import view_filters

    return view_filters(state, module)


@_handler
async def create_job(request: Request) -> Response:
    """POST /crm/bulk/v8/read."""
    state, reads, now = state_of(request), _reads(request), now_of(request)
    try:
        body = await read_json(request)
    except BadBody:
        raise _fail("REQUEST_BODY_IS_EMPTY", "the request body is empty or not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), dict):
        raise _fail("REQUEST_BODY_NOT_SUPPORTED", "the request body needs a query", api_name="query")
    query = body["query"]
    module_ref = query.get("module")
    name = module_ref.get("api_name") if isinstance(module_ref, dict) else None
    module = state.module(name) if isinstance(name, str) else None
    if module is None:
        raise _fail("MODULE_NOT_SUPPORTED", "the module is not supported for bulk read", api_name="module")
    granted = request.scope.get("sandbox.scopes", frozenset())
    if not scopes.covers(granted, scopes._module_scopes(module.api_name, ("all", "read"))):
        return crm_error("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", status=401)
    wanted = query.get("fields")
    if wanted is None:
        wanted = [f.api_name for f in module.fields]
    if not isinstance(wanted, list) or not all(isinstance(f, str) for f in wanted):
        raise _fail("INVALID_DATA", "fields must be a list of field API names", api_name="fields")
    if len(wanted) > MAX_FIELDS:
        raise _fail("LIMIT_EXCEEDED", "too many fields", api_name="fields", limit=MAX_FIELDS)
    unknown = [f for f in wanted if f not in ("id", "Id") and module.field(f) is None]
    if unknown:
        raise _fail("FIELD_NOT_AVAILABLE", "the field is not available", api_name=unknown[0], module=module.api_name)
    criteria = query.get("criteria")
    if criteria is not None:
        _check_criteria(module, criteria)
    cvid = query.get("cvid")
    if cvid is not None and str(cvid) not in _views(state, module):
        raise _fail("INVALID_DATA", "the given cvid is invalid", api_name="cvid")
    file_type = body.get("file_type", "csv")
    if file_type not in ("csv", "ics"):
        raise _fail("INVALID_DATA", "file_type must be csv or ics", api_name="file_type")
    if file_type == "ics" and module.api_name not in ("Events", "Calls", "Tasks"):
        raise _fail("NOT_SUPPORTED_FEATURE", "ics is only for Events", api_name="file_type")
    callback = body.get("callback")
    if callback is not None:
        url = callback.get("url") if isinstance(callback, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise _fail("INVALID_CALLBACK_URL", "the callback url is invalid", api_name="url")
        if callback.get("method") != "post":
            raise _fail("INVALID_CALLBACK_METHOD", "the callback method must be post", api_name="method")
    offset, page = _start(query, reads, module)
    user = state.users[user_of(request)]
    job = Job(
        id=state.new_crm_id(),
        module=module,
        fields=[f for f in wanted if f not in ("id", "Id")],
        criteria=criteria,
        cvid=None if cvid is None else str(cvid),
        file_type=file_type,
        offset=offset,
        page=page,
        created_by={"id": user["id"], "name": user["full_name"]},
        created_time=crm_time(now),
        callback=callback,
        query=_echo(module, query),
    )
    reads.jobs[job.id] = job
    details = {
        "id": job.id,
        "operation": "read",
        "state": "ADDED",
        "created_by": job.created_by,
        "created_time": job.created_time,
    }
    row = {"status": "success", "code": "ADDED_SUCCESSFULLY", "message": "Added successfully.", "details": details}
    return json_response({"data": [row], "info": {}}, status=201)


def _echo(module: ModuleDef, query: JSON) -> JSON:
    """The query as Zoho echoes it in the job: module and criteria fields with their ids."""
    from connector.sandbox.metadata import field_meta

    ids = {f.api_name: field_meta(module, f, i + 1)["id"] for i, f in enumerate(module.fields)}

    def fields_of(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        if isinstance(node.get("field"), dict):
            name = node["field"].get("api_name")
            out["field"] = {"api_name": name, "id": ids.get(name, module.id)}
        if isinstance(node.get("group"), list):
            out["group"] = [fields_of(item) for item in node["group"]]
        return out

    echoed = {**query, "module": {"api_name": module.api_name, "id": module.id}}
    if "criteria" in echoed:
        echoed["criteria"] = fields_of(echoed["criteria"])
    return echoed


def _start(query: JSON, reads: BulkReads, module: ModuleDef) -> tuple[int, int]:
    token, page = query.get("page_token"), query.get("page")
    if token is not None and page is not None:
        raise _fail("AMBIGUITY_DURING_PROCESSING", "use either page or page_token", api_name="page_token")
    if token is not None:
        found = reads.tokens.get(str(token))
        if found is None or found[0] != module.api_name:
            raise _fail("INVALID_DATA", "the given page_token is invalid", api_name="page_token")
        return found[1], 0
    if page is None:
        return 0, 1
    if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= MAX_PAGE:
        raise _fail("PAGE_RANGE_EXCEEDED", "page is out of range", max_limit=MAX_PAGE)
    return -1, page  # resolved with the configured page size when the job runs


def _complete(state: SandboxState, reads: BulkReads, job: Job) -> None:
    size = state.options.bulk_read_page_rows
    offset = (job.page - 1) * size if job.offset < 0 else job.offset
    owner = _views(state, job.module).get(job.cvid) if job.cvid else None
    matching = [
        r["id"]
        for r in state.sorted_records(job.module.api_name, "id", "asc")
        if (job.criteria is None or _matches(r, job.criteria, job.module))
        and (owner is None or _plain(r.get("Owner")) == owner)
    ]
    job.rows = matching[offset : offset + size]
    job.more = len(matching) > offset + size
    if job.more:
        job.next_token = secrets.token_hex(16)
        reads.tokens[job.next_token] = (job.module.api_name, offset + size)
    job.page = offset // size + 1


def _job_doc(request: Request, job: Job) -> JSON:
    polls = state_of(request).options.bulk_read_polls
    job_state = "ADDED" if job.polls <= polls // 2 else "IN PROGRESS"
    if job.rows is not None:
        job_state = "COMPLETED"
    doc: JSON = {
        "id": job.id,
        "operation": "read",
        "state": job_state,
        "query": job.query,
        "created_by": job.created_by,
        "created_time": job.created_time,
        "file_type": job.file_type,
    }
    if job.rows is not None:
        doc["result"] = {
            "page": job.page,
            "count": len(job.rows),
            "download_url": f"/crm/bulk/v8/read/{job.id}/result",
            "per_page": state_of(request).options.bulk_read_page_rows,
            "more_records": job.more,
            "next_page_token": job.next_token,
        }
    return doc


def _job(request: Request) -> Job | None:
    return _reads(request).jobs.get(request.path_params["job_id"])


def _not_found(job_id: str, status: int) -> Response:
    return crm_error("RESOURCE_NOT_FOUND", "the requested resource is not found", {"resource": job_id}, status)


@_handler
async def get_job(request: Request) -> Response:
    """GET /crm/bulk/v8/read/{job_id}: each read moves a pending job on; COMPLETED after `bulk_read_polls`."""
    job = _job(request)
    if job is None:
        return _not_found(request.path_params["job_id"], 404)
    state = state_of(request)
    if job.rows is None:
        job.polls += 1
        if job.polls > state.options.bulk_read_polls:
            _complete(state, _reads(request), job)
    return json_response({"data": [_job_doc(request, job)]})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("id", ""))
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@_handler
async def get_result(request: Request) -> Response:
    """GET /crm/bulk/v8/read/{job_id}/result: the ZIP, written to a temporary file and streamed from it."""
    job = _job(request)
    if job is None or job.rows is None:
        return _not_found(request.path_params["job_id"], 400)
    state = state_of(request)
    records = state.records.get(job.module.api_name, {})
    fd, path = tempfile.mkstemp(prefix="sandbox-bulk-", suffix=".zip")
    with (
        os.fdopen(fd, "wb") as raw,
        zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(f"{job.id}.csv", "w") as member,
    ):
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(["Id", *job.fields])
        for record_id in job.rows:
            record = records.get(record_id)
            if record is not None:
                writer.writerow([record_id, *(_cell(record.get(f)) for f in job.fields)])
        text.flush()
        text.detach()
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"{job.id}.zip",
        background=BackgroundTask(os.unlink, path),
    )


routes = [
    Route("/crm/bulk/v8/read", create_job, methods=["POST"]),
    Route("/crm/bulk/v8/read/{job_id}", get_job, methods=["GET"]),
    Route("/crm/bulk/v8/read/{job_id}/result", get_result, methods=["GET"]),
]
