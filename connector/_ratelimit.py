"""Per-connection pacing: the gap between calls, the allowance Zoho reports, and reading its wait headers.

Zoho's rate-limit headers are undocumented (../shared/notes/zoho-api.md §3-4): the names seen in the wild
(`X-RateLimit-*`, Books' `X-Rate-Limit-*`, and whatever the product's envelope names in `remaining_headers`, such
as `X-API-CREDITS-REMAINING`) are read when present, and their absence or garbage in them is never an error. Every
number read from a header is checked: only plain non-negative decimals count, and waits are capped at a day, so no
header can crash a call, put NaN/Infinity into an error's JSON, or make the connector retry at once. Concurrency is
capped by the runner (a semaphore, then `_limits`' slots).

The allowance is the account's, not the process's: when the connection's token store shares limits (`_limits`),
the Budget merges its view with the one kept in the store, at most once a second and at once when a call finds the
allowance spent, so every worker of the account refuses calls together. The newer observation wins.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from connector.errors import RateLimitedError

__all__ = ["DEFAULT_WINDOW", "MAX_WAIT", "SHARE_INTERVAL", "Budget", "SharedValue", "header", "parse_retry_after"]

# How long a low "remaining" count holds when Zoho gives no (usable) reset time. The count is a snapshot, not a
# promise: without an expiry one `Remaining: 0` would refuse every later call for the life of the process.
# A minute matches the shortest window Zoho is known to count in (Books: 100 calls/min per org), so a spent
# per-minute allowance is respected, while a spent daily one costs one probe call a minute, whose answer
# carries the fresh count (or a 429) and re-arms the guard.
DEFAULT_WINDOW = 60.0
# Zoho's allowances are daily (CRM credits per 24 h, Books calls per day): no honest reset or Retry-After is
# further away than that, so a larger figure is read as a day rather than trusted or turned into Infinity.
MAX_WAIT = 86_400.0
_MAX_COUNT = 10**9  # a "remaining" beyond this just means plenty
_MAX_DIGITS = 15  # more integer digits than this is past any cap, and past float's exact range

# The de facto standard names; a product's envelope may name more (`remaining_headers`, connector.strategies).
_REMAINING = ("x-ratelimit-remaining", "x-rate-limit-remaining")
_RESET = ("x-ratelimit-reset", "x-rate-limit-reset")
_LIMIT = ("x-ratelimit-limit", "x-rate-limit-limit")
# ASCII digits only: float() would also take "nan", "inf", "1e400", "1_000" and non-Latin digits.
_DECIMAL = re.compile(r"([0-9]+)(?:\.[0-9]+)?", flags=re.ASCII)
_EPOCH = 1e9  # a reset this large is a Unix timestamp (2001 onwards), not seconds from now
_EPOCH_MS = 1e12
# How often a worker merges its view of the allowance with the shared one. A second's delay costs a spent allowance
# at most a second of calls Zoho refuses; merging on every call would cost a store round trip on every call.
SHARE_INTERVAL = 1.0


class SharedValue(Protocol):
    """Where the account's allowance is kept for every worker (a store's value, see `_limits`)."""

    def get(self) -> str | None: ...

    def put(self, value: str, ttl: float) -> None: ...


class Budget:
    """Tracks when the next call may start and how many calls the allowance has left."""

    def __init__(
        self,
        intercall_delay: float = 0.0,
        min_calls_remaining: int = 1,
        default_window: float = DEFAULT_WINDOW,
        *,
        shared: bool = False,
    ) -> None:
        """`shared`: the allowance may be kept in a store for every worker; the first `share` call says whether it
        really is (a channel, or None)."""
        self.intercall_delay = intercall_delay
        self.min_calls_remaining = min_calls_remaining
        self.default_window = default_window
        self.remaining: int | None = None
        self.limit: int | None = None
        # When the reported count stops applying: Zoho's reset time, or the default window when it gave none.
        self.reset_at: float | None = None
        self.reset_known = False
        self.observed_at: float | None = None  # when the count was reported (here or by another worker)
        self.shared = shared
        self._synced_at = -math.inf
        self._published: float | None = None  # observed_at of the view last written to the store
        self._urgent = False  # the allowance was just found spent: tell the other workers now
        self._next_call = 0.0
        self._lock = threading.Lock()

    def share_due(self, now: float) -> bool:
        """Whether `share` should run before the next call (cheap: no I/O)."""
        return self.shared and (self._urgent or now - self._synced_at >= SHARE_INTERVAL)

    def share(self, channel: SharedValue | None, now: float) -> None:
        """Merge with the account's shared view: adopt it when newer than ours, publish ours when newer than it.
        `channel` None: the allowance is this process's alone, and `share` is not due again."""
        if channel is None:
            self.shared = False
            return
        theirs = _view(channel.get())
        with self._lock:
            self._synced_at, self._urgent = now, False
            if theirs is not None and (self.observed_at is None or theirs["observed_at"] > self.observed_at):
                self.remaining, self.limit = theirs["remaining"], theirs["limit"]
                self.reset_at, self.reset_known = theirs["reset_at"], theirs["reset_known"]
                self.observed_at = theirs["observed_at"]
                return
            if self.observed_at is None or self.observed_at == self._published or self.remaining is None:
                return
            mine = {
                "remaining": self.remaining,
                "limit": self.limit,
                "reset_at": self.reset_at,
                "reset_known": self.reset_known,
                "observed_at": self.observed_at,
            }
            self._published = self.observed_at
            ttl = min(max((self.reset_at or now) - now, 1.0), MAX_WAIT)
        channel.put(json.dumps(mine, separators=(",", ":")), ttl)

    def before_call(self, now: float) -> float:
        """Seconds to wait before this call may start; raises RateLimitedError when the allowance is spent."""
        with self._lock:
            if self.remaining is not None and self.reset_at is not None and now >= self.reset_at:
                self.remaining = None  # the window has passed: send, and let the answer report afresh
            if self.remaining is not None and self.remaining < self.min_calls_remaining:
                wait = (
                    float(max(1, math.ceil(self.reset_at - now))) if self.reset_at is not None else self.default_window
                )
                of = f" of {self.limit}" if self.limit is not None else ""
                when = (
                    f"it resets in {wait:.0f}s"
                    if self.reset_known
                    else f"Zoho gave no reset time, so calls resume in {wait:.0f}s"
                )
                raise RateLimitedError(
                    f"Zoho reports {self.remaining}{of} calls left in the allowance, below min_calls_remaining "
                    f"({self.min_calls_remaining}); {when}",
                    retry_after=wait,
                )
            start = max(now, self._next_call)
            self._next_call = start + self.intercall_delay
            return start - now

    def after_response(self, headers: Mapping[str, str], now: float, remaining_headers: tuple[str, ...] = ()) -> None:
        """Note the allowance an answer reports; `remaining_headers`: the product's own names for calls left."""
        remaining = _count(header(headers, (*_REMAINING, *remaining_headers)), smallest=True)
        if remaining is None:
            return
        limit = _count(header(headers, _LIMIT), smallest=False)
        reset = _reset_in(header(headers, _RESET), now)
        with self._lock:
            self.remaining = remaining
            self.limit = limit
            self.reset_known = reset is not None
            self.reset_at = now + (reset if reset is not None else self.default_window)
            self.observed_at = now
            if remaining < self.min_calls_remaining:
                self._urgent = self.shared


def _view(text: str | None) -> dict[str, Any] | None:
    """A shared allowance record, or None when absent or not one (a store is not trusted to hold our JSON)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        view: dict[str, Any] = {
            "remaining": int(data["remaining"]),
            "limit": None if data.get("limit") is None else int(data["limit"]),
            "reset_at": None if data.get("reset_at") is None else float(data["reset_at"]),
            "reset_known": bool(data.get("reset_known")),
            "observed_at": float(data["observed_at"]),
        }
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return None
    numbers: list[float] = [view["remaining"], view["observed_at"], view["reset_at"] or 0.0, view["limit"] or 0]
    return view if all(math.isfinite(n) and n >= 0 for n in numbers) else None


def header(headers: Mapping[str, str], names: str | tuple[str, ...]) -> str | None:
    """The first of `names` (lower-case) present in `headers`, whether or not the mapping ignores case."""
    names = (names,) if isinstance(names, str) else names
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    lowered = {key.lower(): value for key, value in headers.items() if isinstance(key, str)}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Whole seconds (1 to MAX_WAIT) to wait per a Retry-After value: delta-seconds or an HTTP-date.

    None when there is nothing usable — absent, empty, negative, zero, a date now or past, garbage, NaN or
    Infinity — so that the caller falls back to its backoff schedule instead of retrying at once. Fractions
    round up, so no positive value becomes a zero-wait burst; huge values are capped at MAX_WAIT.
    """
    if value is None:
        return None
    value = value.strip()
    seconds = _decimal(value)
    if seconds is None and any(c.isalpha() for c in value):  # an HTTP-date always names its month
        seconds = _http_date(value, now)
    if seconds is None or seconds <= 0:
        return None
    return float(math.ceil(min(seconds, MAX_WAIT)))


def _decimal(text: str) -> float | None:
    """A plain non-negative decimal ("12", "1.5"); Infinity stands for one too long to matter; None for anything
    else. Callers cap the result."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        return None
    if len(match.group(1).lstrip("0")) > _MAX_DIGITS:
        return math.inf
    return float(match.group(0))


def _http_date(text: str, now: float) -> float | None:
    from datetime import UTC
    from email.utils import parsedate_to_datetime  # rare: most answers carry no Retry-After

    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000" means UTC with no claim about local time
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return seconds if math.isfinite(seconds) else None


def _numbers(text: str | None) -> list[float]:
    """The usable numbers in a header; a repeated header arrives comma-joined."""
    if text is None:
        return []
    return [n for n in (_decimal(part) for part in text.split(",")) if n is not None]


def _count(text: str | None, *, smallest: bool) -> int | None:
    numbers = _numbers(text)
    if not numbers:
        return None
    return int(min(min(numbers) if smallest else max(numbers), _MAX_COUNT))


def _reset_in(text: str | None, now: float) -> float | None:
    """Seconds until the allowance resets, from seconds-from-now or a Unix timestamp (s or ms); None when
    unusable or already past, so the default window applies instead."""
    numbers = _numbers(text)
    if not numbers:
        return None
    value = max(numbers)  # of conflicting resets, the later is the safe one
    if math.isinf(value):
        return MAX_WAIT
    if value >= _EPOCH_MS:
        value = value / 1000 - now
    elif value >= _EPOCH:
        value -= now
    return min(value, MAX_WAIT) if value > 0 else None
