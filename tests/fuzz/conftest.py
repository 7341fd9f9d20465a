"""Hypothesis profiles and the sandbox the fuzzer runs against.

`ci` (the default) is small, derandomized (a failure reproduces on every run), has no deadline (the sandbox is real
I/O) and does not shrink (a failing runtime must not turn a 20 s suite into minutes of replays; the unshrunk input is
printed). `HYPOTHESIS_PROFILE=fuzz` (`make fuzz`) runs many more randomized examples and shrinks what it finds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token

_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile("fuzz", max_examples=300, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
