"""Poll automations' state and lock in the connection's token store (connector/engines/_polling.py), engine-free:
the pieces every engine adapter calls, against the sandbox's Partner Store and a SQLite token store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.automations import load_automation
from connector.engines import _polling
from connector.errors import ConnectionConfigError
from connector.manifest import bundled_manifest, data_root
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token


@pytest.fixture
def store_sandbox(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serve_in_thread(SandboxState()) as base:
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        path = tmp_path / "connections.json"
        path.write_text(json.dumps({"zoho": connection}))
        yield base, path


@pytest.fixture
def job() -> _polling.PollJob:
    automation = load_automation(
        data_root() / "automations" / "partner-store" / "transactions.yaml", bundled_manifest()
    )
    return _polling.PollJob.of(automation, "zoho")


def windows(connector: Connector, job: _polling.PollJob, lease: str) -> list[list[Any]]:
    """Every window of one run, committing each: the record ids per window."""
    seen = []
    while True:
        window = _polling.poll_window(connector, job, lease)
        seen.append([r["id"] for r in window["records"]])
        _polling.commit(connector, job, lease, window["state"])
        if not window["more"]:
            return seen


def test_windows_resume_from_the_committed_state_on_another_connector(
    store_sandbox: tuple[str, Path], job: _polling.PollJob
) -> None:
    base, connections = store_sandbox
    httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": 450}}).raise_for_status()
    with Connector.load(connections=connections) as first:
        lease = _polling.begin(first, job)
        assert lease is not None
        assert _polling.begin(first, job) is None  # one run of an automation at a time
        window = _polling.poll_window(first, job, lease)
        assert len(window["records"]) == 200 and window["more"]
        _polling.commit(first, job, lease, window["state"])
        _polling.poll_window(first, job, lease)  # polled, but its steps "failed": nothing committed
        _polling.finish(first, job, lease)
        first_ids = [r["id"] for r in window["records"]]
    with Connector.load(connections=connections) as second:  # another worker, sharing the token store
        assert _polling.stored_state(second, job) is not None
        lease = _polling.begin(second, job)
        assert lease is not None
        rest = windows(second, job, lease)
        _polling.finish(second, job, lease)
        everything = first_ids + [rid for window_ids in rest for rid in window_ids]
        listed = second.run("storeListTransactions", {"fetchAll": True}, connection="zoho")["data"]
    assert sorted(everything) == sorted(r["id"] for r in listed)  # each once: none lost, none repeated


def test_a_run_whose_lock_expired_saves_nothing(store_sandbox: tuple[str, Path], job: _polling.PollJob) -> None:
    _, connections = store_sandbox
    with Connector.load(connections=connections) as connector:
        lease = _polling.begin(connector, job)
        assert lease is not None
        window = _polling.poll_window(connector, job, lease)
        store = connector.shared_store(job.trigger, connection=job.connection)
        assert store is not None
        store.release_slot(job.lock_name, lease)  # what the lease's expiry does, without waiting for it
        taken = _polling.begin(connector, job)  # another run may take the lock now
        assert taken is not None
        with pytest.raises(_polling.LostLock, match="expired"):
            _polling.commit(connector, job, lease, window["state"])
        assert _polling.stored_state(connector, job) is None


def test_a_memory_token_store_is_refused_with_what_to_use(tmp_path: Path, job: _polling.PollJob) -> None:
    with serve_in_thread(SandboxState()) as base:
        connection = {**with_refresh_token(base, tmp_path), "token_store": "memory:"}
        with (
            Connector.load(connections={"zoho": connection}) as connector,
            pytest.raises(ConnectionConfigError, match="SQLite file, MySQL/MariaDB, PostgreSQL or Redis"),
        ):
            _polling.begin(connector, job)


def test_the_state_is_kept_per_automation_trigger_and_connection(job: _polling.PollJob) -> None:
    other = _polling.PollJob.from_dict({**job.to_dict(), "connection": "other"})
    assert job.state_name != other.state_name and job.lock_name != other.lock_name
    assert len(job.state_name) <= 64 and job.state_name.isascii()
    assert _polling.PollJob.from_dict(job.to_dict()) == job


def test_the_run_that_took_the_lock_gets_it_back_on_a_later_attempt(
    store_sandbox: tuple[str, Path], job: _polling.PollJob
) -> None:
    _, connections = store_sandbox
    with Connector.load(connections=connections) as connector:
        lease = _polling.begin(connector, job, owner="run-1")  # its answer is lost: the worker died
        assert lease is not None
        assert _polling.begin(connector, job, owner="run-1") == lease  # the same run's next attempt
        assert _polling.begin(connector, job, owner="run-2") is None  # another run still waits
        assert _polling.begin(connector, job) is None
        _polling.finish(connector, job, lease)
        again = _polling.begin(connector, job, owner="run-1")  # released: a fresh lease, not the old one
        assert again is not None and again != lease


def test_a_staged_window_state_is_kept_only_by_its_commit_and_a_repeated_commit_is_harmless(
    store_sandbox: tuple[str, Path], job: _polling.PollJob
) -> None:
    base, connections = store_sandbox
    httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": 250}}).raise_for_status()
    with Connector.load(connections=connections) as connector:
        lease = _polling.begin(connector, job)
        assert lease is not None
        first = _polling.poll_window_staged(connector, job, lease)
        assert set(first) == {"records", "staged", "more"} and first["more"]  # the digest, not the state
        assert _polling.stored_state(connector, job) is None  # staged, not kept
        assert _polling.poll_window_staged(connector, job, lease)["staged"] == first["staged"]  # the same window
        _polling.commit_staged(connector, job, lease, first["staged"])
        kept = _polling.stored_state(connector, job)
        assert kept is not None and _polling._state_digest(_polling._dumps(kept)) == first["staged"]
        _polling.commit_staged(connector, job, lease, first["staged"])  # an attempt whose answer was lost
        assert _polling.stored_state(connector, job) == kept
        second = _polling.poll_window_staged(connector, job, lease)
        assert second["staged"] != first["staged"] and not second["more"]
        with pytest.raises(_polling.LostLock, match="no longer staged"):
            _polling.commit_staged(connector, job, lease, "0" * 32)
        assert _polling.stored_state(connector, job) == kept  # nothing saved
        with pytest.raises(_polling.LostLock, match="expired"):
            _polling.commit_staged(connector, job, "not-the-lease", second["staged"])
        _polling.commit_staged(connector, job, lease, second["staged"])
        _polling.finish(connector, job, lease)
        ids = [r["id"] for r in first["records"] + second["records"]]
        listed = connector.run("storeListTransactions", {"fetchAll": True}, connection="zoho")["data"]
    assert sorted(ids) == sorted(r["id"] for r in listed) and len(ids) == len(set(ids))
    assert job.staged_name.isascii() and len(job.staged_name) <= 64
