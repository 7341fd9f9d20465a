"""Fixtures of the hostile-server suite: the server, a connection pointing at it, and a guard against hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.hostile.server import HostileServer

ACCESS_TOKEN = "1000.hostile0a1b2c3d4e5f60718293a4b5c6d7.e8f90a1b2c3d4e5f60718293a4b5c6d7"
ORG = "10234695"
T = TypeVar("T")


@pytest.fixture
def server() -> Iterator[HostileServer]:
    hostile = HostileServer()
    try:
        yield hostile
    finally:
        hostile.close()


@pytest.fixture
def connection(server: HostileServer) -> dict[str, Any]:
    """A ready access token, the API pointed at the hostile server, and a Books organization."""
    return {"region": "us", "access_token": ACCESS_TOKEN, "api_domain": server.url, "organization_id": ORG}


class Outcome:
    """What a guarded call did: its result or its exception, and how long it took."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.seconds = 0.0


def within(seconds: float, call: Callable[[], Any]) -> Outcome:
    """Run `call` in a thread and fail the test if it has not finished after `seconds`: a regression that loops or
    hangs fails here instead of hanging the suite (the server's teardown then ends the stray thread)."""
    outcome = Outcome()

    def target() -> None:
        started = time.monotonic()
        try:
            outcome.result = call()
        except BaseException as exc:  # handed to the test to judge
            outcome.error = exc
        finally:
            outcome.seconds = time.monotonic() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the call was still running after {seconds}s: it neither finished nor failed")
    return outcome


def raised(outcome: Outcome, kind: type[T]) -> T:
    """The outcome's exception, asserting it is a `kind`; a plain traceback-style error fails with its repr."""
    assert outcome.error is not None, f"expected {kind.__name__}, but the call returned {str(outcome.result)[:300]}"
    assert isinstance(outcome.error, kind), f"expected {kind.__name__}, got {outcome.error!r}"
    return outcome.error
