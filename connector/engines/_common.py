"""What every engine adapter shares: the one payload an engine carries, the process's engine-mode connector, and
when (and whether) a failed action may be tried again.

    {"action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "…"}, "connection": "eu-prod"}

`connection` is a NAME looked up in the worker's connections file ($ZOHO_CONNECTIONS, see named_connections.py).
Engines write payloads and results to a broker or a database, so a payload holding the connection itself (tokens,
a client secret) is refused before anything runs: no secret may enter a message, a history or a result.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from connector._retry import Schedule, backoff
from connector.errors import ConnectorError, InputValidationError, RateLimitedError, Violation
from connector.runner import Connector

if TYPE_CHECKING:
    from connector.models import Action
    from connector.runner import Stream

__all__ = [
    "Payload",
    "RetrySettings",
    "checked_payload",
    "engine_connector",
    "fetch_all_answer",
    "fetches_all",
    "reset_engine_connector",
    "resumable",
    "retry_delay",
    "retry_settings",
]

SUBJECT = "engine payload"
CONNECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # as the CLI's --connection NAME
_NOT_A_NAME = (
    "must be the NAME of a connection in the worker's connections file ($ZOHO_CONNECTIONS), not the connection "
    "itself: secrets must never travel in an engine's messages, histories or results"
)


class Payload(NamedTuple):
    action: str
    inputs: dict[str, Any]
    connection: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "inputs": self.inputs, "connection": self.connection}


def checked_payload(payload: Any) -> Payload:
    """The payload, or an InputValidationError naming every bad field. Values are never quoted back: a field in
    the wrong place may hold a secret."""
    if not isinstance(payload, Mapping):
        expected = "expected an object {action, inputs, connection}"
        raise InputValidationError(SUBJECT, [Violation("(payload)", "", expected)])
    problems: list[Violation] = []
    for key in sorted(set(payload) - {"action", "inputs", "connection"}, key=str):
        problems.append(Violation(str(key), f"/{key}", "unknown field; a payload has action, inputs, connection"))
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        problems.append(Violation("action", "/action", "expected an action key (`zoho-connector actions` lists them)"))
    inputs = payload.get("inputs")
    if inputs is not None and not isinstance(inputs, Mapping):
        problems.append(Violation("inputs", "/inputs", "expected an object of the action's inputs"))
    connection = payload.get("connection")
    if isinstance(connection, Mapping):
        problems.append(Violation("connection", "/connection", _NOT_A_NAME))
    elif not isinstance(connection, str) or not CONNECTION_NAME.fullmatch(connection):
        expected = f"expected a connection name (letters, digits, _ . -): it {_NOT_A_NAME}"
        problems.append(Violation("connection", "/connection", expected))
    if problems:
        raise InputValidationError(SUBJECT, problems)
    assert isinstance(action, str)
    assert isinstance(connection, str)
    return Payload(action, dict(inputs or {}), connection)


# --- the process's connector --------------------------------------------------------------------------------------

_lock = threading.Lock()
_connector: Connector | None = None


def engine_connector() -> Connector:
    """This process's connector in engine mode (no local retries: the engine retries), built on first use, with
    connections by name from $ZOHO_CONNECTIONS. A forked worker builds its own rather than sharing its parent's
    pooled clients and token store handles."""
    global _connector
    with _lock:
        if _connector is None:
            _connector = Connector.load(engine_mode=True)
        return _connector


def reset_engine_connector() -> None:
    """Close and forget this process's connector: the next task builds one again (and reads $ZOHO_CONNECTIONS
    again)."""
    global _connector
    with _lock:
        connector, _connector = _connector, None
    if connector is not None:
        connector.close()


def _after_fork_in_child() -> None:
    global _connector, _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    _connector = None  # the parent's sockets and handles are not the child's to use


os.register_at_fork(after_in_child=_after_fork_in_child)


# --- retries ---------------------------------------------------------------------------------------------------


class RetrySettings(NamedTuple):
    """How the connector itself would retry this action (engine mode only turns its loop off): precedence is the
    action's inputs (maxRetries, retryDelayMS, useExponentialBackoff), then the connection, then the defaults."""

    safety: str  # read | idempotent | write: only a write that certainly did not act may be re-sent
    max_retries: int
    schedule: Schedule  # failures without Retry-After
    throttle_schedule: Schedule  # throttling without Retry-After: always exponential
    max_retry_after: float  # a longer Retry-After fails at once, saying when
    retry_all: bool

    @property
    def may_resend(self) -> bool:
        """Whether running the action twice is harmless: false for a write (a create, an upload, a POST), which
        could make a duplicate, unless the user chose Retry On All Errors."""
        return self.safety != "write" or self.retry_all


def retry_settings(connector: Connector, payload: Payload) -> RetrySettings:
    """The retry settings of one payload. Plans the call (nothing is sent) so every precedence rule is the
    runner's own."""
    call = connector._call(payload.action, payload.inputs, payload.connection)
    chosen = call.role("max_retries")
    policy = call.policy
    return RetrySettings(
        safety=policy.safety,
        max_retries=call.connection.policy.max_retries if chosen is None else int(chosen),
        schedule=policy.schedule,
        throttle_schedule=policy.throttle_schedule,
        max_retry_after=policy.max_retry_after,
        retry_all=policy.retry_all,
    )


def retry_delay(
    error: ConnectorError,
    settings: RetrySettings,
    attempt: int,
    jitter: Callable[[float], float] | None = None,
) -> float | None:
    """Seconds until the engine should run the action again (`attempt` retries so far), or None when it must not:
    the error is not retryable (a write that may have reached Zoho never is), the retries are spent, or Zoho asked
    for a wait longer than the connection's max_retry_after. Zoho's Retry-After when given, else the connector's
    own backoff schedule."""
    if not error.retryable or attempt >= settings.max_retries:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= settings.max_retry_after else None
    schedule = settings.throttle_schedule if isinstance(error, RateLimitedError) else settings.schedule
    return backoff(attempt, schedule, jitter)


# --- Fetch All, page by page with checkpoints ---------------------------------------------------------------------
# An engine walks a Fetch All itself (connector.stream), saving after each page where the walk would go on, so a
# worker that dies mid-walk leaves the next attempt a place to resume from instead of the first page.


def fetches_all(definition: Action, inputs: Mapping[str, Any]) -> bool:
    """Whether the inputs ask a paginated action for every page (its fetch_all input set)."""
    name = definition.inputs_with_role("fetch_all")
    value = inputs.get(name) if definition.pagination and name else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def resumable(schema: Mapping[str, Any], resume: Mapping[str, Any]) -> bool:
    """Whether the resume point is made of the action's own inputs (page, page_token, …): else start over."""
    properties = schema.get("properties", {})
    return bool(resume) and all(key in properties for key in resume)


def fetch_all_answer(stream: Stream, records: list[Any]) -> dict[str, Any]:
    """The answer `Connector.run` gives a Fetch All, from a walked stream and every record (a resumed walk's
    included: set `stream.count` to those held before the walk, so the summary counts them)."""
    member = stream.records_member
    if member is None:
        return {"data": records}
    return {"data": {**stream.summary(), member: records}}
