"""Shared limits (base.LeaseStore) for the SQLite store: two tables beside the token table, in the same file.

`<table>_slots` holds one row per live lease and `<table>_values` the shared values. Taking a slot is one
BEGIN IMMEDIATE transaction (SQLite's write lock is taken before the count, so two processes cannot both see a free
slot): drop the name's expired leases, count, insert. A full name is answered from a plain read first, without the
write lock. Expiry uses time.time(): SQLite is one machine's store.

These tables use their own connection per thread with `synchronous = NORMAL`: a lease commit is not fsynced
(after a power cut the leases would have expired anyway), which makes taking and giving back a slot cost
microseconds rather than a disk flush. The token table's connection keeps `synchronous = FULL`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Protocol

from connector.auth.stores.leases import new_lease_id

__all__ = ["SqliteLeases"]


class Connect(Protocol):
    def __call__(self, create: Callable[[sqlite3.Connection], None], *, synchronous: str) -> sqlite3.Connection: ...


class SqliteLeases:
    def __init__(self, table: str, connect: Connect, clock: Callable[[], float] = time.time) -> None:
        """`table` is the validated token table's name; `connect(create, synchronous=…)` opens the store's database
        as the token store does (private file, WAL, busy timeout), running `create` under its opening lock."""
        self._connect = connect
        self._clock = clock
        self._local = threading.local()
        slots, values = f"{table}_slots", f"{table}_values"
        self._slots, self._values = slots, values
        # Table names come from the validated token table name; every value is a bound parameter.
        self._sql_full = f'SELECT count(*) FROM "{slots}" WHERE name = ? AND expires > ?'  # noqa: S608
        self._sql_prune = f'DELETE FROM "{slots}" WHERE name = ? AND expires <= ?'  # noqa: S608
        self._sql_take = f'INSERT INTO "{slots}" (name, lease, expires) VALUES (?, ?, ?)'  # noqa: S608
        self._sql_renew = f'UPDATE "{slots}" SET expires = ? WHERE name = ? AND lease = ? AND expires > ?'  # noqa: S608
        self._sql_release = f'DELETE FROM "{slots}" WHERE name = ? AND lease = ?'  # noqa: S608
        self._sql_get = f'SELECT value FROM "{values}" WHERE name = ? AND expires > ?'  # noqa: S608
        self._sql_set = f'INSERT OR REPLACE INTO "{values}" (name, value, expires) VALUES (?, ?, ?)'  # noqa: S608

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        conn = self._conn()
        now = self._clock()
        (held,) = conn.execute(self._sql_full, (name, now)).fetchone()
        if held >= limit:
            return None
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self._clock()
            conn.execute(self._sql_prune, (name, now))
            (held,) = conn.execute(self._sql_full, (name, now)).fetchone()
            lease = None
            if held < limit:
                lease = new_lease_id()
                conn.execute(self._sql_take, (name, lease, now + ttl))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return lease

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        now = self._clock()
        return self._conn().execute(self._sql_renew, (now + ttl, name, lease, now)).rowcount == 1

    def release_slot(self, name: str, lease: str) -> None:
        self._conn().execute(self._sql_release, (name, lease))

    def get_value(self, name: str) -> str | None:
        row = self._conn().execute(self._sql_get, (name, self._clock())).fetchone()
        return None if row is None else str(row[0])

    def set_value(self, name: str, value: str, ttl: float) -> None:
        self._conn().execute(self._sql_set, (name, value, self._clock() + ttl))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = self._connect(self._create, synchronous="NORMAL")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        s, v = self._slots, self._values
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{s}" (name TEXT NOT NULL, lease TEXT NOT NULL, expires REAL)')
        conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{s}_lease" ON "{s}" (name, lease)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{s}_expires" ON "{s}" (name, expires)')
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{v}" (name TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)')
