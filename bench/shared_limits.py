"""Many workers, one account: 8 worker processes hammer one Zoho account on the sandbox through each token store.

    python -m bench.shared_limits [--seconds 6] [--processes 8] [--threads 8] [--slow-ms 200] [--stores sqlite,redis]

The sandbox (its own process) caps CRM calls in flight at the edition's 20 and answers 429 beyond it, and holds
every call `--slow-ms` ms. Each worker process runs `--threads` threads calling `crmGetRecord` in a loop on the
same connection (a refresh token, the store under test). Reported per store: the sandbox's own peak in-flight count
(target: <= the cap) and 429s for concurrency (target: 0), calls per second against the ideal (cap / the latency
of one call alone; target: >= 90%), what one slot costs (acquire + release, uncontended, in one process), and what
sharing costs a single caller making calls in a row. The last row runs with `shared_limits: false`: each process
counts alone, and the sandbox refuses the excess.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench._sandbox import sandbox_process
from connector import Connector
from connector.errors import ConnectorError
from tests.e2e.connections import refreshing

CAP = 20  # the sandbox's default edition, enterprise


def worker(
    connection: dict[str, Any], record: str, threads: int, seconds: float, start: Any, go: Any, queue: Any
) -> None:
    """One worker process: every thread makes a first call (token, connection pools, imports: a long-running
    worker has them), the process says so on `queue` and waits for `go` (then `start` holds the window's start);
    the threads then call until the window ends, and the calls completed within it go on `queue`."""
    connector = Connector.load()
    inputs = {"recordType": "Leads", "recordId": record}
    warm = threading.Barrier(threads + 1)
    window = threading.Event()
    done: list[float] = []
    errors: list[str] = []

    def loop() -> None:
        connector.run("crmGetRecord", inputs, connection=connection)
        warm.wait()
        window.wait()
        time.sleep(max(start.value - time.time(), 0.0))
        while time.time() < start.value + seconds:
            try:
                connector.run("crmGetRecord", inputs, connection=connection)
            except ConnectorError as e:
                errors.append(f"{e.kind}: {e.message[:120]}")
                continue
            done.append(time.time())

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    warm.wait()
    queue.put("ready")
    go.wait(600)
    window.set()
    for thread in pool:
        thread.join()
    connector.close()
    start_at = start.value
    queue.put({"calls": sum(start_at <= t <= start_at + seconds for t in done), "errors": errors})


def slot_cost(url: str, pairs: int = 300) -> float:
    """Microseconds of one acquire + release on an uncontended name of the store at `url`."""
    from connector.auth.stores import open_store
    from connector.auth.stores.leases import leases_of

    leases = leases_of(open_store(url))
    assert leases is not None
    name = uuid.uuid4().hex
    leases.release_slot(name, leases.acquire_slot(name, CAP, 35.0) or "")
    start = time.perf_counter()
    for _ in range(pairs):
        leases.release_slot(name, leases.acquire_slot(name, CAP, 35.0) or "")
    return (time.perf_counter() - start) / pairs * 1e6


@contextmanager
def store_url(kind: str, tmp: Path) -> Iterator[str | None]:
    """A fresh store of `kind` (None when its server is unreachable), removed afterwards: the test suite's own
    store setup and cleanup (tests/connector/auth/stores/kinds.py), in a folder of its own under `tmp`."""
    from tests.connector.auth.stores.kinds import SERVERS, fresh
    from tests.servers import reachable

    name = "sqlite" if kind == "sqlite-unshared" else kind
    if name in SERVERS and not reachable(*SERVERS[name][1:]):
        yield None
        return
    folder = tmp / f"{kind}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    with fresh(name, folder, tag="bench") as store:
        yield store.url


def single_caller_cost(base: str, record: str, url: str, calls: int = 500) -> tuple[float, float]:
    """Milliseconds per call for one caller making `calls` calls in a row (no artificial latency), with the
    account's limits shared through the store at `url` and with `shared_limits: false`."""
    connection = refreshing(base, url)
    inputs = {"recordType": "Leads", "recordId": record}
    result = []
    for shared in (True, False):
        with Connector.load() as connector:
            chosen = {**connection, "shared_limits": shared}
            for _ in range(20):
                connector.run("crmGetRecord", inputs, connection=chosen)
            start = time.perf_counter()
            for _ in range(calls):
                connector.run("crmGetRecord", inputs, connection=chosen)
            result.append((time.perf_counter() - start) / calls * 1000)
    return result[0], result[1]


def one_call_latency(base: str, connection: dict[str, Any], record: str) -> float:
    with Connector.load() as connector:
        inputs = {"recordType": "Leads", "recordId": record}
        connector.run("crmGetRecord", inputs, connection=connection)
        times = []
        for _ in range(15):
            start = time.perf_counter()
            connector.run("crmGetRecord", inputs, connection=connection)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(kind: str, args: argparse.Namespace, base: str, record: str, tmp: Path) -> dict[str, Any] | None:
    with store_url(kind, tmp) as url:
        if url is None:
            return None
        connection = refreshing(base, url)
        if kind == "sqlite-unshared":
            connection["shared_limits"] = False
        latency = one_call_latency(base, connection, record)
        cost = slot_cost(url)
        httpx.post(f"{base}/__sandbox/faults", json={"slow_ms": 0}, timeout=30).raise_for_status()
        alone = single_caller_cost(base, record, url) if kind != "sqlite-unshared" else None
        httpx.post(f"{base}/__sandbox/faults", json={"slow_ms": args.slow_ms}, timeout=30).raise_for_status()
        context = multiprocessing.get_context("spawn")
        start, go, queue = context.Value("d", 0.0), context.Event(), context.Queue()
        processes = [
            context.Process(target=worker, args=(connection, record, args.threads, args.seconds, start, go, queue))
            for _ in range(args.processes)
        ]
        for process in processes:
            process.start()
        for _ in processes:  # every process has imported, refreshed nothing new and warmed its pool
            assert queue.get(timeout=300) == "ready"
        httpx.delete(f"{base}/__sandbox/stats", timeout=30).raise_for_status()
        start.value = time.time() + 0.2
        go.set()
        results = [queue.get(timeout=args.seconds + 300) for _ in processes]
        for process in processes:
            process.join(60)
        stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
    calls = sum(r["calls"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    return {
        "store": kind,
        "peak": stats["peak_in_flight"],
        "throttled": stats["throttled"].get("concurrency", 0),
        "errors": len(errors),
        "error_sample": errors[:2],
        "rate": calls / args.seconds,
        "ideal": CAP / latency,
        "latency_ms": latency * 1000,
        "slot_us": cost,
        "alone": alone,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--slow-ms", type=float, default=200.0)  # a fast Zoho answer
    parser.add_argument("--stores", default="sqlite,file,redis,postgresql,mariadb,sqlite-unshared")
    args = parser.parse_args(argv)
    print(
        f"{args.processes} processes x {args.threads} threads on one account, cap {CAP} in flight, "
        f"{args.slow_ms:.0f} ms per call, {args.seconds:.0f} s each (targets: peak <= {CAP}, 0 x 429, >= 90% of ideal)"
    )
    print(
        f"    {'store':<16}{'peak':>5}{'429s':>6}{'calls/s':>9}{'ideal':>7}{'ratio':>7}{'slot µs':>9}"
        f"{'1 caller ms/call':>18}  errors"
    )
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp:
        httpx.post(f"{base}/__sandbox/faults", json={"slow_ms": args.slow_ms}, timeout=30).raise_for_status()
        httpx.post(f"{base}/__sandbox/seed", json={"module": "Leads", "count": 1}, timeout=30).raise_for_status()
        record = _first_lead(base)
        for kind in args.stores.split(","):
            r = run(kind, args, base, record, Path(tmp))
            if r is None:
                print(f"    {kind:<16}(server not reachable: skipped)")
                continue
            alone = f"{r['alone'][0]:.2f} vs {r['alone'][1]:.2f}" if r["alone"] else "—"
            errors = f"{r['errors']} {r['error_sample'] or ''}"
            print(
                f"    {r['store']:<16}{r['peak']:>5}{r['throttled']:>6}{r['rate']:>9.1f}{r['ideal']:>7.1f}"
                f"{r['rate'] / r['ideal']:>7.0%}{r['slot_us']:>9.0f}{alone:>18}  {errors}"
            )
    print(
        "    slot µs: one acquire + release, uncontended; 1 caller: ms per call in a row without latency, "
        "shared vs shared_limits: false"
    )


def _first_lead(base: str) -> str:
    tokens = httpx.post(f"{base}/__sandbox/tokens", json={}, timeout=30).json()
    answer = httpx.get(
        f"{base}/crm/v8/Leads",
        params={"fields": "Last_Name", "per_page": 1},
        headers={"Authorization": f"Zoho-oauthtoken {tokens['access_token']}"},
        timeout=30,
    ).json()
    return str(answer["data"][0]["id"])


if __name__ == "__main__":
    main()
