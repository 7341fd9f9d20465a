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
record changed meanwhile moves later and is met again, so a poll costs O(changes) requests.
descending: newest first, page after page, until the records are older than the cursor.

Three things keep "once per change" true while records change under a poll:
- the second the server is still in (its Date header) is left for the next poll: a record changed twice in one
  second keeps one timestamp, so handing it out before that second is over would lose the second change;
- pages are offsets: a record leaving the listed range between two requests hides its neighbour from the next
  page. A reading that went past its first page is checked by reading again from the cursor, and the cursor
  moves only as far as a reading with no news confirmed;
- records handed out past the final cursor (which that check may leave) are kept in the state's `ahead`, so the
  next poll does not hand them out again.
A reading that found nothing past the cursor moves it to the last second that is over (Date), so a large group at
the old cursor, which every poll would otherwise read again for its `seen` ids, is read once more at most.

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
    def of(cls, cursor: Mapping[str, Any], inputs: Mapping[str, Any]) -> Spec:
        return cls(
            field=cursor["field"],
            order=cursor["order"],
            id=_id_member(cursor, inputs),
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


Ahead = dict[str, tuple[datetime, str]]  # id -> (instant, as written) of a record handed out past the cursor


def _id_member(cursor: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """The member holding a record's id: fixed, or following the kind of record an input names (PollCursor)."""
    kind = inputs.get(cursor["id_input"]) if "id_input" in cursor else None
    if not isinstance(kind, str):
        return str(cursor.get("id", "id"))
    last = kind.rsplit("/", 1)[-1]
    return str(cursor.get("id_members", {}).get(last) or f"{last.removesuffix('s')}_id")


@dataclass
class Position:
    """The cursor: a timestamp (as the API wrote it) and the ids handed out at exactly that instant; `ahead` (in a
    poll's start and end only) the records handed out past it, rare: see `_closed`."""

    text: str
    at: datetime
    seen: set[str] = field(default_factory=set)
    ahead: Ahead = field(default_factory=dict)


class Walk(NamedTuple):
    """Fetch the first page of a new walk, asking for records changed since `since` (None: no such filter)."""

    since: str | None


class Page(NamedTuple):
    records: list[Any]
    more: bool  # another page follows in this walk
    now: datetime | None = None  # the server's time when it answered (its Date header), if it said


Step = Walk | None  # None: the next page of the current walk


class Changes:
    """The records a poll hands out: one per id, its latest state."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[datetime, str, Any]] = {}

    def add(self, at: datetime, text: str, rid: str, record: Any) -> bool:
        """Keep a record; True when it is news to this poll (a new id, or a newer change of a known one)."""
        known = self._by_id.get(rid)
        if known is not None and at < known[0]:
            return False
        self._by_id.pop(rid, None)  # re-inserted: a record met again later sorts with its newer change
        self._by_id[rid] = (at, text, record)
        return known is None or at > known[0]

    def ids_at(self, moment: datetime) -> set[str]:
        return {rid for rid, (at, _, _) in self._by_id.items() if at == moment}

    def past(self, moment: datetime) -> Ahead:
        return {rid: (at, text) for rid, (at, text, _) in self._by_id.items() if at > moment}

    def oldest_first(self, *, met_newest_first: bool = False) -> list[Any]:
        """By timestamp; records sharing one keep the order the API listed them in, oldest first (reversed when
        the list ran newest first)."""
        entries = list(self._by_id.values())
        if met_newest_first:
            entries.reverse()
        return [record for _, _, record in sorted(entries, key=lambda entry: entry[0])]


# --- the algorithm -----------------------------------------------------------------------------------------------


class _Offer(NamedTuple):
    newest: Position | None  # the newest records past the cursor in this page, or None when none
    news: datetime | None  # the oldest record that was news to this poll, if any
    held: bool  # a record of the second still running was left for the next poll
    last: datetime | None  # the page's last timestamp


def _offer(spec: Spec, page: Page, pos: Position, ahead: Ahead, changes: Changes) -> _Offer:
    """Take one page's records that are past the cursor (or at it and not seen). A page must be sorted as asked
    (the algorithm relies on it); across pages no order is checked, since a change between two requests moves
    records from one page to another.

    A record stamped in the second the server is still in (its Date header) is left for a later poll: that second
    may yet change it again under the same timestamp, which no later poll could tell apart from this state. So a
    record changed twice in one second is handed out once, in its last state."""
    running = page.now.replace(microsecond=0) if page.now is not None else None
    newest: Position | None = None
    last = news = None
    held = False
    for record in page.records:
        at, text, rid = spec.place(record)
        if last is not None and (at < last if spec.order == "ascending" else at > last):
            raise BadResponseError(f"the list is not sorted by {spec.field!r} {spec.order} as asked", retryable=False)
        last = at
        if running is not None and at >= running:
            held = True
            continue
        if at < pos.at or (at == pos.at and rid in pos.seen) or ahead.get(rid, (None,))[0] == at:
            continue
        if changes.add(at, text, rid, record) and (news is None or at < news):
            news = at
        if at == pos.at:
            pos.seen.add(rid)
        elif newest is None or at > newest.at:
            newest = Position(text, at, {rid})
        elif at == newest.at:
            newest.seen.add(rid)
    return _Offer(newest, news, held, last)


def _closed(pos: Position, changes: Changes, ahead: Ahead) -> Position:
    """A cursor with every record handed out at its instant counted as seen, and the records handed out past it
    (earlier or now) in `ahead`. Records lie past the final cursor only when a later walk's shifted pages no longer
    showed them, since the cursor moves only as far as the reading is sure of: `ahead` keeps them from being handed
    out again, unchanged, by the next poll."""
    past = {rid: entry for rid, entry in ahead.items() if entry[0] > pos.at}
    reached = {rid for rid, entry in ahead.items() if entry[0] == pos.at}
    return Position(pos.text, pos.at, pos.seen | reached | changes.ids_at(pos.at), past | changes.past(pos.at))


def _settled(spec: Spec, page: Page, pos: Position) -> Position | None:
    """Where a reading that found nothing past the cursor may move it: to the last second that is over (the
    server's Date), so that later polls stop reading again a large group at the old cursor. None without a Date,
    or when that is not past the cursor."""
    if page.now is None:
        return None
    moment = page.now.replace(microsecond=0) - _SECOND
    return Position(spec.write(moment), moment) if moment > pos.at else None


def ascending(spec: Spec, start: Position, changes: Changes) -> Generator[Step, Page, Position]:
    """Keyset walks from the cursor. A page at an offset (page 2 on) that would move the cursor claims that
    everything up to there was read; pages are offsets, so a record leaving the walk's range between two requests
    hides its neighbour. The claim is checked by reading from the cursor again: a reading that brings no news up
    to the claimed instant confirms it, and the cursor moves there (not further: that reading's own pages are
    offsets too)."""
    pos = Position(start.text, start.at, set(start.seen))
    claimed: Position | None = None
    while True:
        step: Step = Walk(spec.write(pos.at - _SECOND))
        pages = 0
        news: datetime | None = None
        while True:
            page = yield step
            pages += 1
            offer = _offer(spec, page, pos, start.ahead, changes)
            if offer.news is not None and (news is None or offer.news < news):
                news = offer.news
            more = page.more and not offer.held  # sorted oldest first: all that follows is held too
            if offer.newest is None and more:
                step = None
                continue
            target = offer.newest or _settled(spec, page, pos)
            if target is None:
                return _closed(pos, changes, start.ahead)
            if pages == 1:
                pos, claimed = target, None
                if not more:
                    return _closed(pos, changes, start.ahead)
            elif claimed is not None and (news is None or news > claimed.at):
                pos, claimed = Position(claimed.text, claimed.at, claimed.seen | changes.ids_at(claimed.at)), None
                if offer.newest is None and not more:  # confirmed to the end of the list: nothing to read again
                    return _closed(pos, changes, start.ahead)
            else:
                claimed = target  # what it took stays taken: met again, it is kept once
            break


def descending(spec: Spec, start: Position, changes: Changes) -> Generator[Step, Page, Position]:
    """Newest first, page after page, until the records are older than the cursor; the new cursor is the newest
    record handed out. Pages are offsets here too: a record deleted between two requests hides a neighbour, so a
    reading of several pages is checked by another one, and a reading that brings no news up to the first one's
    newest record confirms the cursor there (what lies past it is kept in `ahead`)."""
    pos = Position(start.text, start.at, set(start.seen))
    claimed: Position | None = None
    while True:
        newest = Position(pos.text, pos.at, set(pos.seen))
        news: datetime | None = None
        pages = 0
        page = yield Walk(None)
        while True:
            pages += 1
            offer = _offer(spec, page, pos, start.ahead, changes)
            if offer.news is not None and (news is None or offer.news < news):
                news = offer.news
            if offer.newest is not None and offer.newest.at > newest.at:
                newest = offer.newest
            elif offer.newest is not None and offer.newest.at == newest.at:
                newest.seen |= offer.newest.seen
            if page.more and (offer.last is None or offer.last >= pos.at):
                page = yield None
                continue
            target = newest if newest.at > pos.at else _settled(spec, page, pos) or newest
            if pages == 1:
                return _closed(target, changes, start.ahead)
            if claimed is not None and (news is None or news > claimed.at):
                return _closed(claimed, changes, start.ahead)
            claimed = target
            break


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
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "trigger": self.trigger.key,
            "cursor": end.text,
            "seen": sorted(end.seen),
        }
        if end.ahead:
            state["ahead"] = {rid: text for rid, (_, text) in sorted(end.ahead.items())}
        return {"records": changes.oldest_first(met_newest_first=self.spec.order == "descending"), "state": state}


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
    spec = Spec.of(trigger.poll["cursor"], values)
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
    ahead = state.get("ahead", {})
    if not isinstance(ahead, Mapping):
        raise bad("`ahead` must map record ids to their timestamps")
    try:
        past = {str(rid): (parse_time(text), str(text)) for rid, text in ahead.items()}
    except ValueError:
        raise bad("`ahead` must map record ids to ISO 8601 times with their offsets") from None
    return Position(str(state["cursor"]), at, set(seen), past)


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


def _server_time(headers: Mapping[str, str]) -> datetime | None:
    """The answer's Date header (HTTP's date format), or None when it has none or an unreadable one."""
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
            return Page(pager.records(data), overrides is not None, _server_time(reply.response.headers))

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
            return Page(pager.records(data), overrides is not None, _server_time(reply.response.headers))

        self._afetch = fetch
        return await fetch()

    async def anext(self) -> Page:
        assert self._afetch is not None, "anext() before awalk()"
        return await self._afetch()
