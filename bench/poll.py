"""What a poll costs when little changed: requests and time per poll with 100,000 unchanged records and 10 changes.

    python -m bench.poll [N]

The sandbox runs in its own process with N leads (and N Books contacts), so the client's CPU time per poll is
measured apart from the wall time, which includes the sandbox filtering and sorting all N records per request.
Each of the four timestamp poll triggers (crm/books, updated/new records) is measured: after a first poll sets
the state, each round changes 10 records (creates them, for the new-records triggers), waits for their second to
be over (a poll leaves the second still running to the next one), then polls; the sandbox's own request counter
says how many list requests the poll made. A fetch-and-diff trigger would read every record: N / 200 requests a
poll.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench._sandbox import access_connection, sandbox_process, seed
from connector import Connector

ROUNDS = 5
CHANGES = 10


def _requests(base: str, path: str) -> int:
    counts: dict[str, int] = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()["requests"]
    return counts.get(f"GET {path}", 0)


def _rounds(
    base: str,
    connector: Connector,
    connection: dict[str, Any],
    trigger: str,
    inputs: dict[str, Any],
    path: str,
    change: Callable[[], None],
) -> dict[str, Any]:
    """Poll once to start, then ROUNDS times after CHANGES changes each: requests and seconds per poll."""
    time.sleep(1.1)  # the seeded records' second is over
    state = connector.poll(trigger, inputs, None, connection=connection)["state"]
    requests, seconds, cpu, handed = [], [], [], []
    for _ in range(ROUNDS):
        change()
        time.sleep(1.1)  # their second is over
        httpx.delete(f"{base}/__sandbox/stats", timeout=30)
        started, used = time.perf_counter(), time.process_time()
        result = connector.poll(trigger, inputs, state, connection=connection)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
        requests.append(_requests(base, path))
        handed.append(len(result["records"]))
        state = result["state"]
    return {
        "requests": requests,
        "records": handed,
        "ms": 1000 * statistics.median(seconds),
        "cpu_ms": 1000 * statistics.median(cpu),
    }


def measure(count: int = 100_000) -> dict[str, dict[str, Any]]:
    rng = random.Random(1)
    out: dict[str, dict[str, Any]] = {}
    with sandbox_process() as base, Connector.load() as connector:
        seed(base, "Leads", count)
        httpx.post(f"{base}/__sandbox/seed", json={"books_kind": "contacts", "count": count}, timeout=300)
        connection = access_connection(base)
        leads = [
            r["id"]
            for r in connector.run("crmGetRecords", {"recordType": "Leads", "fields": ["id"]}, connection=connection)[
                "data"
            ]["data"]
        ]
        contacts = connector.run("booksGetRecords", {"recordType": "contacts"}, connection=connection)["data"]
        contact_ids = [c["contact_id"] for c in contacts["contacts"]]

        def update_leads() -> None:
            records = [{"id": rid, "Description": f"changed {rng.random()}"} for rid in rng.sample(leads, CHANGES)]
            connector.run("crmUpdateRecords", {"recordType": "Leads", "records": records}, connection=connection)

        def create_leads() -> None:
            records = [{"Last_Name": f"New {rng.random()}"} for _ in range(CHANGES)]
            connector.run("crmCreateRecords", {"recordType": "Leads", "records": records}, connection=connection)

        def update_contacts() -> None:
            for cid in rng.sample(contact_ids, CHANGES):
                inputs = {"recordType": "contacts", "recordId": cid, "fieldValues": {"website": "changed.example"}}
                connector.run("booksUpdateRecord", inputs, connection=connection)

        def create_contacts() -> None:
            for _ in range(CHANGES):
                inputs = {"recordType": "contacts", "fieldValues": {"contact_name": f"New {rng.random()}"}}
                connector.run("booksCreateRecord", inputs, connection=connection)

        crm = {"recordType": "Leads", "fields": ["Last_Name", "Description"]}
        out["crmUpdatedRecords"] = _rounds(
            base, connector, connection, "crmUpdatedRecords", crm, "/crm/v8/Leads", update_leads
        )
        out["crmNewRecords"] = _rounds(base, connector, connection, "crmNewRecords", crm, "/crm/v8/Leads", create_leads)
        out["booksUpdatedRecords"] = _rounds(
            base,
            connector,
            connection,
            "booksUpdatedRecords",
            {"recordType": "contacts"},
            "/books/v3/contacts",
            update_contacts,
        )
        out["booksNewRecords"] = _rounds(
            base,
            connector,
            connection,
            "booksNewRecords",
            {"recordType": "contacts"},
            "/books/v3/contacts",
            create_contacts,
        )
    return out


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for trigger, result in measure(count).items():
        print(
            f"{trigger}: {count:,} unchanged records, {CHANGES} changes a round: "
            f"requests per poll {result['requests']}, "
            f"records per poll {result['records']}, median {result['ms']:.1f} ms a poll "
            f"({result['cpu_ms']:.1f} ms of it the client's CPU; the rest is the sandbox scanning its records) "
            f"(fetch-and-diff: {count // 200:,} requests)"
        )


if __name__ == "__main__":
    main()
