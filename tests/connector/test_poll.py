"""The poll algorithm (connector/_poll.py) against an in-memory listing API whose pages are offsets into the data
as it is when each page is asked, like Zoho's, under both readings of "since" (inclusive and exclusive); then
Connector.poll's requests, inputs and state at the transport."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector._poll import Changes, Page, Position, Spec, ascending, descending, parse_time
from connector.errors import BadResponseError, InputValidationError, ZohoAPIError
from tests.conftest import BOOKS, CRM, ORG, FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
READINGS = ["exclusive", "inclusive"]


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


class FakeApi:
    """Records `id -> (second, version)`, listed sorted by the cursor's field (ties by id), `per_page` a page."""

    def __init__(self, order: str = "ascending", reading: str = "exclusive", per_page: int = 200) -> None:
        self.order, self.reading, self.per_page = order, reading, per_page
        self.rows: dict[str, tuple[int, int]] = {}
        self.requests = 0
        self.before_request: Callable[[int], None] | None = None  # mutations while a poll is running
        self.now: int | None = None  # the second the server is in (its Date header); None: it sends none
        self._since: datetime | None = None
        self._page = 1
        self._next_id = 1

    # --- the world ------------------------------------------------------------------------------------------------

    def create(self, second: int, count: int = 1) -> list[str]:
        ids = []
        for _ in range(count):
            rid = str(self._next_id)
            self._next_id += 1
            self.rows[rid] = (second, 1)
            ids.append(rid)
        return ids

    def update(self, rid: str, second: int) -> None:
        self.rows[rid] = (second, self.rows[rid][1] + 1)

    # --- the API ----------------------------------------------------------------------------------------------------

    def stamp(self, second: int) -> str:
        """Even seconds as CRM writes them (UTC, colon), odd ones as Books does (local time, bare offset)."""
        if second % 2:
            return (at(second) - timedelta(hours=7)).replace(tzinfo=None).isoformat() + "-0700"
        return at(second).isoformat()

    def walk(self, since: str | None) -> Page:
        self._since = parse_time(since) if since is not None else None
        self._page = 1
        return self._answer()

    def next(self) -> Page:
        self._page += 1
        return self._answer()

    def _answer(self) -> Page:
        self.requests += 1
        if self.before_request is not None:
            self.before_request(self.requests)
        rows = sorted(self.rows.items(), key=lambda r: (r[1][0], int(r[0])), reverse=self.order == "descending")
        if self._since is not None:
            limit, inclusive = self._since, self.reading == "inclusive"
            rows = [r for r in rows if at(r[1][0]) > limit or (inclusive and at(r[1][0]) == limit)]
        start = (self._page - 1) * self.per_page
        chunk = rows[start : start + self.per_page]
        records = [{"id": rid, "ts": self.stamp(second), "v": version} for rid, (second, version) in chunk]
        return Page(records, len(rows) > start + self.per_page, None if self.now is None else at(self.now))


def poll(api: FakeApi, start: Position) -> tuple[list[dict[str, Any]], Position]:
    spec = Spec(field="ts", order=api.order, since_input="since" if api.order == "ascending" else None)
    changes = Changes()
    algorithm = (ascending if api.order == "ascending" else descending)(spec, start, changes)
    step = next(algorithm)
    while True:
        page = api.walk(step.since) if step is not None else api.next()
        try:
            step = algorithm.send(page)
        except StopIteration as done:
            return changes.oldest_first(met_newest_first=api.order == "descending"), done.value


def begin(second: int) -> Position:
    return Position(at(second).isoformat(), at(second))


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


# --- timestamps ------------------------------------------------------------------------------------------------


def test_both_timestamp_shapes_are_instants() -> None:
    assert parse_time("2016-06-11T17:38:06-0700") == parse_time("2016-06-12T00:38:06+00:00")
    for bad in ("2016-06-11T17:38:06", "yesterday", None, 5):
        with pytest.raises(ValueError):
            parse_time(bad)


# --- ascending (keyset) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reading", READINGS)
def test_a_group_sharing_one_timestamp_across_pages_is_handed_out_once(reading: str) -> None:
    api = FakeApi(reading=reading)
    api.create(0, 300)  # before the cursor: never handed out
    group = api.create(10, 450)  # more than two pages at one second
    later = api.create(11, 5)
    records, end = poll(api, begin(5))
    assert ids(records) == group + later
    assert end.at == at(11) and end.seen == set(later)
    assert poll(api, end)[0] == []


@pytest.mark.parametrize("reading", READINGS)
def test_records_at_the_cursor_instant_not_yet_seen_are_handed_out(reading: str) -> None:
    api = FakeApi(reading=reading)
    first = api.create(10, 3)
    records, end = poll(api, begin(10))
    assert ids(records) == first and end.seen == set(first)
    more = api.create(10, 2)  # the same second, after the poll
    records, end = poll(api, end)
    assert ids(records) == more and end.seen == set(first + more)


@pytest.mark.parametrize("reading", READINGS)
def test_a_quiet_poll_costs_one_request_whatever_the_module_holds(reading: str) -> None:
    api = FakeApi(reading=reading)
    api.create(0, 100_000)
    _, end = poll(api, begin(5))
    assert api.requests == 1
    changed = ["17", "99999", "4242"]
    for rid in changed:
        api.update(rid, 7)
    records, end = poll(api, end)
    assert sorted(ids(records)) == sorted(changed) and api.requests == 2


@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("reading", READINGS)
def test_a_large_group_at_the_cursor_is_not_read_again_by_every_poll(order: str, reading: str) -> None:
    """The cursor's own second is read again by the next poll (its records are `seen`); once the server's clock
    says later seconds are over too, the cursor moves past it, so quiet polls cost one request again."""
    api = FakeApi(order=order, reading=reading)
    api.now = 11
    group = api.create(10, 450)
    records, end = poll(api, begin(9))
    assert sorted(ids(records), key=int) == group and end.at == at(10)
    api.now, api.requests = 15, 0
    records, end = poll(api, end)
    assert records == [] and end.at == at(14) and end.seen == set()
    assert api.requests == 6  # three pages, read twice to be sure that nothing hid behind a shifted page
    api.requests = 0
    later = api.create(15, 2)
    api.now = 16
    records, end = poll(api, end)
    assert ids(records) == later and api.requests == 1


@pytest.mark.parametrize("reading", READINGS)
def test_a_record_changed_during_a_poll_is_handed_out_once_in_its_latest_state(reading: str) -> None:
    api = FakeApi(reading=reading, per_page=10)
    created = api.create(10, 35)
    api.before_request = lambda n: api.update(created[2], 20) if n == 3 else None  # after it was handed out
    records, end = poll(api, begin(10))
    assert sorted(ids(records), key=int) == created
    assert records[-1] == {"id": created[2], "ts": api.stamp(20), "v": 2}  # its latest state, its new place
    api.before_request = None
    assert poll(api, end)[0] == []


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_change_inside_a_group_read_across_pages_loses_no_neighbour(reading: str, change: str) -> None:
    """Pages are offsets: a record of the group leaving it between page 1 and 2 shifts record 11 onto page 1's
    slot, so page 2 starts at record 12. The group is read again before the cursor passes it."""
    api = FakeApi(reading=reading, per_page=10)
    group = api.create(10, 25)
    after = api.create(11, 3)

    def leave(n: int) -> None:
        if n == 2:
            api.update(group[0], 30) if change == "update" else api.rows.pop(group[0])

    api.before_request = leave
    records, end = poll(api, begin(10))
    # group[0] was handed out before it left; group[10], which the shift hid from page 2, is not lost
    assert sorted(ids(records), key=int) == group + after
    assert [parse_time(r["ts"]) for r in records] == sorted(parse_time(r["ts"]) for r in records)
    api.before_request = None
    assert poll(api, end)[0] == []


def test_an_api_that_ignores_the_sort_is_a_bad_answer() -> None:
    api = FakeApi(order="descending")  # newest first, although the poll asks oldest first
    for second in (10, 11, 12):
        api.create(second)
    algorithm = ascending(Spec(field="ts", order="ascending", since_input="since"), begin(0), Changes())
    step = next(algorithm)
    assert step is not None
    with pytest.raises(BadResponseError, match="not sorted by 'ts' ascending"):
        algorithm.send(api.walk(step.since))


@pytest.mark.parametrize("record", [{"id": "1"}, {"id": "1", "ts": "2026-01-01T00:00:00"}, {"ts": at(1).isoformat()}])
def test_a_record_the_cursor_cannot_place_is_a_bad_answer(record: dict[str, Any]) -> None:
    algorithm = ascending(Spec(field="ts", order="ascending", since_input="since"), begin(0), Changes())
    next(algorithm)
    with pytest.raises(BadResponseError):
        algorithm.send(Page([record], False))


# --- descending -----------------------------------------------------------------------------------------------


def test_descending_reads_newest_first_until_older_than_the_cursor() -> None:
    api = FakeApi(order="descending", per_page=10)
    api.create(0, 1_000)
    _, end = poll(api, begin(1))
    assert api.requests == 1
    api.requests = 0
    new = api.create(5, 25) + api.create(6, 4)
    records, end = poll(api, end)
    assert ids(records) == new
    # 29 new records, 10 a page: the third page reaches older ones; a reading of several pages is read twice
    assert api.requests == 6
    assert end.at == at(6) and end.seen == set(new[-4:])
    assert poll(api, end)[0] == []


def test_descending_ties_at_the_cursor() -> None:
    api = FakeApi(order="descending", per_page=10)
    first = api.create(10, 15)
    records, end = poll(api, begin(10))
    assert ids(records) == first
    more = api.create(10, 12)
    records, end = poll(api, end)
    assert ids(records) == more and end.seen == set(first + more)


def test_descending_records_created_or_changed_during_a_poll() -> None:
    api = FakeApi(order="descending", per_page=10)
    old = api.create(1, 30)
    _, end = poll(api, begin(2))
    new = api.create(5, 30)

    def meanwhile(n: int) -> None:
        if n == 2:
            api.create(7, 3)  # pushes every record one page slot down: the next page repeats some
            api.update(new[20], 7)

    api.before_request = meanwhile
    records, end = poll(api, end)
    handed = ids(records)
    assert len(handed) == len(set(handed))
    assert set(new) <= set(handed) and not set(old) & set(handed)
    api.before_request = None
    later = poll(api, end)[0]
    assert not set(ids(later)) & set(handed) - {new[20]}


# --- exactly once per change, many polls ---------------------------------------------------------------------------


@pytest.mark.parametrize("reading", READINGS)
def test_the_second_still_running_is_left_for_the_next_poll(reading: str) -> None:
    """A record changed twice in one second keeps one timestamp: handing it out before the second is over would
    lose the second change. The server's clock (its Date header) says which second is still running."""
    api = FakeApi(reading=reading)
    api.now = 10
    first = api.create(10, 3)
    records, end = poll(api, begin(9))
    assert records == [] and end.at == at(9)
    api.update(first[0], 10)  # the same second: the same Modified_Time
    api.now = 11
    records, end = poll(api, end)
    assert ids(records) == first and records[0]["v"] == 2


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("seed", [1, 2])
def test_bursts_with_identical_timestamps_are_handed_out_once_per_change(order: str, reading: str, seed: int) -> None:
    """Bursts of creations and updates sharing one second, polls at random moments (often within the burst's
    second): each poll hands out exactly the changes of the seconds that are over and not yet handed out, each
    record once, in its latest state."""
    rng = random.Random(seed)
    api = FakeApi(order=order, reading=reading, per_page=25)
    api.now = 100
    position = begin(api.now)
    pending: dict[str, tuple[int, int]] = {}  # id -> (second, version) of changes not handed out yet
    for _ in range(40):
        for _ in range(rng.randint(0, 3)):
            burst = rng.choice([1, 5, 30, 70])
            if order == "ascending" and api.rows and rng.random() < 0.6:
                chosen = rng.sample(sorted(api.rows), min(burst, len(api.rows)))
                for rid in chosen:
                    api.update(rid, api.now)
            else:
                chosen = api.create(api.now, burst)
            pending.update({rid: (api.now, api.rows[rid][1]) for rid in chosen})
            api.now += rng.choice([0, 0, 1, 2])
        records, position = poll(api, position)
        over = {rid: version for rid, (second, version) in pending.items() if second < api.now}
        assert sorted(ids(records), key=int) == sorted(over, key=int)
        assert {r["id"]: r["v"] for r in records} == over
        assert [parse_time(r["ts"]) for r in records] == sorted(parse_time(r["ts"]) for r in records)
        pending = {rid: change for rid, change in pending.items() if rid not in over}


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("seed", [9, 17, 20])
def test_changes_while_polling_are_neither_lost_nor_repeated(order: str, reading: str, seed: int) -> None:
    """Records are created, updated and deleted between the pages of a poll too (pages are offsets, so that shifts
    records between pages): no version is handed out twice, and every record's last version is handed out."""
    rng = random.Random(seed)
    api = FakeApi(order=order, reading=reading, per_page=20)
    api.now = 100
    api.create(api.now, 200)
    position = begin(api.now)
    handed: dict[str, list[int]] = {}

    def meanwhile(n: int) -> None:
        assert api.now is not None
        if rng.random() < 0.3:
            if rng.random() < 0.2 and len(api.rows) > 50:
                for rid in rng.sample(sorted(api.rows), rng.randint(1, 5)):
                    del api.rows[rid]
            elif rng.random() < 0.5:
                for rid in rng.sample(sorted(api.rows), rng.randint(1, 15)):
                    api.update(rid, api.now)
            else:
                api.create(api.now, rng.randint(1, 15))
        api.now += rng.choice([0, 0, 1])

    for _ in range(40):
        for rid in rng.sample(sorted(api.rows), rng.randint(0, 60)):
            api.update(rid, api.now)
        api.now += rng.choice([0, 1])
        api.before_request = meanwhile
        records, position = poll(api, position)
        for record in records:
            handed.setdefault(record["id"], []).append(record["v"])
    api.before_request = None
    api.now += 1
    records, position = poll(api, position)
    for record in records:
        handed.setdefault(record["id"], []).append(record["v"])
    assert all(versions == sorted(set(versions)) for versions in handed.values())  # never the same version twice
    last = {rid: versions[-1] for rid, versions in handed.items() if rid in api.rows}
    assert last == {rid: version for rid, (_, version) in api.rows.items()}  # every record's last version


# --- Connector.poll: the requests it makes, its inputs and its state ------------------------------------------------

STATE = {"version": 1, "trigger": "crmUpdatedRecords", "cursor": "2026-11-20T10:15:00+01:00", "seen": ["7"]}


def lead(rid: str, modified: str, **fields: Any) -> dict[str, Any]:
    return {"id": rid, "Modified_Time": modified, **fields}


def crm_page(records: list[dict[str, Any]], more: bool = False) -> dict[str, Any]:
    return {"data": records, "info": {"per_page": 200, "count": len(records), "page": 1, "more_records": more}}


def test_a_crm_poll_asks_for_what_changed_since_one_second_before_the_cursor(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        json=crm_page([lead("7", "2026-11-20T10:15:00+01:00"), lead("8", "2026-11-20T09:15:01+00:00", Email="a@b.c")]),
        headers={"Date": "Fri, 20 Nov 2026 09:20:00 GMT"},
    )
    inputs = {"recordType": "Leads", "fields": ["Email", "Modified_Time"]}
    result = connector.poll("crmUpdatedRecords", inputs, STATE, connection=connection)
    request = httpx_mock.get_request()
    assert request is not None and request.url.path == "/crm/v8/Leads"
    assert dict(request.url.params) == {
        "fields": "id,Modified_Time,Email",  # the id and the cursor's field first, each once
        "sort_by": "Modified_Time",
        "sort_order": "asc",
        "page": "1",
        "per_page": "200",
    }
    assert request.headers["If-Modified-Since"] == "2026-11-20T09:14:59+00:00"
    assert result == {
        "records": [lead("8", "2026-11-20T09:15:01+00:00", Email="a@b.c")],  # 7 was seen at the cursor's instant
        "state": {**STATE, "cursor": "2026-11-20T09:15:01+00:00", "seen": ["8"]},
    }


def test_nothing_modified_is_zohos_304_and_keeps_the_state(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=304)
    result = connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, STATE, connection=connection)
    assert result == {"records": [], "state": STATE}


def test_the_first_poll_starts_now_or_at_since(
    connector: Connector, clock: FakeClock, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=304, is_reusable=True)
    now = connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, None, connection=connection)
    assert now["state"]["cursor"] == datetime.fromtimestamp(clock.now, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    since = connector.poll(
        "crmUpdatedRecords", {"recordType": "Leads", "since": "2026-01-01T12:00:00Z"}, None, connection=connection
    )
    assert since["state"] == {**STATE, "cursor": "2026-01-01T12:00:00+00:00", "seen": []}
    assert httpx_mock.get_requests()[-1].headers["If-Modified-Since"] == "2026-01-01T11:59:59+00:00"


def test_a_books_poll_lists_newest_first_until_older_than_the_cursor(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    def contacts(*stamps: str, more: bool) -> dict[str, Any]:
        rows = [{"contact_id": s[11:19], "created_time": s, "last_modified_time": s} for s in stamps]
        return {"code": 0, "contacts": rows, "page_context": {"page": 1, "per_page": 200, "has_more_page": more}}

    httpx_mock.add_response(json=contacts("2026-11-20T10:00:03-0700", "2026-11-20T10:00:02-0700", more=True))
    httpx_mock.add_response(json=contacts("2026-11-20T10:00:01-0700", "2026-11-20T09:00:00-0700", more=True))
    httpx_mock.add_response(json=contacts("2026-11-20T10:00:03-0700", "2026-11-20T10:00:02-0700", more=True))
    httpx_mock.add_response(json=contacts("2026-11-20T10:00:01-0700", "2026-11-20T09:00:00-0700", more=True))
    state = {"version": 1, "trigger": "booksUpdatedRecords", "cursor": "2026-11-20T17:00:00+0000", "seen": []}
    result = connector.poll("booksUpdatedRecords", {"recordType": "contacts"}, state, connection=connection)
    first = httpx_mock.get_requests()[0]
    assert first.url.path == "/books/v3/contacts"
    assert dict(first.url.params) == {
        "sort_column": "last_modified_time",
        "sort_order": "D",
        "page": "1",
        "per_page": "200",
        "organization_id": ORG,
    }
    assert str(first.url).startswith(BOOKS)
    assert [r["last_modified_time"] for r in result["records"]] == [
        "2026-11-20T10:00:01-0700",  # oldest change first; 09:00:00-0700 is before the cursor (17:00 UTC)
        "2026-11-20T10:00:02-0700",
        "2026-11-20T10:00:03-0700",
    ]
    assert result["state"]["cursor"] == "2026-11-20T10:00:03-0700"  # as Books wrote it
    assert len(httpx_mock.get_requests()) == 4  # two pages, read twice: the second reading confirms the first


def test_a_failed_page_raises_the_typed_error(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """The caller keeps its old state: the poll returns nothing, so nothing it read is lost."""
    httpx_mock.add_response(json=crm_page([lead(str(i), "2026-11-20T09:15:01+00:00") for i in range(200)], True))
    httpx_mock.add_response(
        status_code=400, json={"code": "INVALID_MODULE", "details": {}, "message": "m", "status": "error"}
    )
    with pytest.raises(ZohoAPIError) as caught:
        connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, STATE, connection=connection)
    assert caught.value.code == "INVALID_MODULE"


@pytest.mark.parametrize(
    ("key", "inputs", "state", "problem"),
    [
        ("crmUpdatedRecord", {"recordType": "Leads"}, None, "did you mean crmUpdatedRecords"),
        ("crmUpdatedRecords", {}, None, "recordType"),
        ("crmUpdatedRecords", {"recordType": "Leads", "since": "yesterday"}, None, "since"),
        ("crmUpdatedRecords", {"recordType": "Leads"}, {**STATE, "trigger": "crmNewRecords"}, "belongs to trigger"),
        ("crmUpdatedRecords", {"recordType": "Leads"}, {**STATE, "version": 9}, "unknown state version"),
        ("crmUpdatedRecords", {"recordType": "Leads"}, {**STATE, "cursor": "soon"}, "`cursor` must be"),
        ("crmUpdatedRecords", {"recordType": "Leads"}, {**STATE, "seen": [1]}, "`seen` must be"),
        ("crmUpdatedRecords", {"recordType": "Leads"}, ["not", "a", "state"], "the state must be"),
    ],
)
def test_bad_inputs_and_states_are_input_errors_before_any_request(
    connector: Connector, connection: dict[str, Any], key: str, inputs: Any, state: Any, problem: str
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.poll(key, inputs, state, connection=connection)
    assert problem in str(caught.value.to_dict())


async def test_apoll_is_polls_async_twin(connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=crm_page([lead("8", "2026-11-20T09:15:01+00:00")]))
    connector = Connector.load()
    try:
        result = await connector.apoll("crmUpdatedRecords", {"recordType": "Leads"}, STATE, connection=connection)
    finally:
        await connector.aclose()
    assert result["records"] == [lead("8", "2026-11-20T09:15:01+00:00")]
    assert result["state"]["cursor"] == "2026-11-20T09:15:01+00:00"
    request = httpx_mock.get_request()
    assert request is not None and str(request.url).startswith(CRM)


@pytest.mark.parametrize(
    ("kind", "member"),
    [("invoices", "invoice_id"), ("contacts", "contact_id"), ("settings/taxes", "tax_id"), ("bills", "bill_id")],
)
def test_a_books_record_is_known_by_its_kinds_id(kind: str, member: str) -> None:
    cursor = Connector.load().manifest.trigger("booksUpdatedRecords").poll
    assert cursor is not None
    assert Spec.of(cursor["cursor"], {"recordType": kind}).id == member
