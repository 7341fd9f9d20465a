"""Shared fixtures: an isolated home for token stores and caches, a fake clock and sleep, a ready connector."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from connector import Connector

ACCESS_TOKEN = "1000.0a1b2c3d4e5f60718293a4b5c6d7e8f9.0a1b2c3d4e5f60718293a4b5c6d7e8f9"
CRM = "https://www.zohoapis.eu/crm/v8"
BOOKS = "https://www.zohoapis.eu/books/v3"
ORG = "10234695"


# Property tests check what holds, not how fast: Hypothesis's default 200 ms deadline per example turned a busy
# machine (CI on two cores beside the databases) into a failure of a test that had found nothing wrong.
settings.register_profile("connector", deadline=None, print_blob=True)
settings.load_profile("connector")

_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status[:] = [int(exitstatus)]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The Temporal SDK can crash while the interpreter shuts down after a green run (temporalio/sdk-python#300,
    rc 134 or 139). Once it has been imported, the run ends here, after pytest's report, with pytest's own exit
    status: a failure still fails, a pass is not turned into a crash."""
    if "temporalio" in sys.modules and _exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])


class FakeClock:
    """Time that moves only when told to, or when the code under test sleeps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Token stores and the manifest cache live in the test's own directory, never in the user's home."""
    home = tmp_path / "home"
    monkeypatch.setenv("ZOHO_CONNECTOR_HOME", str(home))
    monkeypatch.setenv("ZOHO_CONNECTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOHO_CONNECTOR_TOKEN_KEY", raising=False)
    yield home


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(clock: FakeClock) -> Iterator[Connector]:
    with Connector.load(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, jitter=lambda d: d) as c:
        yield c


@pytest.fixture
def connection() -> dict[str, Any]:
    """An EU connection with a ready access token and a Books organization."""
    return {"region": "eu", "access_token": ACCESS_TOKEN, "expires_in": 3600, "organization_id": ORG}
