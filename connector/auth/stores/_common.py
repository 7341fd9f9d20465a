"""Plumbing the token stores share: lock names, table names, URLs for messages, driver loading, private files.

The record itself (columns, row codec, upsert rule) is in schema.py; locks are in locks.py.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

from connector.auth.stores.schema import digest
from connector.errors import ConnectionConfigError

__all__ = [
    "lock_name",
    "open_private",
    "private_dir",
    "private_file",
    "require",
    "safe_url",
    "validate_table",
]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def lock_name(namespace: str, key: str) -> str:
    """A short, fixed-width lock name: keys may be long, and MySQL limits lock names to 64 characters."""
    return "zc" + digest("lock", namespace, key)[:40]


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


def private_file(path: Path) -> None:
    """Make an existing file readable by its owner only (tokens written under an older, wider mode, or copied in
    by hand); a file we cannot tighten is refused, naming it."""
    _tighten(path, 0o600)


def private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700, or tighten it to 0700 if it exists with wider permissions."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def _tighten(path: Path, mode: int) -> None:
    if os.name == "nt":  # Windows has no group/other mode bits: its ACLs come from the user's profile directory
        return
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as e:
        raise ConnectionConfigError(
            f"{path} is readable by other users (mode {current:o}) and cannot be made private: {e.strerror}; "
            f"run: chmod {mode:o} {path}"
        ) from None


def open_private(path: Path, flags: int) -> int:
    """Open (creating if needed) a file readable by its owner only. The mode is passed to open(2) itself, so the
    file is never briefly world-readable; the umask can only narrow it."""
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
