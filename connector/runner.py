"""The runner: validate an action's inputs, resolve its connection, call Zoho under the policy, return JSON.

    connector = Connector.load()
    connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "5394166000000379001"}, connection=conn)
    # → {"data": {...Zoho's answer...}}

Nothing here knows any one action or product: the action's definition and its inputs' roles say what to send
(`_plan`), the product's strategies say how to read the answer (`connector.strategies`), per-connection state is
kept in `_state`, pages are walked in `_walk`, and one call's retries live in `_flow`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from connector import _batch, _flow, _jobs, _options, _walk
from connector._inputs import checked_inputs
from connector._limits import AccountLimits
from connector._plan import Call, Options, plan
from connector._ratelimit import Budget
from connector._request import OrganizationPlacement
from connector._state import Clients, ConnectionState, States, Stores
from connector.auth.session import TokenSource
from connector.connection import Connection, resolve_connection
from connector.errors import ConnectorError, InputValidationError, Violation
from connector.files import close_uploads
from connector.hooks import HOOKS
from connector.manifest import Action, ConnectionDef, Manifest, Trigger, bundled_manifest, load_manifest
from connector.named_connections import NamedConnections
from connector.strategies import Pager

if TYPE_CHECKING:
    from connector.auth.stores.base import LeaseStore

__all__ = ["Connector", "Stream"]

JOB_SLICE = 1_000  # rows of a job action handed from the worker thread to an async caller at a time

# A connection: its settings, an already resolved one, or its name in the connections file (named_connections).
ConnectionLike = Mapping[str, Any] | Connection | str


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
        allow_python_stores: bool | None = None,
        metadata_ttl: float = _options.DEFAULT_TTL,
        metadata_dir: str | os.PathLike[str] | None = None,
        connections: str | os.PathLike[str] | Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """`engine_mode` turns local retries off: a failure is raised at once with its classification
        (`retryable`, `retry_after`, `may_have_acted`) so that the workflow engine does the retrying.
        `allow_python_stores` lets connections name a `python:module:Class` token store (off unless the operator
        turns it on, here or with ZOHO_CONNECTOR_ALLOW_PYTHON_STORES=1: a connection alone never can).
        `connections` is where connections given by name are found (a JSON/YAML file or a mapping; default: the
        file $ZOHO_CONNECTIONS names). `metadata_dir` also keeps the metadata `options` and `describe` read in
        that directory, for other processes (the command line's) within `metadata_ttl`."""
        self.manifest = manifest
        self._transport = transport
        self._async_transport = async_transport
        self._allow_python_stores = allow_python_stores
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep or _asyncio_sleep
        self._options = Options(engine_mode=engine_mode, clock=clock, jitter=jitter)
        self._clients = Clients(transport, async_transport)
        self._states = States()
        self._stores = Stores(allow_python_stores)
        self._lock = threading.Lock()
        self._metadata = _options.MetadataCache(clock, metadata_ttl, directory=metadata_dir)
        self._named = NamedConnections(connections)

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
        """Run one action and return `{"data": …}`. With Fetch All, every page's records in one answer; for an
        action of many items (`batch`), one result per item, in order; for a job (`job`), every record it made."""
        if self._is_job(action):
            return self._run_job(action, inputs, connection)
        definition, values, planner = self._planner(action, inputs, connection)
        if definition.batch:
            return {"data": _batch.run(_batch.Chunks(definition.batch, values, planner), self._send)}
        call = planner(values)
        if not call.fetch_all:
            try:
                organization = self._organization(call)
                return {"data": call.data(self._drive(call, call.flow(organization, call.first_page())))}
            finally:
                close_uploads(call.inputs)
        pager = call.pager()
        pages = _collected(lambda: list(self._pages(call, pager)), pager)
        return {"data": pager.combine(pages[0], [r for page in pages for r in pager.records(page)])}

    async def arun(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> dict[str, Any]:
        """The async twin of `run`: nothing in it blocks the event loop's thread on the network."""
        if self._is_job(action):  # polling and a file download: run in a worker thread
            import asyncio

            return await asyncio.to_thread(self._run_job, action, inputs, connection)
        definition, values, planner = self._planner(action, inputs, connection)
        if definition.batch:
            return {"data": await _batch.arun(_batch.Chunks(definition.batch, values, planner), self._asend)}
        call = planner(values)
        if not call.fetch_all:
            try:
                organization = await self._aorganization(call)
                return {"data": call.data(await self._adrive(call, call.flow(organization, call.first_page())))}
            finally:
                close_uploads(call.inputs)
        pager = call.pager()
        try:
            pages = [page async for page in self._apages(call, pager)]
        except ConnectorError as exc:
            _nothing_delivered(exc, pager)
            raise
        return {"data": pager.combine(pages[0], [r for page in pages for r in pager.records(page)])}

    def download(
        self,
        action: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike,
        to: str | os.PathLike[str] | IO[bytes],
    ) -> dict[str, Any]:
        """Run an action whose answer is a file and stream the file into `to` (a path, written atomically, or an
        open binary file) instead of memory. Returns `{"data": {"fileName", "contentType", "size"}}`, plus
        `path` for a path. A failed download leaves no partial file behind."""
        call = self._call(action, inputs, connection)
        if not isinstance(to, str | os.PathLike):
            return {"data": self._download(call, to)}
        target = Path(to)
        partial = target.with_name(f".{target.name}.part")
        try:
            with partial.open("wb") as sink:
                metadata = self._download(call, sink)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return {"data": {**metadata, "path": str(target)}}

    def _download(self, call: Call, sink: IO[bytes]) -> Any:
        policy = dataclasses.replace(call.policy, sink=sink, expects_json=False)
        organization = self._organization(call)
        reply = self._drive(call, _flow.exchange(policy, call.builder(organization, call.first_page())))
        return call.data(reply)

    def iter_records(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> Iterator[Any]:
        """Every record of a paginated action, page after page, holding one page in memory at a time."""
        if self._is_job(action):
            yield from self.stream(action, inputs, connection=connection).records()
            return
        call = self._call(action, inputs, connection, paginate=True)
        pager = call.pager()
        for page in self._pages(call, pager):
            yield from pager.records(page)

    def iter_pages(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> Iterator[Any]:
        """Every page of a paginated action, as Zoho answered it."""
        call = self._call(action, inputs, connection, paginate=True)
        return self._pages(call, call.pager())

    async def aiter_records(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> AsyncIterator[Any]:
        if self._is_job(action):  # polling and a file download: in a worker thread, a slice of rows at a time
            async for record in self._ajob_records(action, inputs, connection):
                yield record
            return
        call = self._call(action, inputs, connection, paginate=True)
        pager = call.pager()
        async for page in self._apages(call, pager):
            for record in pager.records(page):
                yield record

    async def aiter_pages(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> AsyncIterator[Any]:
        call = self._call(action, inputs, connection, paginate=True)
        async for page in self._apages(call, call.pager()):
            yield page

    def stream(
        self, action: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike
    ) -> Stream | _jobs.JobStream:
        """Fetch All as a stream: `records()` one at a time, then `summary()`, the answer's shape without them."""
        if self._is_job(action):
            jobs: list[str] = []

            def make_call(values: Mapping[str, Any]) -> Call:
                return self._call(action, values, connection)

            first = make_call(inputs or {})  # inputs are checked before anything is sent
            rows = _jobs.records(make_call, first.inputs, self._drive, self._sleep, self._clock, jobs)
            assert first.action.job is not None
            return _jobs.JobStream(rows, jobs, first.action.job)
        call = self._call(action, inputs, connection, paginate=True)
        pager = call.pager()
        return Stream(pager, self._pages(call, pager))

    def poll(
        self,
        trigger: str,
        inputs: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike,
    ) -> dict[str, Any]:
        """What a poll trigger finds changed since `state` (None on the first poll): `{"records": [...], "state":
        {...}}`, each changed record once, in its latest state, oldest change first. Keep the new state for the next
        poll; when this raises, keep the old one (nothing is lost)."""
        from connector import _poll  # only pollers pay for it: a `run` process starts without it

        return _poll.poll(self, trigger, inputs, state, connection)

    async def apoll(
        self,
        trigger: str,
        inputs: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike,
    ) -> dict[str, Any]:
        """The async twin of `poll`."""
        from connector import _poll

        return await _poll.apoll(self, trigger, inputs, state, connection)

    def options(
        self,
        action: str,
        input_name: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike,
        refresh: bool = False,
    ) -> list[dict[str, Any]]:
        """The choices of an input, `[{"value", "label"}]`: its fixed `x-suggestions` (those for the input they
        depend on, `x-suggestions-by`, once it is given), or from the account's metadata (its `x-options`); an
        input path `name/key` gives the choices for the value under one key (a picklist). Cached per account for
        `metadata_ttl` seconds; `refresh=True` fetches again."""
        return _options.options(self, self._metadata, action, input_name, inputs, connection, refresh=refresh)

    def describe(
        self,
        action: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike,
        refresh: bool = False,
    ) -> dict[str, Any]:
        """The action's input schema expanded from the account's metadata: inputs such as record fields become
        the module's real fields (types, lengths, required, picklists), others carry their `x-choices`."""
        return _options.describe(self, self._metadata, action, inputs, connection, refresh=refresh)

    # --- webhook triggers (connector/_webhook.py) -----------------------------------------------------------------

    def subscribe(
        self, trigger: str, inputs: Mapping[str, Any] | None = None, *, connection: ConnectionLike, notify_url: str
    ) -> dict[str, Any]:
        """Ask Zoho to call `notify_url` on the trigger's events. Returns the subscription, a JSON object to store:
        `handle_webhook`, `renew` and `unsubscribe` take it. Renew it after its `renew_after` (ISO 8601)."""
        definition, values = self._trigger(trigger, inputs, "webhook")
        from connector import _webhook

        return _webhook.subscribe(definition, values, notify_url, self._runner(connection), self._clock)

    def handle_webhook(
        self,
        subscription: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        body: bytes | str,
        *,
        connection: ConnectionLike,
    ) -> list[dict[str, Any]]:
        """The events of one callback (`body`: the raw request bytes), one per record: `{"operation": "create" |
        "edit" | "delete", "module", "id", "affected_fields"}`, plus `record` with the trigger's fetchRecords.
        A forged, stale or unreadable callback raises WebhookRejected: answer it with a 4xx. (Zoho signs nothing
        but the token in the body: `headers` are accepted for channels that do.)"""
        definition = self._subscribed(subscription)
        from connector import _webhook

        return _webhook.handle(definition, subscription, body, self._runner(connection), self._clock)

    def renew(self, subscription: Mapping[str, Any], *, connection: ConnectionLike) -> dict[str, Any]:
        """Extend the channel's life; returns the subscription to store in place of the old one (same channel,
        same token: callbacks in flight still verify)."""
        from connector import _webhook

        return _webhook.renew(self._subscribed(subscription), subscription, self._runner(connection), self._clock)

    def unsubscribe(self, subscription: Mapping[str, Any], *, connection: ConnectionLike) -> None:
        """Close the channel; Zoho calls no more. Closing a closed channel is not an error."""
        from connector import _webhook

        _webhook.unsubscribe(self._subscribed(subscription), subscription, self._runner(connection))

    def _trigger(self, key: str, inputs: Mapping[str, Any] | None, kind: str) -> tuple[Trigger, dict[str, Any]]:
        try:
            trigger = self.manifest.trigger(key)
        except KeyError as exc:
            raise InputValidationError(key, [Violation("(trigger)", "", str(exc.args[0]))]) from None
        if trigger.kind != kind:
            raise InputValidationError(key, [Violation("(trigger)", "", f"is a {trigger.kind} trigger, not {kind}")])
        return trigger, checked_inputs(trigger.key, trigger.input_schema, inputs)

    def _subscribed(self, subscription: Mapping[str, Any]) -> Trigger:
        key = subscription.get("trigger") if isinstance(subscription, Mapping) else None
        if not isinstance(key, str):
            raise InputValidationError("(subscription)", [Violation("(subscription)", "/trigger", "is required")])
        return self._trigger(key, subscription.get("inputs"), "webhook")[0]

    def _runner(self, connection: ConnectionLike) -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
        return lambda action, inputs: self.run(action, inputs, connection=connection)

    def shared_store(self, key: str, *, connection: ConnectionLike) -> LeaseStore | None:
        """The slots and values of the token store that action or trigger `key` uses on `connection`: shared by
        every worker of that store (engines keep a poll automation's state and run lock there). None when the
        store is this process's alone (memory:) or lacks the LeaseStore methods."""
        from connector.auth.stores.leases import leases_of

        definition = self.manifest.triggers.get(key) or self.manifest.actions.get(key)
        if definition is None:
            raise InputValidationError(key, [Violation("(key)", "", "no action or trigger has this key")])
        connection_def = self.manifest.connections[definition.connection]
        resolved = self.resolved(connection_def, connection)
        state = self._states.state(resolved, lambda c: self._new_state(c, connection_def))
        if not state.tokens.uses_store:
            return None
        return leases_of(state.tokens.store)

    def close(self) -> None:
        self._clients.close()
        self._states.clear()
        self._stores.clear()

    async def aclose(self) -> None:
        await self._clients.aclose()
        self._states.clear()
        self._stores.clear()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- planning ----------------------------------------------------------------------------------------------

    def _is_job(self, key: str) -> bool:
        action = self.manifest.actions.get(key)
        return action is not None and action.job is not None

    async def _ajob_records(
        self, key: str, inputs: Mapping[str, Any] | None, connection: ConnectionLike
    ) -> AsyncIterator[Any]:
        """A job action's records for async callers: the blocking stream (`stream`) advanced in a worker thread,
        JOB_SLICE rows a hop, so the event loop never waits on the network or the CSV and memory stays one slice."""
        import asyncio
        import itertools

        stream = self.stream(key, inputs, connection=connection)  # inputs checked here; nothing sent yet
        assert isinstance(stream, _jobs.JobStream)
        rows = stream.records()
        try:
            while chunk := await asyncio.to_thread(lambda: list(itertools.islice(rows, JOB_SLICE))):
                for record in chunk:
                    yield record
        finally:
            rows.close()  # an early stop removes the job's temporary file

    def _run_job(self, key: str, inputs: Mapping[str, Any] | None, connection: ConnectionLike) -> dict[str, Any]:
        """A job action's records, all in one answer: all or none, like every Fetch All through `run`."""
        stream = self.stream(key, inputs, connection=connection)
        try:
            rows = list(stream.records())
        except ConnectorError as exc:
            if exc.progress is not None:
                exc.progress = {"delivered": 0, "resume": {}}
            raise
        return {"data": {stream.records_member: rows, **stream.summary()}}

    def _call(
        self, key: str, inputs: Mapping[str, Any] | None, connection: ConnectionLike, *, paginate: bool = False
    ) -> Call:
        _, values, planner = self._planner(key, inputs, connection, paginate=paginate)
        return planner(values)

    def _planner(
        self, key: str, inputs: Mapping[str, Any] | None, connection: ConnectionLike, *, paginate: bool = False
    ) -> tuple[Action, dict[str, Any], Callable[[dict[str, Any]], Call]]:
        """The action, its checked inputs, and how to plan a call with given inputs (one chunk's, for `batch`)."""
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
        resolved = self.resolved(definition, connection)
        state = self._states.state(resolved, lambda c: self._new_state(c, definition))
        product = self.manifest.products[action.product]

        def planner(chosen: dict[str, Any]) -> Call:
            return plan(action, product, definition, resolved, chosen, state, self._options, paginate=paginate)

        return action, values, planner

    def resolved(self, definition: ConnectionDef, connection: ConnectionLike) -> Connection:
        """A connection checked against its definition; a name is looked up in the connections file."""
        if isinstance(connection, str):
            connection = self._named.get(connection)
        return resolve_connection(definition, connection)

    def _new_state(self, connection: Connection, definition: ConnectionDef) -> ConnectionState:
        token_path = definition.oauth["token_path"]
        policy = connection.policy
        tokens = TokenSource(
            connection,
            token_path=token_path,
            clock=self._clock,
            transport=self._transport,
            async_transport=self._async_transport,
            allow_python_stores=self._allow_python_stores,
            open_store=self._stores.open,
        )
        budget = Budget(policy.intercall_delay, policy.min_calls_remaining, shared=policy.shared_limits is not False)
        return ConnectionState(
            connection=connection,
            tokens=tokens,
            budget=budget,
            semaphore=threading.BoundedSemaphore(policy.max_concurrency),
            limits=AccountLimits(
                tokens, policy, budget, clock=self._clock, sleep=self._sleep, async_sleep=self._async_sleep
            ),
        )

    # --- driving -----------------------------------------------------------------------------------------------

    def _drive(self, call: Call, flow: _flow.Flow[_flow.Reply]) -> _flow.Reply:
        """One call: the process's semaphore first, then (per request) the account's slots (`_limits`)."""
        state = call.state
        with state.semaphore:
            return _flow.drive(
                flow,
                self._clients.sync(),
                state.tokens.get,
                self._sleep,
                gate=state.limits.gate(call.product),
                share=state.limits.share,
            )

    async def _adrive(self, call: Call, flow: _flow.Flow[_flow.Reply]) -> _flow.Reply:
        state = call.state
        async with state.async_semaphore():
            return await _flow.adrive(
                flow,
                self._clients.async_(),
                state.tokens.aget,
                self._async_sleep,
                gate=state.limits.agate(call.product),
                share=state.limits.ashare,
            )

    def _send(self, call: Call) -> Any:
        """One call's data (one chunk of a many-items action)."""
        return call.data(self._drive(call, call.flow(self._organization(call))))

    async def _asend(self, call: Call) -> Any:
        return call.data(await self._adrive(call, call.flow(await self._aorganization(call))))

    def _organization(self, call: Call) -> OrganizationPlacement | None:
        """The organization id a call carries: planned, or else discovered once per account and product and
        remembered with the account's token, so other processes sharing the store need not look it up again."""
        if call.organization is not None or not call.discover_organization:
            return call.organization
        tokens, product = call.state.tokens, call.product.key
        known = tokens.organization_id(product)
        if known is None:
            known = call.discovered(self._drive(call, call.discovery_flow()))
            tokens.remember_organization_id(product, known)
        return call.placement(known)

    async def _aorganization(self, call: Call) -> OrganizationPlacement | None:
        if call.organization is not None or not call.discover_organization:
            return call.organization
        tokens, product = call.state.tokens, call.product.key
        known = await tokens.aorganization_id(product)
        if known is None:
            known = call.discovered(await self._adrive(call, call.discovery_flow()))
            await tokens.aremember_organization_id(product, known)
        return call.placement(known)

    def _pages(self, call: Call, pager: Pager) -> Iterator[Any]:
        organization = self._organization(call)

        def fetch(overrides: Mapping[str, Any] | None) -> tuple[Any, Mapping[str, str]]:
            reply = self._drive(call, call.flow(organization, overrides))
            return call.data(reply), reply.response.headers

        return _walk.pages(pager, fetch)

    async def _apages(self, call: Call, pager: Pager) -> AsyncIterator[Any]:
        organization = await self._aorganization(call)

        async def fetch(overrides: Mapping[str, Any] | None) -> tuple[Any, Mapping[str, str]]:
            reply = await self._adrive(call, call.flow(organization, overrides))
            return call.data(reply), reply.response.headers

        async for page in _walk.apages(pager, fetch):
            yield page


class Stream:
    """A Fetch All handed out record by record (the CLI writes it as it comes, so memory stays flat)."""

    def __init__(self, pager: Pager, pages: Iterator[Any]) -> None:
        self._pager = pager
        self._pages = pages
        self.first: Any = None  # the walk's first page: summary() is made from it
        self.count = 0

    def records(self) -> Iterator[Any]:
        for page in self.pages():
            yield from page

    def pages(self) -> Iterator[list[Any]]:
        """The records page by page; between pages, `resume()` is where the walk would go on (an engine's
        checkpoint). Before a resumed walk, `count` may be set to the records it already has and `first` to the
        `head()` of the walk it continues, so that summary() describes the whole walk."""
        for page in self._pages:
            if self.first is None:
                self.first = page
            records = self._pager.records(page)
            self.count += len(records)
            yield records

    def resume(self) -> dict[str, Any]:
        """The query parameters of the next page not yet handed out, as a failed walk's `progress` gives them."""
        return self._pager.resume()

    @property
    def records_member(self) -> str | None:
        """The member of the answer that holds the records (None when the answer is a bare list)."""
        return None if isinstance(self.first, list) else self._pager.records_member(self.first)

    def head(self) -> Any:
        """The first page with no records in it (JSON, as small as the page's paging members)."""
        member = self.records_member
        return [] if member is None else {**self.first, member: []}

    def summary(self) -> Any:
        """The combined answer without its records, once `records()` is exhausted."""
        whole = self._pager.combine(self.first, [], count=self.count)
        if isinstance(whole, dict):
            whole.pop(self._pager.records_member(self.first), None)
        return whole


def _collected(walk: Callable[[], list[Any]], pager: Pager) -> list[Any]:
    try:
        return walk()
    except ConnectorError as exc:
        _nothing_delivered(exc, pager)
        raise


def _nothing_delivered(exc: ConnectorError, pager: Pager) -> None:
    """`run` hands out all records or none: a failed walk delivered nothing and resumes from its start."""
    if exc.progress is not None:
        pager.position = pager.first()
        exc.progress = {"delivered": 0, "resume": pager.resume()}


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
