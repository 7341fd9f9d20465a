"""Bulk writes: `crmCreateRecords` of 10,000 records against a sandbox that answers every call in 50 ms.

    python -m bench.bulk

Targets: exactly 100 requests (Zoho's 100 records a call); with a concurrency cap of 10, wall time within 1.3x of
the ideal 100 x 50 ms / 10 = 0.5 s; and never more than the cap in flight, by the sandbox's own count (its own cap
is 10 too, so one more would have been answered 429). Run once blocking (`run`: a thread pool) and once async
(`arun`: tasks under the connection's semaphore). Besides the whole call, the send phase is shown: from the first
request leaving to the last answer arriving, i.e. without checking the 10,000 records' inputs, which happens before
anything is sent so that bad input sends nothing.

Each line also gives the CPU time of the client (this process) and of the sandbox process during the call, and the
load average (the machine may be shared), and a `floor` line sends the same 100 bodies, encoded beforehand, with
plain httpx from 10 threads and reads nothing back but the JSON: what the sandbox and the machine allow any client.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from bench._sandbox import access_connection, cpu_seconds, sandbox_process
from connector import Connector


class Timed(httpx.HTTPTransport):
    """Notes when the first request left and the last answer arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.marks.append(time.perf_counter())
        response = super().handle_request(request)
        self.marks.append(time.perf_counter())
        return response


class ATimed(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.marks.append(time.perf_counter())
        response = await super().handle_async_request(request)
        self.marks.append(time.perf_counter())
        return response


RECORDS = 10_000
SLOW_MS = 50
CAP = 10
IDEAL = (RECORDS // 100) * SLOW_MS / 1000 / CAP


def _records(tag: str) -> list[dict[str, Any]]:
    return [{"Last_Name": f"Bulk {tag} {i}", "Email": f"bulk-{tag}-{i}@example.com"} for i in range(RECORDS)]


def measure(mode: str) -> dict[str, Any]:
    with sandbox_process("--slow-ms", str(SLOW_MS), "--max-concurrent", str(CAP)) as base:
        connection = {**access_connection(base), "max_concurrency": CAP}
        inputs = {"recordType": "Leads", "records": _records(mode), "trigger": []}
        sync_transport, async_transport = Timed(), ATimed()
        connector = Connector.load(transport=sync_transport, async_transport=async_transport)
        # Warm up the client (pool, manifest, token) so the figure is the batch alone.
        connector.run(
            "crmCreateRecords", {"recordType": "Leads", "records": [{"Last_Name": "warm"}]}, connection=connection
        )
        httpx.delete(f"{base}/__sandbox/stats", timeout=30).raise_for_status()
        sync_transport.marks.clear()
        load = os.getloadavg()[0]
        sandbox_cpu, client_cpu = cpu_seconds(base), time.process_time()
        start = time.perf_counter()
        if mode == "async":

            async def go() -> dict[str, Any]:
                try:
                    return await connector.arun("crmCreateRecords", inputs, connection=connection)
                finally:
                    await connector.aclose()

            result = asyncio.run(go())
        else:
            result = connector.run("crmCreateRecords", inputs, connection=connection)
            connector.close()
        seconds = time.perf_counter() - start
        client_cpu, sandbox_cpu = time.process_time() - client_cpu, cpu_seconds(base) - sandbox_cpu
        marks = async_transport.marks if mode == "async" else sync_transport.marks
        stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
    return {
        "mode": mode,
        "seconds": seconds,
        "sending": max(marks) - min(marks),
        "requests": stats["requests"].get("POST /crm/v8/Leads", 0),
        "peak": stats["peak_in_flight"],
        "throttled": sum(stats["throttled"].values()),
        "ok": sum(e["status"] == "success" for e in result["data"]),
        "client_cpu": client_cpu,
        "sandbox_cpu": sandbox_cpu,
        "load": (load, os.getloadavg()[0]),
    }


def measure_floor() -> dict[str, Any]:
    """The same 100 calls without the connector: bodies encoded beforehand, 10 threads of plain httpx."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    with sandbox_process("--slow-ms", str(SLOW_MS), "--max-concurrent", str(CAP)) as base:
        token = access_connection(base)["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}", "Content-Type": "application/json"}
        records = _records("floor")
        bodies = [json.dumps({"data": records[i : i + 100], "trigger": []}).encode() for i in range(0, RECORDS, 100)]
        with httpx.Client(headers=headers, timeout=30) as client:
            client.post(f"{base}/crm/v8/Leads", json={"data": [{"Last_Name": "warm"}]})
            httpx.delete(f"{base}/__sandbox/stats", timeout=30).raise_for_status()
            load = os.getloadavg()[0]
            sandbox_cpu, client_cpu = cpu_seconds(base), time.process_time()
            start = time.perf_counter()
            with ThreadPoolExecutor(CAP) as pool:
                answers = list(pool.map(lambda body: client.post(f"{base}/crm/v8/Leads", content=body).json(), bodies))
            seconds = time.perf_counter() - start
            client_cpu, sandbox_cpu = time.process_time() - client_cpu, cpu_seconds(base) - sandbox_cpu
        stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
    return {
        "mode": "floor",
        "seconds": seconds,
        "sending": seconds,
        "requests": stats["requests"].get("POST /crm/v8/Leads", 0),
        "peak": stats["peak_in_flight"],
        "throttled": sum(stats["throttled"].values()),
        "ok": sum(row["status"] == "success" for answer in answers for row in answer["data"]),
        "client_cpu": client_cpu,
        "sandbox_cpu": sandbox_cpu,
        "load": (load, os.getloadavg()[0]),
    }


def main() -> None:
    print(
        f"crmCreateRecords of {RECORDS:,} records, sandbox --slow-ms {SLOW_MS}, cap {CAP} "
        f"(targets: {RECORDS // 100} requests, <= {1.3 * IDEAL:.2f}s = 1.3 x {IDEAL:.2f}s, peak <= {CAP})"
    )
    for mode in ("sync", "async", "floor"):
        r = measure_floor() if mode == "floor" else measure(mode)
        print(
            f"    {r['mode']:5}: {r['requests']} requests, {r['seconds']:.3f}s ({r['seconds'] / IDEAL:.2f}x ideal; "
            f"send phase {r['sending']:.3f}s, {r['sending'] / IDEAL:.2f}x), "
            f"peak {r['peak']} in flight, {r['throttled']} answered 429, {r['ok']:,}/{RECORDS:,} created"
        )
        print(
            f"           CPU: client {r['client_cpu']:.3f}s + sandbox {r['sandbox_cpu']:.3f}s = "
            f"{r['client_cpu'] + r['sandbox_cpu']:.3f}s in {r['seconds']:.3f}s of wall time on {os.cpu_count()} cores; "
            f"load average {r['load'][0]:.2f} before, {r['load'][1]:.2f} after"
        )


if __name__ == "__main__":
    main()
