"""Many worker processes, one Zoho account: the calls in flight never pass the account's cap, counted by the
sandbox itself (which answers 429 TOO_MANY_REQUESTS past it), with the limits shared through each token store.

Workers are spawned processes, each with several threads (one with async tasks); the sandbox holds every call a
few milliseconds so that they overlap. A worker killed with SIGKILL in the middle of a call frees its slot when
its lease ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.auth.stores import open_store
from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, serve_in_thread
from connector.sandbox.state import Options
from tests.connector.auth.stores.kinds import kind_params, prepared
from tests.e2e.limits_workers import call_and_hang, hammer, one_call

pytestmark = pytest.mark.slow

CAP = 4


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState(options=Options(max_concurrent=CAP))) as base:
        yield base


@pytest.fixture(autouse=True)
def fresh(sandbox: str) -> Iterator[None]:
    httpx.delete(f"{sandbox}/__sandbox/faults").raise_for_status()
    yield
    httpx.delete(f"{sandbox}/__sandbox/faults").raise_for_status()


def account(sandbox: str, store_url: str, **policy: Any) -> dict[str, Any]:
    tokens = httpx.post(f"{sandbox}/__sandbox/tokens", json={}).json()
    return {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": tokens["refresh_token"],
        "accounts_url": sandbox,
        "api_domain": sandbox,
        "token_store": store_url,
        **policy,
    }


def a_lead(sandbox: str, connection: dict[str, Any]) -> str:
    created = Connector.load().run(
        "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Shared"}}, connection=connection
    )
    return str(created["data"]["data"][0]["details"]["id"])


def run_workers(
    connection: dict[str, Any], action: str, inputs: dict[str, Any], sandbox: str, kinds: list[bool], callers: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One spawned worker per entry of `kinds` (True: async tasks), `callers` each, 5 calls per caller; the
    workers' results and the sandbox's stats of the run."""
    context = multiprocessing.get_context("spawn")
    queue, go = context.Queue(), context.Event()
    workers = [
        context.Process(target=hammer, args=(connection, action, inputs, callers, 5, asynchronous, queue, go))
        for asynchronous in kinds
    ]
    for worker in workers:
        worker.start()
    try:
        assert [queue.get(timeout=120) for _ in workers] == ["ready"] * len(workers)
        httpx.delete(f"{sandbox}/__sandbox/stats").raise_for_status()
        go.set()
        results = [queue.get(timeout=300) for _ in workers]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    return results, httpx.get(f"{sandbox}/__sandbox/stats").json()


@pytest.mark.parametrize("kind_name", kind_params(("sqlite", "file", "redis", "postgresql", "mariadb")))
def test_workers_on_one_account_never_pass_its_cap(sandbox: str, kind_name: str, tmp_path: Path) -> None:
    with prepared(kind_name, tmp_path) as kind:
        connection = account(sandbox, kind.url, max_concurrency=CAP)
        lead = a_lead(sandbox, connection)
        before = open_store(kind.url).get_tokens()
        httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 20}).raise_for_status()
        inputs = {"recordType": "Leads", "recordId": lead}
        results, stats = run_workers(connection, "crmGetRecord", inputs, sandbox, [False, False, False, True], 4)
        assert [r["errors"] for r in results] == [[], [], [], []]
        assert sum(r["ok"] for r in results) == 4 * 4 * 5
        assert stats["throttled"].get("concurrency", 0) == 0  # the sandbox never had to refuse one
        assert stats["peak_in_flight"] == CAP  # the workers did contend, and never passed the cap
        assert stats["token_grants_total"] == 0  # the tokens: untouched, one refresh before the run for all
        assert open_store(kind.url).get_tokens() == before


def test_without_sharing_the_same_workers_pass_the_cap(sandbox: str, tmp_path: Path) -> None:
    """The control: each worker counting alone sends more than the account allows, and Zoho refuses the rest."""
    connection = account(sandbox, f"sqlite:///{tmp_path}/tokens.db", max_concurrency=CAP, shared_limits=False)
    lead = a_lead(sandbox, connection)
    httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 20}).raise_for_status()
    inputs = {"recordType": "Leads", "recordId": lead, "maxRetries": 20}
    _, stats = run_workers(connection, "crmGetRecord", inputs, sandbox, [False, False, False], 4)
    assert stats["throttled"].get("concurrency", 0) > 0


def test_heavy_calls_never_pass_the_heavy_cap(tmp_path: Path) -> None:
    """COQL's own cap is 10 whatever the edition: 3 workers of 6 threads stay under it and get no 429."""
    with serve_in_thread(SandboxState()) as sandbox:
        connection = account(sandbox, f"sqlite:///{tmp_path}/tokens.db")
        a_lead(sandbox, connection)
        httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 20}).raise_for_status()
        query = {"query": "select Last_Name from Leads where Last_Name is not null limit 10"}
        results, stats = run_workers(connection, "crmRunQuery", query, sandbox, [False, False, True], 6)
    assert [r["errors"] for r in results] == [[], [], []]
    assert sum(r["ok"] for r in results) == 3 * 6 * 5
    assert stats["throttled"].get("concurrency", 0) == 0 and stats["peak_in_flight"] == 10


def test_a_worker_killed_mid_call_frees_the_slot_when_its_lease_ends(sandbox: str, tmp_path: Path) -> None:
    """Cap 1: a worker's call holds the slot and the worker is killed (kill -9). Another worker waits for the lease
    (the call's timeout, 2 s, plus the 5 s margin), not forever, then goes."""
    store = f"sqlite:///{tmp_path}/tokens.db"
    connection = account(sandbox, store, max_concurrency=1)
    lead = a_lead(sandbox, connection)
    inputs = {"recordType": "Leads", "recordId": lead, "timeout": 2000}
    httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 1000}).raise_for_status()
    before = open_store(store).get_tokens()
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    worker = context.Process(target=call_and_hang, args=(connection, inputs, started))
    httpx.delete(f"{sandbox}/__sandbox/stats").raise_for_status()  # before the worker starts: its call may be quick
    worker.start()
    try:
        assert started.wait(60)
        deadline = time.monotonic() + 30
        while not httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"]:  # its call is in flight
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sent = time.monotonic()
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(10)
        result = Connector.load().run("crmGetRecord", inputs, connection=connection)
        waited = time.monotonic() - sent
    finally:
        if worker.is_alive():
            worker.kill()
    assert result["data"]["data"][0]["id"] == lead
    assert 5.0 <= waited <= 2.0 + 5.0 + 1.0 + 3.0  # the lease (7 s from the take), this call (1 s), slack
    assert open_store(store).get_tokens() == before


def in_a_process(connection: dict[str, Any], action: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """One call made by a worker process of its own (spawned: nothing shared with this one but the token store)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=one_call, args=(connection, action, inputs, queue))
    worker.start()
    try:
        answer: dict[str, Any] = queue.get(timeout=120)
    finally:
        worker.join(30)
        if worker.is_alive():
            worker.kill()
    return answer


@pytest.mark.parametrize("kind_name", kind_params(("sqlite", "redis")))
def test_an_allowance_one_worker_saw_run_down_stops_another_worker_process(
    sandbox: str, kind_name: str, tmp_path: Path
) -> None:
    """Books reports the day's allowance in every answer (X-Rate-Limit-*). One worker process makes one call and
    sees fewer than 10,000 left, below the connection's min_calls_remaining: a second worker process, which never saw
    that header, refuses its call without sending it, saying when the allowance resets. Counting alone, it sends."""
    from connector.sandbox.finance import DAILY_LIMIT, DEFAULT_ORG_IDS

    with prepared(kind_name, tmp_path) as kind:
        connection = {
            **account(sandbox, kind.url, min_calls_remaining=DAILY_LIMIT),
            "organization_id": DEFAULT_ORG_IDS["books"],
        }
        inputs = {"recordType": "contacts"}
        books = "GET /books/v3/contacts"
        httpx.delete(f"{sandbox}/__sandbox/stats").raise_for_status()
        assert in_a_process(connection, "booksGetRecords", inputs) == {"ok": True}
        assert httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"][books] == 1
        refused = in_a_process(connection, "booksGetRecords", inputs)
        assert refused["type"] == "rate_limited", refused
        assert f"of {DAILY_LIMIT} calls left" in refused["message"] and refused["retry_after"] > 0
        assert httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"][books] == 1  # nothing was sent
        alone = in_a_process({**connection, "shared_limits": False}, "booksGetRecords", inputs)
        assert alone == {"ok": True}  # the control: a worker counting alone knew nothing and sent it
        assert httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"][books] == 2
