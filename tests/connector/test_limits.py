"""Zoho's per-account limits shared through the token store (`connector/_limits.py`), seen through the runner.

Two Connectors on one SQLite store stand for two worker processes: they share nothing but the store. (Real
processes and every server store: tests/e2e/test_shared_limits.py.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, RateLimitedError
from connector._limits import POLL_FIRST, POLL_MAX, AccountLimits, heavy_cap
from connector.auth.stores import open_store
from connector.auth.stores.base import LeaseStore
from connector.auth.stores.leases import leases_of
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError
from tests.conftest import ACCESS_TOKEN, CRM, FakeClock

GET = "crmGetRecord"
COQL = {"query": "select Last_Name from Leads where Last_Name is not null limit 10"}
CLIENT = {"client_id": "1000.CLIENT", "client_secret": "client-secret", "refresh_token": "1000.refresh"}


@pytest.fixture
def shared(tmp_path: Path, clock: FakeClock) -> dict[str, Any]:
    """A connection whose token lives in a SQLite store (so its limits are shared), with a fresh access token."""
    url = f"sqlite:///{tmp_path}/tokens.db"
    open_store(url).save_token(
        Token(
            client_id=CLIENT["client_id"],
            client_secret=CLIENT["client_secret"],
            refresh_token=CLIENT["refresh_token"],
            access_token=ACCESS_TOKEN,
            expires_at=clock.now + 3600,
            accounts_url="https://accounts.zoho.eu",
            api_domain="https://www.zohoapis.eu",
        )
    )
    return {"region": "eu", **CLIENT, "token_store": url}


def record(rid: str) -> dict[str, str]:
    return {"recordType": "Leads", "recordId": rid}


def limits_of(connector: Connector) -> AccountLimits:
    (state,) = connector._states.values()
    return state.limits


def store_of(connection: dict[str, Any]) -> LeaseStore:
    leases = leases_of(open_store(connection["token_store"]))
    assert leases is not None
    return leases


class OtherWorker:
    """Another worker's call to record `b`, held in flight (holding its slot) until `finish()`."""

    def __init__(self, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
        self.arrived = threading.Event()
        self.go = threading.Event()
        self.order: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            rid = request.url.path.rsplit("/", 1)[-1]
            self.order.append(rid)
            if rid == "b":
                self.arrived.set()
                self.go.wait(10)
            return httpx.Response(200, json={"data": [{"id": rid}]})

        httpx_mock.add_callback(handler, is_reusable=True)
        self.connector = Connector.load(clock=FakeClock())
        self.thread = threading.Thread(
            target=self.connector.run, args=(GET, record("b")), kwargs={"connection": connection}
        )
        self.thread.start()
        assert self.arrived.wait(10)

    def finish(self) -> None:
        self.go.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the other worker's call did not end"


def polling(clock: FakeClock, after: int = 0, then: Callable[[], None] = lambda: None) -> Callable[[float], None]:
    """A fake sleep that records each wait and runs `then` on the `after`-th."""

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == after:
            then()

    return sleep


def test_heavy_paths_come_from_the_products_manifest_entry() -> None:
    products = Connector.load().manifest.products
    crm, books = products["crm"], products["books"]
    assert heavy_cap(crm, "/crm/v8/coql") == 10
    assert heavy_cap(crm, "/crm/v8/Leads/5394166000000379001/actions/convert") == 10
    assert heavy_cap(crm, "/crm/v8/Leads/actions/mass_update") == 10
    assert heavy_cap(products["crm_bulk"], "/crm/bulk/v8/read") == 10
    assert heavy_cap(crm, "/crm/v8/Leads") is None and heavy_cap(crm, "/crm/v8/coql/x") is None
    assert heavy_cap(books, "/books/v3/invoices") is None


def test_a_call_waits_while_another_worker_holds_the_accounts_only_slot(
    shared: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    connection = {**shared, "max_concurrency": 1}
    other = OtherWorker(connection, httpx_mock)
    # On the 5th poll the other worker's call ends, slot given back, before this one polls again. (Only letting it
    # go raced the fake clock: the polls spin through max_retry_after without real waiting, and a busy machine
    # gave them 1,900 of their 7,200 before the other thread got to release the slot.)
    me = Connector.load(clock=clock, sleep=polling(clock, after=5, then=other.finish))
    assert me.run(GET, record("a"), connection=connection) == {"data": {"data": [{"id": "a"}]}}
    other.finish()
    assert other.order == ["b", "a"]  # sent only once the other worker's call had ended
    assert len(clock.sleeps) == 5  # it polled until the slot was free, and took it at the next poll
    assert all(POLL_FIRST * 0.75 <= s <= POLL_MAX * 1.25 for s in clock.sleeps)  # short polls, no busy spin
    assert limits_of(me).shared


def test_no_slot_within_max_retry_after_is_a_retryable_rate_limit_and_nothing_is_sent(
    shared: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    connection = {**shared, "max_concurrency": 1, "max_retry_after": 2}
    other = OtherWorker(connection, httpx_mock)
    me = Connector.load(clock=clock, sleep=clock.sleep)
    with pytest.raises(RateLimitedError) as caught:
        me.run(GET, record("a"), connection=connection)
    other.finish()
    error = caught.value
    assert error.retryable and error.retry_after and "no free concurrency slot" in error.message
    assert "nothing was sent" in error.message and other.order == ["b"]
    assert sum(clock.sleeps) == pytest.approx(2.0, abs=0.01)  # waited max_retry_after on the connector's clock ...
    assert 2.0 / (POLL_MAX * 1.25) <= len(clock.sleeps) < 200  # ... in polls of a few ms, not a spin


def test_every_slot_is_given_back_after_calls(
    shared: dict[str, Any], connector: Connector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"data": [{"id": "1"}]}, is_reusable=True)
    for _ in range(3):
        connector.run(GET, record("1"), connection=shared)
    names = limits_of(connector).names
    store = store_of(shared)
    assert all(store.acquire_slot(names.calls, 20, 30) for _ in range(20))  # all 20 free again
    assert store.acquire_slot(names.calls, 20, 30) is None


def test_heavy_calls_also_need_a_heavy_slot(
    shared: dict[str, Any], clock: FakeClock, connector: Connector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"data": [{"id": "1"}]}, is_reusable=True)
    connection = {**shared, "max_retry_after": 1}
    connector.run(GET, record("1"), connection=connection)
    names, store = limits_of(connector).names, store_of(shared)
    held = [store.acquire_slot(names.heavy, 10, 60) for _ in range(10)]  # another worker's ten COQL queries
    with pytest.raises(RateLimitedError):
        connector.run("crmRunQuery", COQL, connection=connection)
    assert connector.run(GET, record("1"), connection=connection)  # ordinary calls still go
    store.release_slot(names.heavy, held[0] or "")
    httpx_mock.add_response(url=f"{CRM}/coql", method="POST", json={"data": [], "info": {"more_records": False}})
    assert connector.run("crmRunQuery", COQL, connection=connection)["data"]["data"] == []
    assert [r.url.path for r in httpx_mock.get_requests()].count("/crm/v8/coql") == 1


def test_heavy_calls_are_capped_in_process_when_nothing_is_shared(
    connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    """A bare access token counts in its process, heavy calls included: 12 COQL runs, never more than 10 at once."""
    lock, in_flight, peak = threading.Lock(), [0], [0]
    ten_in = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] == 10:
                ten_in.set()
        ten_in.wait(10)
        with lock:
            in_flight[0] -= 1
        return httpx.Response(200, json={"data": [], "info": {"more_records": False}})

    httpx_mock.add_callback(handler, is_reusable=True)
    connector = Connector.load()
    runs = [
        threading.Thread(target=connector.run, args=("crmRunQuery", COQL), kwargs={"connection": connection})
        for _ in range(12)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(20)
    assert len(httpx_mock.get_requests()) == 12 and peak[0] == 10
    assert not limits_of(connector).shared


def test_a_bare_access_token_shares_nothing_and_opens_no_store(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, isolated_home: Path
) -> None:
    httpx_mock.add_response(json={"data": [{"id": "1"}]})
    connector.run(GET, record("1"), connection=connection)
    assert not limits_of(connector).shared and not (isolated_home / "tokens.db").exists()


def test_shared_limits_false_counts_in_the_process(
    shared: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    connection = {**shared, "max_concurrency": 1, "shared_limits": False}
    other = OtherWorker({**shared, "max_concurrency": 1}, httpx_mock)  # holds the account's only shared slot
    me = Connector.load(clock=clock, sleep=clock.sleep)
    assert me.run(GET, record("a"), connection=connection)
    other.finish()
    assert other.order == ["b", "a"] and clock.sleeps == [] and not limits_of(me).shared


def test_shared_limits_true_needs_a_store_the_workers_share(connector: Connector, httpx_mock: HTTPXMock) -> None:
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "token_store": "memory:", "shared_limits": True}
    with pytest.raises(ConnectionConfigError) as caught:
        connector.run(GET, record("1"), connection=connection)
    assert "shared_limits" in caught.value.message and "memory:" in caught.value.message
    assert httpx_mock.get_requests() == []


def test_a_python_store_without_leases_counts_in_the_process_and_says_so(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    store = "python:tests.connector.auth.stores.user_store:UserStore"
    connection = {"region": "eu", **CLIENT, "token_store": store}
    token = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "api_domain": "https://www.zohoapis.eu"}
    for _ in range(2):  # each Connector's own memory store refreshes once
        httpx_mock.add_response(url="https://accounts.zoho.eu/oauth/v2/token", json=token)
    httpx_mock.add_response(json={"data": [{"id": "1"}]})
    caplog.set_level(logging.WARNING, logger="connector")
    connector = Connector.load(allow_python_stores=True)
    assert connector.run(GET, record("1"), connection=connection)
    assert not limits_of(connector).shared
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "acquire_slot, renew_slot, release_slot, get_value, set_value" in warning
    assert "counted in each process" in warning
    with pytest.raises(ConnectionConfigError, match="shared_limits is true"):
        Connector.load(allow_python_stores=True).run(GET, record("1"), connection={**connection, "shared_limits": True})


def test_a_store_that_stops_answering_does_not_stop_the_calls(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    connection = {"region": "eu", **CLIENT, "token_store": "python:tests.connector.limits_stores:DownLeaseStore"}
    token = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "api_domain": "https://www.zohoapis.eu"}
    httpx_mock.add_response(url="https://accounts.zoho.eu/oauth/v2/token", json=token)
    httpx_mock.add_response(json={"data": [{"id": "1"}]}, is_reusable=True)
    caplog.set_level(logging.WARNING, logger="connector")
    connector = Connector.load(allow_python_stores=True)
    assert connector.run(GET, record("1"), connection=connection)
    assert connector.run(GET, record("1"), connection=connection)
    assert limits_of(connector).shared
    assert "does not answer" in "\n".join(r.getMessage() for r in caplog.records)


async def test_async_calls_wait_for_the_slot_and_give_up_alike(
    shared: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    connection = {**shared, "max_concurrency": 1, "max_retry_after": 1}
    other = await asyncio.to_thread(OtherWorker, connection, httpx_mock)
    me = Connector.load(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep)
    with pytest.raises(RateLimitedError, match="no free concurrency slot"):
        await me.arun(GET, record("a"), connection=connection)
    assert sum(clock.sleeps) == pytest.approx(1.0, abs=0.01) and len(clock.sleeps) < 100
    clock.sleeps.clear()

    async def finishing(seconds: float) -> None:
        await clock.async_sleep(seconds)
        if len(clock.sleeps) == 3:  # the other call ends (slot given back) before the next poll: no race with it
            await asyncio.to_thread(other.finish)

    me = Connector.load(clock=clock, sleep=clock.sleep, async_sleep=finishing)
    assert await me.arun(GET, record("a"), connection={**connection, "max_retry_after": 60})
    await asyncio.to_thread(other.finish)
    assert other.order == ["b", "a"]
    await me.aclose()


async def test_async_tasks_of_one_process_never_pass_the_shared_cap(shared: dict[str, Any]) -> None:
    in_flight, peak = [0], [0]

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight[0] -= 1
        return httpx.Response(200, json={"data": [{"id": "1"}]})

    connector = Connector.load(async_transport=httpx.MockTransport(handler))
    connection = {**shared, "max_concurrency": 3}
    results = await asyncio.gather(*(connector.arun(GET, record("1"), connection=connection) for _ in range(30)))
    assert len(results) == 30 and peak[0] <= 3
    names, store = limits_of(connector).names, store_of(shared)
    assert [store.acquire_slot(names.calls, 3, 30) is not None for _ in range(4)] == [True, True, True, False]
    await connector.aclose()


def test_a_spent_allowance_stops_every_worker_of_the_account(
    shared: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": "3600"}
    httpx_mock.add_response(json={"data": [{"id": "1"}]}, headers=spent)
    first, second = Connector.load(clock=clock), Connector.load(clock=clock)
    first.run(GET, record("1"), connection=shared)
    with pytest.raises(RateLimitedError) as caught:
        second.run(GET, record("2"), connection=shared)  # this worker never saw the header itself
    assert "0 of 5000 calls left" in caught.value.message and caught.value.retry_after == 3600.0
    assert len(httpx_mock.get_requests()) == 1
    unshared = Connector.load(clock=clock)  # a worker that counts alone still tries, and learns from Zoho
    httpx_mock.add_response(json={"data": [{"id": "3"}]})
    assert unshared.run(GET, record("3"), connection={**shared, "shared_limits": False})
