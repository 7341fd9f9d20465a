"""Shared limits (base.LeaseStore) for the MySQL/MariaDB and PostgreSQL store, through SQLAlchemy.

`<table>_slots` holds one row per slot (`slot_name`, `slot_no` 0…limit-1), free or leased (`lease_id`, `expires_at`
in seconds on the database server's clock, so machines with skewed clocks agree). A name's rows are created on
first use (insert, ignoring those present), and again now and then while it is found full, so rows lost with a
server restart come back. Taking a slot leases one free or expired row, and takers never queue behind each other:

- PostgreSQL: one UPDATE whose row comes from a subquery `FOR UPDATE SKIP LOCKED`; a row another taker changed
  meanwhile is re-checked and skipped. The table is UNLOGGED (slots are worthless after a crash: every lease would
  have expired) and lease connections commit without waiting for the WAL flush (`synchronous_commit = off`).
- MySQL/MariaDB: a plain read of the free rows (a full name costs one round trip and takes no lock), then an UPDATE
  of one of them, chosen at random, that re-checks it is still free (under READ COMMITTED, on the row's latest
  version): two takers that chose the same row get it once. InnoDB flushes its log at every commit with the row
  still locked, so taking the lowest free row, as PostgreSQL does, would queue every taker behind that flush.

Either way one row has one lease, so no more than `limit` leases are live. `<table>_values` holds the shared values
with their expiry. Every value is a bound parameter; the table names derive from the validated token table name.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector.auth.stores.leases import new_lease_id

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SqlLeases"]

_RESEED_SECONDS = 2.0  # a full name is re-seeded at most this often: rows lost in a server restart come back
_MAX_NAME = 63
_TRIES = 3  # free rows a MySQL taker tries before reporting the name full (others took them meanwhile)


class SqlLeases:
    def __init__(
        self, engine: sa.Engine, table: str, *, is_mysql: bool, error: Callable[[str, Exception], Exception]
    ) -> None:
        """`engine`: an autocommit engine of the store's database, for leases alone."""
        import sqlalchemy as sa
        from sqlalchemy.dialects import mysql

        self._sa = sa
        self._engine = engine
        self._is_mysql = is_mysql
        self._error = error
        base = table if len(table) + len("_values") <= _MAX_NAME else f"{table[:40]}_{_short(table)}"
        metadata = sa.MetaData()
        options: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
        self.slots = sa.Table(
            f"{base}_slots",
            metadata,
            sa.Column("slot_name", sa.String(64), primary_key=True),
            sa.Column("slot_no", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("lease_id", sa.String(32)),
            sa.Column("expires_at", sa.Double()),
            **({**options, "mysql_charset": "ascii", "mysql_collate": "ascii_bin"} if is_mysql else {}),
            prefixes=[] if is_mysql else ["UNLOGGED"],
        )
        self.values = sa.Table(
            f"{base}_values",
            metadata,
            sa.Column("value_name", sa.String(64), primary_key=True),
            sa.Column("value_text", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")),
            sa.Column("expires_at", sa.Double()),
            **options,
        )
        self._created = False
        self._seeded: dict[tuple[str, int], float] = {}
        quote = engine.dialect.identifier_preparer.quote
        s, v = quote(self.slots.name), quote(self.values.name)
        now = "UNIX_TIMESTAMP(NOW(6))" if is_mysql else "CAST(extract(epoch FROM clock_timestamp()) AS float8)"
        free = f"slot_name = :name AND slot_no < :limit AND (lease_id IS NULL OR expires_at <= {now})"
        text = sa.text
        # The table names are validated; every value is a bound parameter.
        self._sql_free = text(f"SELECT slot_no FROM {s} WHERE {free}")  # noqa: S608
        self._sql_lease = text(
            f"UPDATE {s} SET lease_id = :lease, expires_at = {now} + :ttl "  # noqa: S608
            f"WHERE slot_name = :name AND slot_no = :no AND (lease_id IS NULL OR expires_at <= {now})"
        )
        self._sql_take = text(
            f"UPDATE {s} SET lease_id = :lease, expires_at = {now} + :ttl WHERE slot_name = :name AND slot_no = "  # noqa: S608
            f"(SELECT slot_no FROM {s} WHERE {free} ORDER BY slot_no LIMIT 1 FOR UPDATE SKIP LOCKED)"
        )
        self._sql_renew = text(
            f"UPDATE {s} SET expires_at = {now} + :ttl "  # noqa: S608
            f"WHERE slot_name = :name AND lease_id = :lease AND expires_at > {now}"
        )
        self._sql_release = text(
            f"UPDATE {s} SET lease_id = NULL, expires_at = NULL WHERE slot_name = :name AND lease_id = :lease"  # noqa: S608
        )
        self._sql_get = text(f"SELECT value_text FROM {v} WHERE value_name = :name AND expires_at > {now}")  # noqa: S608
        if is_mysql:
            put = "ON DUPLICATE KEY UPDATE value_text = VALUES(value_text), expires_at = VALUES(expires_at)"
        else:
            put = (
                "ON CONFLICT (value_name) DO UPDATE "
                "SET value_text = excluded.value_text, expires_at = excluded.expires_at"
            )
        self._sql_put = text(
            f"INSERT INTO {v} (value_name, value_text, expires_at) VALUES (:name, :value, {now} + :ttl) {put}"  # noqa: S608
        )

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        seeded = self._seeded.get((name, limit))
        if seeded is None:
            self._seed(name, limit)
        lease = new_lease_id()
        params = {"lease": lease, "ttl": float(ttl), "name": name, "limit": int(limit)}
        taken = self._with(self._take_mysql if self._is_mysql else self._take_postgresql, params)
        if taken:
            return lease
        if seeded is not None and time.monotonic() - seeded > _RESEED_SECONDS:
            self._seed(name, limit)
        return None

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        return bool(self._run(self._sql_renew, {"ttl": float(ttl), "name": name, "lease": lease}).rowcount == 1)

    def release_slot(self, name: str, lease: str) -> None:
        self._run(self._sql_release, {"name": name, "lease": lease})

    def get_value(self, name: str) -> str | None:
        row = self._run(self._sql_get, {"name": name}).first()
        return None if row is None else str(row[0])

    def set_value(self, name: str, value: str, ttl: float) -> None:
        self._run(self._sql_put, {"name": name, "value": value, "ttl": float(ttl)})

    def close(self) -> None:
        self._engine.dispose()

    def drop_tables(self) -> None:
        self.slots.drop(self._engine, checkfirst=True)
        self.values.drop(self._engine, checkfirst=True)
        self._created = False
        self._seeded.clear()

    # -- internals ---------------------------------------------------------------------------------------------

    def _take_postgresql(self, conn: sa.Connection, params: dict[str, Any]) -> bool:
        return bool(conn.execute(self._sql_take, params).rowcount == 1)

    def _take_mysql(self, conn: sa.Connection, params: dict[str, Any]) -> bool:
        import random

        free = [row[0] for row in conn.execute(self._sql_free, params)]
        for no in random.sample(free, min(len(free), _TRIES)):
            if conn.execute(self._sql_lease, {**params, "no": no}).rowcount == 1:
                return True
        return False

    def _run(self, statement: Any, params: dict[str, Any]) -> Any:
        return self._with(lambda conn, p: conn.execute(statement, p), params)

    def _with(self, work: Callable[[sa.Connection, dict[str, Any]], Any], params: dict[str, Any]) -> Any:
        sa = self._sa
        if not self._created:
            self._create()
        for attempt in (1, 2):
            try:
                with self._engine.connect() as conn:
                    return work(conn, params)
            except sa.exc.DBAPIError as e:
                # A pooled connection the server dropped (a restart, an idle timeout) is not pre-pinged: it fails
                # once, is discarded, and the work (which failed before it ran) goes to a new connection.
                if attempt == 1 and e.connection_invalidated:
                    continue
                raise self._error("use the limits tables", e) from None
            except sa.exc.SQLAlchemyError as e:
                raise self._error("use the limits tables", e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _seed(self, name: str, limit: int) -> None:
        """The name's slot rows 0…limit-1, inserted where missing (concurrent seeders are harmless)."""
        rows = [{"slot_name": name, "slot_no": n} for n in range(limit)]
        if self._is_mysql:
            statement: Any = self.slots.insert().prefix_with("IGNORE").values(rows)
        else:
            from sqlalchemy.dialects import postgresql

            statement = postgresql.insert(self.slots).values(rows).on_conflict_do_nothing()
        self._with(lambda conn, _: conn.execute(statement), {})
        self._seeded[(name, limit)] = time.monotonic()

    def _create(self) -> None:
        sa = self._sa
        for table in (self.slots, self.values):
            try:
                table.create(self._engine, checkfirst=True)
            except sa.exc.SQLAlchemyError as e:  # another process may have created it between check and CREATE
                try:
                    exists = sa.inspect(self._engine).has_table(table.name)
                except sa.exc.SQLAlchemyError:
                    exists = False
                if not exists:
                    raise self._error("create the limits tables", e) from None
        self._created = True


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
