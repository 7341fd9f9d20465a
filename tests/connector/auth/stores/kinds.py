"""The store kinds the contract and multi-process tests run against: how to make one, and how to clean up."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connector.auth.stores import open_store
from connector.auth.stores.base import TokenStore
from tests.servers import require

__all__ = ["ALL", "PERSISTENT", "SERVERS", "TEST_KEY", "Kind", "fresh", "kind_params", "prepared"]

# A fixed Fernet key for the tests (never used for anything real).
TEST_KEY = "r5RUDo-9caDFE_eeRJzrGNFCXnSzTJTMUDfot4BusSI="

SERVERS = {"mariadb": ("MariaDB", "127.0.0.1", 3306), "postgresql": ("PostgreSQL", "127.0.0.1", 5432)}
SERVERS["redis"] = ("Redis", "127.0.0.1", 6379)


@dataclass(frozen=True)
class Kind:
    url: str
    env: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def open(self) -> TokenStore:
        return open_store(self.url, env=self.env)


ALL = ("memory", "file", "sqlite", "mariadb", "postgresql", "redis", "encrypted-sqlite", "python")
PERSISTENT = ("file", "sqlite", "mariadb", "postgresql", "redis")


def kind_params(names: tuple[str, ...]) -> list[object]:
    return [pytest.param(n, marks=[pytest.mark.server] if n in SERVERS else [], id=n) for n in names]


@contextlib.contextmanager
def prepared(name: str, tmp: Path) -> Iterator[Kind]:
    """A fresh, empty store of kind `name` (own file, table or key prefix), removed afterwards; the test is skipped
    (failed in CI) when its server is down."""
    if name in SERVERS:
        require(*SERVERS[name])
    with fresh(name, tmp) as kind:
        yield kind


# Where each server kind keeps a store; {tag}_{id} makes it the caller's own (a table, or a Redis key prefix).
SERVER_URLS = {
    "mariadb": "mysql://root@127.0.0.1:3306/test?table=oauthtoken_{tag}_{id}",
    "postgresql": "postgresql://postgres@127.0.0.1:5432/test?table=oauthtoken_{tag}_{id}",
    "redis": "redis://127.0.0.1:6379/15?prefix=zc-{tag}-{id}",
}


@contextlib.contextmanager
def fresh(name: str, tmp: Path, *, tag: str = "test") -> Iterator[Kind]:
    """A fresh, empty store of kind `name` in `tmp` or on its server (its own table or key prefix, named with
    `tag`), removed afterwards. It does not check that the server is up: tests use `prepared`, the benchmarks
    `tests.servers.reachable` first."""
    suffix = uuid.uuid4().hex[:10]
    if name == "memory":
        yield Kind("memory:", name=name)
    elif name == "python":
        env = {"ZOHO_CONNECTOR_ALLOW_PYTHON_STORES": "1"}
        yield Kind("python:tests.connector.auth.stores.user_store:UserStore", env, name)
    elif name == "file":
        yield Kind(f"file://{tmp}/tokens.json", name=name)
    elif name == "sqlite":
        yield Kind(f"sqlite://{tmp}/tokens.db", name=name)
    elif name == "encrypted-sqlite":
        yield Kind(f"sqlite://{tmp}/tokens.db", {"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY}, name)
    elif name in SERVER_URLS:
        url = SERVER_URLS[name].format(tag=tag, id=suffix)
        try:
            yield Kind(url, name=name)
        finally:
            _drop(name, url)
    else:
        raise ValueError(name)


def _drop(name: str, url: str) -> None:
    if name == "redis":
        from connector.auth.stores.redis import RedisStore

        redis_store = RedisStore(url)
        redis_store.drop()
        redis_store.close()
    else:
        from connector.auth.stores.sql import SqlStore

        store = SqlStore(url)
        store.drop_table()
        store.close()
