"""Polling triggers: what changed since the last poll, each record once per change, from a small JSON state.

    result = connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, state, connection=conn)
    # {"records": [... oldest change first ...], "state": {... keep it for the next poll ...}}

A poll trigger names a paginated read action and a timestamp cursor (`connector.models.PollCursor`). The state is
that cursor: the newest timestamp handed out, as the API wrote it, and the ids handed out at exactly that
timestamp, so records sharing one second are neither lost nor repeated. A poll hands out each changed record once,
in its latest state, oldest change first; a failed request raises and the caller keeps its old state.

ascending (keyset): a walk asks for the records changed since the cursor minus one second (whether the API's
"since" counts its own instant is not assumed, so both readings are covered) sorted oldest first, keeps those
after the cursor (or at it and not seen), and starts again from the new cursor after any page that moved it. A
record changed meanwhile moves later and is met again, so nothing is skipped, and a poll costs O(changes)
requests. A page that does not move the cursor (one timestamp shared by a page of records) is followed by the
next page of the same walk; pages are offsets, so a record of that group changed or deleted while it is read
would shift another one past a page boundary: a group read across pages is read again until a reading adds
nothing new at the cursor.

descending: newest first, page after page, until the records are older than the cursor.

The algorithm is a generator that yields what to fetch (`Walk(since)`: the first page of a new walk; `None`: the
next page of this one) and receives each `Page`. It does no I/O and reads no clock (the first cursor is given), so
the sync and async drivers share it and tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from connector import _listpoll, _template
from connector._inputs import checked_inputs
from connector.errors import BadResponseError, InputValidationError, PaginationError, Violation
from connector.models import DEFAULT_TIME_FORMAT, Trigger

if TYPE_CHECKING:
    from connector.runner import ConnectionLike, Connector

__all__ = ["STATE_VERSION", "Page", "Position", "Spec", "Walk", "apoll", "parse_time", "poll"]

STATE_VERSION = 1
MAX_REQUESTS = 10_000  # every poll ends: a poll that would need more is a PaginationError
_SECOND = timedelta(seconds=1)


def parse_time(text: Any) -> datetime:
    """An ISO 8601 time with its offset, in either shape Zoho writes (`+00:00` or `-0700`); ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError("not text")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


@dataclass(frozen=True)
class Spec:
    """A trigger's cursor, as the algorithm reads it."""

    field: str
    order: str
    id: str = "id"
    format: str = DEFAULT_TIME_FORMAT
    since_input: str | None = None

    @classmethod
    def of(cls, cursor: Mapping[str, Any]) -> Spec:
        return cls(
            field=cursor["field"],
            order=cursor["order"],
            id=cursor.get("id", "id"),
            format=cursor.get("format", DEFAULT_TIME_FORMAT),
            since_input=cursor.get("since_input"),
        )

    def write(self, moment: datetime) -> str:
        return moment.astimezone(UTC).strftime(self.format)

    def place(self, record: Any) -> tuple[datetime, str, str]:
        """(instant, timestamp as written, id) of a listed record; a record without them is a bad answer."""
        if not isinstance(record, Mapping):
            raise BadResponseError("a listed record is not an object", retryable=False)
        text = record.get(self.field)
        try:
            moment = parse_time(text)
        except ValueError:
            raise BadResponseError(
                f"a listed record has no readable {self.field!r} (an ISO 8601 time with its offset)", retryable=False
            ) from None
        rid = record.get(self.id)
        if not isinstance(rid, str | int) or isinstance(rid, bool) or rid == "":
            raise BadResponseError(f"a listed record has no {self.id!r}", retryable=False)
        return moment, str(text), str(rid)


@dataclass
class Position:
    """The cursor: a timestamp (as the API wrote it) and the ids handed out at exactly that instant."""

    text: str
    at: datetime
    seen: set[str] = field(default_factory=set)


class Walk(NamedTuple):
    """Fetch the first page of a new walk, asking for records changed since `since` (None: no such filter)."""

    since: str | None


class Page(NamedTuple):
    records: list[Any]
    more: bool  # another page follows in this walk


Step = Walk | None  # None: the next page of the current walk


class Changes:
    """The records a poll hands out: one per id, its latest state."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[datetime, Any]] = {}

    def add(self, at: datetime, rid: str, record: Any) -> None:
        known = self._by_id.get(rid)
        if known is None or at >= known[0]:
            self._by_id.pop(rid, None)  # re-inserted: a record met again later sorts with its newer change
            self._by_id[rid] = (at, record)

    def oldest_first(self) -> list[Any]:
        return [record for _, record in sorted(self._by_id.values(), key=lambda entry: entry[0])]


# --- the algorithm -----------------------------------------------------------------------------------------------


class _Offer(NamedTuple):
    newest: Position | None  # the newest records past the cursor in this page, or None when none
    added_at_cursor: bool  # a record at the cursor's own instant was new


def _offer(spec: Spec, records: list[Any], pos: Position, changes: Changes, last: list[datetime]) -> _Offer:
    """Take one page's records that are past the cursor (or at it and not seen). `last` holds the walk's previous
    timestamp, to check that the API sorts as asked (the algorithm relies on it)."""
    newest: Position | None = None
    added = False
    for record in records:
        at, text, rid = spec.place(record)
        if last and (at < last[0] if spec.order == "ascending" else at > last[0]):
            raise BadResponseError(f"the list is not sorted by {spec.field!r} {spec.order} as asked", retryable=False)
        last[:] = [at]
        if at < pos.at or (at == pos.at and rid in pos.seen):
            continue
        changes.add(at, rid, record)
        if at == pos.at:
            pos.seen.add(rid)
            added = True
        elif newest is None or at > newest.at:
            newest = Position(text, at, {rid})
        elif at == newest.at:
            newest.seen.add(rid)
    return _Offer(newest, added)


def ascending(spec: Spec, start: Position, changes: Changes) -> Generator[Step, Page, Position]:
    pos = Position(start.text, start.at, set(start.seen))
    rereading = False  # this walk reads again a group the previous walk read across pages
    while True:
        step: Step = Walk(spec.write(pos.at - _SECOND))
        last: list[datetime] = []
        pages = 0
        added_at_cursor = False
        while True:
            page = yield step
            pages += 1
            offer = _offer(spec, page.records, pos, changes, last)
            added_at_cursor |= offer.added_at_cursor
            if offer.newest is None:
                if not page.more:
                    return pos
                step = None
                continue
            if pages == 1 or (rereading and not added_at_cursor):
                pos, rereading = offer.newest, False
                if not page.more:
                    return pos
            else:
                rereading = True  # what it took past the cursor stays taken; it is met again and kept once
            break


def descending(spec: Spec, start: Position, changes: Changes) -> Generator[Step, Page, Position]:
    pos = Position(start.text, start.at, set(start.seen))
    newest = Position(pos.text, pos.at, set(pos.seen))
    last: list[datetime] = []
    page = yield Walk(None)
    while True:
        offer = _offer(spec, page.records, pos, changes, last)
        if offer.newest is not None and offer.newest.at > newest.at:
            newest = offer.newest
        elif offer.newest is not None and offer.newest.at == newest.at:
            newest.seen |= offer.newest.seen
        if newest.at == pos.at:
            newest.seen |= pos.seen
        if not page.more or (last and last[0] < pos.at):
            return newest
        page = yield None


# --- one poll: inputs, state, drivers ------------------------------------------------------------------------------


@dataclass
class _Prepared:
    trigger: Trigger
    spec: Spec
    action: str
    listing: dict[str, Any]
    start: Position

    def algorithm(self, changes: Changes) -> Generator[Step, Page, Position]:
        run = ascending if self.spec.order == "ascending" else descending
        return run(self.spec, self.start, changes)

    def inputs(self, since: str | None) -> dict[str, Any]:
        if since is None or self.spec.since_input is None:
            return dict(self.listing)
        return {**self.listing, self.spec.since_input: since}

    def result(self, changes: Changes, end: Position) -> dict[str, Any]:
        state = {"version": STATE_VERSION, "trigger": self.trigger.key, "cursor": end.text, "seen": sorted(end.seen)}
        return {"records": changes.oldest_first(), "state": state}


def _prepare(
    connector: Connector, key: str, inputs: Mapping[str, Any] | None, state: Mapping[str, Any] | None
) -> _Prepared:
    try:
        trigger = connector.manifest.trigger(key)
    except KeyError as exc:
        raise InputValidationError(key, [Violation("(trigger)", "", str(exc.args[0]))]) from None
    if trigger.poll is None:
        raise InputValidationError(key, [Violation("(trigger)", "", f"{key} is a {trigger.kind} trigger, not a poll")])
    values = checked_inputs(key, trigger.input_schema, inputs)
    spec = Spec.of(trigger.poll["cursor"])
    listing = _template.evaluate(trigger.poll["inputs"], values)
    listing = dict(listing) if isinstance(listing, Mapping) else {}
    fields_input = trigger.poll["cursor"].get("fields_input")
    if fields_input is not None:  # the id and the cursor's field first, then the caller's, each once
        asked = listing.get(fields_input) or []
        listing[fields_input] = list(dict.fromkeys([spec.id, spec.field, *asked]))
    start = _start(key, spec, trigger, values, state, connector._clock())
    return _Prepared(trigger, spec, trigger.poll["action"], listing, start)


def _start(
    key: str, spec: Spec, trigger: Trigger, values: Mapping[str, Any], state: Mapping[str, Any] | None, now: float
) -> Position:
    """Where this poll starts: the state's cursor; on the first poll (no state) the start input, else now."""
    if state is None:
        start_input = trigger.poll.get("start_input") if trigger.poll else None
        given = values.get(start_input) if start_input else None
        if given is None:
            moment = datetime.fromtimestamp(int(now), tz=UTC)
            return Position(spec.write(moment), moment)
        try:
            moment = parse_time(given)
        except ValueError:
            problem = "expected an ISO 8601 date-time with a time zone, e.g. 2026-11-20T10:15:00+00:00"
            raise InputValidationError(key, [Violation(str(start_input), "", problem)]) from None
        return Position(spec.write(moment), moment)
    return _from_state(key, state)


def _from_state(key: str, state: Any) -> Position:
    def bad(problem: str) -> InputValidationError:
        return InputValidationError(key, [Violation("(state)", "", problem)])

    if not isinstance(state, Mapping):
        raise bad("the state must be the JSON object the previous poll returned (or null for the first poll)")
    if state.get("version") != STATE_VERSION:
        raise bad(f"unknown state version {state.get('version')!r}; this connector writes {STATE_VERSION}")
    if state.get("trigger") != key:
        raise bad(f"the state belongs to trigger {state.get('trigger')!r}, not {key}")
    seen = state.get("seen")
    if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
        raise bad("`seen` must be a list of record ids")
    try:
        at = parse_time(state.get("cursor"))
    except ValueError:
        raise bad("`cursor` must be an ISO 8601 time with its offset") from None
    return Position(str(state["cursor"]), at, set(seen))


def poll(
    connector: Connector,
    key: str,
    inputs: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    connection: ConnectionLike,
) -> dict[str, Any]:
    if _listpoll.is_list_trigger(connector, key):  # a list with neither filter nor sort
        return _listpoll.poll(connector, key, inputs, state, connection)
    prepared = _prepare(connector, key, inputs, state)
    lister = _Lister(connector, prepared, connection)
    changes = Changes()
    algorithm = prepared.algorithm(changes)
    step = next(algorithm)
    for _ in range(MAX_REQUESTS):
        page = lister.walk(step.since) if step is not None else lister.next()
        try:
            step = algorithm.send(page)
        except StopIteration as done:
            return prepared.result(changes, done.value)
    raise _too_many()


async def apoll(
    connector: Connector,
    key: str,
    inputs: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    connection: ConnectionLike,
) -> dict[str, Any]:
    if _listpoll.is_list_trigger(connector, key):  # a list with neither filter nor sort: its pages in a thread
        import asyncio

        return await asyncio.to_thread(_listpoll.poll, connector, key, inputs, state, connection)
    prepared = _prepare(connector, key, inputs, state)
    lister = _Lister(connector, prepared, connection)
    changes = Changes()
    algorithm = prepared.algorithm(changes)
    step = next(algorithm)
    for _ in range(MAX_REQUESTS):
        page = await (lister.awalk(step.since) if step is not None else lister.anext())
        try:
            step = algorithm.send(page)
        except StopIteration as done:
            return prepared.result(changes, done.value)
    raise _too_many()


def _too_many() -> PaginationError:
    return PaginationError(
        f"a poll made {MAX_REQUESTS:,} requests without catching up; stopping (the state was not advanced)",
        code="MAX_PAGES",
    )


class _Lister:
    """Walks of the trigger's listing action, one page at a time, through the connector's call machinery."""

    def __init__(self, connector: Connector, prepared: _Prepared, connection: ConnectionLike) -> None:
        self._connector = connector
        self._prepared = prepared
        self._connection = connection
        self._fetch: Callable[[], Page] | None = None
        self._afetch: Callable[[], Awaitable[Page]] | None = None

    def walk(self, since: str | None) -> Page:
        connector = self._connector
        call = connector._call(self._prepared.action, self._prepared.inputs(since), self._connection, paginate=True)
        pager = call.pager()
        organization = connector._organization(call)
        overrides: Mapping[str, Any] | None = pager.first() or None

        def fetch() -> Page:
            nonlocal overrides
            reply = connector._drive(call, call.flow(organization, overrides))
            data = call.data(reply)
            overrides = pager.advance(data, reply.response.headers)
            return Page(pager.records(data), overrides is not None)

        self._fetch = fetch
        return fetch()

    def next(self) -> Page:
        assert self._fetch is not None, "next() before walk()"
        return self._fetch()

    async def awalk(self, since: str | None) -> Page:
        connector = self._connector
        call = connector._call(self._prepared.action, self._prepared.inputs(since), self._connection, paginate=True)
        pager = call.pager()
        organization = await connector._aorganization(call)
        overrides: Mapping[str, Any] | None = pager.first() or None

        async def fetch() -> Page:
            nonlocal overrides
            reply = await connector._adrive(call, call.flow(organization, overrides))
            data = call.data(reply)
            overrides = pager.advance(data, reply.response.headers)
            return Page(pager.records(data), overrides is not None)

        self._afetch = fetch
        return await fetch()

    async def anext(self) -> Page:
        assert self._afetch is not None, "anext() before awalk()"
        return await self._afetch()
