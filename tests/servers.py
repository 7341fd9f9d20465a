"""Reachability of the database and cache servers some tests need.

Locally a missing server skips those tests with the reason; in CI (CI=true) it fails them, so that a broken
service container cannot turn the suite green by skipping.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["reachable", "require"]

_seen: dict[tuple[str, int], bool] = {}


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    if (host, port) not in _seen:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _seen[host, port] = True
        except OSError:
            _seen[host, port] = False
    return _seen[host, port]


def require(name: str, host: str, port: int) -> None:
    """Skip the calling test when `name` does not answer at host:port; fail instead when CI=true."""
    if reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: server tests must run)")
    pytest.skip(reason)
