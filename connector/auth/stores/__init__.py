"""Token stores, chosen by URL. Each store module imports its driver only when used, so importing is cheap.

    memory:                                  a dict in this process
    file:///abs/path.json                    a JSON file (atomic writes, 0600, lock files)
    sqlite:///abs/path.db                    SQLite (the default: $ZOHO_CONNECTOR_HOME/tokens.db)
    mysql://user:pw@host:3306/db             MySQL or MariaDB (also mysql+pymysql://, mariadb://)
    postgresql://user:pw@host:5432/db        PostgreSQL (also postgres://, postgresql+psycopg://)
    redis://host:6379/0                      Redis (also rediss://)
    python:package.module:ClassName          your own TokenStore class, built with no arguments (opt-in)

SQL URLs take `?table=name`, Redis URLs `?prefix=…` and `?lock_ttl=seconds`. With ZOHO_CONNECTOR_TOKEN_KEY set,
the chosen store is wrapped by EncryptedStore. Every store but memory: also shares Zoho's per-account limits
between the workers that use it (base.LeaseStore; leases.py).

A `python:` URL imports and runs code named by whoever writes the connection, so it is refused unless the operator
enables it: `allow_python_stores=True`, or ZOHO_CONNECTOR_ALLOW_PYTHON_STORES=1 in the environment. Even then it
must name a class implementing the TokenStore protocol (checked before the class is called).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from connector.auth.stores._common import private_dir, safe_url
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
    "ALLOW_PYTHON_STORES_ENV",
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
ALLOW_PYTHON_STORES_ENV = "ZOHO_CONNECTOR_ALLOW_PYTHON_STORES"
_PROTOCOL = ("find_token", "save_token", "delete_token", "get_tokens", "delete_tokens", "find_token_by_id", "lock")
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


def open_store(
    url: str | None, *, env: Mapping[str, str] | None = None, allow_python_stores: bool | None = None
) -> TokenStore:
    """The token store `url` names (None: SQLite in the connector's home), encrypted when the key is set.

    `allow_python_stores`: accept `python:module:Class` URLs; None (the default) reads
    ZOHO_CONNECTOR_ALLOW_PYTHON_STORES=1 from `env`. An unusable URL is a ConnectionConfigError naming
    `token_store`."""
    env = os.environ if env is None else env
    if allow_python_stores is None:
        allow_python_stores = env.get(ALLOW_PYTHON_STORES_ENV, "").strip().lower() in ("1", "true", "yes")
    try:
        store = _open(url, env, allow_python_stores)
    except ValueError:  # urllib and the drivers' URL parsers (a bad port, an unclosed [IPv6 bracket, …)
        raise ConnectionConfigError(
            f"token_store is not a valid token store URL ({safe_url(url or '')}); valid token store URLs: "
            + "; ".join(VALID_URLS)
        ) from None
    key = env.get("ZOHO_CONNECTOR_TOKEN_KEY")
    if key:
        from connector.auth.stores.encrypted import EncryptedStore

        return EncryptedStore(store, key)
    return store


def _open(url: str | None, env: Mapping[str, str], allow_python: bool) -> TokenStore:
    if url is None:
        from connector.auth.stores.sqlite import SqliteStore

        home = default_home(env)
        private_dir(home)  # ours alone: created 0700, or tightened if an older version or a user made it wider
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
        if not allow_python:
            raise ConnectionConfigError(
                "token_store: python: token stores run code named by the connection, so they are off unless the "
                f"operator enables them ({ALLOW_PYTHON_STORES_ENV}=1, or allow_python_stores=True)"
            )
        return _user_store(url[len("python:") :])
    raise ConnectionConfigError(
        f"token_store: unknown token store URL scheme {scheme[:40]!r}; valid token store URLs: " + "; ".join(VALID_URLS)
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
    # Checked before anything is called: `os:abort` or `sys:exit` must be refused, never run.
    if not inspect.isclass(cls):
        raise ConnectionConfigError(f"{target} is not a class: a python: token store names a TokenStore class")
    missing = [m for m in _PROTOCOL if not callable(getattr(cls, m, None))]
    if missing:
        raise ConnectionConfigError(f"{target} is not a TokenStore: it lacks {', '.join(missing)}")
    try:
        store = cls()
    except Exception as e:
        raise ConnectionConfigError(f"cannot create the token store {target}: {type(e).__name__}") from None
    if not isinstance(store, TokenStore):
        raise ConnectionConfigError(f"{target} did not build a TokenStore")
    return store
