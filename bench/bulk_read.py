"""Memory of crmBulkReadRecords against N: peak RSS after 50,000 and after 200,000 records of one export.

    python -m bench.bulk_read [N]

The sandbox runs in its own process with N leads; a child process streams the export (`iter_records`: the ZIP goes
to a temporary file, the CSV is read row by row) and reports its peak RSS when it has seen 50,000 rows and at the
end. Flat memory means the two are within 10% of each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench._sandbox import access_connection, sandbox_process, seed

_CHILD = """
import json, resource, sys
from connector import Connector
connection, marks = json.loads(sys.argv[1]), {50_000, int(sys.argv[2])}
seen, rss = 0, {}
with Connector.load() as connector:
    inputs = {"recordType": "Leads", "fields": ["Last_Name", "Email", "Company", "Lead_Status"]}
    for record in connector.iter_records("crmBulkReadRecords", inputs, connection=connection):
        seen += 1
        if seen in marks:
            rss[seen] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": seen, "rss_mb": rss}))
"""


def measure(count: int = 200_000) -> dict[str, object]:
    with sandbox_process() as base:
        started = time.perf_counter()
        seed(base, "Leads", count)
        seeded = time.perf_counter() - started
        connection = access_connection(base)
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(connection), str(count)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result: dict[str, object] = json.loads(out)
        result["export_seconds"] = round(time.perf_counter() - started, 1)
        result["seed_seconds"] = round(seeded, 1)
    return result


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    result = measure(count)
    rss = {int(k): v for k, v in result["rss_mb"].items()}  # type: ignore[attr-defined]
    low, high = rss[50_000], rss[count]
    print(
        f"bulk read of {result['rows']:,} rows in {result['export_seconds']} s "
        f"(seeding took {result['seed_seconds']} s)"
    )
    print(f"peak RSS at 50,000 rows: {low:.1f} MB; at {count:,}: {high:.1f} MB; growth {100 * (high - low) / low:.1f}%")
    print("flat (within 10%)" if high <= low * 1.10 else "NOT flat")


if __name__ == "__main__":
    main()
