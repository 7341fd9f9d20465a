"""Slots and values for shared limits (base.LeaseStore): which store offers them, the in-process fallback, and the
file store's implementation.

`LocalLeases` counts in one process (the memory store, and connections whose limits are not shared); `FileLeases`
keeps the slots of a file store in `<tokens>.limits.json` beside it, read and rewritten under a file lock, so the
processes of one machine share them. Expiry is measured on each one's clock (monotonic in process, time.time()
across processes on one machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connector.auth.stores._common import open_private, private_file
from connector.auth.stores.base import LEASE_METHODS, LeaseStore
from connector.auth.stores.locks import file_lock

__all__ = ["FileLeases", "LocalLeases", "leases_of", "missing_lease_methods", "new_lease_id"]

_FILE_LOCK_TIMEOUT = 30.0
_MAX_PADDING = 4096


def new_lease_id() -> str:
    return secrets.token_hex(8)


def missing_lease_methods(store: object) -> list[str]:
    """The LeaseStore methods `store` (or the store it wraps, its `inner`) lacks; [] when it has them all."""
    target = leases_of(store)
    return [] if target is not None else [m for m in LEASE_METHODS if not callable(getattr(store, m, None))]


def leases_of(store: object) -> LeaseStore | None:
    """The object that keeps `store`'s slots: the store itself when it implements LeaseStore, else the store it
    wraps (`inner`, as EncryptedStore does: names and values hold no secret, so they need no encryption)."""
    seen = 0
    while store is not None and seen < 8:  # a wrapper of a wrapper, but never a cycle
        if all(callable(getattr(store, m, None)) for m in LEASE_METHODS):
            return store  # type: ignore[return-value]
        store = getattr(store, "inner", None)
        seen += 1
    return None


class LocalLeases:
    """LeaseStore in this process: a dict under one lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots: dict[str, dict[str, float]] = {}  # name -> lease -> expiry
        self._values: dict[str, tuple[str, float]] = {}
        self._guard = threading.Lock()

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        now = self._clock()
        with self._guard:
            leases = self._slots.setdefault(name, {})
            for lease in [k for k, expires in leases.items() if expires <= now]:
                del leases[lease]
            if len(leases) >= limit:
                return None
            lease = new_lease_id()
            leases[lease] = now + ttl
            return lease

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        now = self._clock()
        with self._guard:
            leases = self._slots.get(name, {})
            if leases.get(lease, 0.0) <= now:
                leases.pop(lease, None)
                return False
            leases[lease] = now + ttl
            return True

    def release_slot(self, name: str, lease: str) -> None:
        with self._guard:
            leases = self._slots.get(name)
            if leases is not None:
                leases.pop(lease, None)
                if not leases:
                    del self._slots[name]

    def get_value(self, name: str) -> str | None:
        with self._guard:
            found = self._values.get(name)
            return found[0] if found is not None and found[1] > self._clock() else None

    def set_value(self, name: str, value: str, ttl: float) -> None:
        with self._guard:
            self._values[name] = (value, self._clock() + ttl)


class FileLeases:
    """LeaseStore in a JSON file (mode 0600) shared by the processes of one machine. Every access reads, prunes and
    rewrites the whole file under `<file>.lock`; a file found damaged (a writer killed mid-write) starts afresh:
    slots are ephemeral, so the worst case is one lease period of slots counted as free."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._clock = clock
        self._checked = False

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        with self._editing() as (data, now):
            leases = data["slots"].setdefault(name, {})
            if len(leases) >= limit:
                return None
            lease = new_lease_id()
            leases[lease] = now + ttl
            return lease

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        with self._editing() as (data, now):
            leases = data["slots"].get(name, {})
            if lease not in leases:
                return False
            leases[lease] = now + ttl
            return True

    def release_slot(self, name: str, lease: str) -> None:
        with self._editing() as (data, _):
            data["slots"].get(name, {}).pop(lease, None)

    def get_value(self, name: str) -> str | None:
        with self._editing() as (data, _):
            found = data["values"].get(name)
            return str(found[0]) if found is not None else None

    def set_value(self, name: str, value: str, ttl: float) -> None:
        with self._editing() as (data, now):
            data["values"][name] = [value, now + ttl]

    @contextlib.contextmanager
    def _editing(self) -> Iterator[tuple[dict[str, Any], float]]:
        """The live slots and values (expired ones dropped) under the file's lock; written back in place if changed.
        Every access holds the lock, so an in-place rewrite is never read half done (and a rename, several times
        slower on some filesystems, is not needed: a file cut short by a killed writer is read as empty)."""
        if not self._checked:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            private_file(self.path)
            self._checked = True
        with file_lock(self._lock_path, _FILE_LOCK_TIMEOUT):
            fd = open_private(self.path, os.O_RDWR)
            try:
                chunks = []
                while chunk := os.read(fd, 65536):
                    chunks.append(chunk)
                raw = b"".join(chunks)
                now = self._clock()
                data = _live(raw, now)
                before = json.dumps(data, sort_keys=True)
                yield data, now
                text = json.dumps(data, sort_keys=True)
                if text != before:
                    # Spaces after the JSON pad it over the old text: truncating costs more than writing on some
                    # filesystems, so the file shrinks only when the padding would pass a few kilobytes.
                    body = text.encode("ascii")
                    shrink = len(raw) - len(body) > _MAX_PADDING
                    if len(body) < len(raw) and not shrink:
                        body += b" " * (len(raw) - len(body))
                    os.lseek(fd, 0, os.SEEK_SET)
                    if shrink:
                        os.ftruncate(fd, 0)
                    view = memoryview(body)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)


def _live(raw: bytes, now: float) -> dict[str, Any]:
    """The unexpired slots and values of a limits file; an empty or damaged file holds none."""
    try:
        data = json.loads(raw)
        slots = {
            str(n): {str(k): float(e) for k, e in leases.items() if float(e) > now}
            for n, leases in data["slots"].items()
        }
        values = {str(n): [str(v[0]), float(v[1])] for n, v in data["values"].items() if float(v[1]) > now}
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return {"slots": {}, "values": {}}
    return {"slots": {n: leases for n, leases in slots.items() if leases}, "values": values}
