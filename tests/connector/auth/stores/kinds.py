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

__all__ = ["ALL", "PERSISTENT", "TEST_KEY", "Kind", "kind_params", "prepared"]

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
    """A fresh, empty store of kind `name` (own file, table or key prefix), removed afterwards."""
    with _prepared(name, tmp) as kind:
        yield Kind(kind.url, kind.env, name)


@contextlib.contextmanager
def _prepared(name: str, tmp: Path) -> Iterator[Kind]:
    if name in SERVERS:
        require(*SERVERS[name])
    suffix = uuid.uuid4().hex[:10]
    if name == "memory":
        yield Kind("memory:")
    elif name == "python":
        yield Kind(
            "python:tests.connector.auth.stores.user_store:UserStore", {"ZOHO_CONNECTOR_ALLOW_PYTHON_STORES": "1"}
        )
    elif name == "file":
        yield Kind(f"file://{tmp}/tokens.json")
    elif name == "sqlite":
        yield Kind(f"sqlite://{tmp}/tokens.db")
    elif name == "encrypted-sqlite":
        yield Kind(f"sqlite://{tmp}/tokens.db", {"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY})
    elif name in ("mariadb", "postgresql"):
        from connector.auth.stores.sql import SqlStore

        base = "mysql://root@127.0.0.1:3306/test" if name == "mariadb" else "postgresql://postgres@127.0.0.1:5432/test"
        url = f"{base}?table=oauthtoken_t_{suffix}"
        try:
            yield Kind(url)
        finally:
            store = SqlStore(url)
            store.drop_table()
            store.close()
    elif name == "redis":
        from connector.auth.stores.redis import RedisStore

        url = f"redis://127.0.0.1:6379/15?prefix=zc-test-{suffix}"
        try:
            yield Kind(url)
        finally:
            redis_store = RedisStore(url)
            redis_store.delete_tokens()
            leftovers = list(redis_store._r.scan_iter(match=f"zc-test-{suffix}:*"))
            if leftovers:
                redis_store._r.delete(*leftovers)
            redis_store.close()
    else:
        raise ValueError(name)
