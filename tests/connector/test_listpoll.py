"""Polling a list with no filter and no order: only new or changed records come back, in either plausible order,
with records held back until settled, watched records returned when they change, windows of bounded size, and a
full re-read (never a loss) when the list is not where the state says."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

from connector import Connector
from connector._listpoll import ListCursor, ListPoll, Settle, Watch, fingerprint, poll_list
from connector.errors import BadResponseError, InputValidationError, ManifestError
from connector.manifest import load_manifest

DAY = 86_400.0
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ORDERS = ("oldest_first", "newest_first")


class FakeList:
    """A list API: records in creation order, served oldest or newest first, `size` a page."""

    def __init__(self, order: str, size: int = 10) -> None:
        self.order, self.size = order, size
        self.rows: list[dict[str, Any]] = []
        self.reads: list[int] = []
        self.next_id = 100

    def add(self, count: int = 1, day: str | None = "2025-06-01", **fields: Any) -> list[dict[str, Any]]:
        made = []
        for _ in range(count):
            self.next_id += 1
            made.append({"id": str(self.next_id), "day": day, **fields})
        self.rows += made
        return made

    def fetch(self, page: int) -> Sequence[dict[str, Any]]:
        self.reads.append(page)
        served = self.rows if self.order == "oldest_first" else self.rows[::-1]
        return [dict(r) for r in served[(page - 1) * self.size : page * self.size]]


def poll(
    store: FakeList, state: dict[str, Any] | None, now: float = NOW, **cursor: Any
) -> tuple[ListPoll, dict[str, Any]]:
    store.reads.clear()
    result = poll_list(store.fetch, ListCursor(page_size=store.size, **cursor), state, now=now)
    json.dumps(result.state)  # the state is plain JSON
    return result, result.state


def drain(store: FakeList, state: dict[str, Any] | None, now: float = NOW, **cursor: Any) -> tuple[list[str], Any]:
    """Poll until the pass is over, as a runner does; the ids returned, in order."""
    ids: list[str] = []
    for _ in range(10_000):
        result, state = poll(store, state, now, **cursor)
        ids += [r["id"] for r in result.records]
        if not result.more:
            return ids, state
    raise AssertionError("the pass never ended")


@pytest.mark.parametrize("order", ORDERS)
def test_the_first_poll_returns_everything_and_the_next_nothing(order: str) -> None:
    store = FakeList(order)
    store.add(25)
    ids, state = drain(store, None)
    assert sorted(ids) == sorted(r["id"] for r in store.rows)
    result, _ = poll(store, state)
    assert result.records == [] and not result.more
    assert len(store.reads) <= 3  # the region's first record, its last one, and the page after it


@pytest.mark.parametrize("order", ORDERS)
def test_new_records_come_back_once_reading_only_what_is_new(order: str) -> None:
    store = FakeList(order)
    store.add(95)
    _, state = drain(store, None)
    new = store.add(3)
    result, state = poll(store, state)
    assert sorted(r["id"] for r in result.records) == sorted(r["id"] for r in new)
    assert len(store.reads) <= 3  # not the ten pages of the list
    assert poll(store, state)[0].records == []


@pytest.mark.parametrize("order", ORDERS)
def test_many_new_records_come_in_windows(order: str) -> None:
    store = FakeList(order, size=20)
    store.add(30)
    _, state = drain(store, None)
    new = {r["id"] for r in store.add(1_000)}
    seen: list[str] = []
    polls = 0
    while True:
        result, state = poll(store, state, window=64)
        polls += 1
        assert len(result.records) <= 64
        seen += [r["id"] for r in result.records]
        if not result.more:
            break
    assert sorted(seen) == sorted(new) and polls <= 17
    assert poll(store, state)[0].records == []


@pytest.mark.parametrize("order", ORDERS)
def test_records_are_held_back_until_settled(order: str) -> None:
    store = FakeList(order)
    old = store.add(12, day="2025-12-01")
    today = store.add(2, day="2026-01-01")  # NOW is 2026-01-01: held back
    ids, state = drain(store, None, settle=Settle("day", 1))
    assert sorted(ids) == sorted(r["id"] for r in old)
    yesterday = store.add(1, day="2026-01-01")
    # The next day: yesterday's records are still one day too recent ("created before yesterday").
    ids, state = drain(store, state, NOW + DAY, settle=Settle("day", 1))
    assert ids == []
    ids, state = drain(store, state, NOW + 2 * DAY, settle=Settle("day", 1))
    assert sorted(ids) == sorted(r["id"] for r in today + yesterday)
    assert drain(store, state, NOW + 3 * DAY, settle=Settle("day", 1))[0] == []


def test_a_held_record_keeps_later_ones_waiting_in_an_oldest_first_list() -> None:
    store = FakeList("oldest_first")
    store.add(3, day="2025-12-01")
    held = store.add(1, day="2026-01-01")
    later = store.add(2, day="2025-12-02")  # out of date order: waits behind the held one, never lost
    ids, state = drain(store, None, settle=Settle("day", 0))
    assert held[0]["id"] not in ids
    ids, state = drain(store, state, NOW + DAY, settle=Settle("day", 0))
    assert sorted(ids) == sorted(r["id"] for r in held + later) or set(ids) == {held[0]["id"]}
    assert drain(store, state, NOW + DAY, settle=Settle("day", 0))[0] == []


def test_a_record_without_a_readable_date_is_not_held() -> None:
    store = FakeList("oldest_first")
    store.add(1, day="soon")
    store.add(1, day=None)
    assert len(drain(store, None, settle=Settle("day", 1))[0]) == 2


@pytest.mark.parametrize("order", ORDERS)
def test_watched_records_come_back_when_they_change_and_leave_the_watch_when_done(order: str) -> None:
    store = FakeList(order)
    rows = store.add(30, status="open")
    store.add(5, status="completed")
    watch = Watch("status", ("open", "requested"))
    ids, state = drain(store, None, watch=watch)
    assert len(ids) == 35 and len(state["watch"]) == 30
    assert drain(store, state, watch=watch)[0] == []
    rows[3]["status"] = "requested"
    rows[7]["status"] = "completed"
    ids, state = drain(store, state, watch=watch)
    assert sorted(ids) == sorted([rows[3]["id"], rows[7]["id"]])
    assert rows[7]["id"] not in state["watch"] and state["watch"][rows[3]["id"]] == fingerprint(rows[3])
    rows[7]["status"] = "open"  # a record that left the watch is not looked at again
    assert drain(store, state, watch=watch)[0] == []


@pytest.mark.parametrize("order", ORDERS)
def test_watching_every_record_returns_new_and_changed_ones(order: str) -> None:
    store = FakeList(order)
    rows = store.add(15, amount=1)
    _, state = drain(store, None, watch=Watch())
    rows[0]["amount"] = 2
    new = store.add(2, amount=1)
    ids, state = drain(store, state, watch=Watch())
    assert sorted(ids) == sorted([rows[0]["id"], *(r["id"] for r in new)])


@pytest.mark.parametrize("order", ORDERS)
def test_a_reshuffled_list_is_read_again_without_losing_anything(order: str) -> None:
    store = FakeList(order)
    store.add(30)
    _, state = drain(store, None)
    del store.rows[0], store.rows[-1]  # the region's anchors are gone
    new = store.add(2)
    result, state = poll(store, state)
    assert result.restarted
    ids = [r["id"] for r in result.records]
    assert len(ids) == len(set(ids)) == 30 and {r["id"] for r in new} <= set(ids)
    assert poll(store, state)[0].records == []


def test_a_reshuffled_list_returns_only_changes_when_everything_is_watched() -> None:
    store = FakeList("oldest_first")
    rows = store.add(30)
    _, state = drain(store, None, watch=Watch())
    store.rows.reverse()
    rows[4]["changed"] = True
    result, _ = poll(store, state, watch=Watch())
    assert result.restarted and [r["id"] for r in result.records] == [rows[4]["id"]]


def test_records_prepended_between_two_windows_are_not_lost() -> None:
    store = FakeList("newest_first")
    store.add(10)
    _, state = drain(store, None)
    batch = store.add(40)
    result, state = poll(store, state, window=15)
    seen = [r["id"] for r in result.records]
    late = store.add(5)  # while the pass is half done
    ids, state = drain(store, state, window=15)
    assert {r["id"] for r in batch + late} <= set(seen + ids)
    assert drain(store, state)[0] == []


def test_a_state_of_another_page_size_starts_a_new_pass() -> None:
    store = FakeList("oldest_first", size=10)
    store.add(35)
    first, state = poll(store, None, window=12)
    store.size = 20
    ids, state = drain(store, state)
    assert len(set([r["id"] for r in first.records] + ids)) == 35


def test_bad_states_and_pages_are_refused() -> None:
    store = FakeList("oldest_first", size=10)
    store.add(3)
    with pytest.raises(ValueError, match="list cursor state"):
        poll(store, {"v": 99})
    big = FakeList("oldest_first", size=50)
    big.add(30)
    with pytest.raises(ValueError, match="page_size"):
        poll_list(big.fetch, ListCursor(page_size=10), None, now=NOW)
    store.rows.append({"name": "no id"})
    with pytest.raises(ValueError, match="no usable 'id'"):
        poll(store, None)


@settings(max_examples=60, deadline=None)
@given(
    order=st.sampled_from(ORDERS),
    steps=st.lists(st.tuples(st.integers(0, 25), st.integers(1, 30), st.booleans()), min_size=1, max_size=8),
)
def test_every_settled_record_comes_back_exactly_once(order: str, steps: list[tuple[int, int, bool]]) -> None:
    """Records arrive over days (some dated today, held back); polls in windows of any size, some passes cut
    short: each record is returned exactly once, once it has settled."""
    store = FakeList(order, size=7)
    state: dict[str, Any] | None = None
    returned: list[str] = []
    now = NOW
    for count, window, full in steps:
        today = datetime.fromtimestamp(now, tz=UTC).date().isoformat()
        store.add(count, day=today)
        if full:
            ids, state = drain(store, state, now, settle=Settle("day", 0), window=window)
            returned += ids
        else:
            result, state = poll(store, state, now, settle=Settle("day", 0), window=window)
            returned += [r["id"] for r in result.records]
        now += DAY
    ids, state = drain(store, state, now, settle=Settle("day", 0))
    returned += ids
    assert sorted(returned) == sorted(r["id"] for r in store.rows)


@settings(max_examples=60, deadline=None)
@given(
    order=st.sampled_from(ORDERS),
    steps=st.lists(
        st.tuples(st.integers(0, 12), st.lists(st.integers(0, 200), max_size=6), st.integers(1, 20), st.booleans()),
        min_size=1,
        max_size=8,
    ),
)
def test_a_copy_kept_by_upserts_ends_equal_to_the_list(
    order: str, steps: list[tuple[int, list[int], int, bool]]
) -> None:
    """Commissions as the Partner Store keeps them: added every day, moving open -> requested -> completed. A copy
    that upserts whatever each poll returns ends equal to every settled record of the list."""
    store = FakeList(order, size=6)
    copy: dict[str, dict[str, Any]] = {}
    state: dict[str, Any] | None = None
    now = NOW
    cursor: dict[str, Any] = {"settle": Settle("day", 1), "watch": Watch("status", ("open", "requested"))}
    following = {"open": "requested", "requested": "completed", "completed": "completed"}
    for count, moves, window, full in steps:
        store.add(count, day=datetime.fromtimestamp(now, tz=UTC).date().isoformat(), status="open")
        for n in moves:
            if store.rows:
                row = store.rows[n % len(store.rows)]
                row["status"] = following[row["status"]]
        results = [poll(store, state, now, window=window, **cursor)[0]]
        while full and results[-1].more:
            results.append(poll(store, results[-1].state, now, window=window, **cursor)[0])
        state = results[-1].state
        copy.update({r["id"]: r for result in results for r in result.records})
        now += DAY
    now += 2 * DAY
    ids, state = drain(store, state, now, **cursor)
    for rid in ids:
        copy[rid] = next(r for r in store.rows if r["id"] == rid)
    assert copy == {r["id"]: r for r in store.rows}


# --- as a poll trigger: the manifest's checks and Connector.poll ----------------------------------------------------

STORE = "https://store.zoho.eu/api/v1/partner"


def _edit_trigger(tree: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = tree / "triggers/store/commission-changes.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["poll"].update(cursor={"field": "created_date", "order": "descending"}), "not both"),
        (lambda d: d["poll"].update(action="storeListCommissionz"), "not in the manifest"),
        (lambda d: d["poll"].update(inputs={"per_page": 10}), "which the poll itself sets"),
        (lambda d: d["poll"]["list"].update(window={"$input": "size"}), "does not declare: ['size']"),
        (lambda d: d["poll"]["list"]["watch"].pop("values"), "or neither (all)"),
        (lambda d: d["poll"]["list"].update(page_size=0), "page_size"),
    ],
)
def test_a_broken_list_trigger_fails_at_load(
    tree: Path, change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    _edit_trigger(tree, change)
    with pytest.raises(ManifestError, match=re.escape(problem)):
        load_manifest(tree, use_cache=False)


def test_connector_poll_walks_pages_and_hands_out_windows(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    rows = [{"id": str(i), "created_date": "2025-01-01", "status": "open"} for i in range(1, 4)]
    httpx_mock.add_response(url=f"{STORE}/commissions?page=1&per_page=200", json=rows, is_reusable=True)
    first = connector.poll("storeCommissionChanges", {"window": 2}, None, connection=connection)
    assert [r["id"] for r in first["records"]] == ["1", "2"] and first["more"] is True
    assert first["state"]["trigger"] == "storeCommissionChanges"
    second = connector.poll("storeCommissionChanges", {"window": 2}, first["state"], connection=connection)
    assert [r["id"] for r in second["records"]] == ["3"] and second["more"] is False
    assert sorted(second["state"]["watch"]) == ["1", "2", "3"]
    again = asyncio.run(connector.apoll("storeCommissionChanges", {}, second["state"], connection=connection))
    assert again["records"] == [] and again["more"] is False


def test_connector_poll_refuses_another_triggers_state_and_bad_inputs(
    connector: Connector, connection: dict[str, Any]
) -> None:
    state: dict[str, Any] = {
        "v": 1,
        "size": 200,
        "region": None,
        "pass": None,
        "watch": {},
        "trigger": "storeNewTransactions",
    }
    with pytest.raises(InputValidationError, match="belongs to trigger 'storeNewTransactions'"):
        connector.poll("storeCommissionChanges", {}, state, connection=connection)
    with pytest.raises(InputValidationError, match="the state must be the JSON object"):
        connector.poll("storeCommissionChanges", {}, {"version": 1}, connection=connection)
    with pytest.raises(InputValidationError, match="lagDays"):
        connector.poll("storeCommissionChanges", {"lagDays": -1}, None, connection=connection)


def test_a_page_that_is_not_a_list_of_records_is_a_bad_response(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{STORE}/transactions?page=1&per_page=200", json=[1, 2])
    with pytest.raises(BadResponseError, match="not a list of records"):
        connector.poll("storeNewTransactions", {}, None, connection=connection)


def test_a_listed_record_without_an_id_is_a_bad_response(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{STORE}/transactions?page=1&per_page=200", json=[{"amount": 1}])
    with pytest.raises(BadResponseError, match="storeNewTransactions: a listed record has no usable 'id'"):
        connector.poll("storeNewTransactions", {}, None, connection=connection)
