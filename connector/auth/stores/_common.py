"""What every token store shares: the upsert rule, the lookup digests, file locks and driver loading.

The rule lives here once, in Python, so that all stores agree on it exactly: a store only fetches the candidate rows
(those sharing any match key with the token, found through indexed digests) and lets `plan_upsert` decide.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError

__all__ = [
    "KeyedLocks",
    "Keys",
    "file_lock",
    "find_match",
    "keys_of",
    "lock_name",
    "new_id",
    "open_private",
    "plan_upsert",
    "require",
    "safe_url",
    "saved_id",
    "validate_table",
]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _Rule(NamedTuple):
    name: str  # what the two tokens share, for error messages (never the value)
    applies: Callable[[Token], bool]  # the token carries this match key
    same: Callable[[Token, Token], bool]


def _pair(field: str) -> tuple[Callable[[Token], bool], Callable[[Token, Token], bool]]:
    def applies(t: Token) -> bool:
        return bool(t.client_id and t.client_secret and getattr(t, field))

    def same(a: Token, b: Token) -> bool:
        return (a.client_id, a.client_secret, getattr(a, field)) == (b.client_id, b.client_secret, getattr(b, field))

    return applies, same


# The upsert rule of base.py, in order. Empty strings count as absent, as in Zoho's SDK.
RULES = (
    _Rule("user name", lambda t: bool(t.user_name), lambda a, b: a.user_name == b.user_name),
    _Rule("access token", lambda t: bool(t.access_token), lambda a, b: a.access_token == b.access_token),
    _Rule("refresh token and client", *_pair("refresh_token")),
    _Rule("grant token and client", *_pair("grant_token")),
    _Rule("id", lambda t: bool(t.id), lambda a, b: a.id == b.id),
)


def find_match(token: Token, rows: Iterable[Token]) -> Token | None:
    """The row `token` matches by the upsert rule: the first rule the token carries that some row satisfies."""
    rows = list(rows)
    for rule in RULES:
        if rule.applies(token):
            for row in rows:
                if rule.same(token, row):
                    return row
    return None


def plan_upsert(token: Token, rows: Iterable[Token]) -> Token | None:
    """The row that saving `token` replaces (None: insert), after checking that no other row would then share a
    match key with it. Such a row holds the same credential under another record; replacing one and keeping the
    other would leave two rows for one match, and deleting it silently could lose another user's token, so the
    save is refused instead."""
    rows = list(rows)
    match = find_match(token, rows)
    for row in rows:
        if match is not None and row.id == match.id:
            continue
        for rule in RULES[:-1]:  # the id of the saved row is the matched row's (or a new) id
            if rule.applies(token) and rule.same(token, row):
                where = f"stored token {match.id}" if match is not None else "no stored token"
                raise ConnectionConfigError(
                    f"cannot save the token: it matches {where}, but stored token {row.id} has the same "
                    f"{rule.name}; delete one of them first"
                )
    return match


def saved_id(token: Token, match: Token | None) -> str:
    """The id a saved token gets: the matched row's, else the token's own, else a new one."""
    if match is not None and match.id:
        return match.id
    return token.id or new_id()


def new_id() -> str:
    return uuid.uuid4().hex


def _digest(*parts: str) -> str:
    # JSON keeps the parts apart unambiguously (no "a"+"bc" == "ab"+"c").
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


class Keys(NamedTuple):
    """Fixed-width digests of the match keys. Databases index these instead of the values themselves: a 10 KB
    token does not fit a unique index in MySQL or PostgreSQL, and MySQL's collations would compare 'Bob' and
    'bob ' as equal. Unsalted SHA-256 is fine here: the value it hides is stored in the same row."""

    id_key: str | None
    user_key: str | None
    access_key: str | None
    refresh_key: str | None
    grant_key: str | None


def keys_of(token: Token) -> Keys:
    def pair(value: str | None, kind: str) -> str | None:
        if token.client_id and token.client_secret and value:
            return _digest(kind, token.client_id, token.client_secret, value)
        return None

    return Keys(
        id_key=_digest("id", token.id) if token.id else None,
        user_key=_digest("user", token.user_name) if token.user_name else None,
        access_key=_digest("access", token.access_token) if token.access_token else None,
        refresh_key=pair(token.refresh_token, "refresh"),
        grant_key=pair(token.grant_token, "grant"),
    )


def lock_name(namespace: str, key: str) -> str:
    """A short, fixed-width lock name: keys may be long, and MySQL limits lock names to 64 characters."""
    return "zc" + _digest("lock", namespace, key)[:40]


def validate_table(name: str) -> str:
    """Table names cannot be bound parameters, so they are checked against a strict pattern instead."""
    if not _TABLE.match(name):
        raise ConnectionConfigError(
            f"invalid table name {name[:80]!r}: use letters, digits and underscores, starting with a letter or "
            "underscore, at most 63 characters"
        )
    return name


def safe_url(url: str) -> str:
    """The URL without its password (and without its query, which may carry one too), for messages."""
    try:
        parts = urlsplit(url)
        userinfo, at, host = parts.netloc.rpartition("@")
        netloc = parts.netloc
        if at:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return url.split(":", 1)[0] + ":…"


def require(module: str, extra: str) -> ModuleType:
    """Import an optional driver, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConnectionConfigError(
            f"this token store needs the {module!r} package: pip install 'zoho-connector[{extra}]'"
        ) from None


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


def open_private(path: Path, flags: int) -> int:
    """Open (creating if needed) a file readable by its owner only. The mode is passed to open(2) itself, so the
    file is never briefly world-readable; the umask can only narrow it."""
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive lock on `path` across processes (flock) and threads (a lock per path: a process should not
    spin on flock against itself). Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with _PATH_LOCKS.hold(str(path), timeout):
        fd = open_private(path, os.O_RDWR)
        try:
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"lock not acquired within {timeout:g} s") from None
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, 0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
