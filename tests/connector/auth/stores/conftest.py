from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.auth.stores.base import TokenStore
from tests.connector.auth.stores.kinds import ALL, Kind, kind_params, prepared


@pytest.fixture(params=kind_params(ALL))
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kind]:
    with prepared(request.param, tmp_path) as k:
        yield k


@pytest.fixture
def store(kind: Kind) -> Iterator[TokenStore]:
    s = kind.open()
    yield s
    close = getattr(getattr(s, "inner", s), "close", None)
    if close is not None:
        close()
