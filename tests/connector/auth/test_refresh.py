"""ensure_fresh / aensure_fresh: one refresh however many callers, a 401 refreshes once, failures save nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import anyio
import pytest

from connector.auth.refresh import RefreshLockTimeout, aensure_fresh, ensure_fresh, flight_key
from connector.auth.stores.memory import MemoryStore
from connector.auth.tokens import Token
from connector.errors import AuthenticationError, ConnectionConfigError, TransientError
from tests.connector.auth.stores.workers import hold_lock

NOW = 1_000_000.0
STALE = Token(
    user_name="alice",
    client_id="cid",
    client_secret="cs",
    refresh_token="rt",
    access_token="old",
    expires_at=NOW + 10,  # inside the 300 s margin
    api_domain="https://www.zohoapis.eu",
)


def clock() -> float:
    return NOW


class Refresher:
    """A token endpoint stand-in that counts its calls; `gate` lets a test hold the refresh in flight."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[Token] = []
        self.gate = gate
        self._lock = threading.Lock()

    def __call__(self, token: Token) -> Token:
        with self._lock:
            self.calls.append(token)
            n = len(self.calls)
        if self.gate is not None:
            assert self.gate.wait(10)
        return token.replace(id=None, access_token=f"new-{n}", expires_at=NOW + 3600)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.save_token(STALE)
    return s


def test_a_fresh_token_is_returned_without_refreshing(store: MemoryStore) -> None:
    fresh = store.save_token(STALE.replace(expires_at=NOW + 3600))
    refresh = Refresher()
    assert ensure_fresh(store, Token(user_name="alice"), refresh, now=clock) == fresh
    assert refresh.calls == []


def test_a_stale_token_is_refreshed_once_and_saved(store: MemoryStore) -> None:
    refresh = Refresher()
    got = ensure_fresh(store, Token(user_name="alice"), refresh, now=clock)
    assert got.access_token == "new-1" and got.id == store.get_tokens()[0].id
    assert store.get_tokens() == [got]
    assert refresh.calls[0].refresh_token == "rt"
    assert ensure_fresh(store, Token(user_name="alice"), refresh, now=clock) == got
    assert len(refresh.calls) == 1


def test_margin_decides_staleness(store: MemoryStore) -> None:
    refresh = Refresher()
    assert ensure_fresh(store, Token(user_name="alice"), refresh, now=clock, margin=5).access_token == "old"
    assert ensure_fresh(store, Token(user_name="alice"), refresh, now=clock, margin=10).access_token == "new-1"


def test_many_threads_make_one_refresh(store: MemoryStore) -> None:
    gate = threading.Event()
    refresh = Refresher(gate)
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ensure_fresh, store, Token(user_name="alice"), refresh, now=clock) for _ in range(16)]
        while not refresh.calls:  # one caller is inside the refresh; the others queue on the lock
            threading.Event().wait(0.001)
        gate.set()
        results = [f.result() for f in futures]
    assert len(refresh.calls) == 1
    assert {r.access_token for r in results} == {"new-1"}


def test_a_401_refreshes_only_the_token_that_failed(store: MemoryStore) -> None:
    fresh = store.save_token(STALE.replace(access_token="good", expires_at=NOW + 3600))
    refresh = Refresher()
    # Another worker already replaced the token that failed: use its token, no refresh.
    assert ensure_fresh(store, Token(user_name="alice"), refresh, now=clock, force_if_access_token="bad") == fresh
    assert refresh.calls == []
    # The stored token is the one that failed: refresh it, once.
    got = ensure_fresh(store, Token(user_name="alice"), refresh, now=clock, force_if_access_token="good")
    assert got.access_token == "new-1"
    again = ensure_fresh(store, Token(user_name="alice"), refresh, now=clock, force_if_access_token="good")
    assert again == got and len(refresh.calls) == 1


def test_a_failing_refresh_saves_nothing_and_releases_the_lock(store: MemoryStore) -> None:
    def fail(token: Token) -> Token:
        raise AuthenticationError("refresh token revoked", reason="invalid_code")

    with pytest.raises(AuthenticationError):
        ensure_fresh(store, Token(user_name="alice"), fail, now=clock)
    assert store.get_tokens()[0].access_token == "old"
    assert ensure_fresh(store, Token(user_name="alice"), Refresher(), now=clock, lock_timeout=1).access_token == "new-1"


def test_an_unstored_token_with_a_refresh_token_is_refreshed_and_stored() -> None:
    store = MemoryStore()
    got = ensure_fresh(store, STALE.replace(access_token=None), Refresher(), now=clock)
    assert store.get_tokens() == [got] and got.access_token == "new-1"


def test_nothing_to_refresh_is_a_config_error() -> None:
    with pytest.raises(ConnectionConfigError, match="authorize"):
        ensure_fresh(MemoryStore(), Token(user_name="nobody"), Refresher(), now=clock)


def test_the_flight_key_names_no_secret() -> None:
    assert flight_key(STALE.replace(id="abc")) == "zoho-connector:refresh:id:abc"
    key = flight_key(STALE.replace(refresh_token="1000.sekrit-refresh"))
    assert "sekrit" not in key and len(key.rsplit(":", 1)[1]) == 64


class SlowLockStore(MemoryStore):
    """A store whose lock is held elsewhere."""

    def __init__(self, held: threading.Lock) -> None:
        super().__init__()
        self.held = held

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        @contextmanager
        def hold() -> Iterator[None]:
            if not self.held.acquire(timeout=timeout):
                raise TimeoutError("busy")
            try:
                yield
            finally:
                self.held.release()

        return hold()


def test_a_lock_that_cannot_be_taken_times_out() -> None:
    held = threading.Lock()
    store = SlowLockStore(held)
    store.save_token(STALE)
    # A typed, retryable error (it used to be a bare TimeoutError, which engines report as a crash).
    with held, pytest.raises(RefreshLockTimeout) as err:
        ensure_fresh(store, Token(user_name="alice"), Refresher(), now=clock, lock_timeout=0.05)
    assert isinstance(err.value, TransientError) and err.value.retryable and err.value.retry_after
    assert err.value.to_dict()["error"]["type"] == "transient"


def test_a_refresh_lock_held_by_another_process_is_a_typed_retryable_error(tmp_path: Path) -> None:
    import multiprocessing

    from connector.auth.stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "t.db")
    store.save_token(STALE)
    key = flight_key(store.find_token(Token(user_name="alice")) or STALE)
    ready, release = multiprocessing.get_context("spawn").Event(), multiprocessing.get_context("spawn").Event()
    holder = multiprocessing.get_context("spawn").Process(
        target=hold_lock, args=(str(tmp_path / "t.db"), key, ready, release)
    )
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RefreshLockTimeout):
            ensure_fresh(store, Token(user_name="alice"), Refresher(), now=clock, lock_timeout=0.1)
    finally:
        release.set()
        holder.join(30)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_callers_make_one_refresh(store: MemoryStore, anyio_backend: str) -> None:
    calls: list[Token] = []
    started = anyio.Event()
    release = anyio.Event()

    async def refresh(token: Token) -> Token:
        calls.append(token)
        started.set()
        await release.wait()
        return token.replace(access_token="async-new", expires_at=NOW + 3600)

    results: list[Token] = []

    async def call() -> None:
        results.append(await aensure_fresh(store, Token(user_name="alice"), refresh, now=clock))

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(call)
        await started.wait()
        release.set()
    assert len(calls) == 1
    assert [r.access_token for r in results] == ["async-new"] * 16
    # Fresh now: no thread hop needed for the refresh, no second call.
    assert (await aensure_fresh(store, Token(user_name="alice"), refresh, now=clock)).access_token == "async-new"
    assert len(calls) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_failure_saves_nothing(store: MemoryStore, anyio_backend: str) -> None:
    async def fail(token: Token) -> Token:
        raise AuthenticationError("nope", reason="invalid_code")

    with pytest.raises(AuthenticationError):
        await aensure_fresh(store, Token(user_name="alice"), fail, now=clock)
    assert store.get_tokens()[0].access_token == "old"
