"""Retry as small pure pieces: classify an outcome, decide whether to retry, and how long to wait.

    classify_response / classify_exception → Outcome (what happened, and whether Zoho may have acted on it)
    should_retry(outcome, safety, ...)      → bool (the safe-write rule lives here)
    backoff(attempt, schedule, jitter)      → seconds (constant, or exponential with jitter, capped)
    retry_after(headers, now)               → seconds from Retry-After, in delta-seconds or HTTP-date form

Nothing here sleeps or sends; the call flow (`_flow.py`) does, with an injected clock and sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import httpx

if TYPE_CHECKING:
    from connector.strategies import Envelope

__all__ = [
    "Outcome",
    "Schedule",
    "backoff",
    "classify_exception",
    "classify_response",
    "retry_after",
    "retryable",
    "should_retry",
]

# bad_response: a 2xx whose body is not the JSON the call expects (truncated, an HTML page from a proxy, …)
Kind = Literal["ok", "auth", "throttled", "transient", "bad_response", "error"]

MAX_BACKOFF_SECONDS = 30.0


class Outcome(NamedTuple):
    kind: Kind
    # False only when the request certainly did not reach Zoho (connect error) or Zoho rejected it unprocessed
    # (a 429 or throttle answer): the one case where a non-idempotent write may be re-sent.
    may_have_acted: bool
    retry_after: float | None = None
    status: int | None = None
    code: str | None = None


def classify_response(status: int, body: Any, headers: Mapping[str, str], now: float, envelope: Envelope) -> Outcome:
    """What an answer means: the product's envelope decides where its wording matters, HTTP does the rest."""
    code = envelope.error(body).code
    verdict = envelope.classify(status, body)
    wait = retry_after(headers, now)
    if verdict == "throttled" or (verdict is None and status == 429):
        return Outcome("throttled", may_have_acted=False, retry_after=wait, status=status, code=code)
    if verdict == "auth" or (verdict is None and status == 401):
        return Outcome("auth", may_have_acted=False, status=status, code=code)
    if verdict == "transient" or (verdict is None and (status >= 500 or status == 408)):
        return Outcome("transient", may_have_acted=True, retry_after=wait, status=status, code=code)
    if verdict == "error" and 200 <= status < 300:  # a 2xx that the envelope marks as failed may have acted
        return Outcome("error", may_have_acted=True, status=status, code=code)
    if verdict == "error" or status >= 400:
        return Outcome("error", may_have_acted=False, status=status, code=code)
    return Outcome("ok", may_have_acted=True, status=status, code=code)


def classify_exception(exc: Exception) -> Outcome:
    """Network failures: a failed connect never reached Zoho; a timeout or broken read may have."""
    certainly_unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Outcome("transient", may_have_acted=not certainly_unsent)


def should_retry(outcome: Outcome, *, safety: str, retry_all: bool, attempt: int, max_retries: int) -> bool:
    """The retry rule. Reads and idempotent calls retry transient failures; a write is re-sent only when it
    certainly did not act (or the user asked for Retry On All Errors). Throttling is always retried."""
    if attempt >= max_retries or outcome.kind in ("ok", "auth"):
        return False
    if retry_all:
        return True
    if outcome.kind == "throttled":
        return True
    if outcome.kind in ("transient", "bad_response"):
        return safety in ("read", "idempotent") or not outcome.may_have_acted
    return False


def retryable(outcome: Outcome, *, safety: str, retry_all: bool) -> bool:
    """Whether the same call may be sent again, by us or by a workflow engine: never a write that may have
    reached Zoho (unless the user asked for Retry On All Errors), since that could create a duplicate."""
    return should_retry(outcome, safety=safety, retry_all=retry_all, attempt=0, max_retries=1)


class Schedule(NamedTuple):
    base_seconds: float = 0.5
    exponential: bool = True
    cap_seconds: float = MAX_BACKOFF_SECONDS


def backoff(attempt: int, schedule: Schedule, jitter: Callable[[float], float] | None = None) -> float:
    """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
    if not schedule.exponential:
        return min(schedule.base_seconds, schedule.cap_seconds)
    delay = min(schedule.base_seconds * (2**attempt), schedule.cap_seconds)
    return (jitter or equal_jitter)(delay)


def equal_jitter(delay: float) -> float:
    """Half fixed, half random: spreads workers apart while keeping the wait near the schedule."""
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not for security


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait per Retry-After, which Zoho may send as delta-seconds or as an HTTP-date: whole seconds
    from 1 up to a day, or None (absent, garbage, zero, negative, past) so the caller uses its backoff instead."""
    from connector._ratelimit import header, parse_retry_after

    return parse_retry_after(header(headers, "retry-after"), now)
