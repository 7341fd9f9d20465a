"""`zoho-connector auth login` and `zoho-connector sandbox`, for real: consent, redirect, exchange, stored token."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from connector.auth import oauth
from connector.cli import main
from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, serve_in_thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_login_stores_a_token_that_runs_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connector.auth.cli.new_state", lambda: "fixed-state")
    port = free_port()
    with serve_in_thread(SandboxState()) as base:
        connection = {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "accounts_url": base,
            "api_domain": base,
            "token_store": f"sqlite:///{tmp_path / 'tokens.db'}",
        }
        (tmp_path / "connection.json").write_text(json.dumps(connection))
        consent = oauth.authorize_url(
            base,
            "/oauth/v2/auth",
            client_id=DEFAULT_CLIENT_ID,
            redirect_uri=f"http://127.0.0.1:{port}/callback",
            scopes="ZohoCRM.modules.ALL",
            state="fixed-state",
        )

        def browser() -> None:  # the user approving on the consent page
            for _ in range(200):
                try:
                    httpx.get(consent, follow_redirects=True, timeout=5)
                    return
                except httpx.ConnectError:
                    time.sleep(0.02)

        thread = threading.Thread(target=browser)
        thread.start()
        code = main(
            [
                "auth",
                "login",
                "--connection",
                f"@{tmp_path / 'connection.json'}",
                "--port",
                str(port),
                "--timeout",
                "20",
            ]
        )
        thread.join()
        out = capsys.readouterr().out
        assert code == 0 and json.loads(out)["connected"] is True

        code = main(
            [
                "run",
                "crmGetRecords",
                "--inputs",
                '{"recordType":"Leads","fields":["Email"]}',
                "--connection",
                f"@{tmp_path / 'connection.json'}",
            ]
        )
        assert code == 0 and "data" in json.loads(capsys.readouterr().out)


def test_sandbox_command_serves_on_loopback() -> None:
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "zoho-connector"), "sandbox", "--port", "0", "--seed", "Leads=3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        stats = httpx.get(f"{base}/__sandbox/stats", timeout=10).json()
        assert stats["records"]["Leads"] == 3
    finally:
        process.terminate()
        process.wait(timeout=30)
