"""Files given to actions from Python: streamed from disk (or from the caller's file object) as the request is
sent, never read whole into memory.

    connector.run("crmAddAttachment", {"recordType": "Leads", "recordId": "1", "file": Path("report.pdf")}, …)

A path, an open binary file or bytes is accepted wherever an input takes file contents; JSON callers (engines,
`invoke`) send text or `{"base64": …}` instead, so an automation can never make a worker read a file off its disk.
"""

from __future__ import annotations

import io
import mimetypes
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["Upload", "close_uploads", "placeholder"]


class Upload:
    """File contents to stream: a path (opened when the request is sent) or a readable binary file object."""

    def __init__(self, source: str | os.PathLike[str] | IO[bytes] | bytes, content_type: str | None = None) -> None:
        self._path = Path(source) if isinstance(source, str | os.PathLike) else None
        self._given: IO[bytes] | None = io.BytesIO(source) if isinstance(source, bytes) else None
        if self._path is None and self._given is None:
            self._given = source  # type: ignore[assignment]
        self._opened: IO[bytes] | None = None
        guessed = mimetypes.guess_type(self.filename or "")[0] if self.filename else None
        self.content_type = content_type or guessed or "application/octet-stream"

    @property
    def filename(self) -> str | None:
        if self._path is not None:
            return self._path.name
        name = getattr(self._given, "name", None)
        return Path(name).name if isinstance(name, str) else None

    def open(self) -> IO[bytes]:
        """The file to read (httpx reads it in chunks and rewinds it before a retry)."""
        if self._given is not None:
            return self._given
        if self._opened is None:
            self._opened = self._path.open("rb") if self._path is not None else io.BytesIO()
        return self._opened

    def close(self) -> None:
        """Close what this object opened; a caller's own file object stays the caller's."""
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def __repr__(self) -> str:
        return f"Upload({self.filename or '<stream>'!r})"


def is_file_like(value: Any) -> bool:
    return isinstance(value, os.PathLike | bytes | bytearray) or (callable(getattr(value, "read", None)))


def placeholder(value: Any) -> Any:
    """The value as the input schema sees it: an upload checks as binary contents. Nothing is copied where no
    upload is found (a bulk write's 10,000 records are checked as they are)."""
    if isinstance(value, Upload):
        return {"base64": ""}
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, Upload | dict | list) and (seen := placeholder(item)) is not item:
                out = dict(value) if out is None else out
                out[key] = seen
        return value if out is None else out
    if isinstance(value, list):
        changed: list[Any] | None = None
        for i, item in enumerate(value):
            if isinstance(item, Upload | dict | list) and (seen := placeholder(item)) is not item:
                changed = list(value) if changed is None else changed
                changed[i] = seen
        return value if changed is None else changed
    return value


def close_uploads(values: Any) -> None:
    if isinstance(values, Upload):
        values.close()
    elif isinstance(values, dict):
        for value in values.values():
            close_uploads(value)
    elif isinstance(values, list):
        for value in values:
            close_uploads(value)
