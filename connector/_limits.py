"""Zoho's per-account limits, counted for every worker of the account: calls in flight and the daily allowance.

Zoho caps the calls one account has in flight (the edition's 5 to 25, and 10 for heavy APIs such as COQL) and
counts a daily allowance per account, so N worker processes that each count on their own send N times the cap.
Each API call is therefore gated twice:

1. the connection's semaphore in this process (the runner): cheap, and it bounds the threads of one process;
2. while its request is in flight, a leased slot of the account in the token store (`base.LeaseStore`), a heavy
   call (the product's `heavy` paths) first taking one of the account's heavy slots. A lease lasts the call's
   timeout plus LEASE_MARGIN and a long call renews it, so a worker killed holding one blocks the others for at
   most that long.

Waiting for a slot polls the store with a short backoff (POLL_FIRST doubling to POLL_MAX) on the Connector's sleep,
one thread (or task per event loop) per process and slot name at a time, while the others wait in process: a full
account costs each process one store round trip per poll, not one per waiting thread. A call that ends while
others of its process wait hands its lease straight to one of them (no store round trip, no poll delay), for up to
HANDOFF_SECONDS after the lease was taken; then the lease goes back to the store, so that a busy process cannot keep
the account's slots from the other workers. A call that finds no slot within the connection's max_retry_after
fails with a retryable RateLimitedError, having sent nothing. The allowance Zoho reports in its headers is merged
through the store too (`Budget.share`).

Whether limits are shared (`shared_limits`): by default, when the connection's tokens live in a store that
implements LeaseStore (every bundled store but memory:). A store that several processes can open is how workers
share an account, so sharing is on wherever it can be, for a store round trip or two per call; in a single process
that is all it costs (the README's Performance table). A bare access token, a memory: store or `shared_limits:
false` counts in the process; so does a python: store without the methods, with a warning (an error when
`shared_limits: true`). A store that stops answering does not stop the account's work: calls go on counted in the
process, with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from connector._flow import AsyncGate, Gate, Send
from connector._ratelimit import Budget
from connector.auth.stores.base import LeaseStore
from connector.errors import ConnectionConfigError, RateLimitedError, TransientError

if TYPE_CHECKING:
    import asyncio

    from connector.auth.session import TokenSource
    from connector.connection import Policy
    from connector.manifest import Product

__all__ = ["HANDOFF_SECONDS", "LEASE_MARGIN", "POLL_FIRST", "POLL_MAX", "AccountLimits", "Names", "heavy_cap"]

log = logging.getLogger("connector")
T = TypeVar("T")

LEASE_MARGIN = 5.0  # a lease outlives its call's timeout by this much: the time to notice the timeout and release
POLL_FIRST = 0.002
POLL_MAX = 0.025  # a slot freed in another process waits at most this long for the next poll of a waiting one
HANDOFF_SECONDS = 1.0  # a lease passes from call to call within a process for this long, then goes back to the store
_NAP = 0.05  # a waiter that is not polling looks up this often (handoffs wake it at once)
_WARN_EVERY = 60.0


def heavy_cap(product: Product, path: str) -> int | None:
    """The heavy-call cap a request to `path` counts against, per its product's `heavy` paths, or None."""
    heavy = product.heavy
    if not heavy:
        return None
    return heavy["max_concurrency"] if _pattern(tuple(heavy["paths"])).match(path) else None


@functools.lru_cache(maxsize=64)
def _pattern(paths: tuple[str, ...]) -> re.Pattern[str]:
    import fnmatch

    return re.compile("|".join(fnmatch.translate(p) for p in paths))


class Names(NamedTuple):
    """What the account's limits are called in the store: digests of its key (see TokenSource.limits_key)."""

    calls: str  # the slots of every call, max_concurrency of them
    heavy: str  # the slots of heavy calls, the product's heavy max_concurrency of them
    allowance: str  # the value holding the allowance Zoho last reported


class _Held:
    """A lease this process holds (a plain class: dataclasses cost cold start time, and every run imports this)."""

    __slots__ = ("born", "lease", "name", "renew_at", "store", "ttl")

    def __init__(self, store: LeaseStore, name: str, lease: str, ttl: float) -> None:
        self.store = store
        self.name = name
        self.lease = lease
        self.ttl = ttl
        self.born = time.monotonic()  # when the lease was taken from the store
        self.renew_at = 0.0  # time.monotonic() when it is renewed next


class _Waiters:
    """The calls of one process (threads) or one event loop (tasks) waiting for one slot name: one of them polls
    the store (`polling`), the others sleep until a finished call hands them its lease (`mailbox`)."""

    def __init__(self) -> None:
        self.polling = False
        self.sleepers = 0
        self.mailbox: list[_Held] = []

    def take_handed(self) -> _Held | None:
        return self.mailbox.pop() if self.mailbox else None

    def offer(self, held: _Held) -> bool:
        """Hand `held` to a sleeper (True), or not when every sleeper already has one waiting for it."""
        if self.sleepers > len(self.mailbox):
            self.mailbox.append(held)
            return True
        return False


class _Queue:
    """A slot name's waiters in this process: threads under `cond`, tasks per event loop under their own."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.threads = _Waiters()
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Condition, _Waiters]] = (
            weakref.WeakKeyDictionary()
        )

    def loop(self) -> tuple[asyncio.Condition, _Waiters]:
        import asyncio

        loop = asyncio.get_running_loop()
        found = self.loops.get(loop)
        if found is None:
            found = self.loops[loop] = (asyncio.Condition(), _Waiters())
        return found


class AccountLimits:
    """The concurrency slots and shared allowance of one connection's account (one per connection state)."""

    def __init__(
        self,
        tokens: TokenSource,
        policy: Policy,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.tokens = tokens
        self.policy = policy
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._local: LeaseStore | None = None  # heavy slots when nothing is shared, made on first use
        self._resolved: tuple[LeaseStore | None] | None = None
        self._names: tuple[str, Names] | None = None
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()
        self._warned_at = -math.inf

    # --- the gates the runner hands to the drivers ----------------------------------------------------------------

    def gate(self, product: Product) -> Gate:
        def hold(send: Send) -> contextlib.AbstractContextManager[object]:
            return self.hold(send, heavy_cap(product, send.request.url.path))

        return hold

    def agate(self, product: Product) -> AsyncGate:
        def hold(send: Send) -> contextlib.AbstractAsyncContextManager[object]:
            return self.ahold(send, heavy_cap(product, send.request.url.path))

        return hold

    @property
    def shared(self) -> bool:
        """Whether this account's limits are counted in the store, for every worker (resolved on first use)."""
        return self._backend() is not None

    @property
    def names(self) -> Names:
        """The names of this account's slots and allowance in the store (once its token is known)."""
        return self._names_now()

    @contextlib.contextmanager
    def hold(self, send: Send, heavy: int | None) -> Iterator[None]:
        """Hold the account's slots (a heavy one first when `heavy` is its cap) while the block sends `send`."""
        steps = self._steps(heavy)
        held: list[_Held] = []
        try:
            if steps:
                ttl = send.timeout_seconds + LEASE_MARGIN
                deadline = self._clock() + self.policy.max_retry_after
                for store, name, limit in steps:
                    taken = self._take(store, name, limit, ttl, deadline)
                    if taken is not None:
                        held.append(taken)
            yield
        finally:
            for taken in reversed(held):
                self._give(taken)

    @contextlib.asynccontextmanager
    async def ahold(self, send: Send, heavy: int | None) -> AsyncIterator[None]:
        steps = self._steps(heavy)
        held: list[_Held] = []
        try:
            if steps:
                ttl = send.timeout_seconds + LEASE_MARGIN
                deadline = self._clock() + self.policy.max_retry_after
                for store, name, limit in steps:
                    taken = await self._atake(store, name, limit, ttl, deadline)
                    if taken is not None:
                        held.append(taken)
            yield
        finally:
            if held:
                import anyio

                with anyio.CancelScope(shield=True):  # a cancelled call still gives its slots back
                    for taken in reversed(held):
                        await self._agive(taken)

    # --- the allowance ---------------------------------------------------------------------------------------

    def share(self) -> None:
        """Merge the budget's view of the allowance with the account's (the flow's Share effect)."""
        store = self._backend()
        channel = _Value(store, self._names_now().allowance) if store is not None else None
        try:
            self.budget.share(channel, self._clock())
        except TransientError as e:
            self._degraded(e)

    async def ashare(self) -> None:
        store = self._backend()
        if store is None:
            self.budget.share(None, self._clock())
            return
        channel = _Value(store, self._names_now().allowance)
        try:
            await self._io(store, functools.partial(self.budget.share, channel, self._clock()))
        except TransientError as e:
            self._degraded(e)

    # --- internals -------------------------------------------------------------------------------------------

    def _steps(self, heavy: int | None) -> list[tuple[LeaseStore, str, int]]:
        """The slots a call takes, in order (heavy first: every worker takes them in the same order)."""
        store = self._backend()
        steps: list[tuple[LeaseStore, str, int]] = []
        cap = self.policy.max_concurrency
        if heavy is not None and heavy < cap:
            steps.append((store if store is not None else self._local_leases(), self._names_now().heavy, heavy))
        if store is not None:  # in process, the runner's semaphore already holds calls to max_concurrency
            steps.append((store, self._names_now().calls, cap))
        return steps

    def _take(self, store: LeaseStore, name: str, limit: int, ttl: float, deadline: float) -> _Held | None:
        queue = self._queue(name)
        waiters = queue.threads
        try:
            if not waiters.polling and not waiters.sleepers:  # nobody of ours is waiting: try straight away
                lease = store.acquire_slot(name, limit, ttl)
                if lease is not None:
                    return _RENEWER.add(_Held(store, name, lease, ttl))
            while True:
                with queue.cond:
                    handed = waiters.take_handed()
                    poll = handed is None and not waiters.polling
                    if poll:
                        waiters.polling = True
                    elif handed is None:
                        waiters.sleepers += 1
                        try:
                            queue.cond.wait(min(max(deadline - self._clock(), 0.0), _NAP))
                        finally:
                            waiters.sleepers -= 1
                        handed = waiters.take_handed()
                if handed is not None:
                    return _reused(handed, ttl)
                if poll:
                    try:
                        return self._poll(store, name, limit, ttl, deadline, queue)
                    finally:
                        with queue.cond:
                            waiters.polling = False
                            queue.cond.notify()  # a sleeper takes over the polling
                if self._clock() >= deadline:
                    raise _no_slot(limit, self.policy.max_retry_after)
        except TransientError as e:
            self._degraded(e)
            return None

    def _poll(self, store: LeaseStore, name: str, limit: int, ttl: float, deadline: float, queue: _Queue) -> _Held:
        delay = POLL_FIRST
        while True:
            with queue.cond:
                handed = queue.threads.take_handed()
            if handed is not None:
                return _reused(handed, ttl)
            lease = store.acquire_slot(name, limit, ttl)
            if lease is not None:
                return _RENEWER.add(_Held(store, name, lease, ttl))
            now = self._clock()
            if now >= deadline:
                raise _no_slot(limit, self.policy.max_retry_after)
            self._sleep(min(_jittered(delay), deadline - now))
            delay = min(delay * 2, POLL_MAX)

    async def _atake(self, store: LeaseStore, name: str, limit: int, ttl: float, deadline: float) -> _Held | None:
        import asyncio

        cond, waiters = self._queue(name).loop()
        try:
            if not waiters.polling and not waiters.sleepers:
                lease = await self._io(store, functools.partial(store.acquire_slot, name, limit, ttl))
                if lease is not None:
                    return _RENEWER.add(_Held(store, name, lease, ttl))
            while True:
                async with cond:
                    handed = waiters.take_handed()
                    poll = handed is None and not waiters.polling
                    if poll:
                        waiters.polling = True
                    elif handed is None:
                        waiters.sleepers += 1
                        try:
                            await asyncio.wait_for(cond.wait(), min(max(deadline - self._clock(), 0.0), _NAP))
                        except TimeoutError:
                            pass
                        finally:
                            waiters.sleepers -= 1
                        handed = waiters.take_handed()
                if handed is not None:
                    return _reused(handed, ttl)
                if poll:
                    try:
                        return await self._apoll(store, name, limit, ttl, deadline, cond, waiters)
                    finally:
                        async with cond:
                            waiters.polling = False
                            cond.notify()
                if self._clock() >= deadline:
                    raise _no_slot(limit, self.policy.max_retry_after)
        except TransientError as e:
            self._degraded(e)
            return None

    async def _apoll(
        self,
        store: LeaseStore,
        name: str,
        limit: int,
        ttl: float,
        deadline: float,
        cond: asyncio.Condition,
        waiters: _Waiters,
    ) -> _Held:
        acquire = functools.partial(store.acquire_slot, name, limit, ttl)
        delay = POLL_FIRST
        while True:
            async with cond:
                handed = waiters.take_handed()
            if handed is not None:
                return _reused(handed, ttl)
            lease = await self._io(store, acquire)
            if lease is not None:
                return _RENEWER.add(_Held(store, name, lease, ttl))
            now = self._clock()
            if now >= deadline:
                raise _no_slot(limit, self.policy.max_retry_after)
            await self._asleep(min(_jittered(delay), deadline - now))
            delay = min(delay * 2, POLL_MAX)

    def _give(self, held: _Held) -> None:
        if time.monotonic() - held.born < HANDOFF_SECONDS:
            queue = self._queue(held.name)
            with queue.cond:
                if queue.threads.offer(held):
                    queue.cond.notify()
                    return
        self._release(held)

    async def _agive(self, held: _Held) -> None:
        if time.monotonic() - held.born < HANDOFF_SECONDS:
            cond, waiters = self._queue(held.name).loop()
            async with cond:
                if waiters.offer(held):
                    cond.notify()
                    return
        await self._io(held.store, functools.partial(self._release, held))

    def _release(self, held: _Held) -> None:
        _RENEWER.remove(held)
        try:
            held.store.release_slot(held.name, held.lease)
        except Exception as e:  # the lease expires by itself; the call's own outcome matters more
            log.warning("could not give back a concurrency slot (%s); it frees itself when its lease ends", e)

    async def _io(self, store: LeaseStore, call: Callable[[], T]) -> T:
        """A store call from async code: in a worker thread, except for in-process slots."""
        if store is self._local:
            return call()
        import anyio.to_thread

        return await anyio.to_thread.run_sync(call)

    async def _asleep(self, seconds: float) -> None:
        if self._async_sleep is not None:
            await self._async_sleep(seconds)
        else:
            import asyncio

            await asyncio.sleep(seconds)

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            with self._lock:
                queue = self._queues.setdefault(name, _Queue())
        return queue

    def _names_now(self) -> Names:
        key = self.tokens.limits_key()
        cached = self._names
        if cached is None or cached[0] != key:
            cached = self._names = (key, Names(_name(key, "calls"), _name(key, "heavy"), _name(key, "allowance")))
        return cached[1]

    def _local_leases(self) -> LeaseStore:
        if self._local is None:
            from connector.auth.stores.leases import LocalLeases

            with self._lock:
                if self._local is None:
                    self._local = LocalLeases()
        return self._local

    def _backend(self) -> LeaseStore | None:
        """The store that shares this account's limits, or None when they are counted in this process."""
        resolved = self._resolved
        if resolved is None:
            with self._lock:
                if self._resolved is None:
                    self._resolved = (self._resolve(),)
                resolved = self._resolved
        return resolved[0]

    def _resolve(self) -> LeaseStore | None:
        from connector.auth.stores._common import safe_url
        from connector.auth.stores.leases import leases_of, missing_lease_methods

        setting = self.policy.shared_limits
        if setting is False or (setting is None and not self.tokens.uses_store):
            return None
        store = self.tokens.store
        leases = leases_of(store)
        if leases is not None:
            return leases
        url = self.tokens.connection.token_store or ""
        if url.lower().startswith("memory:"):
            why = "the memory: token store is this process's alone"
        else:
            why = (
                f"the token store {safe_url(url) or type(store).__name__} lacks "
                f"{', '.join(missing_lease_methods(store))} (see LeaseStore in connector/auth/stores/base.py)"
            )
        if setting:
            raise ConnectionConfigError(f"shared_limits is true, but {why}: use a store the workers share")
        if not url.lower().startswith("memory:") and type(store) not in _WARNED:
            _WARNED.add(type(store))
            log.warning("%s: Zoho's concurrency cap and allowance are counted in each process", why)
        return None

    def _degraded(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("the token store does not answer (%s): calls are counted in this process meanwhile", error)


class _Value:
    """The budget's SharedValue: one of the store's values."""

    def __init__(self, store: LeaseStore, name: str) -> None:
        self.store = store
        self.name = name

    def get(self) -> str | None:
        return self.store.get_value(self.name)

    def put(self, value: str, ttl: float) -> None:
        self.store.set_value(self.name, value, ttl)


class _Renewer:
    """Renews the leases of long calls, for the whole process, from one daemon thread: a lease held a third of its
    time is extended, so only calls slower than that cost anything."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[int, _Held] = {}
        self._pid = -1

    def add(self, held: _Held) -> _Held:
        held.renew_at = time.monotonic() + held.ttl / 3
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: its parent's thread is not here
                self._pid = os.getpid()
                self._held.clear()
                threading.Thread(target=self._run, name="zoho-connector-lease-renewal", daemon=True).start()
            self._held[id(held)] = held
            self._cond.notify()
        return held

    def remove(self, held: _Held) -> None:
        with self._cond:
            self._held.pop(id(held), None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [h for h in self._held.values() if h.renew_at <= now]
                if not due:
                    upcoming = min((h.renew_at for h in self._held.values()), default=now + 3600.0)
                    self._cond.wait(upcoming - now)
                    continue
            for held in due:
                self._renew(held)

    def _renew(self, held: _Held) -> None:
        try:
            alive = held.store.renew_slot(held.name, held.lease, held.ttl)
        except Exception as e:
            log.warning("could not renew a concurrency slot's lease (%s); retrying", e)
            held.renew_at = time.monotonic() + min(held.ttl / 10, 1.0)
            return
        if alive:
            held.renew_at = time.monotonic() + held.ttl / 3
        else:  # expired before we renewed it (a stalled process): someone else may hold it now
            log.warning("a concurrency slot's lease expired while its call was still running")
            self.remove(held)


_RENEWER = _Renewer()
_WARNED: set[type[Any]] = set()


def _name(key: str, kind: str) -> str:
    """A slot or value name: a fixed-width digest, never the key itself."""
    return hashlib.sha256(f"zoho-connector limits\0{key}\0{kind}".encode("utf-8", "surrogatepass")).hexdigest()


def _reused(held: _Held, ttl: float) -> _Held:
    """A lease handed over by a finished call: the renewer now extends it by the longer of the two calls' ttl."""
    held.ttl = max(held.ttl, ttl)
    return held


def _jittered(delay: float) -> float:
    # Processes polling the same name drift apart instead of polling in step.
    import random

    return delay * random.uniform(0.75, 1.25)  # noqa: S311 - not cryptographic


def _no_slot(limit: int, waited: float) -> RateLimitedError:
    return RateLimitedError(
        f"no free concurrency slot for this Zoho account within {waited:.0f}s: {limit} calls are in flight across "
        "the workers sharing its token store (max_concurrency); nothing was sent",
        retry_after=5.0,
    )
