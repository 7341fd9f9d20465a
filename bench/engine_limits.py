"""Many engine workers, one account: 8 Celery and 8 Temporal worker processes hammer one Zoho account.

    python -m bench.engine_limits [--workers 8] [--threads 8] [--slow-ms 500] [--calls 400] [--store redis]

As bench.shared_limits, but the callers are real engine workers running `zoho.run_action`: `--workers` Celery worker
processes (thread pool, `--threads` each) and `--workers` Temporal worker processes (`--threads` activity threads
each), every one with its own connector, sharing the connection's token store (Redis by default; `sqlite` works on
one machine). The sandbox (its own process) caps CRM calls in flight at the edition's 20, answers 429 beyond it,
and holds each call `--slow-ms` ms, so 8 x 8 = 64 callers want three times the cap. Reported per engine: the
sandbox's own peak in-flight count (target: <= the cap), its 429s for concurrency (target: 0), and `--calls`
crmGetRecord actions per second against the ideal, cap / one call's latency (target: >= 90%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import temporal as temporal_bench
from bench._sandbox import BIN, sandbox_process
from bench.shared_limits import CAP, _first_lead, one_call_latency, store_url
from tests.e2e.connections import refreshing
from tests.servers import reachable

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ZOHO_CELERY_QUEUE", f"zoho-bench-limits-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("ZOHO_CELERY_BACKEND", "redis://127.0.0.1:6379/14")


def _measured(base: str, calls: int, run: Any) -> dict[str, Any]:
    """Runs `run()` (which makes `calls` actions) with the sandbox's counters reset; its figures."""
    httpx.delete(f"{base}/__sandbox/stats", timeout=30).raise_for_status()
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
    return {
        "seconds": seconds,
        "rate": calls / seconds,
        "peak": stats["peak_in_flight"],
        "throttled": stats["throttled"].get("concurrency", 0),
    }


# --- Celery ------------------------------------------------------------------------------------------------------


@contextmanager
def celery_workers(count: int, threads: int, env: dict[str, str], folder: Path) -> Iterator[None]:
    command = [str(BIN / "celery"), "-A", "connector.engines.celery", "worker", "--pool=threads", "-c", str(threads)]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
    started = []
    for n in range(count):
        with (folder / f"celery-{n}.log").open("wb") as log:
            name = ["-n", f"limits-{n}-{uuid.uuid4().hex[:6]}@%h"]
            started.append(subprocess.Popen(command + name, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(60)


def celery_round(payload: dict[str, Any], count: int) -> None:
    from celery.result import ResultSet

    from connector.engines.celery import app, run_action

    results = ResultSet([run_action.apply_async((payload,)) for _ in range(count)], app=app)
    assert len(results.get(timeout=600)) == count


def celery(args: argparse.Namespace, base: str, lead: str, folder: Path) -> dict[str, Any] | None:
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379)):
        if not reachable("127.0.0.1", port):
            print(f"    celery: skipped, {name} is not reachable at 127.0.0.1:{port}")
            return None
    from connector.engines.celery import app

    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZOHO_CONNECTIONS": str(folder / "connections.json")}
    payload = {"action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": lead}, "connection": "acct"}
    try:
        with celery_workers(args.workers, args.threads, env, folder):
            celery_round(payload, args.workers * args.threads * 2)  # every worker up, each thread warm
            return _measured(base, args.calls, lambda: celery_round(payload, args.calls))
    finally:
        with app.connection_for_write() as broker:
            app.amqp.queues[str(app.conf.task_default_queue)].bind(broker.default_channel).delete()


# --- Temporal ----------------------------------------------------------------------------------------------------


AUTOMATION = """
name: bench-engine-limits
trigger: {webhook: {trigger: crmRecordEvents, inputs: {recordType: Leads}}}
steps:
  - name: each
    action: crmGetRecord
    for_each: ${trigger.records}
    inputs: {recordType: Leads, recordId: "${item.id}", fields: [Last_Name]}
"""  # one workflow reading a record per event handed over: that many zoho.run_action activities at once


async def _temporal_round(address: str, lead: str, calls: int) -> None:
    from temporalio.client import Client

    from connector.engines.temporal import start_automation

    client = await Client.connect(address)
    handle = await start_automation(
        client,
        AUTOMATION,
        "acct",
        task_queue=temporal_bench.QUEUE,
        trigger={"records": [{"id": lead}] * calls},
        options={"for_each_concurrency": 1000},
    )
    result = await handle.result()
    assert len(result["steps"]["each"]) == calls


def temporal(args: argparse.Namespace, base: str, lead: str, folder: Path) -> dict[str, Any] | None:
    missing = temporal_bench._missing()
    if missing:
        print(f"    temporal: skipped, missing {', '.join(missing)}; pip install 'zoho-connector[temporal]'")
        return None
    connections = folder / "connections.json"
    with (
        temporal_bench.dev_server() as address,
        temporal_bench.workers(args.workers, address, connections, folder, args.threads),
    ):
        asyncio.run(_temporal_round(address, lead, args.workers * args.threads * 2))
        return _measured(base, args.calls, lambda: asyncio.run(_temporal_round(address, lead, args.calls)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--slow-ms", type=float, default=500.0)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--store", default="redis", choices=("redis", "sqlite", "postgresql", "mariadb"))
    parser.add_argument("--engines", default="celery,temporal")
    args = parser.parse_args(argv)
    print(
        f"{args.workers} engine worker processes x {args.threads} threads on one account through a {args.store} "
        f"store, cap {CAP} in flight, {args.slow_ms:.0f} ms per call, {args.calls} actions "
        f"(targets: peak <= {CAP}, 0 x 429, >= 90% of ideal)"
    )
    print(f"    {'engine':<10}{'peak':>5}{'429s':>6}{'actions/s':>11}{'ideal':>7}{'ratio':>7}{'seconds':>9}")
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp, store_url(args.store, Path(tmp)) as store:
        if store is None:
            print(f"    skipped: the {args.store} server is not reachable")
            return
        folder = Path(tmp)
        httpx.post(f"{base}/__sandbox/seed", json={"module": "Leads", "count": 1}, timeout=30).raise_for_status()
        lead = _first_lead(base)
        connection = {**refreshing(base, store), "shared_limits": True}
        (folder / "connections.json").write_text(json.dumps({"acct": connection}))
        httpx.post(f"{base}/__sandbox/faults", json={"slow_ms": args.slow_ms}, timeout=30).raise_for_status()
        ideal = CAP / one_call_latency(base, connection, lead)
        for engine in args.engines.split(","):
            r = {"celery": celery, "temporal": temporal}[engine](args, base, lead, folder)
            if r is None:
                continue
            print(
                f"    {engine:<10}{r['peak']:>5}{r['throttled']:>6}{r['rate']:>11.1f}{ideal:>7.1f}"
                f"{r['rate'] / ideal:>7.0%}{r['seconds']:>9.2f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK can crash at interpreter exit after a finished run (temporalio/sdk-python#300)
