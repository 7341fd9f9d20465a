"""The Partner Store → CRM sync at 2,000 and at N transactions (default 10,000): time, requests, and the syncing
process's peak RSS, which should not grow with N (a run holds one window of 200 records at a time).

    python -m bench.partner_store [N]

The sandbox runs in its own process; for each size a fresh one gets the CRM modules (`partner-store setup`) and N
transactions, and a child process runs the shipped transactions automation once, as `automation run` does (poll a
window, upsert it, keep the state, poll again), reporting its peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx

from bench._sandbox import access_connection, sandbox_process

_CHILD = """
import json, resource, sys, time
from connector import Connector
from connector.automations import load_automation, run_automation
from connector.manifest import bundled_manifest, data_root
from connector.strategies.partner_store import plan, setup

connection = json.loads(sys.argv[1])
manifest = bundled_manifest()
flow = load_automation(data_root() / "automations/partner-store/transactions.yaml", manifest)
with Connector.load() as connector:
    setup(connector, plan([flow]), connection=connection)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    outcome = run_automation(connector, flow, connection=connection)
    seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"polls": outcome["polls"], "seconds": seconds, "baseline_mb": baseline, "peak_mb": peak}))
"""


def measure(count: int) -> dict[str, object]:
    with sandbox_process() as base:
        httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": count}}, timeout=120)
        connection = {**access_connection(base), "store_url": f"{base}/api/v1/partner"}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(connection)], check=True, capture_output=True, text=True
        ).stdout
        result: dict[str, object] = json.loads(out)
        stats = httpx.get(f"{base}/__sandbox/stats", timeout=30).json()
        result["crm_records"] = stats["records"]["Store_Transactions"]
        result["upserts"] = stats["requests"].get("POST /crm/v8/Store_Transactions/upsert", 0)
        result["store_pages"] = stats["requests"].get("GET /api/v1/partner/transactions", 0)
    return result


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    results: dict[int, dict[str, object]] = {}
    for size in (2_000, count):
        started = time.perf_counter()
        results[size] = measure(size)
        results[size]["total_seconds"] = time.perf_counter() - started
    for size, r in results.items():
        print(
            f"{size:>6,} transactions: {r['crm_records']:,} in the CRM in {r['seconds']:.1f} s "
            f"({r['polls']} polls, {r['upserts']} upsert calls, {r['store_pages']} Store pages); "
            f"peak RSS {r['peak_mb']:.1f} MB (after setup {r['baseline_mb']:.1f} MB)"
        )
    small, big = (float(results[s]["peak_mb"]) for s in (2_000, count))  # type: ignore[arg-type]
    growth = 100 * (big - small) / small
    print(
        f"peak RSS growth from 2,000 to {count:,}: {growth:.1f}%", "(flat, within 10%)" if growth <= 10 else "NOT flat"
    )


if __name__ == "__main__":
    main()
