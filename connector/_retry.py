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
from typing import Any, Literal, NamedTuple

import httpx

__all__ = [
    "Outcome",
    "Schedule",
    "backoff",
    "classify_exception",
    "classify_response",
    "retry_after",
    "should_retry",
]

Kind = Literal["ok", "auth", "throttled", "transient", "error"]

# Zoho's codes for an access token it no longer accepts: refresh once and replay.
AUTH_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE", "INVALID_OAUTHTOKEN"})
# How CRM words throttling when it answers HTTP 400 instead of 429.
THROTTLE_CODES = frozenset({"ACCESS DENIED", "ACCESS_DENIED", "TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED"})
THROTTLE_PHRASES = ("too many requests", "throttle")
MAX_BACKOFF_SECONDS = 30.0


class Outcome(NamedTuple):
    kind: Kind
    # False only when the request certainly did not reach Zoho (connect error) or Zoho rejected it unprocessed
    # (a 429 or throttle answer): the one case where a non-idempotent write may be re-sent.
    may_have_acted: bool
    retry_after: float | None = None
    status: int | None = None
    code: str | None = None


def zoho_code(body: Any) -> tuple[str | None, str | None]:
    """(code, message) from any Zoho error shape: CRM's {code, message}, CRM's per-record data[0], Books'
    numeric code, or Accounts' {error, error_description}."""
    if not isinstance(body, Mapping):
        return None, None
    if "code" in body:
        return str(body["code"]), _str(body.get("message"))
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping) and "code" in data[0]:
        return str(data[0]["code"]), _str(data[0].get("message"))
    if "error" in body:
        return str(body["error"]), _str(body.get("error_description"))
    return None, None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def classify_response(status: int, body: Any, headers: Mapping[str, str], now: float, envelope: str) -> Outcome:
    """What an answer means. `body` is the parsed JSON (or None); `envelope` is "crm" or "finance"."""
    code, message = zoho_code(body)
    wait = retry_after(headers, now)
    upper = (code or "").upper()
    text = f"{code or ''} {message or ''}".lower()
    if status == 429 or (status in (400, 403) and (upper in THROTTLE_CODES or _throttle_words(text))):
        return Outcome("throttled", may_have_acted=False, retry_after=wait, status=status, code=code)
    if status == 401 and (upper in AUTH_CODES or envelope == "finance" or code is None):
        return Outcome("auth", may_have_acted=False, status=status, code=code)
    if status >= 500 or status == 408:
        return Outcome("transient", may_have_acted=True, retry_after=wait, status=status, code=code)
    if status >= 400:
        return Outcome("error", may_have_acted=False, status=status, code=code)
    if envelope == "finance" and code not in (None, "0"):
        return Outcome("error", may_have_acted=True, status=status, code=code)
    return Outcome("ok", may_have_acted=True, status=status, code=code)


def _throttle_words(text: str) -> bool:
    return any(phrase in text for phrase in THROTTLE_PHRASES)


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
    if outcome.kind == "transient":
        return safety in ("read", "idempotent") or not outcome.may_have_acted
    return False


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
