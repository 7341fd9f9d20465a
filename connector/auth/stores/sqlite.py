"""The default token store: one SQLite file (stdlib sqlite3), shared safely by threads and processes.

WAL lets readers run while a writer commits; busy_timeout makes writers queue instead of failing; every upsert is
one BEGIN IMMEDIATE transaction (the write lock is taken before the read, so two writers cannot both decide to
insert); unique indexes on the match-key digests back the rule up. `lock(key)` is a lock file per key beside the
database. Columns added since a table was created are added on opening (ALTER TABLE … ADD COLUMN). Shared limits
(concurrency slots, the allowance) live in tables beside the token table, through connections of their own
(sqlite_leases.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from connector.auth.stores._common import open_private, private_dir, private_file, validate_table
from connector.auth.stores.base import LeasesHeldBy
from connector.auth.stores.locks import file_lock
from connector.auth.stores.schema import (
    COLUMNS,
    FIELDS,
    KEYS,
    NUMBER_FIELDS,
    check_id,
    check_token,
    find_match,
    from_row,
    keys_of,
    plan_upsert,
    saved_id,
    to_row,
)
from connector.auth.stores.sqlite_leases import SqliteLeases
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError

__all__ = ["SqliteStore"]


class SqliteStore(LeasesHeldBy):
    """Tokens in table `table` (default `oauthtoken`) of the SQLite database at `path` (created 0600)."""

    def __init__(self, path: str | os.PathLike[str], *, table: str = "oauthtoken", busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        if not self.path.is_absolute():
            raise ConnectionConfigError(f"the SQLite token store path must be absolute: {str(path)[:200]}")
        self.table = validate_table(table)
        self._busy_timeout = busy_timeout
        self._local = threading.local()  # one connection per thread: sqlite3 connections are not thread-safe
        self._lock_dir = self.path.with_name(self.path.name + ".locks")
        # shared limits (base.LeaseStore, through base.LeasesHeldBy)
        self._leases: SqliteLeases = SqliteLeases(self.table, self._connect)
        t = self.table
        # The table name is validated above; every value is a bound parameter.
        self._sql_select = f'SELECT {", ".join(FIELDS)} FROM "{t}"'  # noqa: S608
        self._sql_insert = f'INSERT INTO "{t}" ({", ".join(COLUMNS)}) VALUES ({", ".join("?" * len(COLUMNS))})'  # noqa: S608
        self._sql_update = f'UPDATE "{t}" SET {", ".join(c + " = ?" for c in COLUMNS)} WHERE id_key = ?'  # noqa: S608

    def find_token(self, token: Token) -> Token | None:
        return find_match(check_token(token), self._candidates(self._conn(), token))

    def save_token(self, token: Token) -> Token:
        check_token(token)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            match = plan_upsert(token, self._candidates(conn, token))
            stored = token.replace(id=saved_id(token, match))
            values = self._values(stored)
            if match is None:
                conn.execute(self._sql_insert, values)
            else:
                conn.execute(self._sql_update, (*values, keys_of(match).id_key))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def delete_token(self, id: str) -> None:
        check_id(id)
        self._conn().execute(f'DELETE FROM "{self.table}" WHERE id_key = ?', (keys_of(Token(id=id)).id_key,))  # noqa: S608

    def get_tokens(self) -> list[Token]:
        return [self._token(r) for r in self._conn().execute(self._sql_select)]

    def delete_tokens(self) -> None:
        self._conn().execute(f'DELETE FROM "{self.table}"')  # noqa: S608

    def find_token_by_id(self, id: str) -> Token | None:
        check_id(id)
        rows = self._conn().execute(self._sql_select + " WHERE id_key = ?", (keys_of(Token(id=id)).id_key,))
        return next((self._token(r) for r in rows), None)

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        private_dir(self._lock_dir)
        name = hashlib.sha256(f"{self.table}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return file_lock(self._lock_dir / f"{name}.lock", timeout)

    def close(self) -> None:
        """Close this thread's connections (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._leases.close()

    # -- internals ---------------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = self._connect(self._create, synchronous="FULL")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _connect(self, create: Callable[[sqlite3.Connection], None], *, synchronous: str) -> sqlite3.Connection:
        """A new connection to the database (made private, in WAL mode), after `create` ran under the opening lock."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            # Created 0600 before SQLite opens it (SQLite gives its -wal/-shm files the database's mode). Never open
            # an existing database file outside SQLite: closing any descriptor of it drops every POSIX lock this
            # process holds on it, the locks of its other SQLite connections included, and lets a second writer in.
            with contextlib.suppress(FileExistsError):
                os.close(open_private(self.path, os.O_RDWR | os.O_EXCL))
        for path in (
            self.path,
            self.path.with_name(self.path.name + "-wal"),
            self.path.with_name(self.path.name + "-shm"),
        ):
            private_file(path)  # an older or hand-made database may be wider
        private_dir(self._lock_dir)
        try:
            # Switching a new database to WAL and creating the table may answer SQLITE_BUSY at once, without the
            # busy handler, when several processes open the store together: serialise the opening itself.
            with file_lock(self._lock_dir / "open.lock", self._busy_timeout):
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                create(conn)
        except TimeoutError:
            raise ConnectionConfigError(f"cannot open the SQLite token store {self.path}: busy") from None
        except sqlite3.DatabaseError as e:
            raise ConnectionConfigError(f"cannot open the SQLite token store {self.path}: {e}") from None
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        t = self.table
        columns = ", ".join(f"{c} {_type(c)}" for c in FIELDS[1:])
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{t}" (id_key TEXT PRIMARY KEY, id TEXT NOT NULL, {columns}, '
            "user_key TEXT UNIQUE, access_key TEXT UNIQUE, refresh_key TEXT UNIQUE, grant_key TEXT UNIQUE)"
        )
        # A table made by an older version lacks the newer columns (organization_ids): add them. Runs under the
        # opening lock, so two processes cannot both add one.
        present = {row[1] for row in conn.execute(f'PRAGMA table_info("{t}")')}
        for c in FIELDS:
            if c not in present:
                conn.execute(f'ALTER TABLE "{t}" ADD COLUMN {c} {_type(c)}')

    def _candidates(self, conn: sqlite3.Connection, token: Token) -> list[Token]:
        """The rows sharing any match key with `token`, found through the indexed digests."""
        pairs = [(c, v) for c, v in zip(KEYS, keys_of(token), strict=True) if v is not None]
        if not pairs:
            return []
        where = " OR ".join(f"{c} = ?" for c, _ in pairs)
        return [self._token(r) for r in conn.execute(f"{self._sql_select} WHERE {where}", [v for _, v in pairs])]

    @staticmethod
    def _values(token: Token) -> tuple[Any, ...]:
        row = to_row(token)
        return (*(row[f] for f in FIELDS), *keys_of(token))

    @staticmethod
    def _token(row: tuple[Any, ...]) -> Token:
        return from_row(dict(zip(FIELDS, row, strict=True)))


def _type(column: str) -> str:
    return "REAL" if column in NUMBER_FIELDS else "TEXT"
