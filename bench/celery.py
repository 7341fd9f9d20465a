"""Throughput of `zoho.run_action` on Celery: actions per second with 1 and 8 worker processes.

    python -m bench.celery

The sandbox runs in its own process; a real worker (`celery -A connector.engines.celery worker --pool=prefork
-c N`) reads RabbitMQ (ZOHO_CELERY_BROKER, default amqp://guest:guest@127.0.0.1:5672//) and writes results to Redis
(ZOHO_CELERY_BACKEND, default redis://127.0.0.1:6379/0; here database 14). Each round enqueues ACTIONS crmGetRecord
tasks at once and waits for every result; the workers are warmed up first (each process loads the manifest and
finds its token once). For scale, the same calls one after the other in this process, without Celery.
Skipped, saying why, when RabbitMQ or Redis is not reachable.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._sandbox import BIN, access_connection, sandbox_process

os.environ.setdefault("ZOHO_CELERY_QUEUE", f"zoho-bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("ZOHO_CELERY_BACKEND", "redis://127.0.0.1:6379/14")

ACTIONS = 600
WORKERS = (1, 8)
ROOT = Path(__file__).resolve().parents[1]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _worker(processes: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "connector.engines.celery",
                "worker",
                "--pool=prefork",
                "-c",
                str(processes),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "warning",
                "-n",
                f"bench-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process


def _round(payload: dict[str, Any], count: int) -> float:
    """Seconds from enqueueing `count` tasks to holding every result."""
    from celery.result import ResultSet

    from connector.engines.celery import app, run_action

    start = time.perf_counter()
    results = ResultSet([run_action.apply_async((payload,)) for _ in range(count)], app=app)
    answers = results.get(timeout=600)
    elapsed = time.perf_counter() - start
    assert len(answers) == count
    return elapsed


def throughput(processes: int, base: str, lead: str, workdir: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ZOHO_CONNECTIONS": str(workdir / "connections.json"),
        "ZOHO_CONNECTOR_HOME": str(workdir / "home"),
    }
    worker = _worker(processes, env, workdir / f"worker-{processes}.log")
    try:
        payload = {"action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": lead}, "connection": "sb"}
        _round(payload, processes * 10)  # the worker is up, and every pool process has run a task
        seconds = _round(payload, ACTIONS)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
    return {"processes": processes, "actions": ACTIONS, "seconds": seconds, "per_second": ACTIONS / seconds}


def in_process(base: str, lead: str, connection: dict[str, Any]) -> float:
    from connector import Connector

    with Connector.load(engine_mode=True) as connector:
        inputs = {"recordType": "Leads", "recordId": lead}
        connector.run("crmGetRecord", inputs, connection=connection)
        start = time.perf_counter()
        for _ in range(ACTIONS):
            connector.run("crmGetRecord", inputs, connection=connection)
        return ACTIONS / (time.perf_counter() - start)


def main() -> None:
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379)):
        if not _reachable("127.0.0.1", port):
            print(f"Celery: skipped, {name} is not reachable at 127.0.0.1:{port}")
            return
    from connector import Connector
    from connector.engines.celery import app

    print(f"zoho.run_action on Celery: {ACTIONS} crmGetRecord tasks at once, RabbitMQ broker, Redis results")
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        connection = access_connection(base)
        (workdir / "connections.json").write_text(json.dumps({"sb": connection}))
        with Connector.load() as connector:
            created = connector.run(
                "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Bench"}}, connection=connection
            )
        lead = str(created["data"]["data"][0]["details"]["id"])
        print(
            f"    in this process, one after the other, no Celery: {in_process(base, lead, connection):.0f} actions/s"
        )
        try:
            for processes in WORKERS:
                r = throughput(processes, base, lead, workdir)
                print(
                    f"    {r['processes']} worker process(es): {r['actions']} actions in {r['seconds']:.2f}s, "
                    f"{r['per_second']:.0f} actions/s"
                )
        finally:
            with app.connection_for_write() as broker:
                app.amqp.queues[str(app.conf.task_default_queue)].bind(broker.default_channel).delete()


if __name__ == "__main__":
    main()
