"""Single-flight token refresh: however many threads, processes or machines share a token, one of them refreshes.

Zoho allows 10 access tokens per refresh token per 10 minutes and 15 live ones, so N workers each refreshing on
their own burn the budget and evict each other's tokens. Here a stale token is refreshed only under a lock for
that token (an in-process lock, so one thread per process queues on the store, then the store's lock, shared by
every process using the store), after re-reading it: whoever waited finds the fresh token and uses it.
Independent of HTTP: the caller passes the function that talks to the token endpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from connector.auth.stores.base import TokenStore
from connector.auth.stores.locks import KeyedLocks
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError, TransientError

__all__ = ["RefreshLockTimeout", "aensure_fresh", "ensure_fresh", "flight_key", "token_lock"]

log = logging.getLogger(__name__)

_LOCAL = KeyedLocks()  # process-wide, shared by every store: a key names one token


def flight_key(token: Token) -> str:
    """The lock name of a token: its id, else a digest of its client and refresh token (never a raw secret)."""
    if token.id:
        return f"zoho-connector:refresh:id:{token.id}"
    if token.refresh_token:
        digest = hashlib.sha256(f"{token.client_id}\0{token.refresh_token}".encode("utf-8", "surrogatepass"))
        return f"zoho-connector:refresh:rt:{digest.hexdigest()}"
    raise ConnectionConfigError(
        "no stored token matches this connection and it has no refresh token: authorize the connection first"
    )


class RefreshLockTimeout(TransientError):
    """Another worker held this token's refresh lock for longer than the lock timeout: try again shortly."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"another worker has been refreshing this token for over {timeout:g} s (the refresh lock is held); "
            "try again shortly",
            retry_after=min(max(timeout / 4, 1.0), 30.0),
        )


@contextlib.contextmanager
def token_lock(store: TokenStore, key: str, timeout: float) -> Iterator[None]:
    """This token's lock: the in-process lock first (one thread per process queues on the store), then the
    store's lock, shared by every process using the store. RefreshLockTimeout when not held within `timeout`."""
    deadline = time.monotonic() + timeout
    with contextlib.ExitStack() as held:
        try:  # only a timeout while acquiring is ours to translate, not one raised by the caller's block
            held.enter_context(_LOCAL.hold(key, timeout))
            held.enter_context(store.lock(key, timeout=max(deadline - time.monotonic(), 0.0)))
        except TimeoutError:
            raise RefreshLockTimeout(timeout) from None
        yield


def _stale(token: Token, now: float, margin: float, failed: str | None) -> bool:
    """True when the token must be refreshed: it expires within `margin`, or it is the access token that failed."""
    if not token.is_fresh(now, margin):
        return True
    return failed is not None and hmac.compare_digest(
        (token.access_token or "").encode("utf-8", "surrogatepass"), failed.encode("utf-8", "surrogatepass")
    )


def ensure_fresh(
    store: TokenStore,
    probe: Token,
    refresh: Callable[[Token], Token],
    *,
    now: Callable[[], float] = time.time,
    margin: float = 300.0,
    force_if_access_token: str | None = None,
    lock_timeout: float = 60.0,
) -> Token:
    """The stored token matching `probe`, refreshed first if it expires within `margin` seconds.

    `force_if_access_token`: the access token a call was just refused with (HTTP 401). The token is refreshed only
    if the store still holds that access token; if another worker has already replaced it, its token is used.
    `refresh(token)` returns the new token; when it raises, nothing is saved and the locks are released.
    Raises RefreshLockTimeout (a retryable TransientError) when the lock is not acquired within `lock_timeout`.
    """
    stored = store.find_token(probe)
    if stored is not None and not _stale(stored, now(), margin, force_if_access_token):
        return stored
    return _refresh_locked(store, probe, stored, refresh, now, margin, force_if_access_token, lock_timeout)


def _refresh_locked(
    store: TokenStore,
    probe: Token,
    stored: Token | None,
    refresh: Callable[[Token], Token],
    now: Callable[[], float],
    margin: float,
    failed: str | None,
    lock_timeout: float,
) -> Token:
    key = flight_key(stored or probe)
    with token_lock(store, key, lock_timeout):
        # Re-read: while we waited, another worker may have refreshed (or the 401'd token may be gone).
        current = store.find_token_by_id(stored.id) if stored is not None and stored.id else store.find_token(probe)
        if current is not None and not _stale(current, now(), margin, failed):
            return current
        base = current or stored or probe
        log.debug("refreshing token %s", base.id or "(not stored yet)")
        new = refresh(base)
        if new.id is None and base.id is not None:
            new = new.replace(id=base.id)
        return store.save_token(new)


async def aensure_fresh(
    store: TokenStore,
    probe: Token,
    refresh: Callable[[Token], Awaitable[Token]],
    *,
    now: Callable[[], float] = time.time,
    margin: float = 300.0,
    force_if_access_token: str | None = None,
    lock_timeout: float = 60.0,
) -> Token:
    """`ensure_fresh` for async code: the store calls and lock waits run in worker threads (the event loop never
    blocks), and `refresh` is a coroutine function run on the caller's event loop while the locks are held. The
    whole locked section runs in one worker thread, so each lock is released by the thread that took it."""
    import anyio.from_thread
    import anyio.to_thread

    stored = await anyio.to_thread.run_sync(store.find_token, probe)
    if stored is not None and not _stale(stored, now(), margin, force_if_access_token):
        return stored

    async def call(token: Token) -> Token:
        return await refresh(token)

    def refresh_in_loop(token: Token) -> Token:
        return anyio.from_thread.run(call, token)

    def locked() -> Token:
        return _refresh_locked(store, probe, stored, refresh_in_loop, now, margin, force_if_access_token, lock_timeout)

    return await anyio.to_thread.run_sync(locked)
