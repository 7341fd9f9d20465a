"""Connections by name: an engine's payload carries a name, the worker holds the secrets.

A connections file is a JSON or YAML mapping of name → connection (each as schemas/connections/zoho-oauth.json
describes it). A connector finds it through `Connector.load(connections=FILE or mapping)`, or else through the
ZOHO_CONNECTIONS environment variable (the CLI's `--connections FILE` sets it), read once, on first use. Workers on
many machines that share one token store then share tokens too, and no secret ever travels in a workflow's history
or a task queue's messages.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector.errors import ConnectionConfigError

__all__ = ["ENV", "NamedConnections", "load_connections"]

ENV = "ZOHO_CONNECTIONS"


def load_connections(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The connections in a JSON or YAML file, by name. Errors name the file, never a value from it."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionConfigError(f"cannot read the connections file {source}: {exc.strerror}") from None
    # The parsers' messages quote the file's text, secrets included: only the kind of failure is reported.
    if source.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            raise ConnectionConfigError(f"the connections file {source} is not valid JSON") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConnectionConfigError(f"the connections file {source} is not valid YAML") from None
    return _checked(data, str(source))


def _checked(data: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(data, Mapping):
        raise ConnectionConfigError(f"{where}: expected a mapping of connection name to connection")
    for name, value in data.items():
        if not isinstance(name, str) or not name:
            raise ConnectionConfigError(f"{where}: every connection name must be a non-empty string")
        if not isinstance(value, Mapping):
            raise ConnectionConfigError(f"{where}: connection {name!r} must be an object")
    return {name: dict(value) for name, value in data.items()}


class NamedConnections:
    """The connections a connector can look up by name; loaded once, on first use."""

    def __init__(self, source: str | os.PathLike[str] | Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._source = source
        self._loaded: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> dict[str, Any]:
        connections = self._connections()
        try:
            return connections[name]
        except KeyError:
            known = ", ".join(sorted(connections)) or "none"
            raise ConnectionConfigError(
                f"unknown connection name {name!r}; the connections file has: {known}"
            ) from None

    def _connections(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> dict[str, dict[str, Any]]:
        source = self._source if self._source is not None else os.environ.get(ENV)
        if source is None or source == "":
            raise ConnectionConfigError(
                f"a connection given by name needs a connections file: Connector.load(connections=FILE), "
                f"--connections FILE or {ENV}=FILE"
            )
        if isinstance(source, Mapping):
            return _checked(source, "connections")
        return load_connections(source)
