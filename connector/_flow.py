"""One call to Zoho as a generator of effects, so a single loop serves the sync and the async runner.

The flow yields what it needs done — `Send(request)`, `Sleep(seconds)`, `GetToken(failed)`, `Share()` — and receives
the result; `drive` performs effects with an httpx.Client and blocking sleep, `adrive` with an httpx.AsyncClient and
async sleep. Retry, refresh-once-on-401, pacing and the daily allowance therefore exist once, in `exchange`. The
driver's `gate` holds each Send in one of the account's concurrency slots, and its `share` merges the allowance
with the other workers' (`_limits`).

Drivers read every answer under two bounds: the call's timeout covers the whole answer (a server trickling a byte
at a time cannot stretch it), and a body past `max_response_bytes` is refused rather than held in memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple, TypeVar

import httpx

from connector import _retry
from connector._ratelimit import Budget
from connector.errors import AuthenticationError, BadResponseError, RateLimitedError, TransientError

if TYPE_CHECKING:
    from connector.strategies import Envelope

__all__ = [
    "CallPolicy",
    "GetToken",
    "Reply",
    "Send",
    "Share",
    "Sleep",
    "UndecodableBody",
    "adrive",
    "drive",
    "exchange",
]

log = logging.getLogger("connector")
T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024  # Zoho's own ceiling for an attachment
DEFAULT_RETRY_BUDGET_SECONDS = 30.0  # failures are retried for this long in all: with a 10 s connect timeout, an
# unreachable host is reported within 40 s


class Send(NamedTuple):
    request: httpx.Request
    timeout_seconds: float  # the whole answer, headers and body, within this
    max_bytes: int
    sink: IO[bytes] | None = None  # a successful answer's body goes here instead of memory (downloads)


class Sleep(NamedTuple):
    seconds: float


class GetToken(NamedTuple):
    failed: str | None = None  # the access token Zoho just refused, if any


class Share(NamedTuple):
    """Merge the budget's view of the allowance with the account's shared one (due at most once a second)."""


Effect = Send | Sleep | GetToken | Share
Flow = Generator[Effect, Any, T]
Gate = Callable[[Send], AbstractContextManager[object]]
AsyncGate = Callable[[Send], AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class CallPolicy:
    """Everything `exchange` needs to know about how to treat failures of this call."""

    safety: str  # read | write | idempotent
    envelope: Envelope
    max_retries: int
    schedule: _retry.Schedule
    # Throttling without Retry-After always backs off exponentially, whatever the action's own delay: a constant
    # (even zero) delay against a 429 is how clients hammer a throttled API.
    throttle_schedule: _retry.Schedule = field(default_factory=_retry.Schedule)
    retry_all: bool = False
    max_retry_after: float = 180.0
    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    timeout_seconds: float = 30.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    expects_json: bool = True
    sink: IO[bytes] | None = None
    debug: bool = False
    budget: Budget = field(default_factory=Budget)
    clock: Callable[[], float] = time.time
    jitter: Callable[[float], float] | None = None

    def retryable(self, outcome: _retry.Outcome) -> bool:
        return _retry.retryable(outcome, safety=self.safety, retry_all=self.retry_all)


class Reply(NamedTuple):
    response: httpx.Response
    body: Any  # parsed JSON, or None
    outcome: _retry.Outcome


def exchange(policy: CallPolicy, build: Callable[[str], httpx.Request]) -> Flow[Reply]:
    """Send the request built by `build(access_token)` until it succeeds or may not be retried."""
    token: str = yield GetToken()
    refreshed = False
    attempt = 0
    first_try = policy.clock()
    while True:
        if policy.budget.share_due(policy.clock()):
            yield Share()
        wait = policy.budget.before_call(policy.clock())  # raises RateLimitedError below min_calls_remaining
        if wait > 0:
            yield Sleep(wait)
        request = build(token)
        host = request.url.host
        started = policy.clock()
        if policy.debug:
            from connector._redact import redact_request

            log.info("request %s", redact_request(request))
        try:
            response: httpx.Response = yield Send(
                request, policy.timeout_seconds, policy.max_response_bytes, policy.sink
            )
        except httpx.TransportError as exc:
            outcome = _retry.classify_exception(exc)
            reason = _network_reason(exc, host)
            if policy.debug:
                log.info("request failed after %.3fs: %s", policy.clock() - started, reason)
            delay = _retry.backoff(attempt, policy.schedule, policy.jitter)
            if not _may_retry(policy, outcome, attempt, delay, first_try):
                failure = BadResponseError if isinstance(exc, UndecodableBody) else TransientError
                raise failure(
                    _network_message(reason, outcome, attempt, network=failure is TransientError),
                    retryable=policy.retryable(outcome),
                    may_have_acted=outcome.may_have_acted,
                ) from None
            _log_retry(delay, attempt, policy, reason)
            yield Sleep(delay)
            attempt += 1
            continue
        policy.budget.after_response(
            response.headers, policy.clock(), getattr(policy.envelope, "remaining_headers", ())
        )
        if policy.budget.share_due(policy.clock()):  # the allowance was just found spent: tell the others now
            yield Share()
        body, parsed = _json(response)
        outcome = _retry.classify_response(
            response.status_code, body, response.headers, policy.clock(), policy.envelope
        )
        if outcome.kind == "ok" and policy.expects_json and response.content and not parsed:
            outcome = outcome._replace(kind="bad_response")
        if policy.debug:
            from connector._redact import redact_response

            log.info("response %s in %.3fs", redact_response(response), policy.clock() - started)
        if outcome.kind == "auth" and not refreshed:
            refreshed = True
            token = yield GetToken(failed=token)
            continue
        if outcome.kind in ("ok", "auth") or (outcome.kind == "error" and not policy.retry_all):
            return Reply(response, body, outcome)  # Retry On All Errors retries Zoho's refusals too (below)
        delay = _wait(outcome, attempt, policy)
        if not _may_retry(policy, outcome, attempt, delay, first_try):
            return Reply(response, body, outcome)
        _log_retry(delay, attempt, policy, f"HTTP {response.status_code} from {host}")
        yield Sleep(delay)
        attempt += 1


def _may_retry(policy: CallPolicy, outcome: _retry.Outcome, attempt: int, delay: float, first_try: float) -> bool:
    if not _retry.should_retry(
        outcome, safety=policy.safety, retry_all=policy.retry_all, attempt=attempt, max_retries=policy.max_retries
    ):
        return False
    # Throttling waits are bounded by max_retry_after; failures are retried within a total budget, so an
    # unreachable host is reported in well under a minute instead of after every retry.
    return outcome.kind == "throttled" or policy.clock() + delay - first_try <= policy.retry_budget_seconds


def _log_retry(delay: float, attempt: int, policy: CallPolicy, reason: str) -> None:
    log.info("retrying in %.1f s (%d/%d): %s", delay, attempt + 1, policy.max_retries, reason)


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


def _network_reason(exc: Exception, host: str) -> str:
    if isinstance(exc, UndecodableBody):
        return f"an answer from {host} whose body cannot be decoded ({exc})"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot connect to {host} ({type(exc).__name__})"
    if isinstance(exc, httpx.TimeoutException):
        return f"no complete answer from {host} in time ({type(exc).__name__})"
    return f"connection to {host} failed ({type(exc).__name__})"


def _network_message(reason: str, outcome: _retry.Outcome, attempt: int, *, network: bool = True) -> str:
    tries = f" after {attempt + 1} attempts" if attempt else ""
    if not network:  # the exchange worked; the body did not
        return f"bad answer{tries}: {reason}; the request may have reached Zoho"
    if outcome.may_have_acted:
        return f"network failure{tries}: {reason}; the request may have reached Zoho"
    return f"network failure{tries}: {reason}; the request did not reach Zoho"


def _json(response: httpx.Response) -> tuple[Any, bool]:
    """(parsed body, whether it parsed as JSON). A body that says it is not JSON is not parsed."""
    if not response.content or "json" not in response.headers.get("content-type", "json"):
        return None, False
    try:
        return json.loads(response.content), True
    except (ValueError, RecursionError):
        return None, False


# --- drivers ---------------------------------------------------------------------------------------------------


def drive(
    flow: Flow[T],
    client: httpx.Client,
    get_token: Callable[[str | None], str],
    sleep: Callable[[float], None] = time.sleep,
    *,
    gate: Gate | None = None,
    share: Callable[[], None] | None = None,
) -> T:
    """Run a flow with blocking I/O. `gate(send)` is held while a request is in flight (a concurrency slot);
    `share()` performs Share (without it, Share does nothing)."""
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
                if gate is None:
                    value = _receive(client, effect)
                else:
                    with gate(effect):
                        value = _receive(client, effect)
            elif isinstance(effect, Sleep):
                sleep(effect.seconds)
            elif isinstance(effect, Share):
                if share is not None:
                    share()
            else:
                value = get_token(effect.failed)
        except httpx.TransportError as exc:
            error = exc


async def adrive(
    flow: Flow[T],
    client: httpx.AsyncClient,
    get_token: Callable[[str | None], Awaitable[str]],
    sleep: Callable[[float], Awaitable[None]],
    *,
    gate: AsyncGate | None = None,
    share: Callable[[], Awaitable[None]] | None = None,
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
                if gate is None:
                    value = await _areceive(client, effect)
                else:
                    async with gate(effect):
                        value = await _areceive(client, effect)
            elif isinstance(effect, Sleep):
                await sleep(effect.seconds)
            elif isinstance(effect, Share):
                if share is not None:
                    await share()
            else:
                value = await get_token(effect.failed)
        except httpx.TransportError as exc:
            error = exc


class UndecodableBody(httpx.TransportError):
    """A body its Content-Encoding cannot decode (a `gzip` that is not, a broken `br` stream): the answer arrived
    but is unreadable, so it is handled as a bad answer (retried for reads, never for a write that may have acted),
    not left to escape as httpx.DecodingError."""


def _receive(client: httpx.Client, send: Send) -> httpx.Response:
    deadline = time.monotonic() + send.timeout_seconds
    response = client.send(send.request, stream=True)
    try:
        body = _Body(send, response, deadline)
        for chunk in response.iter_bytes():
            body.add(chunk)
        body.finish()
    except httpx.DecodingError as exc:
        raise _undecodable(exc, response) from None
    finally:
        response.close()
        response.stream = _SPENT
    return response


async def _areceive(client: httpx.AsyncClient, send: Send) -> httpx.Response:
    deadline = time.monotonic() + send.timeout_seconds
    response = await client.send(send.request, stream=True)
    try:
        body = _Body(send, response, deadline)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
        body.finish()
    except httpx.DecodingError as exc:
        raise _undecodable(exc, response) from None
    finally:
        await response.aclose()
        response.stream = _SPENT
    return response


_SPENT = httpx.ByteStream(b"")
"""Stands in for a closed answer's stream. httpx's Response and the stream wrapping it refer to each other, so
without this every answer waited for the garbage collector's cycle pass: a Fetch All held a varying number of
spent pages (at times ten) instead of freeing each one as soon as its records were handed out."""


def _undecodable(exc: httpx.DecodingError, response: httpx.Response) -> UndecodableBody:
    encoding = response.headers.get("content-encoding", "")[:40]
    return UndecodableBody(f"Content-Encoding {encoding!r}: {type(exc).__name__}", request=response.request)


SINK_BYTES = "connector.sink_bytes"  # response extension: how many bytes went to the sink


class _Body:
    """Collects an answer's chunks within the call's deadline: in memory up to the size ceiling, or, for a
    successful download, into the sink (rewound first, so a retried download starts over)."""

    def __init__(self, send: Send, response: httpx.Response, deadline: float) -> None:
        self.send = send
        self.response = response
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0
        self.sink = send.sink if send.sink is not None and response.is_success else None
        if self.sink is not None:
            self.sink.seek(0)
            self.sink.truncate()
        else:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > send.max_bytes:
                raise _too_large(send.max_bytes)

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if time.monotonic() > self.deadline:
            raise httpx.ReadTimeout(
                f"the answer took longer than {self.send.timeout_seconds:g}s", request=self.send.request
            )
        if self.sink is not None:
            self.sink.write(chunk)
            return
        if self.size > self.send.max_bytes:
            raise _too_large(self.send.max_bytes)
        self.chunks.append(chunk)

    def finish(self) -> None:
        self.response._content = b"".join(self.chunks)  # what Response.read() itself stores
        if self.sink is not None:
            self.response.extensions = {**self.response.extensions, SINK_BYTES: self.size}


def _too_large(max_bytes: int) -> BadResponseError:
    return BadResponseError(
        f"the answer is larger than max_response_bytes ({max_bytes:,} bytes); nothing was kept",
        retryable=False,
        may_have_acted=True,
    )


def auth_failed(reply: Reply) -> AuthenticationError:
    """Zoho refused the token even after one refresh."""
    return AuthenticationError(
        f"Zoho refused the access token ({reply.outcome.code or reply.response.status_code}) even after a refresh; "
        "check that the connection's region matches the account's data centre and that the token has the scopes",
        reason="token_rejected",
    )
