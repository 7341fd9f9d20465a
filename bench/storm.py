"""A 429 storm: the sandbox answers every call with 429 and `Retry-After: 1` for 2 seconds.

    python -m bench.storm

Measures, for one caller and for 8 concurrent callers, the requests sent before the previous answer's Retry-After
had elapsed (target 0) and the time until every caller succeeded (target <= the 2 s window + 10%).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from itertools import pairwise
from typing import Any

import httpx

from bench._sandbox import access_connection, sandbox_process
from connector import Connector

WINDOW_SECONDS = 2.0
RETRY_AFTER = 1


class RecordingTransport(httpx.HTTPTransport):
    """Notes when each thread sent a request and what Retry-After came back."""

    def __init__(self) -> None:
        super().__init__()
        self.log: dict[int, list[tuple[float, int, float | None]]] = defaultdict(list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = super().handle_request(request)
        wait = response.headers.get("retry-after")
        self.log[threading.get_ident()].append((sent, response.status_code, float(wait) if wait else None))
        return response


def early_requests(log: dict[int, list[tuple[float, int, float | None]]]) -> int:
    """Requests a caller sent before the Retry-After of its previous answer had elapsed."""
    early = 0
    for calls in log.values():
        for (sent, status, wait), (next_sent, _, _) in pairwise(calls):
            if status == 429 and wait is not None and next_sent - sent < wait:
                early += 1
    return early


def storm(callers: int) -> dict[str, Any]:
    with sandbox_process() as base:
        connection = access_connection(base)
        transport = RecordingTransport()
        with Connector.load(transport=transport) as connector:
            created = connector.run(
                "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Storm"}}, connection=connection
            )
            lead = created["data"]["data"][0]["details"]["id"]
            transport.log.clear()
            faults = {"kind": "429", "retry_after": RETRY_AFTER, "for_seconds": WINDOW_SECONDS}
            httpx.post(f"{base}/__sandbox/faults", json=faults, timeout=30).raise_for_status()
            start = time.monotonic()
            done: list[float] = []

            def call() -> None:
                connector.run("crmGetRecord", {"recordType": "Leads", "recordId": lead}, connection=connection)
                done.append(time.monotonic() - start)

            threads = [threading.Thread(target=call) for _ in range(callers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    requests = sum(len(calls) for calls in transport.log.values())
    return {
        "callers": callers,
        "requests": requests,
        "early": early_requests(transport.log),
        "succeeded": len(done),
        "seconds": max(done),
    }


def main() -> None:
    target = WINDOW_SECONDS * 1.1
    print(f"429 storm: Retry-After {RETRY_AFTER}s for {WINDOW_SECONDS:.0f}s (target: 0 early, <= {target:.1f}s)")
    for callers in (1, 8):
        r = storm(callers)
        print(
            f"    {r['callers']} caller(s): {r['requests']} requests, {r['early']} before Retry-After elapsed, "
            f"{r['succeeded']}/{r['callers']} succeeded, all done in {r['seconds']:.2f}s"
        )


if __name__ == "__main__":
    main()
