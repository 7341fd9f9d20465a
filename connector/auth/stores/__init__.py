"""Token stores, chosen by URL. Each store module imports its driver only when used, so importing is cheap.

    memory:                                  a dict in this process
    file:///abs/path.json                    a JSON file (atomic writes, 0600, lock files)
    sqlite:///abs/path.db                    SQLite (the default: $ZOHO_CONNECTOR_HOME/tokens.db)
    mysql://user:pw@host:3306/db             MySQL or MariaDB (also mysql+pymysql://, mariadb://)
    postgresql://user:pw@host:5432/db        PostgreSQL (also postgres://, postgresql+psycopg://)
    redis://host:6379/0                      Redis (also rediss://)
    python:package.module:ClassName          your own TokenStore class, built with no arguments

SQL URLs take `?table=name`, Redis URLs `?prefix=…` and `?lock_ttl=seconds`. With ZOHO_CONNECTOR_TOKEN_KEY set,
the chosen store is wrapped by EncryptedStore.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from connector.auth.stores.base import TokenStore
from connector.errors import ConnectionConfigError

if TYPE_CHECKING:
    from connector.auth.stores.encrypted import EncryptedStore
    from connector.auth.stores.file import FileStore
    from connector.auth.stores.memory import MemoryStore
    from connector.auth.stores.redis import RedisStore
    from connector.auth.stores.sql import SqlStore
    from connector.auth.stores.sqlite import SqliteStore

__all__ = [
    "EncryptedStore",
    "FileStore",
    "MemoryStore",
    "RedisStore",
    "SqlStore",
    "SqliteStore",
    "TokenStore",
    "default_home",
    "open_store",
]

VALID_URLS = (
    "memory:",
    "file:///abs/path.json",
    "sqlite:///abs/path.db",
    "mysql://user:pw@host:port/db (also mysql+pymysql://, mariadb://)",
    "postgresql://user:pw@host:port/db (also postgres://, postgresql+psycopg://)",
    "redis://host:port/db (also rediss://)",
    "python:package.module:ClassName",
)
_SQL = ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql", "postgresql", "postgres", "postgresql+psycopg")
_LAZY = {
    "EncryptedStore": "encrypted",
    "FileStore": "file",
    "MemoryStore": "memory",
    "RedisStore": "redis",
    "SqlStore": "sql",
    "SqliteStore": "sqlite",
}


def __getattr__(name: str) -> object:  # the store classes, imported on first use
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """$ZOHO_CONNECTOR_HOME, else $XDG_DATA_HOME/zoho-connector, else ~/.local/share/zoho-connector."""
    env = os.environ if env is None else env
    if env.get("ZOHO_CONNECTOR_HOME"):
        return Path(env["ZOHO_CONNECTOR_HOME"]).expanduser()
    data = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or str(Path.home()), ".local", "share")
    return Path(data).expanduser() / "zoho-connector"


def open_store(url: str | None, *, env: Mapping[str, str] | None = None) -> TokenStore:
    """The token store `url` names (None: SQLite in the connector's home), encrypted when the key is set."""
    env = os.environ if env is None else env
    store = _open(url, env)
    key = env.get("ZOHO_CONNECTOR_TOKEN_KEY")
    if key:
        from connector.auth.stores.encrypted import EncryptedStore

        return EncryptedStore(store, key)
    return store


def _open(url: str | None, env: Mapping[str, str]) -> TokenStore:
    if url is None:
        from connector.auth.stores.sqlite import SqliteStore

        home = default_home(env)
        if not home.exists():
            home.mkdir(mode=0o700, parents=True)
        return SqliteStore(home / "tokens.db")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        from connector.auth.stores.memory import MemoryStore

        return MemoryStore()
    if scheme == "file":
        from connector.auth.stores.file import FileStore

        return FileStore(_local_path(url))
    if scheme == "sqlite":
        from connector.auth.stores.sqlite import SqliteStore

        table = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)).get("table", "oauthtoken")
        return SqliteStore(_local_path(url), table=table)
    if scheme in _SQL:
        from connector.auth.stores.sql import SqlStore

        return SqlStore(url)
    if scheme in ("redis", "rediss"):
        from connector.auth.stores.redis import RedisStore

        return RedisStore(url)
    if scheme == "python":
        return _user_store(url[len("python:") :])
    raise ConnectionConfigError(
        f"unknown token store URL scheme {scheme[:40]!r}; valid token store URLs: " + "; ".join(VALID_URLS)
    )


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise ConnectionConfigError(
            f"a {parts.scheme}: token store needs an absolute path, as in {parts.scheme}:///abs/path (three slashes)"
        )
    return Path(path)


def _user_store(target: str) -> TokenStore:
    module_name, _, class_name = target.rpartition(":")
    if not module_name or not class_name:
        raise ConnectionConfigError(f"a python: token store URL is python:package.module:ClassName, not {target!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise ConnectionConfigError(f"cannot import the token store class {target}: {e}") from None
    store = cls()
    if not isinstance(store, TokenStore):
        missing = [
            m
            for m in (
                "find_token",
                "save_token",
                "delete_token",
                "get_tokens",
                "delete_tokens",
                "find_token_by_id",
                "lock",
            )
            if not callable(getattr(store, m, None))
        ]
        raise ConnectionConfigError(f"{target} is not a TokenStore: it lacks {', '.join(missing)}")
    return store
