"""Every benchmark, one after the other: `python -m bench` (or `make bench`)."""

from __future__ import annotations

import os
import sys

from bench import (
    bulk,
    bulk_read,
    celery,
    connections,
    core,
    engine_limits,
    files,
    partner_store,
    poll,
    protocol,
    shared_limits,
    storm,
    temporal,
    token_stores,
)


def main() -> None:
    print("== core runtime ==")
    core.main()
    print("\n== policy: 429 storm ==")
    storm.main()
    print("\n== bulk writes: chunks under the concurrency cap ==")
    bulk.main()
    print("\n== many connections: fds and memory ==")
    connections.main()
    print("\n== attachments: memory per MB uploaded ==")
    files.main()
    print("\n== bulk read: memory at 50k vs 200k rows ==")
    bulk_read.main()
    print("\n== polling triggers: a poll's cost with 100,000 unchanged records ==")
    poll.main()
    print("\n== token stores ==")
    token_stores.main()
    print("\n== Partner Store sync: memory at 2,000 vs 10,000 transactions ==")
    partner_store.main()
    print("\n== Celery: zoho.run_action throughput ==")
    celery.main()
    print("\n== long-lived workers: invoke --lines and serve vs in-process run ==")
    protocol.main()
    print("\n== Temporal: zoho.run_action throughput ==")
    temporal.main()
    print("\n== many workers, one account: shared limits ==")
    shared_limits.main([])
    print("\n== many engine workers, one account: shared limits on Celery and Temporal ==")
    engine_limits.main([])


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK can crash at interpreter exit after a finished run (temporalio/sdk-python#300)
