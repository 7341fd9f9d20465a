"""The Partner Store → CRM sync against the sandbox: the shipped automations (automations/partner-store/) after
`partner-store setup`, run as a deployment runs them (poll, steps, state kept after each window), in both orders the
Store's lists may grow, with the sandbox's clock driving the commissions' one-day lag.

What a user checks: the CRM holds each Store record once, with its fields and its JSON payload; a run with nothing
new writes nothing (the sandbox counts every request); new records arrive with the next run; commissions wait until
they were created before yesterday; open and requested commissions follow the Store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.automations import Automation, StepFailed, load_automation, run_automation
from connector.manifest import bundled_manifest, data_root
from connector.sandbox import SandboxState, serve_in_thread
from connector.strategies.partner_store import plan, setup
from tests.e2e.connections import with_refresh_token
from tests.holds import Hold, held_sandbox

DAY = 86_400.0
START = 1_767_268_800.0  # 2026-01-01T12:00:00Z
MODULES = {
    "transactions": "Store_Transactions",
    "subscriptions": "Store_Subscriptions",
    "commissions": "Store_Commissions",
}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def shipped(name: str) -> Automation:
    return load_automation(data_root() / "automations" / "partner-store" / f"{name}.yaml", bundled_manifest())


class Sync:
    """A deployment of the three automations: each keeps its poll's state between runs, saved after each window."""

    def __init__(self, base: str, connector: Connector, connection: dict[str, Any]) -> None:
        self.base, self.connector, self.connection = base, connector, connection
        self.automations = {name: shipped(name) for name in MODULES}
        self.states: dict[str, Any] = {name: None for name in MODULES}

    def run(self, name: str) -> dict[str, Any]:
        def keep(state: Any) -> None:
            self.states[name] = state

        return run_automation(
            self.connector, self.automations[name], connection=self.connection, state=self.states[name], on_state=keep
        )

    def run_all(self) -> None:
        for name in MODULES:
            self.run(name)

    # --- what the sandbox holds and saw ---------------------------------------------------------------------------

    def store(self, kind: str) -> list[dict[str, Any]]:
        fetched = self.connector.run(f"storeList{kind.title()}", {"fetchAll": True}, connection=self.connection)
        return list(fetched["data"])

    def crm(self, kind: str) -> dict[str, dict[str, Any]]:
        """The CRM's copy, by Store id (an id held twice fails the test)."""
        fields = ["Store_Id", "Store_Payload", "Status", "Next_Recurring_Date", "Transaction_Type", "Amount"]
        rows = self.connector.iter_records(
            "crmGetRecords", {"recordType": MODULES[kind], "fields": fields}, connection=self.connection
        )
        copy: dict[str, dict[str, Any]] = {}
        for row in rows:
            assert row["Store_Id"] not in copy, f"{row['Store_Id']} is in {MODULES[kind]} twice"
            copy[row["Store_Id"]] = row
        return copy

    def writes(self) -> dict[str, int]:
        """Requests that may change data in the CRM since the last call (and forget them): not reads, and not a
        token refresh (the sandbox's clock moves by days, so access tokens expire)."""
        requests = httpx.get(f"{self.base}/__sandbox/stats").json()["requests"]
        httpx.delete(f"{self.base}/__sandbox/stats")
        return {path: n for path, n in requests.items() if not path.startswith(("GET ", "POST /oauth/"))}

    def admin(self, **body: Any) -> Any:
        response = httpx.post(f"{self.base}/__sandbox/store", json=body)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["oldest_first", "newest_first"])
def order(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sync(clock: Clock, tmp_path: Path, order: str) -> Iterator[Sync]:
    with serve_in_thread(SandboxState(), clock=clock) as base:
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        with Connector.load(clock=clock) as connector:
            sync = Sync(base, connector, connection)
            sync.admin(order=order)
            setup(connector, plan(list(sync.automations.values())), connection=connection)
            yield sync


def settled(commission: dict[str, Any], now: float) -> bool:
    """Created before yesterday (UTC), as the sandbox dates it."""
    from datetime import UTC, datetime, timedelta

    yesterday = datetime.fromtimestamp(now, tz=UTC).date() - timedelta(days=1)
    return str(commission["created_date"]) < yesterday.isoformat()


def assert_copied(sync: Sync, kind: str, expected: list[dict[str, Any]]) -> None:
    copy = sync.crm(kind)
    assert sorted(copy) == sorted(r["id"] for r in expected)
    for record in expected:
        assert json.loads(copy[record["id"]]["Store_Payload"]) == record  # every field, as the Store sent it


def test_the_first_run_loads_everything_and_the_second_writes_nothing(sync: Sync, clock: Clock) -> None:
    sync.admin(add={"kind": "transactions", "count": 450})  # more than two pages of the Store's 200
    sync.admin(add={"kind": "commissions", "count": 30})  # created today: they wait
    sync.writes()
    sync.run_all()
    assert_copied(sync, "transactions", sync.store("transactions"))
    assert_copied(sync, "subscriptions", sync.store("subscriptions"))
    old = [c for c in sync.store("commissions") if settled(c, clock.now)]
    assert len(old) == 3  # the seeded ones, dated 2025
    assert_copied(sync, "commissions", old)
    row = sync.crm("transactions")[sync.store("transactions")[0]["id"]]
    assert isinstance(row["Amount"], float) and row["Transaction_Type"]
    sync.writes()

    sync.run_all()
    assert sync.writes() == {}


def test_new_records_appear_after_the_next_run_exactly_once(sync: Sync, clock: Clock) -> None:
    sync.run_all()
    new = sync.admin(add={"kind": "transactions", "count": 7})["added"]
    touched = {t["subscription_id"] for t in new}
    sync.writes()
    sync.run_all()
    written = sync.writes()
    assert written == {
        "POST /crm/v8/Store_Transactions/upsert": 1,  # the 7 new ones in one call
        "POST /crm/v8/Store_Subscriptions/upsert": 1,  # the subscriptions they touched
    }
    assert_copied(sync, "transactions", sync.store("transactions"))
    subscriptions = {s["id"]: s for s in sync.store("subscriptions")}
    copy = sync.crm("subscriptions")
    for sid in touched:  # updated as the Store now has them (a renewal moved the next recurring date, ...)
        assert json.loads(copy[sid]["Store_Payload"]) == subscriptions[sid]
        assert copy[sid]["Next_Recurring_Date"] == subscriptions[sid]["next_recurring_date"]
        assert copy[sid]["Status"] == subscriptions[sid]["status"]
    sync.run_all()
    assert sync.writes() == {}
    assert len(sync.crm("transactions")) == len(sync.store("transactions"))


def test_commissions_are_loaded_one_day_behind(sync: Sync, clock: Clock) -> None:
    sync.run_all()
    today = sync.admin(add={"kind": "commissions", "count": 4})["added"]
    assert {c["created_date"] for c in today} == {"2026-01-01"}
    sync.run("commissions")
    assert not set(sync.crm("commissions")) & {c["id"] for c in today}  # created today
    clock.now += DAY
    sync.run("commissions")
    assert not set(sync.crm("commissions")) & {c["id"] for c in today}  # created yesterday
    clock.now += DAY
    sync.writes()
    sync.run("commissions")
    assert sync.writes() == {"POST /crm/v8/Store_Commissions/upsert": 1}
    assert_copied(sync, "commissions", [c for c in sync.store("commissions") if settled(c, clock.now)])
    assert {c["id"] for c in today} <= set(sync.crm("commissions"))


def test_open_and_requested_commissions_follow_the_store(sync: Sync, clock: Clock) -> None:
    commissions = sync.store("commissions")
    by_status = {c["status"]: c for c in commissions}
    assert set(by_status) == {"open", "requested", "completed"}
    sync.run_all()
    opened, requested = by_status["open"], by_status["requested"]
    sync.admin(update={"kind": "commissions", "id": opened["id"], "fields": {"status": "requested"}})
    sync.admin(update={"kind": "commissions", "id": requested["id"], "fields": {"status": "completed"}})
    sync.writes()
    sync.run("commissions")
    assert sync.writes() == {"POST /crm/v8/Store_Commissions/upsert": 1}
    copy = sync.crm("commissions")
    assert copy[opened["id"]]["Status"] == "requested" and copy[requested["id"]]["Status"] == "completed"
    assert_copied(sync, "commissions", sync.store("commissions"))
    sync.run("commissions")
    assert sync.writes() == {}


def test_a_failed_window_is_written_again_by_the_next_run(sync: Sync, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5xx on the second window's first upsert call (it may have acted: its records come back in doubt) stops the
    run; the next run starts from the state saved after the first window and ends with every transaction once."""
    sync.run("transactions")
    sync.admin(add={"kind": "transactions", "count": 1_100})  # six windows of 200
    real, upserts = sync.connector.run, []

    def fail_the_third_call(action: str, inputs: Any = None, **kw: Any) -> Any:
        if action == "crmUpsertRecords":
            upserts.append(len(inputs["records"]))
            if len(upserts) == 2:  # the second window: the sandbox answers its first call of 100 with a 500
                httpx.post(f"{sync.base}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "5xx"})
        return real(action, inputs, **kw)

    monkeypatch.setattr(sync.connector, "run", fail_the_third_call)
    with pytest.raises(StepFailed) as failed:
        sync.run("transactions")
    assert failed.value.step == "transactions" and failed.value.cause.may_have_acted
    assert "100 of 200 items were not written (100 in doubt)" in str(failed.value.cause)
    monkeypatch.setattr(sync.connector, "run", real)
    sync.writes()
    sync.run("transactions")
    assert sync.writes() == {"POST /crm/v8/Store_Transactions/upsert": 9}  # windows 2 to 6 only
    assert_copied(sync, "transactions", sync.store("transactions"))


def test_the_store_without_pagination_headers(sync: Sync) -> None:
    httpx.post(f"{sync.base}/__sandbox/store", json={"page_headers": "none"})
    sync.admin(add={"kind": "transactions", "count": 397})  # with the 3 seeded: two full pages, then an empty one
    sync.run_all()
    assert_copied(sync, "transactions", sync.store("transactions"))


# --- runs as processes: killed halfway, and 10,000 transactions in one run ------------------------------------------


def _cli(*argv: str, connections: Path) -> list[str]:
    return [sys.executable, "-m", "connector.cli", "--connections", str(connections), *argv]


@pytest.fixture
def hold() -> Hold:
    return Hold()


@pytest.fixture
def live(tmp_path: Path, hold: Hold) -> Iterator[tuple[str, Path]]:
    """A sandbox on the real clock, the CRM prepared, and a connections file naming it; `hold` holds its slowed
    answers on demand."""
    with held_sandbox(SandboxState(), hold) as (base, _):
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        connections = tmp_path / "connections.json"
        connections.write_text(json.dumps({"sandbox": connection}))
        done = subprocess.run(_cli("partner-store", "setup", connections=connections), capture_output=True, env=ENV)
        assert done.returncode == 0, done.stderr
        yield base, connections


ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.slow
def test_a_run_killed_halfway_and_started_again_ends_with_every_record_once(
    live: tuple[str, Path], tmp_path: Path, hold: Hold
) -> None:
    base, connections = live
    httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": 1_200}})  # 6 windows
    httpx.post(f"{base}/__sandbox/faults", json={"slow_ms": 60, "fault_targets": ["crm"]})  # a run of some seconds
    upsert = "POST /crm/v8/Store_Transactions/upsert"
    # The 5th upsert (inside the third window) and every CRM answer after it wait until the run is killed: it cannot
    # finish first however late this process gets to the kill (the 60 ms of each call were the only margin).
    hold.hold_from(5, upsert)
    state = tmp_path / "transactions.state.json"
    run = _cli(
        "automation",
        "run",
        str(data_root() / "automations/partner-store/transactions.yaml"),
        "--state",
        str(state),
        connections=connections,
    )
    process = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 120
    while not hold.holding.is_set():  # inside the third window
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=30)
    hold.release()
    assert process.returncode == -signal.SIGKILL
    saved = json.loads(state.read_text())  # the state of the last window that finished
    assert saved["pass"] is not None  # ... in the middle of the pass
    httpx.delete(f"{base}/__sandbox/faults")
    httpx.delete(f"{base}/__sandbox/stats")
    again = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 0, again.stderr
    resent = httpx.get(f"{base}/__sandbox/stats").json()["requests"][upsert]
    assert resent < 12  # it went on from the last finished window, not from the start
    with Connector.load() as connector:
        connection = json.loads(connections.read_text())["sandbox"]
        store = connector.run("storeListTransactions", {"fetchAll": True}, connection=connection)["data"]
        copy = list(
            connector.iter_records(
                "crmGetRecords", {"recordType": "Store_Transactions", "fields": ["Store_Id"]}, connection=connection
            )
        )
    assert sorted(r["Store_Id"] for r in copy) == sorted(t["id"] for t in store)  # each once


@pytest.mark.slow
def test_ten_thousand_transactions_sync_in_one_run(live: tuple[str, Path], tmp_path: Path) -> None:
    base, connections = live
    httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": 10_000}})
    httpx.delete(f"{base}/__sandbox/stats")
    run = _cli(
        "automation",
        "run",
        str(data_root() / "automations/partner-store/transactions.yaml"),
        "--state",
        str(tmp_path / "state.json"),
        connections=connections,
    )
    done = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    polls = [e for e in events if "trigger" in e]
    assert max(e["records"] for e in polls) == 200  # never more than a window in memory
    assert sum(e["records"] for e in polls) == 10_003
    requests = httpx.get(f"{base}/__sandbox/stats").json()["requests"]
    assert requests["POST /crm/v8/Store_Transactions/upsert"] == 101  # 100 records a call
    # A poll reads the page it resumes on, and the one before when it resumes at a page's start (to check that
    # nothing moved in the list since the last window): at most two pages a window.
    assert requests["GET /api/v1/partner/transactions"] <= 2 * len(polls) + 1
    assert httpx.get(f"{base}/__sandbox/stats").json()["records"]["Store_Transactions"] == 10_003


def test_the_sync_demo_tells_its_story(tmp_path: Path, clock: Clock) -> None:
    from connector.sandbox.demo_sync import PartnerStoreSync, run_story

    def advance_days(days: int) -> None:
        clock.now += days * DAY

    with serve_in_thread(SandboxState(), clock=clock) as base:
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        with Connector.load(clock=clock) as connector:
            story = run_story(PartnerStoreSync(connector, connection, base), advance_days, lambda step, _: None)
    names = ("partner-store-transactions", "partner-store-subscriptions", "partner-store-commissions")
    assert story["first"] == dict(zip(names, (1_003, 3, 3), strict=True))
    assert story["second"] == dict.fromkeys(names, 0)
    assert story["third"]["partner-store-transactions"] == 5 and story["third"]["partner-store-commissions"] == 0
    assert story["commissions"] == {**dict.fromkeys(names, 0), "partner-store-commissions": 5}
    assert story["totals"] == {"Store_Transactions": 1_008, "Store_Subscriptions": 3, "Store_Commissions": 8}
