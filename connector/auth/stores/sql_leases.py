"""Shared limits (base.LeaseStore) for the MySQL/MariaDB and PostgreSQL store, through SQLAlchemy.

`<table>_slots` holds one row per slot (`slot_name`, `slot_no` 0…limit-1), free or leased (`lease_id`, `expires_at`
in seconds on the database server's clock, so machines with skewed clocks agree). Taking a slot is one UPDATE of one
free or expired row, in autocommit:

- PostgreSQL picks the row in a subquery `FOR UPDATE SKIP LOCKED`, so concurrent takers claim different rows
  without waiting on each other; a row another taker changed meanwhile is re-checked and skipped.
- MySQL/MariaDB runs `UPDATE … ORDER BY slot_no LIMIT 1`; under READ COMMITTED InnoDB re-reads a row it waited for
  and skips it once taken.

Either way one row has one lease, so no more than `limit` leases are live. A name's rows are created on first use
(insert, ignoring those present). `<table>_values` holds the shared values with their expiry. Every value is a bound
parameter; the table names derive from the validated token table name.
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

_RESEED_SECONDS = 10.0  # a name found full is re-seeded at most this often (rows deleted by hand come back)
_MAX_NAME = 63


class SqlLeases:
    def __init__(
        self, engine: sa.Engine, table: str, *, is_mysql: bool, error: Callable[[str, Exception], Exception]
    ) -> None:
        import sqlalchemy as sa
        from sqlalchemy.dialects import mysql

        self._sa = sa
        self._engine = engine  # autocommit, not pre-pinged: one statement is one round trip
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
            **options,
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
        free = f"(lease_id IS NULL OR expires_at <= {now})"
        if is_mysql:
            take = (
                f"UPDATE {s} SET lease_id = :lease, expires_at = {now} + :ttl "  # noqa: S608 - names validated
                f"WHERE slot_name = :name AND slot_no < :limit AND {free} ORDER BY slot_no LIMIT 1"
            )
            put = (
                f"INSERT INTO {v} (value_name, value_text, expires_at) VALUES (:name, :value, {now} + :ttl) "  # noqa: S608
                "ON DUPLICATE KEY UPDATE value_text = VALUES(value_text), expires_at = VALUES(expires_at)"
            )
        else:
            take = (
                f"UPDATE {s} SET lease_id = :lease, expires_at = {now} + :ttl "  # noqa: S608 - names validated
                f"WHERE slot_name = :name AND slot_no = (SELECT slot_no FROM {s} WHERE slot_name = :name "
                f"AND slot_no < :limit AND {free} ORDER BY slot_no LIMIT 1 FOR UPDATE SKIP LOCKED)"
            )
            put = (
                f"INSERT INTO {v} (value_name, value_text, expires_at) VALUES (:name, :value, {now} + :ttl) "  # noqa: S608
                "ON CONFLICT (value_name) DO UPDATE "
                "SET value_text = excluded.value_text, expires_at = excluded.expires_at"
            )
        self._take = sa.text(take)
        self._put = sa.text(put)
        self._renew = sa.text(
            f"UPDATE {s} SET expires_at = {now} + :ttl "  # noqa: S608 - names validated
            f"WHERE slot_name = :name AND lease_id = :lease AND expires_at > {now}"
        )
        self._release = sa.text(
            f"UPDATE {s} SET lease_id = NULL, expires_at = NULL WHERE slot_name = :name AND lease_id = :lease"  # noqa: S608
        )
        self._get = sa.text(f"SELECT value_text FROM {v} WHERE value_name = :name AND expires_at > {now}")  # noqa: S608

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        lease = new_lease_id()
        seeded = self._seeded.get((name, limit))
        if seeded is None:
            self._seed(name, limit)
        taken = self._run(self._take, {"lease": lease, "ttl": float(ttl), "name": name, "limit": int(limit)})
        if taken.rowcount == 1:
            return lease
        if seeded is not None and time.monotonic() - seeded > _RESEED_SECONDS:
            self._seed(name, limit)
        return None

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        return bool(self._run(self._renew, {"ttl": float(ttl), "name": name, "lease": lease}).rowcount == 1)

    def release_slot(self, name: str, lease: str) -> None:
        self._run(self._release, {"name": name, "lease": lease})

    def get_value(self, name: str) -> str | None:
        row = self._run(self._get, {"name": name}).first()
        return None if row is None else str(row[0])

    def set_value(self, name: str, value: str, ttl: float) -> None:
        self._run(self._put, {"name": name, "value": value, "ttl": float(ttl)})

    def close(self) -> None:
        self._engine.dispose()

    def drop_tables(self) -> None:
        self.slots.drop(self._engine, checkfirst=True)
        self.values.drop(self._engine, checkfirst=True)
        self._created = False
        self._seeded.clear()

    # -- internals ---------------------------------------------------------------------------------------------

    def _run(self, statement: Any, params: dict[str, Any]) -> Any:
        sa = self._sa
        if not self._created:
            self._create()
        for attempt in (1, 2):
            try:
                with self._engine.connect() as conn:
                    return conn.execute(statement, params)
            except sa.exc.DBAPIError as e:
                # A pooled connection the server dropped (a restart, an idle timeout) is not pre-pinged: it fails
                # once, is discarded, and the statement (idempotent or failed before running) goes on a new one.
                if attempt == 1 and e.connection_invalidated:
                    continue
                raise self._error("use the limits tables", e) from None
            except sa.exc.SQLAlchemyError as e:
                raise self._error("use the limits tables", e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _seed(self, name: str, limit: int) -> None:
        """The name's slot rows 0…limit-1, inserted where missing (concurrent seeders are harmless)."""
        sa = self._sa
        rows = [{"slot_name": name, "slot_no": n} for n in range(limit)]
        if self._is_mysql:
            statement: Any = self.slots.insert().prefix_with("IGNORE").values(rows)
        else:
            from sqlalchemy.dialects import postgresql

            statement = postgresql.insert(self.slots).values(rows).on_conflict_do_nothing()
        if not self._created:
            self._create()
        try:
            with self._engine.connect() as conn:
                conn.execute(statement)
        except sa.exc.SQLAlchemyError as e:
            raise self._error("create the slots of a limit", e) from None
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
