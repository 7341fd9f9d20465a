"""End to end on the sandbox: poll triggers hand out every change exactly once, across process restarts, under
either reading of If-Modified-Since (the sandbox serves both; Zoho does not say which it uses)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.sandbox import SandboxState, serve_in_thread
from connector.sandbox.clock import crm_time
from tests.conftest import FakeClock
from tests.e2e.connections import with_access_token

ROOT = Path(__file__).resolve().parents[2]
READINGS = ["exclusive", "inclusive"]


class World:
    """A sandbox on a clock the test moves, and the changes not yet handed out: id -> (second, version)."""

    def __init__(self, base: str, clock: FakeClock) -> None:
        self.base, self.clock = base, clock
        self.connection = with_access_token(base)
        self.connector = Connector.load(clock=clock)  # "now", for a first poll, on the sandbox's clock
        self.pending: dict[str, tuple[int, int]] = {}
        self.versions: dict[str, int] = {}

    def create(self, count: int) -> None:
        records = [{"Last_Name": f"Poll {len(self.versions) + n}", "Description": "v1"} for n in range(count)]
        made = self.connector.run(
            "crmCreateRecords", {"recordType": "Leads", "records": records, "trigger": []}, connection=self.connection
        )["data"]
        assert all(entry["status"] == "success" for entry in made)
        self._changed([entry["id"] for entry in made])

    def update(self, ids: list[str]) -> None:
        records = [{"id": rid, "Description": f"v{self.versions[rid] + 1}"} for rid in ids]
        done = self.connector.run(
            "crmUpdateRecords", {"recordType": "Leads", "records": records, "trigger": []}, connection=self.connection
        )["data"]
        assert all(entry["status"] == "success" for entry in done)
        self._changed(ids)

    def _changed(self, ids: list[str]) -> None:
        second = int(self.clock.now)
        for rid in ids:
            self.versions[rid] = self.versions.get(rid, 0) + 1
            self.pending[rid] = (second, self.versions[rid])

    def settled(self) -> dict[str, int]:
        """What a poll now must hand out: the changes of the seconds that are over; they are no longer pending."""
        now = int(self.clock.now)
        over = {rid: version for rid, (second, version) in self.pending.items() if second < now}
        self.pending = {rid: change for rid, change in self.pending.items() if rid not in over}
        return over


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    clock = FakeClock(1_800_000_000.0)
    with serve_in_thread(SandboxState(), clock=clock) as base:
        reading = getattr(request, "param", "exclusive")
        httpx.post(f"{base}/__sandbox/options", json={"modified_since": reading}).raise_for_status()
        world = World(base, clock)
        try:
            yield world
        finally:
            world.connector.close()


def poll_in_a_new_process(world: World, trigger: str, inputs: dict[str, Any], state: Path) -> list[dict[str, Any]]:
    """`zoho-connector poll` in its own process: all it knows of earlier polls is the state file."""
    connection = state.with_name("connection.json")
    connection.write_text(json.dumps(world.connection))
    command = ["poll", trigger, "--inputs", json.dumps(inputs), "--connection", f"@{connection}", "--state", str(state)]
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("world", READINGS, indirect=True)
def test_a_thousand_records_in_bursts_each_change_once_across_restarts(world: World, tmp_path: Path) -> None:
    """1,000 records created and updated in bursts sharing one Modified_Time, polled at random moments by a new
    process each time (the state lives in its file only): every change is handed out exactly once, in its
    latest state, no earlier than its second is over."""
    rng = random.Random(12)
    state = tmp_path / "state.json"
    inputs = {"recordType": "Leads", "fields": ["Description"], "since": crm_time(world.clock.now)}
    handed: dict[str, list[int]] = {}
    polls = 0
    while len(world.versions) < 1_000 or world.pending or polls < 15:
        for _ in range(rng.randint(1, 3)):  # a burst: every write of it in the same second
            if len(world.versions) < 1_000 and (not world.versions or rng.random() < 0.55):
                world.create(min(rng.choice([1, 45, 90, 210]), 1_000 - len(world.versions)))
            else:
                world.update(rng.sample(sorted(world.versions), min(rng.choice([1, 40, 220]), len(world.versions))))
        world.clock.now += rng.choice([0, 0, 1, 3])  # a poll often lands in the second of the burst before it
        if rng.random() < 0.7 or len(world.versions) >= 1_000:
            records = poll_in_a_new_process(world, "crmUpdatedRecords", inputs, state)
            polls += 1
            expected = world.settled()
            assert sorted(r["id"] for r in records) == sorted(expected)  # no loss, no duplicate
            assert {r["id"]: r["Description"] for r in records} == {rid: f"v{v}" for rid, v in expected.items()}
            for record in records:
                handed.setdefault(record["id"], []).append(int(record["Description"][1:]))
            if len(world.versions) >= 1_000:
                world.clock.now += 1
    assert len(handed) == 1_000
    assert sum(len(v) for v in handed.values()) > 1_000  # updates too, not only creations
    assert poll_in_a_new_process(world, "crmUpdatedRecords", inputs, state) == []


@pytest.mark.parametrize("world", READINGS, indirect=True)
def test_fresh_connectors_see_each_change_once_and_only_creations_as_new(world: World) -> None:
    """The Python API with a new Connector per poll: crmUpdatedRecords reports creations and updates,
    crmNewRecords creations only, each exactly once."""
    rng = random.Random(7)
    states: dict[str, Any] = {"crmUpdatedRecords": None, "crmNewRecords": None}
    created: set[str] = set()
    since = crm_time(world.clock.now)
    for _ in range(12):
        before = set(world.versions)
        world.create(rng.choice([3, 120, 260]))
        if before:
            world.update(rng.sample(sorted(before), min(50, len(before))))
        world.clock.now += rng.choice([1, 2])
        got = {}
        for key in states:
            connector = Connector.load()
            try:
                result = connector.poll(
                    key, {"recordType": "Leads", "since": since}, states[key], connection=world.connection
                )
            finally:
                connector.close()
            states[key] = json.loads(json.dumps(result["state"]))  # what an engine stores
            got[key] = [r["id"] for r in result["records"]]
        new = set(world.versions) - before
        expected = world.settled()
        assert sorted(got["crmUpdatedRecords"]) == sorted(expected)
        assert sorted(got["crmNewRecords"]) == sorted(new - created)
        created |= new


def test_a_quiet_crm_poll_costs_one_request(world: World) -> None:
    world.create(250)
    world.create(250)
    world.clock.now += 5
    state = world.connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, None, connection=world.connection)[
        "state"
    ]
    httpx.delete(f"{world.base}/__sandbox/stats")
    world.update(sorted(world.versions)[:10])
    world.clock.now += 1
    result = world.connector.poll("crmUpdatedRecords", {"recordType": "Leads"}, state, connection=world.connection)
    assert len(result["records"]) == 10
    requests = httpx.get(f"{world.base}/__sandbox/stats").json()["requests"]
    assert requests == {"PUT /crm/v8/Leads": 1, "GET /crm/v8/Leads": 1}


def test_books_triggers_hand_out_new_and_changed_records_once(world: World) -> None:
    connector, connection, clock = world.connector, world.connection, world.clock

    def contact(name: str) -> str:
        inputs = {"recordType": "contacts", "fieldValues": {"contact_name": name}}
        made = connector.run("booksCreateRecord", inputs, connection=connection)
        return str(made["data"]["contact"]["contact_id"])

    def poll(key: str, state: Any) -> tuple[list[str], Any]:
        result = connector.poll(key, {"recordType": "contacts"}, state, connection=connection)
        return [r["contact_id"] for r in result["records"]], result["state"]

    new_state = poll("booksNewRecords", None)[1]
    changed_state = poll("booksUpdatedRecords", None)[1]
    first = [contact(f"First {n}") for n in range(250)]  # more than a page, all in one second
    clock.now += 1
    new, new_state = poll("booksNewRecords", new_state)
    changed, changed_state = poll("booksUpdatedRecords", changed_state)
    assert sorted(new) == sorted(first) and sorted(changed) == sorted(first)  # one second: any order

    connector.run(
        "booksUpdateRecord",
        {"recordType": "contacts", "recordId": first[3], "fieldValues": {"website": "zylker.example"}},
        connection=connection,
    )
    second = [contact(f"Second {n}") for n in range(3)]
    new, new_state = poll("booksNewRecords", new_state)
    assert new == []  # their second is still running
    clock.now += 1
    new, new_state = poll("booksNewRecords", new_state)
    changed, changed_state = poll("booksUpdatedRecords", changed_state)
    assert sorted(new) == sorted(second) and sorted(changed) == sorted([first[3], *second])
    clock.now += 5
    assert poll("booksNewRecords", new_state)[0] == [] and poll("booksUpdatedRecords", changed_state)[0] == []
