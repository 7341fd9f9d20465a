"""Locks for token stores and the refresh: per-key thread locks, and file locks shared by processes.

File locks use the `filelock` package (flock on Linux and macOS, msvcrt on Windows). A process first takes a
thread lock per path, so its own threads queue in memory instead of polling the file lock against each other.
Both raise TimeoutError (filelock.Timeout is one) when not acquired in time.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from connector.auth.stores._common import private_file

__all__ = ["KeyedLocks", "file_lock"]


class _KeyLock:
    # A threading.Lock cannot be weakly referenced; this holder can, so unused keys are forgotten.
    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


class KeyedLocks:
    """One threading lock per key, created on demand and dropped when nobody holds a reference."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, _KeyLock] = weakref.WeakValueDictionary()

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[None]:
        with self._guard:
            holder = self._locks.get(key)
            if holder is None:
                holder = self._locks[key] = _KeyLock()
        if not holder.lock.acquire(timeout=max(timeout, 0.0)):
            raise TimeoutError(f"lock not acquired within {timeout:g} s")
        try:
            yield
        finally:
            holder.lock.release()


_PATH_LOCKS = KeyedLocks()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive lock on `path` (created 0600) across processes and threads, or TimeoutError after `timeout`."""
    import filelock

    deadline = time.monotonic() + timeout
    with _PATH_LOCKS.hold(str(path), timeout):
        lock = filelock.FileLock(path, mode=0o600, thread_local=False)
        # filelock reads a timeout of 0 as "try once" and a negative one as "wait forever": never pass that.
        left = max(deadline - time.monotonic(), 0.0)
        try:
            lock.acquire(timeout=left, poll_interval=0.005)
        except filelock.Timeout:
            raise TimeoutError(f"lock not acquired within {timeout:g} s") from None
        try:
            private_file(path)  # made by an older version or by hand: no wider than its siblings
            yield
        finally:
            lock.release()
