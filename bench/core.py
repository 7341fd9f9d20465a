"""Core runtime benchmarks against a loopback server (issue: core runtime, §8).

    python -m bench.core

(a) cold start: a new `zoho-connector run crmGetRecord` process, beside `python -c "import httpx"` (the floor);
(b) per-call overhead: 2,000 crmGetRecord runs vs the same 2,000 requests on a bare httpx.Client;
(c) Fetch All of 100,000 CRM records: requests made (must be ceil(N/200)) and peak RSS, for several N.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._server import serve
from connector import Connector

ACCESS_TOKEN = "1000.benchbenchbenchbenchbenchbench.benchbenchbenchbenchbenchbench"
BIN = Path(sys.executable).parent


def connection(base: str) -> dict[str, object]:
    return {"access_token": ACCESS_TOKEN, "expires_in": 3600, "api_domain": base, "region": "us"}


def _median_seconds(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(runs: int = 15) -> dict[str, float]:
    with serve() as (base, _), tempfile.TemporaryDirectory() as tmp:
        conn = Path(tmp) / "connection.json"
        conn.write_text(json.dumps(connection(base)))
        env = {**os.environ, "ZOHO_CONNECTOR_CACHE_DIR": str(Path(tmp) / "cache")}
        argv = [
            str(BIN / "zoho-connector"),
            "run",
            "crmGetRecord",
            "--inputs",
            '{"recordType":"Leads","recordId":"1"}',
            "--connection",
            f"@{conn}",
        ]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)  # warm the manifest cache once
        floor = _median_seconds([sys.executable, "-c", "import httpx"], runs, env)
        ours = _median_seconds(argv, runs, env)
    return {"floor_s": floor, "connector_s": ours, "ratio": ours / floor}


def per_call_overhead(calls: int = 2000) -> dict[str, float]:
    with serve() as (base, _):
        inputs = {"recordType": "Leads", "recordId": "5394166000000379001"}
        with Connector.load() as connector:
            connector.run("crmGetRecord", inputs, connection=connection(base))  # warm: pool, validator
            start = time.perf_counter()
            for _ in range(calls):
                connector.run("crmGetRecord", inputs, connection=connection(base))
            ours = time.perf_counter() - start
        with httpx.Client(timeout=30) as client:
            headers = {"Authorization": f"Zoho-oauthtoken {ACCESS_TOKEN}"}
            client.get(f"{base}/crm/v8/Leads/5394166000000379001", headers=headers).json()
            start = time.perf_counter()
            for _ in range(calls):
                client.get(f"{base}/crm/v8/Leads/5394166000000379001", headers=headers).json()
            bare = time.perf_counter() - start
    return {"bare_ms_per_call": bare / calls * 1000, "connector_ms_per_call": ours / calls * 1000, "ratio": ours / bare}


_FETCH_CHILD = """
import json, resource, sys
from bench._server import serve
from bench.core import connection
from connector import Connector
total = int(sys.argv[1])
with serve(total) as (base, server), Connector.load() as connector:
    count = sum(1 for _ in connector.iter_records("crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"]},
                                                   connection=connection(base)))
    print(json.dumps({"records": count, "requests": server.requests,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fetch_all(totals: tuple[int, ...] = (10_000, 50_000, 100_000)) -> list[dict[str, float]]:
    rows = []
    root = str(Path(__file__).resolve().parents[1])
    for total in totals:
        out = subprocess.run(
            [sys.executable, "-c", _FETCH_CHILD, str(total)], check=True, capture_output=True, text=True, cwd=root
        )
        result = json.loads(out.stdout)
        assert result["records"] == total
        result["expected_requests"] = math.ceil(total / 200)
        rows.append({"n": total, **result})
    return rows


def main() -> None:
    print("(a) cold start, median of 15 (seconds)")
    a = cold_start()
    print(
        f"    python -c 'import httpx': {a['floor_s']:.3f}   zoho-connector run crmGetRecord: {a['connector_s']:.3f}"
        f"   ratio {a['ratio']:.2f} (target <= 2.0)"
    )
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
            f"  peak RSS {row['peak_rss_mb']:.1f} MB"
        )


if __name__ == "__main__":
    main()
