"""Every action, through `Connector.run`, with generated inputs against the sandbox: the only acceptable outcomes
are a result or a typed ConnectorError, and either one prints as strict JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector import Connector, ConnectorError
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import ACTIONS, invalid_inputs, valid_inputs


async def _no_sleep(seconds: float) -> None:
    return None


def _check(key: str, inputs: Any, connection: dict[str, Any]) -> None:
    # A connector per example keeps examples independent (a crash must not leave a pooled connection behind for
    # the next one), and retries of generated inputs never really wait (maxRetries up to 25, long delays).
    try:
        with Connector.load(sleep=lambda seconds: None, async_sleep=_no_sleep) as connector:
            result = connector.run(key, inputs, connection=connection)
    except ConnectorError as exc:
        json.dumps(exc.to_dict(), allow_nan=False)
        return
    assert isinstance(result, dict) and "data" in result, result
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("key", ACTIONS)
@FUZZ
@given(data=st.data())
def test_valid_inputs_give_a_result_or_a_typed_error(key: str, data: st.DataObject, connection: dict[str, Any]) -> None:
    _check(key, data.draw(valid_inputs(key), label="inputs"), connection)


@pytest.mark.parametrize("key", ACTIONS)
@FUZZ
@given(data=st.data())
def test_invalid_inputs_give_a_result_or_a_typed_error(
    key: str, data: st.DataObject, connection: dict[str, Any]
) -> None:
    _check(key, data.draw(invalid_inputs(key), label="inputs"), connection)
