"""Polling a list that has neither filter nor sort: each poll returns only the records that are new (or changed).

Some APIs list their records with no filter, no sort and no documented order (the Partner Store, zoho-api.md §6),
so "since the last poll" cannot be asked for. What such a list plausibly does is keep its order and grow at one
end: oldest first with new records appended, or newest first with new records prepended. The poll remembers the
*loaded region*, the run of records it has returned, by its first and last ids and its length, and finds it again:

- it reads from the top until it meets the region's first id: whatever comes before is new (newest first);
- it checks that the region's last id is where the length puts it, then reads past it: whatever follows is new
  (oldest first); both cost a page or two when nothing is new, so each poll fetches only what is new;
- when the region cannot be found where either order puts it (records deleted or reshuffled), the next pass reads
  the whole list again as on the first poll, so nothing is lost: a record may then be returned a second time, which
  a keyed upsert absorbs.

Pages are numbered from 1 and hold `page_size` records, the size asked for (the Store's documented 200); a list
that serves more a page is refused with a clear error, and one that serves fewer must be given its own page_size.

`settle` holds back records that are too recent (`{field, days}`: a record counts once its date is before the day
`days` days ago, in UTC): they are not returned and the region does not grow past them, so they come back once
settled. `watch` keeps a short fingerprint of each returned record that may still change (every record, or those
whose `field` is in `values`) and reads the whole list each pass: a watched record whose fingerprint moved is
returned again, and leaves the watch once it no longer matches. Memory holds one page at a time; a poll returns at
most `window` records and says `more` when the pass is not over, so a caller loops (saving the state after each
window) and a run of any size stays bounded.

The state is small JSON (`{"v", "size", "region": {"count", "first", "last"}, "pass", "watch"}`); None starts
from scratch. Everything is decided by the records and the page size, so the logic is deterministic and testable
without a network: `fetch(page)` returns one page (1-based) of `size` records, shorter at the end of the list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector.errors import InputValidationError, Violation

if TYPE_CHECKING:
    from connector.models import Trigger
    from connector.runner import ConnectionLike, Connector

__all__ = ["ListCursor", "ListPoll", "Settle", "Watch", "fingerprint", "is_list_trigger", "poll", "poll_list"]

Record = Mapping[str, Any]
Fetch = Callable[[int], Sequence[Record]]
VERSION = 1


@dataclass(frozen=True)
class Settle:
    """A record is returned once `field` (an ISO date or date-time) is before the UTC day `days` days ago."""

    field: str
    days: int = 1


@dataclass(frozen=True)
class Watch:
    """Which returned records may still change: all of them, or those whose `field` is one of `values`."""

    field: str | None = None
    values: tuple[str, ...] = ()

    def covers(self, record: Record) -> bool:
        return self.field is None or str(record.get(self.field)) in self.values


@dataclass(frozen=True)
class ListCursor:
    id: str = "id"
    settle: Settle | None = None
    watch: Watch | None = None
    window: int = 200
    page_size: int = 200


@dataclass
class ListPoll:
    records: list[dict[str, Any]]
    state: dict[str, Any]
    more: bool
    pages_read: int = 0
    restarted: bool = False  # the region was not found: this pass reads the whole list again
    notes: list[str] = field(default_factory=list)


def fingerprint(record: Record) -> str:
    """16 hex characters that change when any value of the record does."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class _Moved(Exception):
    """The list is not where the state says: read it again from the top."""


class _Reader:
    """Records by position, fetching one page at a time and keeping only the last one."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch, self.size = fetch, size
        self.page_no = 0
        self.page: list[Record] = []
        self.reads = 0

    def at(self, pos: int) -> Record | None:
        number = pos // self.size + 1
        if number != self.page_no:
            self.page = list(self.fetch(number))
            self.page_no = number
            self.reads += 1
            if len(self.page) > self.size:
                raise ValueError(
                    f"the list answered {len(self.page)} records for a page of {self.size}: "
                    "set the cursor's page_size to the page the API really serves"
                )
        index = pos % self.size
        return self.page[index] if index < len(self.page) else None


def poll_list(fetch: Fetch, cursor: ListCursor, state: Mapping[str, Any] | None, *, now: float) -> ListPoll:
    """One poll: up to `cursor.window` new or changed records, the next state, and whether more remain."""
    if cursor.window < 1 or cursor.page_size < 1:
        raise ValueError("window and page_size must be at least 1")
    s = _checked(state, cursor)
    poll = _Poll(_Reader(fetch, s["size"]), cursor, s, now)
    try:
        poll.run()
    except _Moved as moved:
        poll.restart(str(moved))
        poll.run(fresh=True)  # a pass from the top never looks for the region, so it cannot move again
    return ListPoll(poll.out, s, s["pass"] is not None, poll.reader.reads, poll.restarted, poll.notes)


def _checked(state: Mapping[str, Any] | None, cursor: ListCursor) -> dict[str, Any]:
    if state is None:
        return {"v": VERSION, "size": cursor.page_size, "region": None, "pass": None, "watch": {}}
    if not isinstance(state, Mapping) or state.get("v") != VERSION:
        raise ValueError(f"not a list cursor state of version {VERSION}: {str(state)[:80]}")
    copied: dict[str, Any] = json.loads(json.dumps(state))
    copied.setdefault("watch", {})
    if copied["size"] != cursor.page_size:  # a pass's positions mean nothing in pages of another size
        copied.update(size=cursor.page_size)
        copied["pass"] = None
    return copied


class _Poll:
    def __init__(self, reader: _Reader, cursor: ListCursor, state: dict[str, Any], now: float) -> None:
        self.reader, self.cursor, self.s = reader, cursor, state
        self.out: list[dict[str, Any]] = []
        self.returned: set[str] = set()  # a pass started over must not return a record twice in one answer
        self.watch: dict[str, str] = state["watch"]
        self.restarted = False
        self.notes: list[str] = []
        self.cutoff = _cutoff(cursor.settle, now)

    # --- the pass ---------------------------------------------------------------------------------------------
    # Positions only say where to read next; what the region becomes is counted record by record, so records
    # prepended between two polls of one pass shift positions without corrupting it.

    def run(self, *, fresh: bool = False) -> None:
        if self.s["pass"] is None:
            fresh = True
            self.s["pass"] = self._begin()
        elif not fresh:
            self._relocate()
        while True:
            while self.s["pass"] is not None and len(self.out) < self.cursor.window:
                self._step()
            if self.s["pass"] is not None or fresh or len(self.out) >= self.cursor.window:
                return
            # A pass begun in an earlier poll is over: what arrived where it had already read is found by a new one.
            fresh = True
            self.s["pass"] = self._begin()

    def _relocate(self) -> None:
        """Resume after the last record read; if records were added above it since, find it further down."""
        p = self.s["pass"]
        if p["pos"] == 0:
            return
        previous = self.reader.at(p["pos"] - 1)
        if previous is not None and self._id(previous) == p["prev"]:
            return
        pos = 0
        while (record := self.reader.at(pos)) is not None:
            if self._id(record) == p["prev"]:
                p["pos"] = pos + 1
                return
            pos += 1
        raise _Moved(f"the last record read, {p['prev']}, is no longer in the list")

    def _step(self) -> None:
        phase = self.s["pass"]["phase"]
        if phase == "initial":
            self._initial()
        elif phase == "before":
            self._before()
        elif phase == "region":
            self._region()
        else:
            self._after()

    def restart(self, why: str) -> None:
        """Forget where the region was and read the whole list again (the watch is kept)."""
        self.notes.append(why)
        self.restarted = True
        self.s["region"] = None
        self.s["pass"] = self._begin()

    def _begin(self) -> dict[str, Any]:
        if self.s["region"] is None:
            return {"phase": "initial", "pos": 0, "prev": None, "run": None, "best": None}
        return {"phase": "before", "pos": 0, "prev": None, "top": None, "above": 0, "left": 0, "end": None, "below": 0}

    def _next(self) -> Record | None:
        return self.reader.at(self.s["pass"]["pos"])

    def _advance(self, record: Record) -> None:
        p = self.s["pass"]
        p["pos"] += 1
        p["prev"] = self._id(record)

    def _initial(self) -> None:
        """No region yet: every settled record is returned; the region becomes the longest run of them."""
        p = self.s["pass"]
        while len(self.out) < self.cursor.window:
            record = self._next()
            if record is None:
                self._close_run(p)
                best = p["best"]
                self.s["region"] = None if best is None else {"count": best[1], "first": best[0], "last": best[2]}
                self.s["pass"] = None
                return
            if self._settled(record):
                self._emit(record, new=True)
                rid = self._id(record)
                run = p["run"]
                p["run"] = [run[0], run[1] + 1, rid] if run else [rid, 1, rid]
            else:
                self._close_run(p)
            self._advance(record)

    @staticmethod
    def _close_run(p: dict[str, Any]) -> None:
        run, best = p["run"], p["best"]
        if run is not None and (best is None or run[1] > best[1]):
            p["best"] = run
        p["run"] = None

    def _before(self) -> None:
        """From the top down to the region's first record: records prepended since (newest first)."""
        p, region = self.s["pass"], self.s["region"]
        while len(self.out) < self.cursor.window:
            record = self._next()
            if record is None:
                raise _Moved(f"the first loaded record {region['first']} is no longer in the list")
            if self._id(record) == region["first"]:
                if self.cursor.watch is not None:
                    p.update(phase="region", left=region["count"])
                    return
                q = p["pos"]
                last = self.reader.at(q + region["count"] - 1)
                if last is None or self._id(last) != region["last"]:
                    raise _Moved(f"the last loaded record {region['last']} is not where it was")
                p.update(phase="after", pos=q + region["count"], prev=region["last"])
                return
            if self._settled(record):
                self._emit(record, new=True)
                if p["top"] is None:
                    p["top"] = self._id(record)
                p["above"] += 1
            else:
                p.update(top=None, above=0)  # the region cannot grow above a record that is held back
            self._advance(record)

    def _region(self) -> None:
        """Inside the loaded region (only when watching): records whose fingerprint moved come back."""
        p, region = self.s["pass"], self.s["region"]
        while len(self.out) < self.cursor.window and p["left"] > 0:
            record = self._next()
            if record is None or (p["left"] == 1 and self._id(record) != region["last"]):
                raise _Moved(f"the last loaded record {region['last']} is not where it was")
            self._emit(record, new=False)
            self._advance(record)
            p["left"] -= 1
        if p["left"] == 0:
            p["phase"] = "after"

    def _after(self) -> None:
        """Past the region's last record: records appended since (oldest first), up to the first held back."""
        p = self.s["pass"]
        while len(self.out) < self.cursor.window:
            record = self._next()
            if record is None or not self._settled(record):
                self._finish()
                return
            self._emit(record, new=True)
            p["end"] = self._id(record)
            p["below"] += 1
            self._advance(record)

    def _finish(self) -> None:
        p, region = self.s["pass"], self.s["region"]
        self.s["region"] = {
            "count": p["above"] + region["count"] + p["below"],
            "first": p["top"] or region["first"],
            "last": p["end"] or region["last"],
        }
        self.s["pass"] = None

    # --- records ----------------------------------------------------------------------------------------------

    def _id(self, record: Record) -> str:
        value = record.get(self.cursor.id)
        if value is None or isinstance(value, dict | list):
            raise ValueError(f"a listed record has no usable {self.cursor.id!r}: {str(record)[:120]}")
        return str(value)

    def _settled(self, record: Record) -> bool:
        if self.cutoff is None or self.cursor.settle is None:
            return True
        day = _day(record.get(self.cursor.settle.field))
        return day is None or day < self.cutoff  # no readable date: nothing to wait for

    def _emit(self, record: Record, *, new: bool) -> None:
        """Return a record that is new, or a watched one that changed; keep the watch in step."""
        watch = self.cursor.watch
        rid = self._id(record)
        if rid in self.returned:
            return
        if watch is None:
            if new:
                self.returned.add(rid)
                self.out.append(dict(record))
            return
        print_ = fingerprint(record)
        known = self.watch.get(rid)
        if known == print_ or (not new and known is None):
            return
        self.returned.add(rid)
        self.out.append(dict(record))
        if watch.covers(record):
            self.watch[rid] = print_
        else:
            self.watch.pop(rid, None)


def _cutoff(settle: Settle | None, now: float) -> date | None:
    if settle is None:
        return None
    return datetime.fromtimestamp(now, tz=UTC).date() - timedelta(days=settle.days)


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


# --- a poll trigger with `list:` (Connector.poll) -----------------------------------------------------------------


def is_list_trigger(connector: Connector, key: str) -> bool:
    trigger = connector.manifest.triggers.get(key)
    return trigger is not None and trigger.poll is not None and "list" in trigger.poll


def poll(
    connector: Connector,
    key: str,
    inputs: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    connection: ConnectionLike,
) -> dict[str, Any]:
    """One poll of a `list:` trigger: `{"records", "state", "more"}`. The state names its trigger; the pages are
    read through the listing action, so its retries, rate limits and errors apply."""
    from connector import _template
    from connector._inputs import checked_inputs

    trigger = connector.manifest.trigger(key)
    assert trigger.poll is not None
    values = checked_inputs(key, trigger.input_schema, inputs)
    listing = _template.evaluate(trigger.poll["inputs"], values)
    listing = dict(listing) if isinstance(listing, Mapping) else {}
    cursor = _cursor(key, _template.evaluate(dict(trigger.poll["list"]), values))
    inner = _inner_state(key, trigger, state)
    action = connector.manifest.action(trigger.poll["action"])
    page_input, size_input = action.roles["page"], action.roles["page_size"]

    def fetch(page: int) -> Sequence[Record]:
        call = connector._call(action.key, {**listing, page_input: page, size_input: cursor.page_size}, connection)
        pager = call.pager()
        reply = connector._drive(call, call.flow(connector._organization(call), call.first_page()))
        records = pager.records(call.data(reply))
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            from connector.errors import BadResponseError

            raise BadResponseError(f"{action.key} page {page} is not a list of records", retryable=False)
        return records

    try:
        result = poll_list(fetch, cursor, inner, now=connector._clock())
    except ValueError as exc:  # a record without an id, pages larger than asked: not the list the trigger expects
        from connector.errors import BadResponseError

        raise BadResponseError(f"{key}: {exc}", retryable=False) from None
    return {"records": result.records, "state": {**result.state, "trigger": key}, "more": result.more}


def _cursor(key: str, spec: Mapping[str, Any]) -> ListCursor:
    def number(name: str, value: Any, least: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise InputValidationError(key, [Violation(name, "", f"must be a whole number from {least}")])
        return value

    settle = spec.get("settle")
    watch = spec.get("watch")
    return ListCursor(
        id=spec.get("id", "id"),
        settle=None if settle is None else Settle(settle["field"], number("settle.days", settle["days"], 0)),
        watch=None if watch is None else Watch(watch.get("field"), tuple(watch.get("values", ()))),
        window=number("window", spec.get("window", 200), 1),
        page_size=spec.get("page_size", 200),
    )


def _inner_state(key: str, trigger: Trigger, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    if not isinstance(state, Mapping) or state.get("v") != VERSION:
        problem = f"the state must be the JSON object the previous poll of {key} returned (or null for the first)"
        raise InputValidationError(key, [Violation("(state)", "", problem)])
    if state.get("trigger") != key:
        problem = f"the state belongs to trigger {state.get('trigger')!r}, not {key}"
        raise InputValidationError(key, [Violation("(state)", "", problem)])
    return {k: v for k, v in state.items() if k != "trigger"}
