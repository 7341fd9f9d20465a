"""Admin endpoints under /__sandbox: stats, faults, self-client codes, direct tokens, seeding, modules, reset, save,
and the CRM notification channels with their deliveries.

They are how tests and benchmarks steer a sandbox running in another thread or process; they need no token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox import accounts
from connector.sandbox import store as partner_store
from connector.sandbox._http import BadBody, base_url, json_response, now_of, read_json, state_of
from connector.sandbox.clock import books_time, crm_time
from connector.sandbox.faults import FaultConfig
from connector.sandbox.finance import names
from connector.sandbox.outbox import Outbox, deliverable
from connector.sandbox.scopes import ALL_SCOPES
from connector.sandbox.seed import seed_records
from connector.sandbox.state import BOOKS_ORG_ID, DEFAULT_CLIENT_ID, FieldDef, SandboxState
from connector.sandbox.watch import listing

FAULT_ACTIONS = {"expire_access_tokens", "revoke_refresh_token"}
MAX_WAIT = 60.0  # seconds GET /__sandbox/notifications/deliveries?wait= may hold the answer


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"status": "error", "message": message}, status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await read_json(request)
    except BadBody:
        return {}
    return body if isinstance(body, dict) else {}


async def stats(request: Request) -> Response:
    state: SandboxState = state_of(request)
    if request.method == "DELETE":
        request.app.state.stats.clear()
        return json_response({"status": "success"})
    now = now_of(request)
    snapshot = request.app.state.stats.snapshot()
    snapshot["records"] = {name: len(rows) for name, rows in state.records.items()}
    snapshot["active_access_tokens"] = sum(
        1 for t in state.access_tokens.values() if not t.revoked and t.expires_at > now
    )
    snapshot["active_refresh_tokens"] = sum(1 for t in state.refresh_tokens.values() if not t.revoked)
    return json_response(snapshot)


async def faults(request: Request) -> Response:
    """GET shows, DELETE clears, POST replaces the fault settings and/or runs token actions."""
    state, now = state_of(request), now_of(request)
    if request.method == "DELETE":
        request.app.state.faults = FaultConfig()
    elif request.method == "POST":
        try:
            body = await _json(request)
            settings = {k: v for k, v in body.items() if k not in FAULT_ACTIONS}
            if settings:
                request.app.state.faults = FaultConfig.from_json(settings, now)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        out: dict[str, Any] = {}
        if body.get("expire_access_tokens"):
            out["expired_access_tokens"] = accounts.expire_access_tokens(state, now)
        if body.get("revoke_refresh_token"):
            rt = state.refresh_tokens.get(str(body["revoke_refresh_token"]))
            if rt is None:
                return _bad("unknown refresh token", 404)
            accounts.revoke_refresh(state, rt)
            out["revoked_refresh_token"] = rt.token
        return json_response({"faults": request.app.state.faults.to_json(), **out})
    return json_response({"faults": request.app.state.faults.to_json()})


async def grant_code(request: Request) -> Response:
    """Self-client "Generate Code": exchange it without redirect_uri."""
    state, now = state_of(request), now_of(request)
    body = await _json(request)
    try:
        code = accounts.issue_code(
            state,
            str(body.get("client_id", DEFAULT_CLIENT_ID)),
            str(body.get("scope", ALL_SCOPES)),
            now,
            self_client=True,
            ttl=float(body["expires_in"]) if "expires_in" in body else None,
        )
    except accounts.TokenError as exc:
        return json_response(exc.body(), 400)
    return json_response(
        {"code": code.code, "client_id": code.client_id, "scope": code.scope, "expires_in": int(code.expires_at - now)}
    )


async def tokens(request: Request) -> Response:
    """A refresh and access token pair at once, skipping the OAuth dance (not counted as a grant)."""
    state, now = state_of(request), now_of(request)
    body = await _json(request)
    client_id = str(body.get("client_id", DEFAULT_CLIENT_ID))
    if client_id not in state.clients:
        return json_response({"error": "invalid_client"}, 400)
    rt = accounts.new_refresh_token(state, client_id, str(body.get("scope", ALL_SCOPES)), now)
    access = accounts.mint_access(state, rt, now)
    return json_response(
        {
            "access_token": access.token,
            "refresh_token": rt.token,
            "api_domain": base_url(request, state),
            "token_type": "Bearer",
            "expires_in": int(state.options.access_token_ttl),
        }
    )


async def seed(request: Request) -> Response:
    """{"module": "Leads", "count": N} for CRM, {"books_kind": "invoices", "count": N} for Books, or
    {"store_kind": "subscriptions", "count": N} for the Partner Store."""
    state, now = state_of(request), now_of(request)
    body = await _json(request)
    count = body.get("count", 1)
    if not isinstance(count, int) or count < 0 or count > 1_000_000:
        return _bad("count must be an integer between 0 and 1,000,000")
    if "store_kind" in body:
        try:
            total = partner_store.seed(state, str(body["store_kind"]), count, now)
        except ValueError as exc:
            return _bad(str(exc))
        return json_response({"store_kind": body["store_kind"], "created": count, "total": total})
    if "books_kind" in body:
        org = str(body.get("organization_id", BOOKS_ORG_ID))
        if org not in state.books:
            return _bad("unknown organization_id", 404)
        kind = str(body["books_kind"])
        singular, _, id_field = names(kind)
        store = state.books[org].setdefault(kind.rsplit("/", 1)[-1], {})
        for n in range(count):
            eid = state.new_books_id()
            stamp = books_time(now)  # every Books entity carries both, as the records Books lists do
            store[eid] = {
                id_field: eid,
                "name": f"{singular} {len(store) + 1}",
                "status": "active",
                "index": n,
                "created_time": stamp,
                "last_modified_time": stamp,
            }
        return json_response({"books_kind": kind, "created": count, "total": len(store)})
    module = state.module(str(body.get("module", "")))
    if module is None:
        return _bad("unknown module", 404)
    seed_records(state, module.api_name, count, now)
    return json_response({"module": module.api_name, "created": count, "total": len(state.records[module.api_name])})


async def modules(request: Request) -> Response:
    """Define a custom module: {"api_name": "Projects", "fields": [{"api_name", "data_type", "mandatory", ...}]}."""
    state = state_of(request)
    body = await _json(request)
    name = body.get("api_name")
    if not isinstance(name, str) or not name.isidentifier():
        return _bad("api_name must be an identifier")
    if state.module(name) is not None:
        return _bad("module exists", 409)
    try:
        defs = None
        if "fields" in body:
            defs = [FieldDef(**{**f, "pick_list": tuple(f.get("pick_list", ()))}) for f in body["fields"]]
    except TypeError as exc:
        return _bad(str(exc))
    module = state.add_module(name, defs)
    return json_response({"api_name": module.api_name, "id": module.id, "fields": [f.api_name for f in module.fields]})


# Options a running sandbox lets a test switch (the rest are fixed when it starts).
SWITCHABLE = {"modified_since": ("exclusive", "inclusive")}


async def options(request: Request) -> Response:
    """GET shows the switchable options; POST {"modified_since": "inclusive"} sets them."""
    state = state_of(request)
    if request.method == "POST":
        body = await _json(request)
        for name, value in body.items():
            allowed = SWITCHABLE.get(name)
            if allowed is None:
                return _bad(f"unknown option {name!r}; switchable: {sorted(SWITCHABLE)}")
            if value not in allowed:
                return _bad(f"{name} must be one of {list(allowed)}")
        for name, value in body.items():
            setattr(state.options, name, value)
    return json_response({name: getattr(state.options, name) for name in SWITCHABLE})


async def reset(request: Request) -> Response:
    """Back to the seeded world, keeping options and registered clients; clears stats and faults too."""
    state = state_of(request)
    clients = state.clients
    fresh = SandboxState(options=state.options)
    vars(state).update(vars(fresh))
    state.clients = clients
    request.app.state.stats.clear()
    request.app.state.faults = FaultConfig()
    request.app.state.outbox.clear()
    return json_response({"status": "success"})


async def save(request: Request) -> Response:
    path = request.app.state.data_path
    if path is None:
        return _bad("the sandbox was started without --data", 409)
    state_of(request).save(path)
    return json_response({"status": "success", "saved": str(path)})


# CRM notifications --------------------------------------------------------------------------------------------------


async def notification_channels(request: Request) -> Response:
    """Every subscription, expired ones too, as GET /actions/watch lists them plus `expired` and `deliverable`, and
    the sandbox's `server_time` (ms)."""
    state, now = state_of(request), now_of(request)
    channels = [
        {
            **listing(sub, crm_time(sub.expires_at)),
            "expired": sub.expires_at <= now,
            "deliverable": deliverable(sub.notify_url),
        }
        for subs in state.watch.values()
        for sub in subs.values()
    ]
    # server_time: the sandbox's clock (ms), which an injected clock may set apart from the caller's
    return json_response({"channels": channels, "server_time": int(now * 1000)})


async def notification_deliveries(request: Request) -> Response:
    """The delivery log from index `since` (default 0), for one `channel_id` or all. `wait=S` first waits up to S
    seconds until every notification so far has been sent: no test needs to sleep."""
    outbox: Outbox = request.app.state.outbox
    q = request.query_params
    try:
        since = int(q.get("since", "0"))
        wait = float(q.get("wait", "0"))
    except ValueError:
        return _bad("since must be an integer and wait a number of seconds")
    if since < 0 or not 0 <= wait <= MAX_WAIT:
        return _bad(f"since must be 0 or more and wait between 0 and {MAX_WAIT:g} seconds")
    idle = await outbox.wait_idle(wait) if wait > 0 else outbox.idle
    wanted = q.get("channel_id")
    log = [d for d in outbox.log[since:] if wanted in (None, d["channel_id"])]
    return json_response({"deliveries": log, "next": len(outbox.log), "pending": outbox.pending, "idle": idle})


async def notification_expire(request: Request) -> Response:
    """{"channel_id", "module"?, "in_seconds"?}: the channel (or its one module) expires now, or in N seconds."""
    state, now = state_of(request), now_of(request)
    body = await _json(request)
    subs = state.watch.get(str(body.get("channel_id")), {})
    module = body.get("module")
    chosen = [s for s in subs.values() if module in (None, s.module)]
    if not chosen:
        return _bad("no such channel (or module of it)", 404)
    seconds = body.get("in_seconds", 0)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return _bad("in_seconds must be a number of seconds, 0 or more")
    for sub in chosen:
        sub.expires_at = now + seconds
    return json_response({"channels": [listing(s, crm_time(s.expires_at)) for s in chosen]})


routes = [
    Route("/__sandbox/stats", stats, methods=["GET", "DELETE"]),
    Route("/__sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/__sandbox/grant-code", grant_code, methods=["POST"]),
    Route("/__sandbox/tokens", tokens, methods=["POST"]),
    Route("/__sandbox/seed", seed, methods=["POST"]),
    Route("/__sandbox/modules", modules, methods=["POST"]),
    Route("/__sandbox/options", options, methods=["GET", "POST"]),
    Route("/__sandbox/reset", reset, methods=["POST"]),
    Route("/__sandbox/save", save, methods=["POST"]),
    Route("/__sandbox/notifications/channels", notification_channels, methods=["GET"]),
    Route("/__sandbox/notifications/deliveries", notification_deliveries, methods=["GET"]),
    Route("/__sandbox/notifications/expire", notification_expire, methods=["POST"]),
]
