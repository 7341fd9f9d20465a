"""CRM v8 notification channels: GET/POST/PUT/PATCH/DELETE /crm/v8/actions/watch.

Shapes and codes follow crm-oas notifications.json, its 2025 successor notifications.yaml and Zoho's notification
pages (see watch.py): every write answers {"watch": [one result per item]}, 201 (POST) or 200 when every item
succeeded, 207 when some did, 400 when none did; a body that is not a `watch` array of at most 50 items is one
top-level error. PATCH disables the listed events when `_delete_events` is true and otherwise updates only what it
gives. An expired subscription is gone for every call, as on Zoho, until a new POST replaces it.

Where Zoho documents nothing (UNCERTAIN, decided strictly): POST for a channel that already watches one of the
modules is DUPLICATE_DATA (renew with PUT or PATCH); PUT, PATCH and DELETE of a channel that is not subscribed are
NOT_SUBSCRIBED (a code of Zoho's notifications error list).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import BadBody, base_url, json_response, no_content, now_of, read_json, state_of
from connector.sandbox.clock import crm_time
from connector.sandbox.crm import MAX_PER_PAGE, _fail, _handler, int_param
from connector.sandbox.records import batch_status
from connector.sandbox.state import JSON, SandboxState, Subscription
from connector.sandbox.watch import (
    MAX_ITEMS,
    Invalid,
    active,
    channel_id,
    expiry_or_default,
    invalid,
    listing,
    not_subscribed,
    parse_item,
)

SUBSCRIBED = "Successfully subscribed for actions-watch of the given module"
UPDATED = "Successfully updated the subscribe details"
REMOVED = "Successfully removed the subscribe details"
UNSUBSCRIBED = "Successfully un-subscribed from actions-watch"
FULL = ("channel_id", "notify_url", "events")  # what POST and PUT require (and PATCH unless it disables events)
WATCH: dict[str, Any] = {"api_name": "watch", "json_path": "$.watch"}
CHANNEL_WIDE = ("notify_url", "token", "expires_at", "notify_on_related_action", "return_affected_field_values")


async def _items(request: Request) -> list[Any]:
    try:
        body = await read_json(request)
    except BadBody:
        raise _fail("INVALID_DATA", "body", reason="the request body is not valid JSON") from None
    if not isinstance(body, dict) or "watch" not in body:
        raise _fail("MANDATORY_NOT_FOUND", "required field not found", **WATCH)
    items = body["watch"]
    if not isinstance(items, list) or not items:
        raise _fail("INVALID_DATA", "invalid data", **WATCH, expected_data_type="jsonarray")
    if len(items) > MAX_ITEMS:
        raise _fail("INVALID_DATA", "invalid data", **WATCH, maximum_length=MAX_ITEMS)
    return items


def _event(sub: Subscription, *, expiry: bool = True) -> JSON:
    """One entry of a write's details.events; disabling events answers them without channel_expiry."""
    entry: JSON = {"channel_expiry": crm_time(sub.expires_at)} if expiry else {}
    entry.update(
        resource_uri=sub.resource_uri, resource_id=sub.resource_id, resource_name=sub.module, channel_id=sub.channel_id
    )
    return entry


def _success(subs: list[Subscription], message: str, *, expiry: bool = True) -> JSON:
    events = [_event(s, expiry=expiry) for s in subs]
    return {"code": "SUCCESS", "details": {"events": events}, "message": message, "status": "success"}


def _subscriptions(request: Request, state: SandboxState, given: JSON, now: float) -> list[Subscription]:
    """A subscription per module the item's events name, with everything the item gives (or Zoho's defaults)."""
    root = base_url(request, state)
    conditions = given.get("conditions", {})
    out = []
    for name, operations in given["events"].items():
        module = state.modules[name]
        out.append(
            Subscription(
                channel_id=given["channel_id"],
                module=name,
                resource_id=module.id,
                resource_uri=f"{root}/crm/v8/{name}",
                operations=operations,
                notify_url=given["notify_url"],
                token=given.get("token"),
                expires_at=expiry_or_default(given, now),
                notify_on_related_action=given.get("notify_on_related_action", True),
                return_affected_field_values=given.get("return_affected_field_values", False),
                notification_condition=conditions.get(name),
            )
        )
    return out


Act = Callable[[Request, SandboxState, Any, str, float], JSON]


async def _each(request: Request, status: int, act: Act) -> Response:
    """Run `act` on every watch item; one result row each, in order."""
    state, now = state_of(request), now_of(request)
    results = []
    for i, raw in enumerate(await _items(request)):
        try:
            results.append(act(request, state, raw, f"$.watch[{i}]", now))
        except Invalid as exc:
            results.append(exc.row())
    return json_response({"watch": results}, batch_status(results, status))


def _enable(request: Request, state: SandboxState, raw: Any, path: str, now: float) -> JSON:
    given = parse_item(state, raw, path, now, FULL)
    live = active(state, given["channel_id"], now)
    if any(module in live for module in given["events"]):
        raise Invalid("DUPLICATE_DATA", "duplicate data", {"api_name": "channel_id", "json_path": f"{path}.channel_id"})
    subs = _subscriptions(request, state, given, now)
    channel = state.watch.setdefault(given["channel_id"], {})
    for sub in subs:
        channel[sub.module] = sub  # replaces an expired subscription of the module, if any
    return _success(subs, SUBSCRIBED)


def _replace(request: Request, state: SandboxState, raw: Any, path: str, now: float) -> JSON:
    """PUT: the channel becomes exactly what the item says; modules it no longer names are dropped."""
    given = parse_item(state, raw, path, now, FULL)
    if not active(state, given["channel_id"], now):
        raise not_subscribed(path)
    subs = _subscriptions(request, state, given, now)
    state.watch[given["channel_id"]] = {s.module: s for s in subs}
    return _success(subs, SUBSCRIBED)


def _patch(request: Request, state: SandboxState, raw: Any, path: str, now: float) -> JSON:
    flag = raw.get("_delete_events") if isinstance(raw, dict) else None
    if flag is not None and not isinstance(flag, bool):  # checked first: it decides what else is required
        raise invalid(f"{path}._delete_events", "_delete_events", expected_data_type="boolean")
    deleting = flag is True
    given = parse_item(state, raw, path, now, FULL[::2] if deleting else FULL)
    cid = given["channel_id"]
    live = active(state, cid, now)
    if not live:
        raise not_subscribed(path)
    if deleting:
        return _disable_events(state, given, live, path)
    # The modules the item names take its events; the channel keeps the rest, and whatever the item gives about
    # the channel (URL, token, expiry, flags) applies to every module it watches.
    merged = {**_settings(next(iter(live.values()))), **given}
    for sub in _subscriptions(request, state, merged, now):
        old = live.get(sub.module)
        if old is not None and "expires_at" not in given:
            sub.expires_at = old.expires_at
        if old is not None and "conditions" not in given:
            sub.notification_condition = old.notification_condition
        live[sub.module] = sub
    for sub in live.values():
        for key in CHANNEL_WIDE:
            if key in given:
                setattr(sub, key, given[key])
    state.watch[cid] = live
    return _success(list(live.values()), UPDATED)


def _settings(sub: Subscription) -> JSON:
    """A live subscription's channel-wide settings, named as parse_item names them."""
    return {key: getattr(sub, key) for key in CHANNEL_WIDE}


def _disable_events(state: SandboxState, given: JSON, live: dict[str, Subscription], path: str) -> JSON:
    """PATCH with _delete_events: true: the listed events stop; a module left with none is unsubscribed."""
    unknown = [m for m in given["events"] if m not in live]
    if unknown:
        raise invalid(f"{path}.events", "events")  # an event the channel never subscribed to
    touched = []
    for module, operations in given["events"].items():
        sub = live[module]
        sub.operations = [op for op in sub.operations if op not in operations]
        touched.append(sub)
        if not sub.operations:
            del state.watch[given["channel_id"]][module]
    return _success(touched, REMOVED, expiry=False)


@_handler
async def enable(request: Request) -> Response:
    return await _each(request, 201, _enable)


@_handler
async def update(request: Request) -> Response:
    return await _each(request, 200, _replace)


@_handler
async def patch(request: Request) -> Response:
    return await _each(request, 200, _patch)


@_handler
async def details(request: Request) -> Response:
    """GET: the live subscriptions, by channel_id and/or module, paged; 204 when there are none."""
    state, now = state_of(request), now_of(request)
    q = request.query_params
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    wanted: str | None = None
    if q.get("channel_id"):
        try:
            wanted = channel_id(q["channel_id"], "channel_id")
        except Invalid:
            raise _fail("INVALID_DATA", "invalid data", param_name="channel_id", expected_data_type="long") from None
    module = None
    if q.get("module"):
        found = state.module(q["module"])
        if found is None:
            raise _fail("INVALID_MODULE", "the module name given seems to be invalid", param_name="module")
        module = found.api_name
    subs = [
        s
        for cid, channel in state.watch.items()
        if wanted in (None, cid)
        for s in channel.values()
        if s.expires_at > now and module in (None, s.module)
    ]
    chunk = subs[(page - 1) * per_page : page * per_page]
    if not chunk:
        return no_content()
    info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": len(subs) > page * per_page}
    return json_response({"watch": [listing(s, crm_time(s.expires_at)) for s in chunk], "info": info})


@_handler
async def disable(request: Request) -> Response:
    """DELETE ?channel_ids=a,b: every module each channel watches is unsubscribed, one result per subscription."""
    state, now = state_of(request), now_of(request)
    ids = [i.strip() for i in request.query_params.get("channel_ids", "").split(",") if i.strip()]
    if not ids:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="channel_ids")
    results: list[JSON] = []
    for raw in ids:
        try:
            cid = channel_id(raw, "channel_ids")
        except Invalid:
            results.append(_id_error("INVALID_DATA", "invalid data", raw, expected_data_type="long"))
            continue
        live = active(state, cid, now)
        if not live:
            results.append(_id_error("NOT_SUBSCRIBED", "the channel is not subscribed", cid))
            continue
        for sub in live.values():
            entry = {"resource_uri": sub.resource_uri, "resource_id": sub.resource_id, "channel_id": cid}
            results.append({"code": "SUCCESS", "details": entry, "message": UNSUBSCRIBED, "status": "success"})
        del state.watch[cid]
    return json_response({"watch": results}, batch_status(results, 200))


def _id_error(code: str, message: str, given: str, **extra: Any) -> JSON:
    return {"code": code, "details": {"channel_id": given, **extra}, "message": message, "status": "error"}


routes = [
    Route("/crm/v8/actions/watch", details, methods=["GET"]),
    Route("/crm/v8/actions/watch", enable, methods=["POST"]),
    Route("/crm/v8/actions/watch", update, methods=["PUT"]),
    Route("/crm/v8/actions/watch", patch, methods=["PATCH"]),
    Route("/crm/v8/actions/watch", disable, methods=["DELETE"]),
]
