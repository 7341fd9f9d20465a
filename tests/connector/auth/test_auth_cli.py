"""`zoho-connector auth`: exchange, status, refresh, tokens list/delete, revoke — secrets always masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector.cli import main
from tests.connector.auth.test_oauth_flows import CLIENT_ID, CLIENT_SECRET, NEW_ACCESS, REFRESH, TOKEN_URL, token_answer


@pytest.fixture
def connection_file(tmp_path: Path) -> str:
    path = tmp_path / "connection.json"
    path.write_text(
        json.dumps(
            {"region": "eu", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "user_name": "ops@example.com"}
        )
    )
    return f"@{path}"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["auth", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, out + err


def test_exchange_status_refresh_list_delete(
    capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer(refresh_token=REFRESH))
    code, out, text = cli(capsys, "exchange", "--connection", connection_file, "--code", "1000.selfclientcode")
    assert code == 0 and out["token"]["user_name"] == "ops@example.com"

    code, out, status_text = cli(capsys, "status", "--connection", connection_file)
    assert code == 0 and out["region"] == "eu" and out["token"]["expires_in_seconds"] > 3500

    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.renewed"))
    code, out, refresh_text = cli(capsys, "refresh", "--connection", connection_file)
    assert code == 0

    code, out, list_text = cli(capsys, "tokens", "list")
    assert code == 0 and len(out) == 1
    for secret in (CLIENT_SECRET, REFRESH, NEW_ACCESS, "1000.renewed", "1000.selfclientcode"):
        assert secret not in text + status_text + refresh_text + list_text

    code, _, _ = cli(capsys, "tokens", "delete", "--all")
    code, out, _ = cli(capsys, "status", "--connection", connection_file)
    assert code == 3 and out["token"] is None


def test_revoke(capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer(refresh_token=REFRESH))
    httpx_mock.add_response(
        method="POST", url="https://accounts.zoho.eu/oauth/v2/token/revoke", json={"status": "success"}
    )
    cli(capsys, "exchange", "--connection", connection_file, "--code", "c")
    code, out, _ = cli(capsys, "revoke", "--connection", connection_file)
    assert (code, out) == (0, {"revoked": True})


def test_expired_grant_code_is_worded_for_humans(
    capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json={"error": "invalid_code"})
    code, _, text = cli(capsys, "exchange", "--connection", connection_file, "--code", "old")
    assert code == 3 and "expired" in text and "grant_code_invalid" in text
