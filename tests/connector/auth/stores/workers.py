"""Code the multi-process tests (and bench/token_stores.py) run in 'spawn' worker processes (it must be importable,
hence its own module)."""

from __future__ import annotations

import os
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from connector.auth.refresh import ensure_fresh
from connector.auth.stores import TokenStore, open_store
from connector.auth.tokens import Token

NEW_ACCESS = "1000.new-access-token"


class CountingRefresh:
    """A token endpoint stand-in that counts its calls in a file shared by all processes (O_APPEND is atomic)."""

    def __init__(self, counter: str, hold: float = 0.2) -> None:
        self.counter = counter
        self.hold = hold

    def __call__(self, token: Token) -> Token:
        fd = os.open(self.counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        time.sleep(self.hold)  # a slow token endpoint: every other caller is now waiting on the lock
        return token.replace(access_token=NEW_ACCESS, expires_at=time.time() + 3600)


def warm(_: int) -> int:
    """Import what the tests use, so that they time the stores and not the imports."""
    import connector.auth.stores.redis
    import connector.auth.stores.sql
    import connector.auth.stores.sqlite  # noqa: F401

    time.sleep(0.3)  # keep this worker busy so the other warm-ups land on the other workers
    return os.getpid()


def contend(
    url: str,
    env: dict[str, str],
    user: str,
    counter: str,
    start_at: float,
    threads: int,
    store: TokenStore | None = None,
) -> tuple[int, list[str]]:
    """`threads` threads of this process call ensure_fresh on the same expired token at `start_at` (on `store`, or
    on the store `url` names)."""
    store = store or open_store(url, env=env)
    refresh = CountingRefresh(counter)
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            token = ensure_fresh(store, Token(user_name=user), refresh, lock_timeout=60)
            results.append(token.access_token or "")
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    time.sleep(max(start_at - time.time(), 0))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return os.getpid(), results


def save_many(url: str, env: dict[str, str], worker: int, count: int) -> int:
    store = open_store(url, env=env)
    for i in range(count):
        store.save_token(
            Token(
                user_name=f"user-{worker}-{i}",
                client_id="cid",
                client_secret="cs",
                refresh_token=f"rt-{worker}-{i}",
                access_token=f"at-{worker}-{i}",
                expires_at=time.time() + 3600,
            )
        )
    return count


def hold_lock(db_path: str, key: str, ready: Event, release: Event) -> None:
    """Hold `key`'s lock of the SQLite store at `db_path` until `release` is set (another process's refresh)."""
    from connector.auth.stores.sqlite import SqliteStore

    with SqliteStore(Path(db_path)).lock(key, timeout=10):
        ready.set()
        release.wait(30)


def hold_slots(
    url: str, env: dict[str, str], name: str, limit: int, threads: int, rounds: int, held: Any, results: Any
) -> None:
    """`threads` threads each take a slot `rounds` times (polling), count themselves into the shared `held`
    ([now, peak] under its lock) while holding it, and give it back. Puts the slots this process took on
    `results`."""
    from connector.auth.stores.leases import leases_of

    leases = leases_of(open_store(url, env=env))
    assert leases is not None
    taken = 0
    guard = threading.Lock()

    def run() -> None:
        nonlocal taken
        for _ in range(rounds):
            lease = None
            while lease is None:
                lease = leases.acquire_slot(name, limit, 30.0)
                if lease is None:
                    time.sleep(0.002)
            with held.get_lock():
                held[0] += 1
                held[1] = max(held[1], held[0])
            time.sleep(0.003)
            with held.get_lock():
                held[0] -= 1
            leases.release_slot(name, lease)
            with guard:
                taken += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(taken)


def take_slot_and_hang(url: str, env: dict[str, str], name: str, ttl: float, ready: Event, taking: Any) -> None:
    """Take the only slot of `name` for `ttl` seconds, say so, and hang until killed (kill -9). `taking` (a shared
    double) gets the time.monotonic() (one clock for every process of the machine) at which the taking began: the
    lease lasts at least until then + `ttl`."""
    from connector.auth.stores.leases import leases_of

    leases = leases_of(open_store(url, env=env))
    assert leases is not None
    taking.value = time.monotonic()
    assert leases.acquire_slot(name, 1, ttl) is not None
    ready.set()
    time.sleep(600)
