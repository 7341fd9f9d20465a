"""Worker processes of the shared-limits tests (spawned, so in an importable module of their own)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from connector import Connector
from connector.errors import ConnectorError


def hammer(
    connection: dict[str, Any],
    action: str,
    inputs: dict[str, Any],
    callers: int,
    calls: int,
    asynchronous: bool,
    queue: Any,
    go: Any,
) -> None:
    """A worker: `callers` threads (or tasks) each run `action` `calls` times once `go` is set; puts
    `{"ok": n, "errors": [...]}` on `queue` (after a "ready" once its first call is done)."""
    connector = Connector.load()
    connector.run(action, inputs, connection=connection)  # the token, the pools: a running worker has them
    queue.put("ready")
    go.wait(120)
    errors: list[str] = []
    ok = 0
    if asynchronous:

        async def run_all() -> int:
            async def one() -> int:
                done = 0
                for _ in range(calls):
                    try:
                        await connector.arun(action, inputs, connection=connection)
                        done += 1
                    except ConnectorError as e:
                        errors.append(f"{e.kind}: {e.message}")
                return done

            counts = await asyncio.gather(*(one() for _ in range(callers)))
            await connector.aclose()
            return sum(counts)

        ok = asyncio.run(run_all())
    else:
        lock = threading.Lock()

        def one() -> None:
            nonlocal ok
            for _ in range(calls):
                try:
                    connector.run(action, inputs, connection=connection)
                except ConnectorError as e:
                    errors.append(f"{e.kind}: {e.message}")
                    continue
                with lock:
                    ok += 1

        threads = [threading.Thread(target=one) for _ in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    queue.put({"ok": ok, "errors": errors})


def call_and_hang(connection: dict[str, Any], inputs: dict[str, Any], started: Any) -> None:
    """Start one call (which holds the account's only slot while the sandbox is slow) and be killed meanwhile."""
    connector = Connector.load()
    started.set()
    connector.run("crmGetRecord", inputs, connection=connection)
    time.sleep(600)


def one_call(connection: dict[str, Any], action: str, inputs: dict[str, Any], queue: Any) -> None:
    """A worker process that makes one call: puts {"ok": true} or the error's {"type", "message", "retry_after"}."""
    with Connector.load() as connector:
        try:
            connector.run(action, inputs, connection=connection)
            queue.put({"ok": True})
        except ConnectorError as e:
            queue.put({"type": e.kind, "message": e.message, "retry_after": e.retry_after})
