"""Per-connection pacing: the gap between calls and the daily allowance Zoho reports.

Zoho's rate-limit headers are undocumented (../shared/notes/zoho-api.md §3): the names seen in the wild are read
when present, and their absence is never an error. Concurrency is capped by the runner with a semaphore.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from connector.errors import RateLimitedError

__all__ = ["Budget"]

_REMAINING = ("x-ratelimit-remaining", "x-rate-limit-remaining", "x-api-credits-remaining")
_RESET = ("x-ratelimit-reset", "x-rate-limit-reset")


class Budget:
    """Tracks when the next call may start and how many calls the allowance has left."""

    def __init__(self, intercall_delay: float = 0.0, min_calls_remaining: int = 1) -> None:
        self.intercall_delay = intercall_delay
        self.min_calls_remaining = min_calls_remaining
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self._next_call = 0.0
        self._lock = threading.Lock()

    def before_call(self, now: float) -> float:
        """Seconds to wait before this call may start; raises RateLimitedError when the allowance is spent."""
        with self._lock:
            if self.remaining is not None and self.remaining < self.min_calls_remaining:
                if self.reset_at is None or now < self.reset_at:
                    wait = None if self.reset_at is None else self.reset_at - now
                    when = f"; it resets in {wait:.0f}s" if wait is not None else ""
                    raise RateLimitedError(
                        f"Zoho reports {self.remaining} calls left in the allowance, below min_calls_remaining "
                        f"({self.min_calls_remaining}){when}",
                        retry_after=wait,
                    )
                self.remaining = None  # the window has reset
            start = max(now, self._next_call)
            self._next_call = start + self.intercall_delay
            return start - now

    def after_response(self, headers: Mapping[str, str], now: float) -> None:
        remaining = _number(headers, _REMAINING)
        if remaining is None:
            return
        reset = _number(headers, _RESET)
        with self._lock:
            self.remaining = int(remaining)
            # Zoho-style reset headers count seconds from now; an epoch timestamp is recognisably large.
            if reset is not None:
                self.reset_at = reset if reset > 1e9 else now + reset


def _number(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                continue
    return None
