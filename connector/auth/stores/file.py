"""A token store in one JSON file, safe for many processes on one machine.

Zoho's FileStore truncates and rewrites its CSV in place, unlocked and world-readable, so concurrent writers lose
rows. Here every write goes to a private temp file in the same directory, is fsynced and then renamed over the
store (readers always see a whole file, old or new), and writers are serialised by a lock file. Shared limits
(concurrency slots, the allowance) live in `<path>.limits.json` beside it (leases.FileLeases).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from connector.auth.stores._common import open_private, private_dir, private_file
from connector.auth.stores.base import LeasesHeldBy
from connector.auth.stores.leases import FileLeases
from connector.auth.stores.locks import file_lock
from connector.auth.stores.schema import check_id, check_token, find_match, from_row, plan_upsert, saved_id, to_row
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError

__all__ = ["FileStore"]

_FORMAT = "zoho-connector-tokens"
_WRITE_TIMEOUT = 60.0


class FileStore(LeasesHeldBy):
    """Tokens as JSON at `path` (mode 0600). `<path>.lock` serialises writers; `lock(key)` uses one lock file per
    key in `<path>.locks/`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_absolute():
            raise ConnectionConfigError(f"the token file path must be absolute: {str(path)[:200]}")
        self._write_lock = self.path.with_name(self.path.name + ".lock")
        self._lock_dir = self.path.with_name(self.path.name + ".locks")
        # shared limits (base.LeaseStore, through base.LeasesHeldBy)
        self._leases: FileLeases = FileLeases(self.path.with_name(self.path.name + ".limits.json"))

    def find_token(self, token: Token) -> Token | None:
        return find_match(check_token(token), self._read())

    def save_token(self, token: Token) -> Token:
        check_token(token)
        with self._writing() as tokens:
            match = plan_upsert(token, tokens)
            stored = token.replace(id=saved_id(token, match))
            if match is not None:
                tokens[:] = [stored if t.id == match.id else t for t in tokens]
            else:
                tokens.append(stored)
            return stored

    def delete_token(self, id: str) -> None:
        check_id(id)
        with self._writing() as tokens:
            tokens[:] = [t for t in tokens if t.id != id]

    def get_tokens(self) -> list[Token]:
        return self._read()

    def delete_tokens(self) -> None:
        with self._writing() as tokens:
            tokens.clear()

    def find_token_by_id(self, id: str) -> Token | None:
        check_id(id)
        return next((t for t in self._read() if t.id == id), None)

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        private_dir(self._lock_dir)
        name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return file_lock(self._lock_dir / f"{name}.lock", timeout)

    # -- internals ---------------------------------------------------------------------------------------------

    def _read(self) -> list[Token]:
        private_file(self.path)
        try:
            with open(self.path, encoding="utf-8") as f:
                data: Any = json.load(f)
        except FileNotFoundError:
            return []
        except (ValueError, UnicodeDecodeError):
            raise ConnectionConfigError(f"the token file {self.path} is not valid JSON") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("tokens"), list):
            raise ConnectionConfigError(f"{self.path} is not a zoho-connector token file")
        try:
            return [from_row(t) for t in data["tokens"]]
        except (TypeError, ValueError, AttributeError):
            raise ConnectionConfigError(f"{self.path} holds a token that is not a token record") from None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[list[Token]]:
        """Read the tokens under the writer lock, let the caller change the list, then write it atomically."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_file(self._write_lock)
        with file_lock(self._write_lock, _WRITE_TIMEOUT):
            tokens = self._read()
            before = list(tokens)
            yield tokens
            if tokens != before:
                self._write(tokens)

    def _write(self, tokens: list[Token]) -> None:
        rows = [to_row(t) for t in tokens]
        body = json.dumps({"format": _FORMAT, "version": 1, "tokens": rows}, indent=1).encode("ascii")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
        try:
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # Make the rename itself durable.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
