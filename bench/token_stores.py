"""Token store benchmark: save/find throughput per store, and refresh calls under contention (target: 1).

    python -m bench.token_stores [--ops 2000]

Server stores (MariaDB, PostgreSQL, Redis on 127.0.0.1) are skipped when not reachable; each run uses its own
table or key prefix and removes it afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path

from connector.auth.stores import open_store
from connector.auth.tokens import Token
from tests.connector.auth.stores.kinds import SERVERS, fresh
from tests.connector.auth.stores.workers import NEW_ACCESS, contend
from tests.servers import reachable

STORES = ("memory", "file", "sqlite", "encrypted-sqlite", "mariadb", "postgresql", "redis")


def _throughput(url: str, env: dict[str, str], ops: int) -> tuple[float, float]:
    """(saves/s, finds/s) over `ops` operations on 200 users, from one thread."""
    store = open_store(url, env=env)
    users = 200
    t0 = time.perf_counter()
    for i in range(ops):
        u = i % users
        store.save_token(
            Token(
                user_name=f"user{u}",
                client_id="cid",
                client_secret="cs",
                refresh_token=f"rt{u}",
                access_token=f"at{u}-{i}",
                expires_at=time.time() + 3600,
            )
        )
    t1 = time.perf_counter()
    for i in range(ops):
        if store.find_token(Token(user_name=f"user{i % users}")) is None:
            raise AssertionError("token lost")
    t2 = time.perf_counter()
    return ops / (t1 - t0), ops / (t2 - t1)


def _refresh_calls(url: str, env: dict[str, str], tmp: Path, pool: multiprocessing.pool.Pool | None) -> tuple[int, int]:
    """(refresh calls, callers that got the new token) for 16 threads here + 4 processes x 4 threads."""
    counter = tmp / f"calls-{uuid.uuid4().hex}"
    store = open_store(url, env=env)
    store.delete_tokens()
    store.save_token(
        Token(
            user_name="shared",
            client_id="cid",
            client_secret="cs",
            refresh_token="rt",
            access_token="old",
            expires_at=0.0,
        )
    )
    start_at = time.time() + 0.5
    args = (url, env, "shared", str(counter), start_at)
    jobs = [pool.apply_async(contend, (*args, 4)) for _ in range(4)] if pool else []
    if pool is None:  # memory: one process only, so 32 threads on this very store
        _, answers = contend(*args, 32, store)
    else:
        _, answers = contend(*args, 16)
    for job in jobs:
        answers += job.get(timeout=120)[1]
    calls = len(counter.read_text().splitlines()) if counter.exists() else 0
    return calls, sum(a == NEW_ACCESS for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'store':<18}{'save ops/s':>12}{'find ops/s':>12}{'refresh calls':>15}{'callers ok':>12}")
    with tempfile.TemporaryDirectory() as tmpdir, multiprocessing.get_context("spawn").Pool(4) as pool:
        tmp = Path(tmpdir)
        for name in STORES:
            if name in SERVERS and not reachable(*SERVERS[name][1:]):
                print(f"{name:<18}{'(server not reachable: skipped)':>51}")
                continue
            folder = tmp / name  # each store its own files: sqlite and encrypted-sqlite both use tokens.db
            folder.mkdir()
            with fresh(name, folder, tag="bench") as kind:
                url, env = kind.url, kind.env
                saves, finds = _throughput(url, env, args.ops)
                calls, ok = _refresh_calls(url, env, tmp, None if name == "memory" else pool)
            print(f"{name:<18}{saves:>12,.0f}{finds:>12,.0f}{calls:>15}{ok:>9}/32")


if __name__ == "__main__":
    main()
