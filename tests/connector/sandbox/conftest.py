"""An in-process sandbox per test: a fresh state, a fake clock, and an httpx client over ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from connector.sandbox import FaultConfig, SandboxState, create_app
from tests.conftest import FakeClock

BASE = "http://sandbox.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state() -> SandboxState:
    return SandboxState()


@pytest.fixture
def app(state: SandboxState, clock: FakeClock) -> Starlette:
    return create_app(state, faults=FaultConfig(), clock=clock, sleep=clock.async_sleep)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


@pytest.fixture
async def tokens(client: httpx.AsyncClient) -> dict[str, Any]:
    """A refresh/access pair minted through the admin shortcut."""
    response = await client.post("/__sandbox/tokens", json={})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def api(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.AsyncClient:
    """The same client, authorized with `Zoho-oauthtoken`."""
    client.headers["Authorization"] = f"Zoho-oauthtoken {tokens['access_token']}"
    return client
