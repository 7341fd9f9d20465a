"""CRM v8 records: list with page and page_token, get, create, update, upsert, delete, search, count and COQL."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox import coql, scopes
from connector.sandbox._http import BadBody, crm_error, json_response, no_content, now_of, read_json, state_of
from connector.sandbox.clock import crm_time
from connector.sandbox.criteria import Predicate, comparable, parse_criteria
from connector.sandbox.metadata import field_meta
from connector.sandbox.records import Batch, RecordError, _key, batch_status, project
from connector.sandbox.state import JSON, ModuleDef, PageToken, SandboxState

MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000
MAX_WRITE = 100
MAX_FIELDS = 50
SORT_FIELDS = ("id", "Created_Time", "Modified_Time")
TRIGGERS = ("workflow", "approval", "blueprint")  # what a write's `trigger` may name (zoho-api.md §3)
DELETED_TYPES = ("all", "recycle", "permanent")


class Reject(Exception):
    """Abort a handler with a ready CRM error response."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _fail(code: str, message: str, status: int = 400, **details: Any) -> Reject:
    return Reject(crm_error(code, message, details, status))


def user_of(request: Request) -> str:
    """The CRM user behind the request's access token (set by the auth middleware)."""
    uid = request.scope.get("sandbox.user_id")
    return uid if isinstance(uid, str) else state_of(request).current_user_id


def module_of(request: Request) -> ModuleDef:
    module = state_of(request).module(request.path_params["module"])
    if module is None:
        raise _fail("INVALID_MODULE", "the module name given seems to be invalid", resource_path_index=0)
    return module


def int_param(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _fail("INVALID_DATA", "invalid data", param_name=name, expected_data_type="integer") from None
    if value < low or (high is not None and value > high):
        raise _fail("INVALID_DATA", "invalid data", param_name=name, expected_data_type="integer", limit=high or low)
    return value


def fields_param(request: Request, *, required: bool) -> list[str] | None:
    raw = request.query_params.get("fields")
    if not raw:
        if required:
            raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="fields")
        return None
    wanted = [f.strip() for f in raw.split(",") if f.strip()]
    if len(wanted) > MAX_FIELDS:
        raise _fail("LIMIT_EXCEEDED", "the number of fields exceeds the limit", param_name="fields", limit=MAX_FIELDS)
    return wanted


async def data_rows(request: Request) -> tuple[JSON, list[Any]]:
    """The body's `data` array, checked the way Zoho checks it before looking at any row."""
    try:
        body = await read_json(request)
    except BadBody:
        raise _fail("INVALID_DATA", "body", reason="the request body is not valid JSON") from None
    if not isinstance(body, dict) or "data" not in body:
        raise _fail("MANDATORY_NOT_FOUND", "required field not found", api_name="data", json_path="$.data")
    rows = body["data"]
    if not isinstance(rows, list) or not rows:
        raise _fail("INVALID_DATA", "invalid data", api_name="data", json_path="$.data", expected_data_type="jsonarray")
    if len(rows) > MAX_WRITE:
        raise _fail("LIMIT_EXCEEDED", "Record count exceeded", api_name="data", json_path="$.data", limit=MAX_WRITE)
    trigger = body.get("trigger")
    if trigger is not None and (
        not isinstance(trigger, list) or any(t not in TRIGGERS for t in trigger) or len(set(trigger)) != len(trigger)
    ):
        raise _fail(
            "INVALID_DATA", "invalid data", api_name="trigger", json_path="$.trigger", supported_values=list(TRIGGERS)
        )
    return body, rows


def check_trigger(body: JSON) -> None:
    """A write's `trigger`: absent (every automation runs), or a list of TRIGGERS ([] runs none)."""
    if "trigger" not in body:
        return
    given = body["trigger"]
    if not isinstance(given, list) or any(t not in TRIGGERS for t in given):
        raise _fail(
            "INVALID_DATA",
            "invalid data",
            api_name="trigger",
            json_path="$.trigger",
            expected_data_type="jsonarray",
            supported_values=list(TRIGGERS),
        )


def bool_param(request: Request, name: str) -> None:
    """Zoho's boolean query parameters take `true` or `false` only."""
    raw = request.query_params.get(name)
    if raw is not None and raw not in ("true", "false"):
        raise _fail("INVALID_DATA", "invalid data", param_name=name, expected_data_type="boolean")


def since_header(request: Request) -> float | None:
    """If-Modified-Since as an epoch: ISO 8601 (Zoho's form) or an HTTP date; anything else is INVALID_DATA."""
    raw = request.headers.get("if-modified-since")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            raise _fail("INVALID_DATA", "invalid data", header_name="If-Modified-Since") from None
    if moment.tzinfo is None:
        raise _fail("INVALID_DATA", "invalid data", header_name="If-Modified-Since", reason="no time zone")
    return moment.timestamp()


def _modified_since(row: JSON, since: float, *, inclusive: bool) -> bool:
    """Modified after `since`, or at it too under the inclusive reading (Options.modified_since)."""
    stamp = row.get("Modified_Time")
    if not isinstance(stamp, str):
        return False
    moment = datetime.fromisoformat(stamp).timestamp()
    return moment >= since if inclusive else moment > since


def view_filter(request: Request, module: ModuleDef) -> Predicate | None:
    """The rows a custom view (`cvid`) keeps: the module's views ("All …", every row, and "My …", the current
    user's, crm_views) by their criteria; any other id is invalid. None: every row."""
    from connector.sandbox.crm_views import view_filters  # it builds on this module's helpers

    cvid = request.query_params.get("cvid")
    if cvid is None:
        return None
    views = view_filters(state_of(request), module)
    if cvid not in views:
        raise _fail("INVALID_DATA", "the given cvid is invalid", param_name="cvid")
    owner = views[cvid]
    return None if owner is None else lambda r: _id_of(r.get("Owner")) == owner


def conversion_filter(request: Request, module: ModuleDef) -> Predicate | None:
    """`converted`: false (Zoho's default: converted leads are not listed), true (only them) or both. Only leads
    are converted (crm_convert marks them `$converted`): None, every row, for other modules and for both."""
    converted = request.query_params.get("converted") or "false"
    if converted not in ("true", "false", "both"):
        raise _fail("INVALID_DATA", "invalid data", param_name="converted", supported_values=["true", "false", "both"])
    if converted == "both" or module.api_name != "Leads":
        return None
    wanted = converted == "true"
    return lambda r: bool(r.get("$converted")) == wanted


def all_of(*tests: Predicate | None) -> Predicate | None:
    """A row every test keeps (None keeps every row); None when no test is given."""
    live = [t for t in tests if t is not None]
    return None if not live else lambda r: all(t(r) for t in live)


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


Handler = Callable[[Request], Awaitable[Response]]


def _handler(fn: Handler) -> Handler:
    """Turn Reject and row-level RecordError into responses so handlers read straight down."""

    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await fn(request)
        except Reject as exc:
            return exc.response
        except RecordError as exc:
            return crm_error(exc.code, exc.message, exc.details)
        return response

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# list / get ----------------------------------------------------------------------------------------------------------


def _page_token(
    state: SandboxState, module: str, sort_by: str, order: str, offset: int, now: float
) -> tuple[str, float]:
    """Reuse one live token per position so deep walks do not pile up tokens; returns (token, expiry)."""
    for value, tok in list(state.page_tokens.items()):
        if tok.expires_at <= now:
            del state.page_tokens[value]
        elif (tok.module, tok.sort_by, tok.sort_order, tok.offset) == (module, sort_by, order, offset):
            return value, tok.expires_at
    tok = PageToken(module, sort_by, order, offset, now + state.options.page_token_ttl)
    value = secrets.token_hex(24)
    state.page_tokens[value] = tok
    return value, tok.expires_at


@_handler
async def list_records(request: Request) -> Response:
    """GET /{module}: page/per_page up to 2,000 rows, page_token beyond; 204 when the page is empty."""
    state, module, now = state_of(request), module_of(request), now_of(request)
    q = request.query_params
    wanted = fields_param(request, required=True)
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    sort_by = q.get("sort_by") or "id"
    sort_order = (q.get("sort_order") or "desc").lower()
    if sort_by not in SORT_FIELDS:
        raise _fail("INVALID_DATA", "invalid data", param_name="sort_by", supported_values=list(SORT_FIELDS))
    if sort_order not in ("asc", "desc"):
        raise _fail("INVALID_DATA", "invalid data", param_name="sort_order", supported_values=["asc", "desc"])
    raw_token = q.get("page_token")
    if raw_token and q.get("page"):
        # Shape of record_count.json's Ambiguity_API_Exception, the OAS's one example of this code.
        raise _fail(
            "AMBIGUITY_DURING_PROCESSING",
            "Please use either page or page_token. Combination of both the params is not allowed",
            ambiguity_due_to=[{"param_name": "page"}, {"param_name": "page_token"}],
        )
    if raw_token:
        tok = state.page_tokens.get(raw_token)
        if tok is None:
            raise _fail("INVALID_DATA", "invalid data", param_name="page_token")
        if tok.expires_at <= now:
            raise _fail("EXPIRED_VALUE", "the given page_token has expired", param_name="page_token")
        if (tok.module, tok.sort_by, tok.sort_order) != (module.api_name, sort_by, sort_order):
            raise _fail(
                "TOKEN_BOUND_DATA_MISMATCH", "the page_token does not match the request", param_name="page_token"
            )
        offset = tok.offset
        page = offset // per_page + 1
    else:
        page = int_param(request, "page", 1, 1)
        if page * per_page > DISCRETE_LIMIT:
            raise _fail(
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "The number of records that can be fetched with page and per_page is 2000; "
                "use page_token to fetch more",
                param_name="page",
                limit=DISCRETE_LIMIT,
            )
        offset = (page - 1) * per_page
    if offset >= state.options.max_page_token_rows:
        raise _fail("PAGINATION_LIMIT_EXCEEDED", "pagination limit exceeded", limit=state.options.max_page_token_rows)
    keep = all_of(view_filter(request, module), conversion_filter(request, module))
    since = since_header(request)
    if keep is None:
        rows = state.sorted_records(module.api_name, sort_by, sort_order)
    else:  # cached per write like the sorted rows, so a page_token walk through a view stays linear
        view = (q.get("cvid"), q.get("converted") or "false")
        rows = state.kept_records(module.api_name, sort_by, sort_order, view, keep)
    if q.get("ids"):
        ids = set(q["ids"].split(","))
        if len(ids) > MAX_WRITE:
            raise _fail("LIMIT_EXCEEDED", "the number of ids exceeds the limit", param_name="ids", limit=MAX_WRITE)
        rows = [r for r in rows if r["id"] in ids]
    if since is not None:
        inclusive = state.options.modified_since == "inclusive"
        rows = [r for r in rows if _modified_since(r, since, inclusive=inclusive)]
        if not rows:
            return Response(status_code=304)  # nothing modified since: Zoho answers 304 Not Modified, no body
    chunk = rows[offset : offset + per_page]
    if not chunk:
        return no_content()
    end = offset + per_page
    more = len(rows) > end
    info: JSON = {
        "per_page": per_page,
        "next_page_token": None,
        "count": len(chunk),
        "sort_by": sort_by,
        "page": page,
        "previous_page_token": None,
        "page_token_expiry": None,
        "sort_order": sort_order,
        "more_records": more,
    }
    if more and end < state.options.max_page_token_rows:
        value, expiry = _page_token(state, module.api_name, sort_by, sort_order, end, now)
        info["next_page_token"] = value
        info["page_token_expiry"] = crm_time(expiry)
    if raw_token and offset > 0:
        info["previous_page_token"] = _page_token(
            state, module.api_name, sort_by, sort_order, max(0, offset - per_page), now
        )[0]
    return json_response({"data": [project(r, wanted) for r in chunk], "info": info})


@_handler
async def get_record(request: Request) -> Response:
    """GET /{module}/{id}: every field, or `fields`; 204 for an id that does not exist.

    Zoho answers an unknown record id with 204 No Content (zoho-api.md §3: empty answers are 204 with no body),
    not with a 404 or an INVALID_DATA error; clients must treat that 204 as "not found".
    """
    state, module = state_of(request), module_of(request)
    row = state.records[module.api_name].get(request.path_params["record_id"])
    if row is None:
        return no_content()
    return json_response({"data": [project(row, fields_param(request, required=False))]})


# writes --------------------------------------------------------------------------------------------------------------


def _batch(request: Request, module: ModuleDef) -> Batch:
    return Batch(state_of(request), module, now_of(request), user_of(request))


@_handler
async def create_records(request: Request) -> Response:
    module = module_of(request)
    body, rows = await data_rows(request)
    check_trigger(body)
    batch = _batch(request, module)
    results = [batch.insert(row, f"$.data[{i}]") for i, row in enumerate(rows)]
    return json_response({"data": results}, batch_status(results, 201))


@_handler
async def update_records(request: Request) -> Response:
    module = module_of(request)
    body, rows = await data_rows(request)
    check_trigger(body)
    batch = _batch(request, module)
    results = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("id"):
            results.append(
                RecordError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    {"api_name": "id", "json_path": f"$.data[{i}].id"},
                ).row()
            )
            continue
        results.append(batch.update(row["id"], row, f"$.data[{i}]"))
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def update_record(request: Request) -> Response:
    module = module_of(request)
    body, rows = await data_rows(request)
    check_trigger(body)
    batch = _batch(request, module)
    rid = request.path_params["record_id"]
    if rid not in batch.store:
        raise _unknown_id(rid)
    results = [batch.update(rid, row, f"$.data[{i}]") for i, row in enumerate(rows[:1])]
    return json_response({"data": results}, batch_status(results, 200))


def _unknown_id(rid: str) -> Reject:
    """A record URL whose id does not exist: one top-level error, not a `data` row (crm-oas record.json allows
    both for PUT and DELETE /{module}/{id}; the id is the URL's, so there is no row of the body to blame)."""
    return _fail("INVALID_DATA", "the id given seems to be invalid", id=rid)


@_handler
async def upsert_records(request: Request) -> Response:
    """POST /{module}/upsert: match on duplicate_check_fields (default: system fields, then unique ones)."""
    module = module_of(request)
    body, rows = await data_rows(request)
    check_trigger(body)
    checks = body.get("duplicate_check_fields")
    if checks is None:
        checks = list(dict.fromkeys([*module.duplicate_check_fields, *(f.api_name for f in module.fields if f.unique)]))
    if not isinstance(checks, list) or any(not isinstance(c, str) or module.field(c) is None for c in checks):
        raise _fail(
            "INVALID_DATA", "invalid data", api_name="duplicate_check_fields", json_path="$.duplicate_check_fields"
        )
    batch = _batch(request, module)
    results = []
    for i, row in enumerate(rows):
        path = f"$.data[{i}]"
        holder = field_hit = None
        if isinstance(row, dict):
            for name in checks:
                value = row.get(name)
                if value is not None and value != "":
                    holder = batch.index(name).get(_key(value))
                    if holder is not None:
                        field_hit = name
                        break
        if holder is not None:
            results.append(batch.update(holder, row, path, action="update", duplicate_field=field_hit))
        else:
            results.append(batch.insert(row, path, action="insert", duplicate_field=None))
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def delete_records(request: Request) -> Response:
    module = module_of(request)
    raw = request.query_params.get("ids", "")
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    if not ids:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="ids")
    if len(ids) > MAX_WRITE:
        raise _fail("LIMIT_EXCEEDED", "Record count exceeded", param_name="ids", limit=MAX_WRITE)
    bool_param(request, "wf_trigger")
    batch = _batch(request, module)
    results = [batch.delete(rid) for rid in ids]
    return json_response({"data": results}, batch_status(results, 200))


@_handler
async def delete_record(request: Request) -> Response:
    module = module_of(request)
    bool_param(request, "wf_trigger")
    batch, rid = _batch(request, module), request.path_params["record_id"]
    if rid not in batch.store:
        raise _unknown_id(rid)
    results = [batch.delete(rid)]
    return json_response({"data": results}, batch_status(results, 200))


# search / count / COQL -----------------------------------------------------------------------------------------------


def _matcher(request: Request, module: ModuleDef) -> Predicate | None:
    """Predicate from criteria > email > phone > word (Zoho's priority order), or None when none is given."""
    q = request.query_params
    if q.get("criteria"):
        return parse_criteria(q["criteria"], module)
    if q.get("email"):
        want = q["email"].lower()
        names = [f.api_name for f in module.fields if f.data_type == "email"]
        return lambda r: any(comparable(r.get(n)) == want for n in names)
    if q.get("phone"):
        digits = "".join(c for c in q["phone"] if c.isdigit())
        names = [f.api_name for f in module.fields if f.data_type == "phone"]
        return lambda r: any(digits and digits in "".join(c for c in str(r.get(n) or "") if c.isdigit()) for n in names)
    if q.get("word"):
        word = q["word"].lower()
        names = [f.api_name for f in module.fields if f.data_type in {"text", "email", "phone", "textarea", "picklist"}]
        return lambda r: any(word in str(r.get(n) or "").lower() for n in names)
    return None


@_handler
async def search_records(request: Request) -> Response:
    """GET /{module}/search: at most 2,000 results through page/per_page; 204 when nothing matches."""
    state, module = state_of(request), module_of(request)
    match = _matcher(request, module)
    if match is None:
        raise _fail(
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            param_name="criteria/email/phone/word",
        )
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    if page * per_page > DISCRETE_LIMIT:
        raise _fail("LIMIT_REACHED", "maximum response iteration limit reached", limit=str(DISCRETE_LIMIT))
    keep = all_of(match, view_filter(request, module), conversion_filter(request, module))
    hits = [r for r in state.sorted_records(module.api_name, "id", "desc") if keep is None or keep(r)]
    chunk = hits[(page - 1) * per_page : page * per_page]
    if not chunk:
        return no_content()
    wanted = fields_param(request, required=False)
    info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": len(hits) > page * per_page}
    return json_response({"data": [project(r, wanted) for r in chunk], "info": info})


@_handler
async def deleted_records(request: Request) -> Response:
    """GET /{module}/deleted?type=all|recycle|permanent, paged like records; 204 when there are none."""
    state, module = state_of(request), module_of(request)
    kind = request.query_params.get("type") or "all"
    if kind not in DELETED_TYPES:
        raise _fail("INVALID_DATA", "invalid data", param_name="type", supported_values=list(DELETED_TYPES))
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    if page * per_page > DISCRETE_LIMIT:
        raise _fail("LIMIT_REACHED", "maximum response iteration limit reached", limit=str(DISCRETE_LIMIT))
    rows = [d for d in reversed(state.deleted.get(module.api_name, [])) if kind in ("all", d["type"])]
    chunk = rows[(page - 1) * per_page : page * per_page]
    if not chunk:
        return no_content()
    info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": len(rows) > page * per_page}
    return json_response({"data": chunk, "info": info})


@_handler
async def count_records(request: Request) -> Response:
    state, module = state_of(request), module_of(request)
    # record.json's count takes no `converted`: it counts what the view (or the module) holds
    keep = all_of(view_filter(request, module), _matcher(request, module))
    rows = state.records[module.api_name].values()
    return json_response({"count": sum(1 for r in rows if keep is None or keep(r))})


@_handler
async def run_coql(request: Request) -> Response:
    """POST /coql {"select_query": ...}: {data, info:{count, more_records}}, 204 when no row matches."""
    try:
        body = await read_json(request)
    except BadBody:
        raise _fail("INVALID_DATA", "body", reason="the request body is not valid JSON") from None
    query = body.get("select_query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise _fail(
            "MANDATORY_NOT_FOUND", "required field not found", api_name="select_query", json_path="$.select_query"
        )
    granted = request.scope.get("sandbox.scopes", frozenset())
    module = coql.module_name(query)
    if module is not None and not scopes.covers(
        granted,
        [
            "ZohoCRM.modules.ALL",
            "ZohoCRM.modules.READ",
            f"ZohoCRM.modules.{module}.ALL",
            f"ZohoCRM.modules.{module}.READ",
        ],
    ):
        # COQL needs the module's read scope besides ZohoCRM.coql.READ (checked by the middleware).
        raise _fail("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", status=401)
    meta = body.get("include_meta")
    if meta is not None and meta != ["fields"]:
        raise _fail("INVALID_DATA", "invalid data", api_name="include_meta", supported_values=["fields"])
    rows, more = coql.run(state_of(request), query)
    if not rows:
        return no_content()
    answer: JSON = {"data": rows, "info": {"count": len(rows), "more_records": more}}
    described = state_of(request).module(module or "")
    if meta and described is not None:
        selected = {k for r in rows for k in r}
        answer["fields"] = {
            f.api_name: field_meta(described, f, i + 1)
            for i, f in enumerate(described.fields)
            if f.api_name in selected
        }
    return json_response(answer)


routes = [
    Route("/crm/v8/coql", run_coql, methods=["POST"]),
    Route("/crm/v8/{module}/upsert", upsert_records, methods=["POST"]),
    Route("/crm/v8/{module}/search", search_records, methods=["GET"]),
    Route("/crm/v8/{module}/actions/count", count_records, methods=["GET"]),
    Route("/crm/v8/{module}/deleted", deleted_records, methods=["GET"]),
    Route("/crm/v8/{module}", list_records, methods=["GET"]),
    Route("/crm/v8/{module}", create_records, methods=["POST"]),
    Route("/crm/v8/{module}", update_records, methods=["PUT"]),
    Route("/crm/v8/{module}", delete_records, methods=["DELETE"]),
    Route("/crm/v8/{module}/{record_id}", get_record, methods=["GET"]),
    Route("/crm/v8/{module}/{record_id}", update_record, methods=["PUT"]),
    Route("/crm/v8/{module}/{record_id}", delete_record, methods=["DELETE"]),
]
