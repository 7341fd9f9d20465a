"""A token store in MySQL/MariaDB (pymysql) or PostgreSQL (psycopg 3), through one SQLAlchemy Core code path.

The table (`oauthtoken` unless `?table=` says otherwise) is created on first use with unique keys on the match-key
digests. Every statement is parameterized; the only identifier, the table name, is validated. An upsert is one
READ COMMITTED transaction that locks the matching rows (FOR UPDATE); a concurrent insert of the same new token
hits a unique key and the upsert is retried, as is a deadlock. `lock(key)` is a server-side lock (MySQL
GET_LOCK, PostgreSQL pg_advisory_lock) held by a dedicated, unpooled connection, so that waiting for a lock
never starves the pool the lock holder needs. Columns added since a table was created are added on first use.
Shared limits (concurrency slots, the allowance) are in `<table>_slots` and `<table>_values` (sql_leases.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from connector.auth.stores._common import lock_name, require, safe_url, validate_table
from connector.auth.stores.base import LeasesHeldBy
from connector.auth.stores.schema import (
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
from connector.auth.stores.sql_leases import SqlLeases
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError, TransientError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SqlStore"]

log = logging.getLogger(__name__)

_DRIVERS = {
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mysql+pymysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb+pymysql": ("mysql+pymysql", "pymysql", "mysql"),
    "postgresql": ("postgresql+psycopg", "psycopg", "postgresql"),
    "postgres": ("postgresql+psycopg", "psycopg", "postgresql"),
    "postgresql+psycopg": ("postgresql+psycopg", "psycopg", "postgresql"),
}
_ATTEMPTS = 8


class SqlStore(LeasesHeldBy):
    """Tokens in a MySQL, MariaDB or PostgreSQL table. `url` is e.g. `mysql://user:pw@host:3306/db?table=t`."""

    def __init__(self, url: str) -> None:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in _DRIVERS:
            raise ConnectionConfigError(f"not a MySQL/MariaDB/PostgreSQL URL: {safe_url(url)}")
        driver, module, extra = _DRIVERS[scheme]
        require("sqlalchemy", extra)
        require(module, extra)
        import sqlalchemy as sa

        self._sa = sa
        self._safe = safe_url(url)
        params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        self.table_name = validate_table(params.pop("table", "oauthtoken"))
        try:
            sa_url = sa.engine.make_url(url).set(drivername=driver, query={})
            if sa_url.port is not None and not 0 < sa_url.port < 65536:
                raise ValueError(sa_url.port)
        except Exception:
            raise ConnectionConfigError(f"token_store: invalid token store URL {self._safe}") from None
        self.is_mysql = driver.startswith("mysql")
        query = dict(params)
        if self.is_mysql:
            query.setdefault("charset", "utf8mb4")
        sa_url = sa_url.set(query=query)
        common: dict[str, Any] = {"hide_parameters": True, "connect_args": {"connect_timeout": 10}}
        # hide_parameters: SQLAlchemy's error texts would otherwise quote the bound values, i.e. the secrets.
        self._engine = sa.create_engine(sa_url, isolation_level="READ COMMITTED", pool_pre_ping=True, **common)
        self._lock_engine = sa.create_engine(sa_url, poolclass=sa.pool.NullPool, **common)
        self.table = self._define()
        self._created = False
        # Leases get their own autocommit pool without pre-ping: taking a slot is then one round trip. It keeps more
        # connections than the default 5: a connection beyond the pool's size is closed when given back, and
        # opening one (a server process or thread, authentication) costs far more than the statement.
        lease_engine = sa.create_engine(sa_url, isolation_level="AUTOCOMMIT", pool_size=16, max_overflow=16, **common)
        sa.event.listen(lease_engine, "connect", _lease_session_mysql if self.is_mysql else _lease_session_postgresql)
        # shared limits (base.LeaseStore, through base.LeasesHeldBy)
        self._leases: SqlLeases = SqlLeases(lease_engine, self.table_name, is_mysql=self.is_mysql, error=self._error)

    # -- the six methods ---------------------------------------------------------------------------------------

    def find_token(self, token: Token) -> Token | None:
        check_token(token)
        with self._begin() as conn:
            return find_match(token, self._candidates(conn, token, for_update=False))

    def save_token(self, token: Token) -> Token:
        check_token(token)
        sa = self._sa
        for attempt in range(_ATTEMPTS):
            try:
                with self._begin(retrying=True) as conn:
                    match = plan_upsert(token, self._candidates(conn, token, for_update=True))
                    stored = token.replace(id=saved_id(token, match))
                    values = self._values(stored)
                    if match is None:
                        conn.execute(self.table.insert().values(values))
                    else:
                        where = self.table.c.id_key == keys_of(match).id_key
                        conn.execute(self.table.update().where(where).values(values))
                return stored
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as e:
                # A concurrent insert of the same token (unique key) or a deadlock: decide again.
                if attempt == _ATTEMPTS - 1 or not (isinstance(e, sa.exc.IntegrityError) or _is_deadlock(e)):
                    raise self._error("save a token", e) from None
                log.debug("token upsert retried after %s", type(e.orig).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def delete_token(self, id: str) -> None:
        check_id(id)
        with self._begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.id_key == keys_of(Token(id=id)).id_key))

    def get_tokens(self) -> list[Token]:
        with self._begin() as conn:
            return [self._token(r) for r in conn.execute(self._select())]

    def delete_tokens(self) -> None:
        with self._begin() as conn:
            conn.execute(self.table.delete())

    def find_token_by_id(self, id: str) -> Token | None:
        check_id(id)
        with self._begin() as conn:
            rows = conn.execute(self._select().where(self.table.c.id_key == keys_of(Token(id=id)).id_key))
            return next((self._token(r) for r in rows), None)

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30.0) -> Iterator[None]:
        sa = self._sa
        name = lock_name(self.table_name, key)
        try:
            conn = self._lock_engine.connect()
        except sa.exc.SQLAlchemyError as e:
            raise self._error("take a lock", e) from None
        try:
            if self.is_mysql:
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": max(timeout, 0.0)}).scalar()
                if got != 1:
                    raise TimeoutError(f"lock not acquired within {timeout:g} s")
                release = sa.text("SELECT RELEASE_LOCK(:n)").bindparams(n=name)
            else:
                number = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
                self._pg_lock(conn, number, timeout)
                release = sa.text("SELECT pg_advisory_unlock(:k)").bindparams(k=number)
            conn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    conn.execute(release)
                    conn.commit()
        finally:
            conn.close()  # a closed session releases its locks even if the unlock failed

    # -- maintenance -------------------------------------------------------------------------------------------

    def drop_table(self) -> None:
        """Drop the token table and its limits tables (tests, uninstall)."""
        self.table.drop(self._engine, checkfirst=True)
        self._leases.drop_tables()
        self._created = False

    def close(self) -> None:
        self._engine.dispose()
        self._lock_engine.dispose()
        self._leases.close()

    # -- internals ---------------------------------------------------------------------------------------------

    def _define(self) -> sa.Table:
        from sqlalchemy.dialects import mysql

        lib = self._sa
        # Up to 16 MB on MySQL, whose TEXT stops at 64 KB; PostgreSQL's TEXT has no limit.
        text = lib.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
        digest = lib.String(64)
        short = hashlib.sha256(self.table_name.encode()).hexdigest()[:12]  # index names are 64 chars at most
        columns = [lib.Column("id_key", digest, primary_key=True), lib.Column("id", text, nullable=False)]
        for f in FIELDS[1:]:
            columns.append(lib.Column(f, lib.Double() if f in NUMBER_FIELDS else text))
        columns += [lib.Column(k, digest) for k in KEYS[1:]]
        uniques = [lib.UniqueConstraint(k, name=f"uq_{short}_{k}") for k in KEYS[1:]]
        table = lib.Table(
            self.table_name,
            lib.MetaData(),
            *columns,
            *uniques,
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )
        return table  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _begin(self, *, retrying: bool = False) -> Iterator[sa.Connection]:
        """A transaction; driver errors become ours, except those a retrying caller handles itself."""
        sa = self._sa
        if not self._created:
            self._create()
        try:
            with self._engine.begin() as conn:
                yield conn
        except (sa.exc.InterfaceError, sa.exc.DatabaseError) as e:
            if retrying and isinstance(e, sa.exc.IntegrityError | sa.exc.OperationalError):
                raise
            raise self._error("use the token table", e) from None

    def _create(self) -> None:
        sa = self._sa
        try:
            self.table.create(self._engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as e:
            # Another process may have created it between the check and the CREATE.
            try:
                exists = sa.inspect(self._engine).has_table(self.table_name)
            except sa.exc.SQLAlchemyError:
                exists = False
            if not exists:
                raise self._error("create the token table", e) from None
        self._add_missing_columns()
        self._created = True

    def _add_missing_columns(self) -> None:
        """A table made by an older version lacks the newer columns (organization_ids): add them."""
        sa = self._sa
        for _ in range(3):  # another process may be adding the same column: look again
            try:
                present = {c["name"] for c in sa.inspect(self._engine).get_columns(self.table_name)}
                missing = [c for c in self.table.columns if c.name not in present]
                if not missing:
                    return
                preparer = self._engine.dialect.identifier_preparer
                with self._engine.begin() as conn:
                    for column in missing:
                        kind = column.type.compile(dialect=self._engine.dialect)
                        conn.execute(
                            sa.text(
                                f"ALTER TABLE {preparer.quote(self.table_name)} "  # validated name, no values
                                f"ADD COLUMN {preparer.quote(column.name)} {kind}"
                            )
                        )
                return
            except sa.exc.SQLAlchemyError as e:
                error = e
        raise self._error("add a column to the token table", error)

    def _pg_lock(self, conn: sa.Connection, number: int, timeout: float) -> None:
        sa = self._sa
        if timeout <= 0:
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": number}).scalar():
                raise TimeoutError("lock not acquired")
            return
        conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{int(timeout * 1000)}ms"})
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": number})
        except sa.exc.OperationalError as e:
            if getattr(e.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise TimeoutError(f"lock not acquired within {timeout:g} s") from None
            raise self._error("take a lock", e) from None
        conn.execute(sa.text("SELECT set_config('lock_timeout', '0', false)"))

    def _candidates(self, conn: sa.Connection, token: Token, *, for_update: bool) -> list[Token]:
        sa = self._sa
        c = self.table.c
        conditions = [c[k] == v for k, v in zip(KEYS, keys_of(token), strict=True) if v is not None]
        if not conditions:
            return []
        query = self._select().where(sa.or_(*conditions))
        if for_update:
            query = query.with_for_update()
        return [self._token(r) for r in conn.execute(query)]

    def _select(self) -> sa.Select[Any]:
        return self._sa.select(*(self.table.c[f] for f in FIELDS))

    @staticmethod
    def _values(token: Token) -> dict[str, Any]:
        values = to_row(token)
        values.update(keys_of(token)._asdict())
        return values

    @staticmethod
    def _token(row: Any) -> Token:
        return from_row(dict(zip(FIELDS, row, strict=True)))

    def _error(self, doing: str, e: Exception) -> ConnectionConfigError | TransientError:
        """Our error for a driver error: the kind of failure and the server's code, never the statement values."""
        orig = getattr(e, "orig", None) or e
        code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig.args and isinstance(orig.args[0], int) else "")
        what = f"cannot {doing} in the token store {self._safe}: {type(orig).__name__} {code}".rstrip()
        if isinstance(e, self._sa.exc.OperationalError):
            return TransientError(what)
        return ConnectionConfigError(what)


def _lease_session_postgresql(dbapi_connection: Any, _: Any) -> None:
    # A lease is worthless after a crash (it would have expired), so its commit need not wait for the WAL flush.
    # PostgreSQL allows this per session; MySQL's equivalent is server-wide, so it is left alone there.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")


def _lease_session_mysql(dbapi_connection: Any, _: Any) -> None:
    # A lease's UPDATE locks only the row it takes (no gap locks) and re-checks that row's latest version.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")


def _is_deadlock(e: Any) -> bool:
    orig = getattr(e, "orig", None)
    if getattr(orig, "sqlstate", None) in ("40P01", "40001"):
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in (1213, 1205)  # MySQL deadlock, lock wait timeout
