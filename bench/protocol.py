"""Per-request overhead of the long-lived workers for engines in other languages, against the sandbox in its own
process over loopback.

    python -m bench.protocol

The same `crmGetRecord` request, N times, (a) in-process with `Connector.run`, (b) through one `zoho-connector
invoke --lines` process (a request written, its response read, the next written), (c) through `zoho-connector
serve` (HTTP keep-alive); each worker's overhead is its time per request minus the in-process time. Then the same
with 8 requests in flight (8 threads in-process, 8 lines ahead, 8 HTTP clients), and, for scale, one `invoke`
process per request (what a worker saves).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from bench._sandbox import BIN, access_connection, sandbox_process
from connector import Connector

REQUESTS = 1000
IN_FLIGHT = 8


def _lead(connection: dict[str, Any]) -> str:
    with Connector.load() as connector:
        created = connector.run(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Bench"}}, connection=connection
        )
    return str(created["data"]["data"][0]["details"]["id"])


def _rounds(measure: Callable[[], float], rounds: int = 3) -> float:
    """The median of a few rounds of a measure (seconds per request)."""
    return statistics.median(measure() for _ in range(rounds))


# --- in-process ------------------------------------------------------------------------------------------------


def in_process(connector: Connector, inputs: dict[str, Any], *, threads: int = 1) -> float:
    def work(count: int) -> None:
        for _ in range(count):
            connector.run("crmGetRecord", inputs, connection="bench")

    return _spread(work, threads)


def _spread(work: Callable[[int], None], threads: int) -> float:
    """Seconds per request when REQUESTS are split over `threads` threads."""
    pool = [threading.Thread(target=work, args=(REQUESTS // threads,)) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return (time.perf_counter() - start) / (REQUESTS // threads * threads)


# --- invoke --lines --------------------------------------------------------------------------------------------


@contextmanager
def lines_worker(connections: Path) -> Iterator[tuple[IO[str], IO[str]]]:
    process = subprocess.Popen(
        [str(BIN / "zoho-connector"), "--connections", str(connections), "invoke", "--lines"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield process.stdin, process.stdout
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def lines_sequential(streams: tuple[IO[str], IO[str]], request: dict[str, Any]) -> float:
    stdin, stdout = streams
    line = json.dumps(request) + "\n"
    start = time.perf_counter()
    for _ in range(REQUESTS):
        stdin.write(line)
        stdin.flush()
        if not json.loads(stdout.readline())["ok"]:
            raise RuntimeError("a request failed")
    return (time.perf_counter() - start) / REQUESTS


def lines_in_flight(streams: tuple[IO[str], IO[str]], request: dict[str, Any]) -> float:
    """IN_FLIGHT requests ahead at all times: a new line goes out as each response comes back."""
    stdin, stdout = streams
    line = json.dumps(request) + "\n"
    start = time.perf_counter()
    stdin.write(line * IN_FLIGHT)
    stdin.flush()
    sent = IN_FLIGHT
    for _ in range(REQUESTS):
        if not json.loads(stdout.readline())["ok"]:
            raise RuntimeError("a request failed")
        if sent < REQUESTS:
            stdin.write(line)
            stdin.flush()
            sent += 1
    return (time.perf_counter() - start) / REQUESTS


# --- serve -----------------------------------------------------------------------------------------------------


@contextmanager
def http_worker(connections: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [str(BIN / "zoho-connector"), "--connections", str(connections), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        base: str = json.loads(process.stdout.readline())["listening"]
        for _ in range(200):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def served(base: str, body: dict[str, Any], *, threads: int = 1) -> float:
    def work(count: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(count):
                if client.post("/actions/crmGetRecord", json=body).status_code != 200:
                    raise RuntimeError("a request failed")

    return _spread(work, threads)


# --- one process per request -----------------------------------------------------------------------------------


def one_shot(connections: Path, request: dict[str, Any], runs: int = 11) -> float:
    argv = [str(BIN / "zoho-connector"), "--connections", str(connections), "invoke"]
    text = json.dumps(request)
    subprocess.run(argv, input=text, text=True, check=True, capture_output=True)  # the manifest cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, input=text, text=True, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure() -> dict[str, float]:
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp:
        connection = access_connection(base)
        record_id = _lead(connection)
        connections = Path(tmp) / "connections.json"
        connections.write_text(json.dumps({"bench": connection}))
        inputs = {"recordType": "Leads", "recordId": record_id}
        request = {"action": "crmGetRecord", "inputs": inputs, "connection": "bench"}
        body = {"inputs": inputs, "connection": "bench"}
        out: dict[str, float] = {}
        with Connector.load(connections=connections) as connector:
            in_process(connector, inputs)  # warm: connections opened, modules imported
            out["run_ms"] = _rounds(lambda: in_process(connector, inputs)) * 1000
            out["run_8_ms"] = _rounds(lambda: in_process(connector, inputs, threads=IN_FLIGHT)) * 1000
        with lines_worker(connections) as streams:
            lines_sequential(streams, request)
            out["lines_ms"] = _rounds(lambda: lines_sequential(streams, request)) * 1000
            out["lines_8_ms"] = _rounds(lambda: lines_in_flight(streams, request)) * 1000
        with http_worker(connections) as url:
            served(url, body)
            out["serve_ms"] = _rounds(lambda: served(url, body)) * 1000
            out["serve_8_ms"] = _rounds(lambda: served(url, body, threads=IN_FLIGHT)) * 1000
        out["one_shot_ms"] = one_shot(connections, request) * 1000
    return out


def main() -> None:
    r = measure()
    print(f"{REQUESTS} crmGetRecord requests, ms per request (median of 3 rounds)")
    print(f"  one at a time:  in-process run {r['run_ms']:.2f}  |  invoke --lines {r['lines_ms']:.2f} ", end="")
    print(f"(+{r['lines_ms'] - r['run_ms']:.2f})  |  serve {r['serve_ms']:.2f} (+{r['serve_ms'] - r['run_ms']:.2f})")
    print(
        f"  {IN_FLIGHT} in flight:    in-process run {r['run_8_ms']:.2f}  |  invoke --lines {r['lines_8_ms']:.2f}  ",
        end="",
    )
    print(f"|  serve {r['serve_8_ms']:.2f}")
    print(f"  one `invoke` process per request: {r['one_shot_ms']:.0f} ms")


if __name__ == "__main__":
    main()
