"""create_app: one Starlette app serving Zoho Accounts, CRM v8, the Finance apps, the Partner Store and the
/__sandbox admin endpoints."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.sandbox import (
    accounts,
    admin,
    crm,
    crm_bulk,
    crm_convert,
    crm_links,
    crm_meta,
    crm_related,
    crm_settings,
    crm_views,
    crm_watch,
    finance,
    scopes,
    store,
    system_modules,
)
from connector.sandbox._http import crm_error
from connector.sandbox.faults import FaultConfig, Product, fault_response
from connector.sandbox.outbox import NotifyMiddleware, Outbox
from connector.sandbox.state import SandboxState
from connector.sandbox.stats import Stats

Sleep = Callable[[float], Awaitable[None]]

COQL_CONCURRENCY = 10  # Zoho's sub-concurrency for heavy APIs such as COQL (zoho-api.md §3 Limits)


def _product(path: str) -> Product | None:
    if path.startswith("/crm/"):
        return "crm"
    if finance.product_of(path) is not None:
        return "books"  # every Finance app: Books' errors, faults and token checks
    if path.startswith("/oauth/"):
        return "accounts"
    if path.startswith(store.PREFIX + "/"):
        return "store"
    return None


def _unauthorized(product: Product) -> JSONResponse:
    if product == "store":  # the Store's error body is not documented (zoho-api.md §6): Zoho's usual code
        return JSONResponse({"code": "INVALID_OAUTHTOKEN", "message": "invalid oauth token"}, 401)
    if product == "books":
        # Code 57 is what Books answers for a bad token per third-party reports (zoho-api.md §4, UNCERTAIN).
        return JSONResponse({"code": 57, "message": "You are not authorized to perform this operation"}, 401)
    return crm_error("INVALID_TOKEN", "invalid oauth token", status=401)


def _scope_mismatch(product: Product) -> JSONResponse:
    if product == "store":
        return JSONResponse({"code": "OAUTH_SCOPE_MISMATCH", "message": "invalid oauth scope to access this URL"}, 401)
    if product == "books":
        return JSONResponse({"code": 57, "message": "You are not authorized to perform this operation"}, 401)
    return crm_error("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", status=401)


def _too_many(limit: int, *, heavy: bool) -> JSONResponse:
    """CRM's 429 for calls over the concurrency cap (zoho-api.md §3 Limits); no Retry-After, as Zoho sends none."""
    details = {"limit": limit, "by": "sub_concurrency" if heavy else "concurrency"}
    message = "You have made too many requests. Please try again after some time."
    return crm_error("TOO_MANY_REQUESTS", message, details, status=429)


def _needs(product: Product, method: str, path: str) -> list[list[str]] | None:
    if product == "books":
        app = finance.product_of(path)
        base = next(b for b in app.bases if path.startswith(b + "/")) if app else "/books/v3"
        return scopes.finance_needs(app.service if app else "ZohoBooks", method, path.removeprefix(base + "/"))
    if product == "store":
        return store.needs(method, path.removeprefix(store.PREFIX))
    if path.startswith("/crm/bulk/v8/"):
        return scopes.crm_bulk_needs(method, path.removeprefix("/crm/bulk/v8/"))
    return scopes.crm_needs(method, path.removeprefix("/crm/v8/"))


class SandboxMiddleware:
    """Counts every call, holds a concurrency slot, applies faults and delays, then checks token and scopes.

    The concurrency slot is taken before any injected delay so slow calls stay "in flight" as on Zoho.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.in_flight = 0
        self.coql_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        product = _product(scope["path"]) if scope["type"] == "http" else None
        if product is None:
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        app_state.stats.requests[f"{scope['method']} {scope['path']}"] += 1
        if product != "crm":
            await self._serve(product, scope, receive, send)
            return
        state: SandboxState = app_state.sandbox
        heavy = scope["path"].rstrip("/") == "/crm/v8/coql"
        limit = state.options.concurrency_limit()
        if self.in_flight >= limit or (heavy and self.coql_in_flight >= COQL_CONCURRENCY):
            app_state.stats.throttled["concurrency"] += 1
            await _too_many(COQL_CONCURRENCY if heavy else limit, heavy=heavy)(scope, receive, send)
            return
        self.in_flight += 1
        self.coql_in_flight += heavy
        app_state.stats.peak_in_flight = max(app_state.stats.peak_in_flight, self.in_flight)
        try:
            await self._serve(product, scope, receive, send)
        finally:
            self.in_flight -= 1
            self.coql_in_flight -= heavy

    async def _serve(self, product: Product, scope: Scope, receive: Receive, send: Send) -> None:
        app_state = scope["app"].state
        faults: FaultConfig = app_state.faults
        now = float(app_state.clock())
        if faults.slow_ms > 0 and product in faults.targets:
            send = _answered_after(send, faults.slow_ms / 1000, now, app_state.clock, app_state.sleep)
        if faults.slow_reply_ms > 0 and product in faults.targets:
            send = _held_back(send, faults.slow_reply_ms / 1000, app_state.sleep)
        kind = faults.pick(product, now)
        if kind is not None:
            app_state.stats.faults[kind] += 1
        if kind is not None and kind != "lost":
            await fault_response(kind, product, faults)(scope, receive, send)
            return
        if kind == "lost":
            send = _losing_the_body(send)
        if product != "accounts":
            state: SandboxState = app_state.sandbox
            token = accounts.authenticate(state, Headers(scope=scope).get("authorization"), now)
            if token is None:
                await _unauthorized(product)(scope, receive, send)
                return
            granted = scopes.parse(token.scope)
            needs = _needs(product, scope["method"], scope["path"])
            if needs is not None and not scopes.allowed(granted, needs):
                await _scope_mismatch(product)(scope, receive, send)
                return
            scope["sandbox.user_id"] = token.user_id
            scope["sandbox.scopes"] = granted
        await self.app(scope, receive, send)


def _answered_after(send: Send, seconds: float, arrived: float, clock: Callable[[], float], sleep: Sleep) -> Send:
    """`send` whose answer leaves `seconds` after the request arrived, the call's own work done meanwhile: a server
    whose every call takes that long, however many run at once (the sandbox's work for one call is not queued
    behind another's wait, as it is not on Zoho's many servers)."""

    async def timed(message: Message) -> None:
        if message["type"] == "http.response.start":
            await sleep(min(seconds, max(0.0, seconds - (float(clock()) - arrived))))
        await send(message)

    return timed


def _held_back(send: Send, seconds: float, sleep: Sleep) -> Send:
    """`send` that waits before the answer starts: the call's work is done, its answer comes late."""

    async def held(message: Message) -> None:
        if message["type"] == "http.response.start":
            await sleep(seconds)
        await send(message)

    return held


def _losing_the_body(send: Send) -> Send:
    """The call is carried out and its status line sent, but the body never is: uvicorn then closes the
    connection, and the client sees an answer cut off after its request may well have acted."""

    async def lose(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)

    return lose


class DateHeader:
    """Every answer's Date header, from the sandbox's clock (uvicorn's own is turned off), as Zoho's servers send
    theirs: a client that reads the server's time (a poll holding back the second still running) sees the same
    clock that stamps the records."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clock = scope["app"].state.clock

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                from email.utils import formatdate

                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(float(clock()), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, dated)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing misses in each product's own words: CRM's INVALID_URL_PATTERN, Books' code 5."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    product = _product(request.url.path)
    if product == "crm":
        if status == 405:
            return crm_error("INVALID_REQUEST_METHOD", "The http request method type is not a valid one")
        return crm_error("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", status=404)
    if product == "books":
        if status == 405:
            return JSONResponse(
                {"code": 37, "message": "The HTTP method is not allowed for the requested resource"}, 405
            )
        return JSONResponse({"code": 5, "message": "Invalid URL Passed"}, 404)
    if product == "store":
        return store.error_for(status)
    return JSONResponse({"error": "not_found" if status == 404 else "method_not_allowed"}, status)


def create_app(
    state: SandboxState | None = None,
    *,
    faults: FaultConfig | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Sleep | None = None,
    data_path: str | os.PathLike[str] | None = None,
) -> Starlette:
    """The emulator. `clock` and `sleep` are injectable so tests never wait; `data_path` is saved on shutdown."""
    sandbox = state if state is not None else SandboxState()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await app.state.outbox.aclose()
        if data_path is not None:
            sandbox.save(data_path)

    app = Starlette(
        routes=[
            *accounts.routes,
            *admin.routes,
            *system_modules.routes,  # before crm_meta.routes: Notes' and Attachments' fields
            *crm_meta.routes,
            *crm_settings.routes,
            *crm_convert.routes,
            *crm_views.routes,
            *crm_bulk.routes,
            *crm_watch.routes,  # before crm.routes, whose /{module}/{record_id} would take /actions/watch
            *crm_related.routes,
            *crm.routes,
            *crm_links.routes,  # after crm.routes: /{module}/actions/count has as many segments
            *finance.routes,
            *store.routes,
        ],
        # NotifyMiddleware inside SandboxMiddleware: only calls that passed the token and fault checks change records.
        middleware=[Middleware(DateHeader), Middleware(SandboxMiddleware), Middleware(NotifyMiddleware)],
        exception_handlers={404: _http_error, 405: _http_error},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    app.state.faults = faults if faults is not None else FaultConfig()
    app.state.clock = clock
    app.state.sleep = sleep if sleep is not None else anyio.sleep
    app.state.stats = Stats()
    app.state.data_path = data_path
    app.state.finance_usage = {}  # (organization id, day) -> calls, for the X-Rate-Limit-* headers
    app.state.finance_outbox = []  # documents emailed through …/email, newest last
    app.state.outbox = Outbox(lambda: sandbox.options.notify_timeout)  # CRM notifications (crm_watch, outbox)
    return app
