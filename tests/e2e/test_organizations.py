"""Books' default organization is looked up once per account, not once per process: it is kept with the token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from connector.cli import main
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token


def test_sixteen_cli_runs_discover_the_organization_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(SandboxState()) as sandbox:
        connection = with_refresh_token(sandbox, tmp_path)
        inputs = json.dumps({"recordType": "contacts", "per_page": 1})
        for _ in range(16):  # each `main` builds its own Connector, as a new process would
            assert main(["run", "booksGetRecords", "--inputs", inputs, "--connection", json.dumps(connection)]) == 0
        capsys.readouterr()
        stats = httpx.get(f"{sandbox}/__sandbox/stats").json()
    discoveries = [k for k in stats.get("requests", {}) if k.endswith("/books/v3/organizations")]
    assert discoveries, stats
    assert sum(stats["requests"][k] for k in discoveries) == 1
