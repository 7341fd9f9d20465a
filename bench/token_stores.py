"""Token store benchmark: save/find throughput per store, and refresh calls under contention (target: 1).

    python -m bench.token_stores [--ops 2000]

Server stores (MariaDB, PostgreSQL, Redis on 127.0.0.1) are skipped when not reachable; each run uses its own
table or key prefix and removes it afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from connector.auth.stores import open_store
from connector.auth.tokens import Token
from tests.connector.auth.stores.workers import NEW_ACCESS, contend

KEY = "r5RUDo-9caDFE_eeRJzrGNFCXnSzTJTMUDfot4BusSI="  # a benchmark-only Fernet key

SERVERS = {"mariadb": 3306, "postgresql": 5432, "redis": 6379}
STORES = ("memory", "file", "sqlite", "encrypted-sqlite", "mariadb", "postgresql", "redis")


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _store_url(name: str, tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    suffix = uuid.uuid4().hex[:10]
    if name == "memory":
        yield "memory:", {}
    elif name == "file":
        yield f"file://{tmp}/tokens.json", {}
    elif name == "sqlite":
        yield f"sqlite://{tmp}/tokens.db", {}
    elif name == "encrypted-sqlite":
        yield f"sqlite://{tmp}/tokens-enc.db", {"ZOHO_CONNECTOR_TOKEN_KEY": KEY}
    elif name in ("mariadb", "postgresql"):
        from connector.auth.stores.sql import SqlStore

        host = "mysql://root@127.0.0.1:3306/test" if name == "mariadb" else "postgresql://postgres@127.0.0.1:5432/test"
        url = f"{host}?table=oauthtoken_bench_{suffix}"
        try:
            yield url, {}
        finally:
            store = SqlStore(url)
            store.drop_table()
            store.close()
    else:
        from connector.auth.stores.redis import RedisStore

        url = f"redis://127.0.0.1:6379/15?prefix=zc-bench-{suffix}"
        try:
            yield url, {}
        finally:
            rs = RedisStore(url)
            rs.delete_tokens()
            keys = list(rs._r.scan_iter(match=f"zc-bench-{suffix}:*"))
            if keys:
                rs._r.delete(*keys)
            rs.close()


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
            if name in SERVERS and not _up(SERVERS[name]):
                print(f"{name:<18}{'(server not reachable: skipped)':>51}")
                continue
            with _store_url(name, tmp) as (url, env):
                saves, finds = _throughput(url, env, args.ops)
                calls, ok = _refresh_calls(url, env, tmp, None if name == "memory" else pool)
            print(f"{name:<18}{saves:>12,.0f}{finds:>12,.0f}{calls:>15}{ok:>9}/32")


if __name__ == "__main__":
    main()
