"""A sandbox whose slowed answers a test can hold back, to stop a client at a chosen point without racing it.

Tests that kill a worker "mid-walk", or arm a fault "between two windows", used to wait until the sandbox had seen
N requests and then act, relying on the client's next step being slow enough (`slow_ms`) to land after the test
had acted: on a busy machine the test's step could come late and the client would be past the point. With a
`Hold`, the sandbox's own delay (its `sleep`, used by `slow_ms` and `slow_reply_ms`) keeps every delayed answer
waiting while the hold is on, so the client cannot go past the point until the test has acted and released it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
from starlette.applications import Starlette

from connector.sandbox import SandboxState, serve_in_thread
from connector.sandbox.app import create_app

__all__ = ["Hold", "held_sandbox"]


class Hold:
    """The sandbox's sleep, plus: once `hold_from(n, key)` is set, an answer delayed after the sandbox has seen `n`
    requests `key` ("POST /crm/v8/Leads") waits until `release()` (polling every 10 ms on the sandbox's loop)."""

    def __init__(self) -> None:
        self.app: Starlette | None = None
        self._when: Callable[[], bool] | None = None
        self.holding = threading.Event()  # set once an answer has been held (the client is stopped there)

    def hold_from(self, count: int, key: str) -> None:
        app = self.app
        assert app is not None

        def reached() -> bool:
            seen: int = app.state.stats.requests.get(key, 0)
            return seen >= count

        self.holding.clear()
        self._when = reached

    def release(self) -> None:
        self._when = None

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        while (when := self._when) is not None and when():
            self.holding.set()
            await anyio.sleep(0.01)


@contextmanager
def held_sandbox(state: SandboxState, hold: Hold | None = None) -> Iterator[tuple[str, Hold]]:
    """`serve_in_thread(state)` whose delayed answers `hold` (a new one by default) can hold; released however the
    block ends, so that no answer stays held past the test."""
    hold = hold if hold is not None else Hold()
    hold.app = create_app(state, sleep=hold.sleep)
    with serve_in_thread(hold.app) as base:
        try:
            yield base, hold
        finally:
            hold.release()
