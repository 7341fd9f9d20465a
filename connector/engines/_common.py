"""What every engine adapter shares: the payload check and the worker process's one engine-mode Connector."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from connector.errors import InputValidationError, Violation
from connector.named_connections import ENV

if TYPE_CHECKING:
    from connector.runner import Connector

__all__ = ["Payload", "checked_payload", "engine_connector", "use_connector"]

KEYS = ("action", "inputs", "connection")


class Payload(NamedTuple):
    action: str
    inputs: dict[str, Any]
    connection: str  # a name in the worker's connections file


def checked_payload(payload: Any) -> Payload:
    """The payload as `(action, inputs, connection)`, or an InputValidationError naming each bad member. Values
    are never echoed: a payload that wrongly carries a connection's secrets must not spread them further."""
    if not isinstance(payload, Mapping):
        expected = 'an object {"action", "inputs", "connection"}'
        raise InputValidationError("payload", [Violation("(payload)", "", f"expected {expected}")])
    problems = [Violation(str(key), f"/{key}", "unknown member") for key in payload if key not in KEYS]
    action, inputs, connection = payload.get("action"), payload.get("inputs", {}), payload.get("connection")
    if not isinstance(action, str) or not action:
        problems.append(Violation("action", "/action", "expected an action key (a non-empty string)"))
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        problems.append(Violation("inputs", "/inputs", "expected an object of the action's inputs"))
    if isinstance(connection, Mapping):
        problems.append(
            Violation(
                "connection",
                "/connection",
                "expected a connection NAME from the worker's connections file (ZOHO_CONNECTIONS), not the "
                "connection's settings: secrets must never travel in an engine's payload or history",
            )
        )
    elif not isinstance(connection, str) or not connection:
        problems.append(Violation("connection", "/connection", "expected a connection name (a non-empty string)"))
    if problems:
        raise InputValidationError("payload", problems)
    return Payload(str(action), dict(inputs), str(connection))


_lock = threading.Lock()
_connector: Connector | None = None


def engine_connector() -> Connector:
    """The worker process's Connector, in engine mode, made on first use; connections by name come from the file
    $ZOHO_CONNECTIONS names (a worker's `--connections FILE` sets it). One per process: it holds the connection
    pools, token caches and concurrency limits every task on this worker shares."""
    global _connector
    with _lock:
        if _connector is None:
            from connector.runner import Connector

            _connector = Connector.load(engine_mode=True, connections=os.environ.get(ENV) or None)
        return _connector


def use_connector(connector: Connector | None) -> Connector | None:
    """Make `connector` the process's engine connector (None: build it again from the environment on next use);
    returns the previous one. For embedding a worker in a program that builds its own Connector, and for tests."""
    global _connector
    if connector is not None and not connector._options.engine_mode:
        raise ValueError("an engine's connector must be in engine mode: Connector.load(engine_mode=True, ...)")
    with _lock:
        previous, _connector = _connector, connector
        return previous
