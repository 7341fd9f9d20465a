"""`zoho-connector poll`: one JSON record a line, a missing state file is the first poll, and the state file is
rewritten atomically (mode 0600) only after every record was written."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector.cli import EXIT_CODES, main
from connector.poll_cli import write_state

STATE = {"version": 1, "trigger": "crmUpdatedRecords", "cursor": "2026-11-20T09:15:00+00:00", "seen": []}
PAGE = {
    "data": [
        {"id": "1", "Modified_Time": "2026-11-20T09:15:01+00:00", "Email": "a@example.com"},
        {"id": "2", "Modified_Time": "2026-11-20T09:15:02+00:00", "Email": "b@example.com"},
    ],
    "info": {"per_page": 200, "count": 2, "page": 1, "more_records": False},
}


@pytest.fixture
def argv(tmp_path: Path, connection: dict[str, Any]) -> list[str]:
    (tmp_path / "connection.json").write_text(json.dumps(connection))
    inputs = json.dumps({"recordType": "Leads", "fields": ["Email"]})
    return ["poll", "crmUpdatedRecords", "--inputs", inputs, "--connection", f"@{tmp_path / 'connection.json'}"]


def test_records_one_per_line_then_the_new_state(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=PAGE)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(STATE))
    assert main([*argv, "--state", str(state)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == PAGE["data"]
    assert json.loads(state.read_text()) == {**STATE, "cursor": "2026-11-20T09:15:02+00:00", "seen": ["2"]}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state.json")]  # no temporary file left


def test_a_missing_state_file_is_the_first_poll(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=304)
    state = tmp_path / "state.json"
    assert main([*argv, "--state", str(state)]) == 0
    assert capsys.readouterr().out == ""
    written = json.loads(state.read_text())
    assert written["trigger"] == "crmUpdatedRecords" and written["seen"] == []
    request = httpx_mock.get_request()
    assert request is not None and "If-Modified-Since" in request.headers


def test_a_failed_poll_leaves_the_state_file_as_it_was(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], httpx_mock: HTTPXMock
) -> None:
    refusal = {"code": "INVALID_MODULE", "details": {}, "message": "the module name given seems to be invalid"}
    httpx_mock.add_response(status_code=400, json={**refusal, "status": "error"})
    state = tmp_path / "state.json"
    state.write_text(json.dumps(STATE))
    before = state.stat().st_mtime_ns
    assert main([*argv, "--state", str(state)]) == EXIT_CODES["zoho_error"]
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err)["error"]["code"] == "INVALID_MODULE"
    assert json.loads(state.read_text()) == STATE and state.stat().st_mtime_ns == before


class ClosedPipe:
    def write(self, text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        raise BrokenPipeError


def test_a_reader_gone_away_leaves_the_state_file_as_it_was(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    """The records were not delivered: the next poll hands them out again."""
    httpx_mock.add_response(json=PAGE)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(STATE))
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main([*argv, "--state", str(state)]) == EXIT_CODES["broken_pipe"]
    assert json.loads(state.read_text()) == STATE


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        ("not json", "state.json", "not the JSON a previous poll wrote"),
        (json.dumps({**STATE, "trigger": "crmNewRecords"}), "state.json", "belongs to trigger"),
        (None, "missing/state.json", "its folder does not exist"),
    ],
)
def test_a_bad_state_file_is_an_input_error_before_any_request(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, where: str, problem: str
) -> None:
    state = tmp_path / where
    if content is not None:
        state.write_text(content)
    assert main([*argv, "--state", str(state)]) == EXIT_CODES["invalid_input"]
    assert problem in capsys.readouterr().err


def test_write_state_replaces_the_file_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(STATE))
    state.chmod(0o644)

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError):
        write_state(state, {**STATE, "seen": ["1"]})
    assert json.loads(state.read_text()) == STATE  # untouched, and no temporary file left behind
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    monkeypatch.undo()
    write_state(state, {**STATE, "seen": ["1"]})
    assert json.loads(state.read_text())["seen"] == ["1"] and stat.S_IMODE(state.stat().st_mode) == 0o600
