"""One call to Zoho as a generator of effects, so a single loop serves the sync and the async runner.

The flow yields what it needs done — `Send(request)`, `Sleep(seconds)`, `GetToken(failed)` — and receives the
result; `drive` performs effects with an httpx.Client and blocking sleep, `adrive` with an httpx.AsyncClient and
async sleep. Retry, refresh-once-on-401, pacing and the daily allowance therefore exist once, in `exchange`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import httpx

from connector import _retry
from connector._ratelimit import Budget
from connector.errors import AuthenticationError, RateLimitedError, TransientError

__all__ = ["CallPolicy", "GetToken", "Reply", "Send", "Sleep", "adrive", "drive", "exchange"]

log = logging.getLogger("connector")
T = TypeVar("T")


class Send(NamedTuple):
    request: httpx.Request


class Sleep(NamedTuple):
    seconds: float


class GetToken(NamedTuple):
    failed: str | None = None  # the access token Zoho just refused, if any


Effect = Send | Sleep | GetToken
Flow = Generator[Effect, Any, T]


@dataclass(frozen=True)
class CallPolicy:
    """Everything `exchange` needs to know about how to treat failures of this call."""

    safety: str  # read | write | idempotent
    envelope: str  # crm | finance
    max_retries: int
    schedule: _retry.Schedule
    # Throttling without Retry-After always backs off exponentially, whatever the action's own delay: a constant
    # (even zero) delay against a 429 is how clients hammer a throttled API.
    throttle_schedule: _retry.Schedule = field(default_factory=_retry.Schedule)
    retry_all: bool = False
    max_retry_after: float = 180.0
    debug: bool = False
    budget: Budget = field(default_factory=Budget)
    clock: Callable[[], float] = time.time
    jitter: Callable[[float], float] | None = None


class Reply(NamedTuple):
    response: httpx.Response
    body: Any  # parsed JSON, or None
    outcome: _retry.Outcome


def exchange(policy: CallPolicy, build: Callable[[str], httpx.Request]) -> Flow[Reply]:
    """Send the request built by `build(access_token)` until it succeeds or may not be retried."""
    token: str = yield GetToken()
    refreshed = False
    attempt = 0
    while True:
        wait = policy.budget.before_call(policy.clock())  # raises RateLimitedError below min_calls_remaining
        if wait > 0:
            yield Sleep(wait)
        request = build(token)
        started = policy.clock()
        if policy.debug:
            from connector._redact import redact_request

            log.info("request %s", redact_request(request))
        try:
            response: httpx.Response = yield Send(request)
        except httpx.TransportError as exc:
            outcome = _retry.classify_exception(exc)
            if policy.debug:
                log.info("request failed after %.3fs: %s", policy.clock() - started, type(exc).__name__)
            if not _retry.should_retry(
                outcome,
                safety=policy.safety,
                retry_all=policy.retry_all,
                attempt=attempt,
                max_retries=policy.max_retries,
            ):
                raise TransientError(_network_message(exc, outcome)) from None
            yield Sleep(_retry.backoff(attempt, policy.schedule, policy.jitter))
            attempt += 1
            continue
        policy.budget.after_response(response.headers, policy.clock())
        body = _json(response)
        outcome = _retry.classify_response(
            response.status_code, body, response.headers, policy.clock(), policy.envelope
        )
        if policy.debug:
            from connector._redact import redact_response

            log.info("response %s in %.3fs", redact_response(response), policy.clock() - started)
        if outcome.kind == "auth" and not refreshed:
            refreshed = True
            token = yield GetToken(failed=token)
            continue
        if not _retry.should_retry(
            outcome,
            safety=policy.safety,
            retry_all=policy.retry_all,
            attempt=attempt,
            max_retries=policy.max_retries,
        ):
            return Reply(response, body, outcome)
        delay = _wait(outcome, attempt, policy)
        yield Sleep(delay)
        attempt += 1


def _wait(outcome: _retry.Outcome, attempt: int, policy: CallPolicy) -> float:
    """The server's Retry-After when given (failing at once past max_retry_after), else the schedule for the kind
    of failure."""
    if outcome.retry_after is not None:
        if outcome.retry_after > policy.max_retry_after:
            raise RateLimitedError(
                f"Zoho asked to retry after {outcome.retry_after:.0f}s, more than max_retry_after "
                f"({policy.max_retry_after:.0f}s); retry after {outcome.retry_after:.0f}s",
                retry_after=outcome.retry_after,
                status=outcome.status,
            )
        return outcome.retry_after
    schedule = policy.throttle_schedule if outcome.kind == "throttled" else policy.schedule
    return _retry.backoff(attempt, schedule, policy.jitter)


def _network_message(exc: Exception, outcome: _retry.Outcome) -> str:
    kind = type(exc).__name__
    if outcome.may_have_acted:
        return f"network failure ({kind}); the request may have reached Zoho, so it was not re-sent"
    return f"network failure ({kind}); could not reach Zoho"


def _json(response: httpx.Response) -> Any:
    if not response.content or "json" not in response.headers.get("content-type", "json"):
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return None


# --- drivers ---------------------------------------------------------------------------------------------------


def drive(
    flow: Flow[T],
    client: httpx.Client,
    get_token: Callable[[str | None], str],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run a flow with blocking I/O."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            if isinstance(effect, Send):
                value = client.send(effect.request)
            elif isinstance(effect, Sleep):
                sleep(effect.seconds)
            else:
                value = get_token(effect.failed)
        except httpx.TransportError as exc:
            error = exc


async def adrive(
    flow: Flow[T],
    client: httpx.AsyncClient,
    get_token: Callable[[str | None], Awaitable[str]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """Run a flow with async I/O: the same loop, awaiting each effect."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            if isinstance(effect, Send):
                value = await client.send(effect.request)
            elif isinstance(effect, Sleep):
                await sleep(effect.seconds)
            else:
                value = await get_token(effect.failed)
        except httpx.TransportError as exc:
            error = exc


def auth_failed(reply: Reply) -> AuthenticationError:
    """Zoho refused the token even after one refresh."""
    return AuthenticationError(
        f"Zoho refused the access token ({reply.outcome.code or reply.response.status_code}) even after a refresh; "
        "check that the connection's region matches the account's data centre and that the token has the scopes",
        reason="token_rejected",
    )
