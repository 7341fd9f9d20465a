"""Output piped into a reader that stops early (`| head`) ends quietly: no traceback, the usual exit code."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.cli import EXIT_CODES
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token

ROOT = Path(__file__).resolve().parents[2]
QUIET = (EXIT_CODES["ok"], EXIT_CODES["broken_pipe"])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        httpx.post(
            f"{base}/__sandbox/modules",
            json={"api_name": "Pipe_Items", "fields": [{"api_name": "Name", "data_type": "text"}]},
        ).raise_for_status()
        # ~150 kB of output: more than a pipe holds, so the writer meets the closed pipe mid-stream
        httpx.post(f"{base}/__sandbox/seed", json={"module": "Pipe_Items", "count": 2500}).raise_for_status()
        yield base


def _command(sandbox: str, tmp_path: Path) -> list[str]:
    connection = with_refresh_token(sandbox, tmp_path)
    (tmp_path / "connection.json").write_text(json.dumps(connection))
    inputs = {"recordType": "Pipe_Items", "fields": ["Name"], "fetchAll": True}
    return [
        sys.executable,
        "-m",
        "connector.cli",
        "run",
        "crmGetRecords",
        "--inputs",
        json.dumps(inputs),
        "--connection",
        f"@{tmp_path / 'connection.json'}",
    ]


@pytest.mark.slow
def test_run_into_head_c_100_ends_quietly(sandbox: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        _command(sandbox, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None and process.stderr is not None
    head = process.stdout.read(100)  # what `head -c 100` does: read 100 bytes, then go away
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) in QUIET, err
    assert head.startswith(b'{"data": {"data": [')
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.slow
def test_run_through_a_shell_pipe(sandbox: str, tmp_path: Path) -> None:
    command = " ".join(shlex.quote(part) for part in _command(sandbox, tmp_path))
    result = subprocess.run(
        ["bash", "-c", f'{command} | head -c 100; echo "exit ${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=120,
    )
    assert len(result.stdout) == 100
    assert result.stderr.decode().strip() in {f"exit {code}" for code in QUIET}
