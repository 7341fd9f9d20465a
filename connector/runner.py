"""The runner: validate an action's inputs, resolve its connection, call Zoho under the policy, return JSON.

    connector = Connector.load()
    connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "5394166000000379001"}, connection=conn)
    # → {"data": {...Zoho's answer...}}

Nothing here knows any one action: everything comes from the action's definition (request template, safety,
pagination, result) and from the roles its inputs declare (`x-role: debug`, `fetch_all`, `timeout_ms`, …).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from connector import _flow, _pagination, _response
from connector._inputs import checked_inputs
from connector._ratelimit import Budget
from connector._request import Prepared, prepare
from connector._retry import Schedule
from connector.auth.session import TokenSource
from connector.connection import Connection, resolve_connection
from connector.errors import ConnectionConfigError, InputValidationError, Violation
from connector.hooks import HOOKS
from connector.manifest import Action, Manifest, Product, bundled_manifest, load_manifest

if TYPE_CHECKING:
    import asyncio

__all__ = ["Connector"]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

ConnectionLike = Mapping[str, Any] | Connection


@dataclass
class _ConnectionState:
    """What a process keeps per connection: pooled clients, the token, pacing, concurrency and the org id."""

    connection: Connection
    tokens: TokenSource
    budget: Budget
    semaphore: threading.BoundedSemaphore
    client: httpx.Client | None = None
    aclient: httpx.AsyncClient | None = None
    organization_id: str | None = None
    async_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def api_domain(self) -> str:
        c = self.connection
        from_token = self.tokens.api_domain
        if c.api_domain_overridden or not from_token:
            return c.api_domain
        if c.environment != "production" and from_token.startswith("https://www."):
            prefix = c.api_domain.split("//", 1)[1].split(".", 1)[0]  # sandbox / developer
            return from_token.replace("https://www.", f"https://{prefix}.", 1)
        return from_token

    def async_semaphore(self) -> asyncio.Semaphore:
        import asyncio  # only async callers pay for it

        loop = asyncio.get_running_loop()
        semaphore = self.async_semaphores.get(loop)
        if semaphore is None:
            semaphore = self.async_semaphores[loop] = asyncio.Semaphore(self.connection.policy.max_concurrency)
        return semaphore


@dataclass(frozen=True)
class _Call:
    action: Action
    inputs: dict[str, Any]
    state: _ConnectionState
    prepared: Prepared
    policy: _flow.CallPolicy
    fetch_all: bool
    response_type: str

    def flow(self, overrides: Mapping[str, Any] | None = None) -> _flow.Flow[_flow.Reply]:
        return _flow.exchange(self.policy, lambda token: self.prepared.build(token, self.state.api_domain(), overrides))

    def data(self, reply: _flow.Reply) -> Any:
        return _response.interpret(
            reply, when_empty=self.action.result.get("when_empty"), response_type=self.response_type
        )


class Connector:
    """The bundled Zoho actions, ready to run. Thread-safe; keep one per process and reuse it."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        jitter: Callable[[float], float] | None = None,
        engine_mode: bool = False,
    ) -> None:
        """`engine_mode` turns local retries off: a failure is raised at once with its classification
        (`retryable`, `retry_after`) so that the workflow engine does the retrying."""
        self.manifest = manifest
        self._transport = transport
        self._async_transport = async_transport
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep or _asyncio_sleep
        self._jitter = jitter
        self._engine_mode = engine_mode
        self._states: dict[tuple[Any, ...], _ConnectionState] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, root: str | Path | None = None, **options: Any) -> Connector:
        """The bundled connector, or the one whose manifest.yaml is under `root`."""
        manifest = bundled_manifest() if root is None else load_manifest(Path(root))
        return cls(manifest, **options)

    @property
    def actions(self) -> Mapping[str, Action]:
        return self.manifest.actions

    # --- public API --------------------------------------------------------------------------------------------

    def run(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> dict[str, Any]:
        """Run one action and return `{"data": …}`. With Fetch All, every page's records in one answer."""
        call = self._call(action, inputs, connection)
        if call.fetch_all:
            return {"data": _as_one_page(call, list(self._pages(call)))}
        return {"data": call.data(self._drive(call, call.flow()))}

    async def arun(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> dict[str, Any]:
        """The async twin of `run`."""
        call = self._call(action, inputs, connection)
        if call.fetch_all:
            return {"data": _as_one_page(call, [page async for page in self._apages(call)])}
        return {"data": call.data(await self._adrive(call, call.flow()))}

    def iter_records(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> Iterator[Any]:
        """Every record of a paginated action, page after page, holding one page in memory at a time."""
        call = self._call(action, inputs, connection, paginate=True)
        for page in self._pages(call):
            yield from _records(call, page)

    def iter_pages(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> Iterator[Any]:
        """Every page of a paginated action, as Zoho answered it."""
        return self._pages(self._call(action, inputs, connection, paginate=True))

    async def aiter_records(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> AsyncIterator[Any]:
        call = self._call(action, inputs, connection, paginate=True)
        async for page in self._apages(call):
            for record in _records(call, page):
                yield record

    def close(self) -> None:
        for state in self._states.values():
            if state.client is not None:
                state.client.close()
        self._states.clear()

    async def aclose(self) -> None:
        for state in self._states.values():
            if state.aclient is not None:
                await state.aclient.aclose()
        self.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- planning ----------------------------------------------------------------------------------------------

    def _call(
        self, key: str, inputs: Mapping[str, Any] | None, connection: ConnectionLike, *, paginate: bool = False
    ) -> _Call:
        try:
            action = self.manifest.action(key)
        except KeyError as exc:
            raise InputValidationError(key, [Violation("(action)", "", str(exc.args[0]))]) from None
        values = checked_inputs(action.key, action.input_schema, inputs)
        if action.hook:
            values = HOOKS[action.hook](values)
        if paginate and not action.pagination:
            raise InputValidationError(action.key, [Violation("(action)", "", "this action does not paginate")])
        definition = self.manifest.connections[action.connection]
        state = self._state(resolve_connection(definition, connection), definition.oauth)
        product = self.manifest.products[action.product]

        def role(name: str) -> Any:
            input_name = action.inputs_with_role(name)
            return values.get(input_name) if input_name else None

        timeout_ms = role("timeout_ms")
        timeout = httpx.Timeout(timeout_ms / 1000) if timeout_ms else DEFAULT_TIMEOUT
        prepared = prepare(
            action,
            product,
            values,
            organization_id=(
                self._organization_id(state, product, definition.oauth["authorization_header"])
                if product.organization
                else None
            ),
            auth_header=definition.oauth["authorization_header"],
            timeout=timeout,
        )
        return _Call(
            action=action,
            inputs=values,
            state=state,
            prepared=prepared,
            policy=self._policy(action, state, prepared.method, role, product.envelope),
            fetch_all=bool(action.pagination) and (paginate or bool(role("fetch_all"))),
            response_type=role("response_type") or "json",
        )

    def _policy(
        self, action: Action, state: _ConnectionState, method: str, role: Callable[[str], Any], envelope: str
    ) -> _flow.CallPolicy:
        """Retry settings by precedence: the action's inputs, then the connection, then the defaults."""
        conn = state.connection.policy
        safety = action.safety
        if safety == "by_method":
            safety = "idempotent" if method in _IDEMPOTENT_METHODS else "write"
        max_retries = role("max_retries")
        delay_ms = role("retry_delay_ms")
        exponential = role("exponential_backoff")
        if exponential or (exponential is None and delay_ms is None):
            schedule = Schedule(base_seconds=conn.retry_backoff_seconds, exponential=True)
        else:
            schedule = Schedule(base_seconds=(delay_ms or 0) / 1000, exponential=False)
        return _flow.CallPolicy(
            safety=safety,
            envelope=envelope,
            max_retries=0 if self._engine_mode else (conn.max_retries if max_retries is None else max_retries),
            schedule=schedule,
            throttle_schedule=Schedule(base_seconds=conn.retry_backoff_seconds, exponential=True),
            retry_all=bool(role("retry_all_errors")),
            max_retry_after=conn.max_retry_after,
            debug=bool(role("debug")),
            budget=state.budget,
            clock=self._clock,
            jitter=self._jitter,
        )

    def _state(self, connection: Connection, oauth: Mapping[str, str]) -> _ConnectionState:
        key = connection.cache_key
        state = self._states.get(key)
        if state is None:
            with self._lock:
                state = self._states.get(key)
                if state is None:
                    state = _ConnectionState(
                        connection=connection,
                        tokens=TokenSource(
                            connection, token_path=oauth["token_path"], clock=self._clock, transport=self._transport
                        ),
                        budget=Budget(connection.policy.intercall_delay, connection.policy.min_calls_remaining),
                        semaphore=threading.BoundedSemaphore(connection.policy.max_concurrency),
                    )
                    self._states[key] = state
        return state

    def _organization_id(self, state: _ConnectionState, product: Product, auth_header: str) -> str:
        """The connection's organization, else the account's default one from the product's organizations list
        (looked up once per connection and process)."""
        chosen = state.connection.organization_id or state.organization_id
        if chosen:
            return chosen
        path = (product.organization or {}).get("discover")
        if not path:
            raise ConnectionConfigError(f"{product.label} needs the connection's organization_id")
        policy = _flow.CallPolicy(
            safety="read",
            envelope=product.envelope,
            max_retries=0 if self._engine_mode else state.connection.policy.max_retries,
            schedule=Schedule(state.connection.policy.retry_backoff_seconds),
            budget=state.budget,
            clock=self._clock,
            jitter=self._jitter,
        )

        def build(token: str) -> httpx.Request:
            return httpx.Request(
                "GET",
                f"{state.api_domain()}{product.base_path}{path}",
                headers={"Authorization": f"{auth_header} {token}"},
                extensions={"timeout": DEFAULT_TIMEOUT.as_dict()},
            )

        with state.semaphore:
            reply = _flow.drive(_flow.exchange(policy, build), self._client(state), state.tokens.get, self._sleep)
        body = _response.interpret(reply)
        organizations = body.get("organizations") if isinstance(body, dict) else None
        if not organizations:
            raise ConnectionConfigError(f"the account has no {product.label} organization; set organization_id")
        default = next((o for o in organizations if o.get("is_default_org")), organizations[0])
        state.organization_id = str(default["organization_id"])
        return state.organization_id

    # --- driving -----------------------------------------------------------------------------------------------

    def _client(self, state: _ConnectionState) -> httpx.Client:
        if state.client is None:
            with self._lock:
                if state.client is None:
                    state.client = httpx.Client(transport=self._transport, timeout=DEFAULT_TIMEOUT, limits=POOL_LIMITS)
        return state.client

    def _aclient(self, state: _ConnectionState) -> httpx.AsyncClient:
        if state.aclient is None:
            state.aclient = httpx.AsyncClient(
                transport=self._async_transport, timeout=DEFAULT_TIMEOUT, limits=POOL_LIMITS
            )
        return state.aclient

    def _drive(self, call: _Call, flow: _flow.Flow[_flow.Reply]) -> _flow.Reply:
        with call.state.semaphore:
            return _flow.drive(flow, self._client(call.state), call.state.tokens.get, self._sleep)

    async def _adrive(self, call: _Call, flow: _flow.Flow[_flow.Reply]) -> _flow.Reply:
        async with call.state.async_semaphore():
            return await _flow.adrive(flow, self._aclient(call.state), call.state.tokens.aget, self._async_sleep)

    def _pages(self, call: _Call) -> Iterator[Any]:
        pager = _pager(call)
        overrides: dict[str, Any] | None = None
        while True:
            page = call.data(self._drive(call, call.flow(overrides)))
            yield page
            overrides = pager.next_page(page)
            if overrides is None:
                return

    async def _apages(self, call: _Call) -> AsyncIterator[Any]:
        pager = _pager(call)
        overrides: dict[str, Any] | None = None
        while True:
            page = call.data(await self._adrive(call, call.flow(overrides)))
            yield page
            overrides = pager.next_page(page)
            if overrides is None:
                return


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _style(call: _Call) -> str:
    return str(call.action.pagination["style"]) if call.action.pagination else ""


def _key(call: _Call) -> str | None:
    return call.action.pagination.get("records") if call.action.pagination else None


def _pager(call: _Call) -> _pagination.Pager:
    return _pagination.Pager(
        style=_style(call),
        records_key=_key(call),
        page=int(call.inputs.get("page") or 1),
        per_page=int(call.inputs.get("per_page") or 200),
    )


def _as_one_page(call: _Call, pages: list[Any]) -> Any:
    """Fetch All's answer: the first page's shape holding every page's records, marked as the last page."""
    records = [record for page in pages for record in _records(call, page)]
    return _pagination.combine(_style(call), pages[0] if pages else None, _key(call), records)


def _records(call: _Call, page: Any) -> list[Any]:
    return _pagination.Pager(style=_style(call), records_key=_key(call)).records(page)
