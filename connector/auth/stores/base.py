"""The TokenStore protocol: the six methods of Zoho's SDKs, plus the lock that makes refresh single-flight; and the
optional LeaseStore protocol through which a store also shares Zoho's per-account limits between workers.

Upsert rule of `save_token` (Zoho's SDK rule, made strict): a saved token replaces the stored row that matches it
by, in order, (1) user_name, (2) access_token, (3) refresh_token or grant_token together with client_id and
client_secret, (4) id; otherwise it is inserted with a new id. A store never holds two rows for one match.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from connector.auth.tokens import Token

__all__ = ["LEASE_METHODS", "LeaseStore", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    def find_token(self, token: Token) -> Token | None:
        """The stored token matching `token` by the upsert rule, or None."""
        ...

    def save_token(self, token: Token) -> Token:
        """Insert or update by the upsert rule; returns the stored token, with its id."""
        ...

    def delete_token(self, id: str) -> None:
        """Delete the token with this id (no error when absent)."""
        ...

    def get_tokens(self) -> list[Token]:
        """Every stored token."""
        ...

    def delete_tokens(self) -> None:
        """Delete every token."""
        ...

    def find_token_by_id(self, id: str) -> Token | None:
        """The token with this id, or None."""
        ...

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        """An exclusive lock named `key`, held across threads, processes and (for shared stores) machines.

        Used around "re-read the token, refresh if still stale, save" so that only one worker calls Zoho's token
        endpoint. Raises TimeoutError when not acquired within `timeout` seconds.
        """
        ...


LEASE_METHODS = ("acquire_slot", "renew_slot", "release_slot", "get_value", "set_value")


@runtime_checkable
class LeaseStore(Protocol):
    """Optional: a store with these five methods shares Zoho's per-account limits between every worker using it.

    Zoho caps the calls one account has in flight (5 to 25 by edition, 10 for heavy APIs such as COQL) and counts a
    daily allowance per account, not per process. A store that implements this protocol holds both for all its
    workers: before each call a worker takes a *slot* (one of `limit` under a name), and the allowance Zoho last
    reported is kept as a *value*. The bundled SQLite, file, MySQL/MariaDB, PostgreSQL and Redis stores implement
    it (an encrypting wrapper passes these calls to the store it wraps, named by its `inner` attribute); the
    memory store does not (it is one process's). A `python:` store that lacks the methods still works: limits are
    then counted in each process, with a warning saying so, unless the connection sets `shared_limits: true`,
    which makes it an error instead.

    Names are short ASCII digests (at most 64 characters) made by the runtime; they never hold a secret. Every
    method must be safe to call from many threads, processes and (for a networked store) machines at once.

    Expiry: a slot is *leased* for `ttl` seconds so that a worker that dies holding one (kill -9, a lost machine)
    blocks nobody for longer than that; a worker still using it renews it. A store shared by several machines
    should measure expiry on its server's clock (Redis TIME, the database's clock) so that machines whose clocks
    disagree still agree on when a lease ends; a single-machine store may use time.time().
    """

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        """Atomically take one of `limit` slots named `name` for `ttl` seconds, counting only leases that have not
        expired; returns a new lease id (unique, opaque) or None when `limit` live leases are already held. Never
        waits for a slot: the caller polls."""
        ...

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        """Extend a live lease to `ttl` seconds from now; False when it has already expired or was released (the
        slot may now be someone else's)."""
        ...

    def release_slot(self, name: str, lease: str) -> None:
        """Give a lease back at once (no error when it has expired or was released already)."""
        ...

    def get_value(self, name: str) -> str | None:
        """The text last set under `name`, or None when none was or it has expired."""
        ...

    def set_value(self, name: str, value: str, ttl: float) -> None:
        """Keep `value` (a short JSON text) under `name` for `ttl` seconds, replacing any earlier value."""
        ...


class LeasesHeldBy:
    """The LeaseStore methods of a store that keeps its leases in a helper object, `self._leases` (the SQLite,
    file and SQL stores: sqlite_leases.py, leases.FileLeases, sql_leases.py)."""

    _leases: LeaseStore

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        return self._leases.acquire_slot(name, limit, ttl)

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        return self._leases.renew_slot(name, lease, ttl)

    def release_slot(self, name: str, lease: str) -> None:
        self._leases.release_slot(name, lease)

    def get_value(self, name: str) -> str | None:
        return self._leases.get_value(name)

    def set_value(self, name: str, value: str, ttl: float) -> None:
        self._leases.set_value(name, value, ttl)
