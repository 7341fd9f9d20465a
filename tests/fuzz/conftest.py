"""The sandbox the fuzzer runs against (its Hypothesis settings: profiles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture(scope="module")
def connection(sandbox: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A refresh token minted by the sandbox, kept in a token store of this module's own; the Partner Store is the
    sandbox's emulator, not store.zoho.com."""
    connection = with_refresh_token(sandbox, tmp_path_factory.mktemp("fuzz"))
    return {**connection, "store_url": f"{sandbox}/api/v1/partner"}
