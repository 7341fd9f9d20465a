"""Every benchmark, one after the other: `python -m bench` (or `make bench`)."""

from __future__ import annotations

from bench import bulk, bulk_read, connections, core, files, shared_limits, storm, token_stores


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
    print("\n== token stores ==")
    token_stores.main()
    print("\n== many workers, one account: shared limits ==")
    shared_limits.main([])


if __name__ == "__main__":
    main()
