"""Core runtime benchmarks against the bundled sandbox, in its own process, over loopback.

    python -m bench.core

(a) cold start: a new `zoho-connector run crmGetRecord` process, and a new `zoho-connector invoke` process answering
    the same call as one engine-protocol request, beside `python -c "import httpx"` (the floor);
(b) per-call overhead: 2,000 crmGetRecord runs vs the same 2,000 requests on a bare httpx.Client;
(c) Fetch All of 100,000 CRM records: requests made (must be ceil(N/200)), peak RSS and, in a second traced walk,
    the Python heap's peak (tracemalloc), for several N.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import connector
from bench._sandbox import BIN, access_connection, sandbox_process, seed
from connector import Connector


def _a_lead(base: str, connection: dict[str, object]) -> str:
    with Connector.load() as connector:
        created = connector.run(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Bench"}}, connection=connection
        )
    return str(created["data"]["data"][0]["details"]["id"])


def _child_env(tmp: str) -> dict[str, str]:
    """As an installed package runs: with bytecode compiled and used (pip compiles a wheel on install)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["ZOHO_CONNECTOR_CACHE_DIR"] = str(Path(tmp) / "cache")
    return env


def _timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, input=stdin)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_start(runs: int = 21) -> dict[str, float]:
    """Medians over interleaved runs, so drift in the machine's load falls on both commands alike."""
    package = str(Path(connector.__file__).parent)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, stdout=subprocess.DEVNULL)
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp:
        connection = access_connection(base)
        lead = _a_lead(base, connection)
        conn = Path(tmp) / "connection.json"
        conn.write_text(json.dumps(connection))
        env = _child_env(tmp)
        inputs = json.dumps({"recordType": "Leads", "recordId": lead})
        ours = [str(BIN / "zoho-connector"), "run", "crmGetRecord", "--inputs", inputs, "--connection", f"@{conn}"]
        floor = [sys.executable, "-c", "import httpx"]
        invoke = [str(BIN / "zoho-connector"), "invoke"]
        one = {"action": "crmGetRecord", "inputs": json.loads(inputs), "connection": connection}
        request = json.dumps(one).encode()
        _timed(ours, env)  # builds the manifest cache once, as the first run after an install does
        samples = [(_timed(floor, env), _timed(ours, env), _timed(invoke, env, request)) for _ in range(runs)]
    result = {
        "floor_s": statistics.median(f[0] for f, _, _ in samples),
        "connector_s": statistics.median(o[0] for _, o, _ in samples),
        "invoke_s": statistics.median(i[0] for _, _, i in samples),
        "floor_cpu_s": statistics.median(f[1] for f, _, _ in samples),
        "connector_cpu_s": statistics.median(o[1] for _, o, _ in samples),
        "invoke_cpu_s": statistics.median(i[1] for _, _, i in samples),
    }
    result["ratio"] = result["connector_s"] / result["floor_s"]
    result["cpu_ratio"] = result["connector_cpu_s"] / result["floor_cpu_s"]
    result["invoke_ratio"] = result["invoke_s"] / result["floor_s"]
    return result


def per_call_overhead(calls: int = 2000) -> dict[str, float]:
    with sandbox_process() as base:
        connection = access_connection(base)
        lead = _a_lead(base, connection)
        inputs = {"recordType": "Leads", "recordId": lead}
        url = f"{base}/crm/v8/Leads/{lead}"
        headers = {"Authorization": f"Zoho-oauthtoken {connection['access_token']}"}
        with Connector.load() as connector, httpx.Client(timeout=30) as client:
            connector.run("crmGetRecord", inputs, connection=connection)  # warm: pool, validator
            client.get(url, headers=headers).json()
            # interleaved rounds, so drift in the machine's load falls on both sides alike
            ours = bare = 0.0
            for _ in range(calls // 100):
                start = time.perf_counter()
                for _ in range(100):
                    connector.run("crmGetRecord", inputs, connection=connection)
                ours += time.perf_counter() - start
                start = time.perf_counter()
                for _ in range(100):
                    client.get(url, headers=headers).json()
                bare += time.perf_counter() - start
    return {"bare_ms_per_call": bare / calls * 1000, "connector_ms_per_call": ours / calls * 1000, "ratio": ours / bare}


_FETCH_CHILD = """
import json, resource, sys, tracemalloc
from connector import Connector
base, connection, traced = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "traced"
if traced:
    tracemalloc.start()
with Connector.load() as connector:
    records = connector.iter_records("crmGetRecords", {"recordType": "Bench_Items", "fields": ["Name"]},
                                     connection=connection)
    count = sum(1 for _ in records)
if traced:
    print(json.dumps({"records": count, "heap_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}))
else:
    print(json.dumps({"records": count, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fetch_all(totals: tuple[int, ...] = (10_000, 50_000, 100_000)) -> list[dict[str, float]]:
    """Each N in a fresh sandbox process and a fresh client process, so peak RSS is the client's alone."""
    rows = []
    for total in totals:
        with sandbox_process() as base:
            module = {"api_name": "Bench_Items", "fields": [{"api_name": "Name", "data_type": "text"}]}
            httpx.post(f"{base}/__sandbox/modules", json=module, timeout=30).raise_for_status()
            seed(base, "Bench_Items", total)
            connection = access_connection(base)
            out = subprocess.run(
                [sys.executable, "-c", _FETCH_CHILD, base, json.dumps(connection), "rss"],
                check=True,
                capture_output=True,
                text=True,
            )
            stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
            # the same walk in another child, traced: the Python heap's peak (tracing costs time and memory of its
            # own, so it is not the walk whose RSS is measured)
            traced = subprocess.run(
                [sys.executable, "-c", _FETCH_CHILD, base, json.dumps(connection), "traced"],
                check=True,
                capture_output=True,
                text=True,
            )
        result, heap = json.loads(out.stdout), json.loads(traced.stdout)
        assert result["records"] == heap["records"] == total
        requests = stats["requests"].get("GET /crm/v8/Bench_Items", 0)
        rows.append(
            {
                "n": total,
                "requests": requests,
                "expected_requests": math.ceil(total / 200),
                "heap_peak_mb": heap["heap_peak_mb"],
                **result,
            }
        )
    return rows


def main() -> None:
    print("(a) cold start against the sandbox, medians of 21 interleaved runs")
    a = cold_start()
    print(f"    python -c 'import httpx': {a['floor_s']:.3f} s wall, {a['floor_cpu_s']:.3f} s CPU")
    print(f"    zoho-connector run crmGetRecord: {a['connector_s']:.3f} s wall, {a['connector_cpu_s']:.3f} s CPU")
    print(f"    ratio {a['ratio']:.2f} wall, {a['cpu_ratio']:.2f} CPU (target <= 2.0)")
    print(f"    zoho-connector invoke (one request): {a['invoke_s']:.3f} s wall, {a['invoke_cpu_s']:.3f} s CPU")
    print(f"    ratio {a['invoke_ratio']:.2f} wall (target <= 2.0)")
    print("(b) per-call overhead, 2,000 crmGetRecord calls on loopback")
    b = per_call_overhead()
    print(
        f"    bare httpx: {b['bare_ms_per_call']:.3f} ms/call   connector: {b['connector_ms_per_call']:.3f} ms/call"
        f"   ratio {b['ratio']:.2f} (target <= 1.25)"
    )
    print("(c) Fetch All through iter_records (one process per N)")
    for row in fetch_all():
        print(
            f"    N={row['n']:>7,}  requests {row['requests']:>4} (ceil(N/200) = {row['expected_requests']})"
            f"  peak RSS {row['peak_rss_mb']:.1f} MB, Python heap peak {row['heap_peak_mb']:.1f} MB (tracemalloc)"
        )


if __name__ == "__main__":
    main()
