"""Every action through `zoho-connector invoke` (a subprocess, so fewer examples): one JSON response on stdout with
`ok` true or false, exit code 0, 2, 3, 4 or 5, and never 1 with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.profiles import FEWER
from tests.fuzz.strategies import ACTIONS, invalid_inputs, json_values, valid_inputs

TYPED_EXIT_CODES = {0, 2, 3, 4, 5}


def _command() -> list[str]:
    script = Path(sys.executable).parent / "zoho-connector"
    return [str(script)] if script.exists() else [sys.executable, "-m", "connector.cli"]


def invoke(stdin: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [*_command(), "invoke"], input=stdin, capture_output=True, text=True, timeout=60, env=os.environ, check=False
    )
    assert "Traceback" not in done.stderr, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    assert done.returncode in TYPED_EXIT_CODES, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    response = json.loads(done.stdout)
    assert isinstance(response, dict) and response.get("ok") is (done.returncode == 0), response
    return done.returncode, response, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("key", ACTIONS)
@FEWER
@given(data=st.data())
def test_invoke_answers_every_input_with_a_typed_json_response(
    key: str, data: st.DataObject, connection: dict[str, Any]
) -> None:
    inputs = data.draw(st.one_of(valid_inputs(key), invalid_inputs(key)), label="inputs")
    # engine mode: no local retries, so a generated maxRetries/retryDelayMS never makes the subprocess sleep
    invoke(json.dumps({"action": key, "inputs": inputs, "connection": connection, "engine": True}))


@pytest.mark.slow
@FEWER
@given(
    stdin=st.one_of(
        st.text(max_size=40),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {"action": st.sampled_from(ACTIONS) | st.text(max_size=10)},
            optional={"inputs": json_values, "connection": json_values, "engine": json_values},
        ).map(json.dumps),
    )
)
def test_invoke_answers_a_malformed_request_with_a_typed_json_response(stdin: str) -> None:
    code, response, _ = invoke(stdin)
    assert code != 0 or response["ok"] is True
