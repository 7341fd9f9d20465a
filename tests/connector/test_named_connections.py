"""Connections by name: a payload names a connection, the worker's connections file holds its secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector.cli import main
from connector.errors import ConnectionConfigError
from connector.named_connections import ENV, NamedConnections, load_connections
from tests.conftest import ACCESS_TOKEN, CRM

LEAD = {"data": [{"id": "1", "Last_Name": "Doe"}]}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_yaml_or_json_file_maps_names_to_connections(tmp_path: Path, connection: dict[str, Any]) -> None:
    as_json = write(tmp_path / "c.json", json.dumps({"eu": connection}))
    as_yaml = write(tmp_path / "c.yaml", f"eu:\n  region: eu\n  access_token: {ACCESS_TOKEN}\n")
    assert load_connections(as_json) == {"eu": connection}
    assert load_connections(as_yaml)["eu"]["access_token"] == ACCESS_TOKEN


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("c.json", '{"eu": {"refresh_token": "1000.secret-refresh"', "not valid JSON"),
        ("c.yaml", "eu: {refresh_token: 1000.secret-refresh\n  - [", "not valid YAML"),
        ("c.yaml", "- refresh_token: 1000.secret-refresh", "mapping of connection name"),
        ("c.json", '{"eu": "1000.secret-refresh"}', "'eu' must be an object"),
    ],
)
def test_a_broken_file_is_named_and_its_secrets_are_not_quoted(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    with pytest.raises(ConnectionConfigError, match=problem) as caught:
        load_connections(write(tmp_path / name, text))
    assert "secret-refresh" not in str(caught.value)
    assert name in str(caught.value)


def test_an_unknown_name_lists_the_names_and_nothing_else(connection: dict[str, Any]) -> None:
    named = NamedConnections({"eu": connection, "us": connection})
    with pytest.raises(
        ConnectionConfigError, match="unknown connection name 'in'; the connections file has: eu, us"
    ) as caught:
        named.get("in")
    assert ACCESS_TOKEN not in str(caught.value)


def test_without_a_file_a_name_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ConnectionConfigError, match=f"--connections FILE or {ENV}=FILE"):
        NamedConnections().get("eu")


def test_run_takes_a_connection_by_name(connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json=LEAD)
    with Connector.load(connections={"eu": connection}) as connector:
        result = connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection="eu")
    assert result == {"data": LEAD}
    assert httpx_mock.get_request().headers["Authorization"] == f"Zoho-oauthtoken {ACCESS_TOKEN}"  # type: ignore[union-attr]


def test_the_environment_names_the_file(
    tmp_path: Path, connection: dict[str, Any], httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(write(tmp_path / "c.json", json.dumps({"eu": connection}))))
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json=LEAD)
    with Connector.load() as connector:
        assert connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection="eu")["data"] == LEAD


def test_the_cli_takes_connections_and_a_name(
    tmp_path: Path,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("ZOHO_CONNECTION", raising=False)
    path = write(tmp_path / "c.yaml", json.dumps({"eu": connection}))  # JSON is YAML too
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json=LEAD)
    inputs = json.dumps({"recordType": "Leads", "recordId": "1"})
    assert main(["run", "crmGetRecord", "--inputs", inputs, "--connections", str(path), "--connection", "eu"]) == 0
    assert json.loads(capsys.readouterr().out) == {"data": LEAD}


def test_the_cli_reports_an_unknown_name_as_a_connection_error(
    tmp_path: Path, connection: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    path = write(tmp_path / "c.json", json.dumps({"eu": connection}))
    inputs = json.dumps({"recordType": "Leads", "recordId": "1"})
    assert main(["--connections", str(path), "run", "crmGetRecord", "--inputs", inputs, "--connection", "us"]) == 3
    error = json.loads(capsys.readouterr().err)
    assert error["error"]["type"] == "connection_error"
    assert "'us'" in error["error"]["message"]
    assert ACCESS_TOKEN not in json.dumps(error)
