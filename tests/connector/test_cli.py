"""The command line: results on stdout, errors as JSON on stderr, one exit code per kind of failure."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector.cli import EXIT_CODES, main
from connector.manifest import bundled_manifest
from tests.actions.test_pagination import crm_pages
from tests.conftest import CRM


@pytest.fixture
def connection_file(tmp_path: Path, connection: dict[str, Any]) -> str:
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(connection))
    return f"@{path}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, json.loads(err) if err.strip() else None


def test_actions_lists_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actions"]) == 0
    out = capsys.readouterr().out
    for key in bundled_manifest().actions:
        assert re.search(rf"^{key}\s", out, flags=re.M)


def test_describe_shows_types_defaults_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "crmGetRecords"]) == 0
    out = capsys.readouterr().out
    assert "per_page  [integer, optional]" in out and "default: 200" in out and 'example: ["Last_Name", "Email"]' in out


def test_docs_is_a_markdown_reference_of_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    for action in bundled_manifest().actions.values():
        assert f"### {action.label}" in out and f"key: `{action.key}`" in out


def test_run_prints_the_result(capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json={"data": [{"id": "1"}]})
    code, out, err = run(
        capsys,
        "run",
        "crmGetRecord",
        "--inputs",
        '{"recordType":"Leads","recordId":"1"}',
        "--connection",
        connection_file,
    )
    assert (code, out, err) == (0, {"data": {"data": [{"id": "1"}]}}, None)


def test_run_reads_inputs_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json={"data": []})
    (tmp_path / "inputs.json").write_text('{"recordType":"Leads","recordId":"1"}')
    code, _, _ = run(
        capsys, "run", "crmGetRecord", "--inputs", f"@{tmp_path / 'inputs.json'}", "--connection", connection_file
    )
    assert code == 0


@pytest.mark.parametrize(
    ("answer", "exit_code", "error_type"),
    [
        (
            httpx.Response(
                400,
                json={
                    "code": "INVALID_MODULE",
                    "message": "the module name given seems to be invalid",
                    "details": {},
                    "status": "error",
                },
            ),
            EXIT_CODES["zoho_error"],
            "zoho_error",
        ),
        (
            httpx.Response(429, headers={"Retry-After": "900"}, json={"code": "TOO_MANY_REQUESTS"}),
            EXIT_CODES["transient_or_rate_limited"],
            "rate_limited",
        ),
        (httpx.Response(503, text="down"), EXIT_CODES["transient_or_rate_limited"], "transient"),
        (
            httpx.Response(401, json={"code": "INVALID_TOKEN", "message": "invalid oauth token"}),
            EXIT_CODES["connection_or_auth"],
            "authentication_error",
        ),
    ],
    ids=["zoho-error", "rate-limited", "transient", "auth"],
)
def test_run_failures_have_distinct_exit_codes(
    answer: httpx.Response,
    exit_code: int,
    error_type: str,
    capsys: pytest.CaptureFixture[str],
    connection_file: str,
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        status_code=answer.status_code, headers=dict(answer.headers), content=answer.content, is_reusable=True
    )
    code, out, err = run(
        capsys,
        "run",
        "crmGetRecord",
        "--engine",
        "--inputs",
        '{"recordType":"Leads","recordId":"1"}',
        "--connection",
        connection_file,
    )
    assert code == exit_code and out is None
    assert err["error"]["type"] == error_type


def test_run_bad_inputs_exit_2_and_send_nothing(
    capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    code, out, err = run(
        capsys, "run", "crmGetRecord", "--inputs", '{"recordType":"Leads"}', "--connection", connection_file
    )
    assert code == EXIT_CODES["invalid_input"] and out is None
    assert err["error"]["violations"] == [{"input": "recordId", "pointer": "/recordId", "message": "is required"}]
    assert httpx_mock.get_requests() == []


def test_run_without_a_connection_is_a_connection_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZOHO_CONNECTION", raising=False)
    code, _, err = run(capsys, "run", "crmGetRecord", "--inputs", "{}")
    assert code == EXIT_CODES["connection_or_auth"] and "--connection" in err["error"]["message"]


def test_run_unknown_region_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "run",
        "crmGetRecord",
        "--inputs",
        '{"recordType":"Leads","recordId":"1"}',
        "--connection",
        '{"region":"mars","access_token":"x"}',
    )
    assert code == EXIT_CODES["connection_or_auth"]
    assert "mars" in err["error"]["message"] and "ca (Canada)" in err["error"]["message"]


def test_fetch_all_streams_the_same_answer_as_run(
    capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(crm_pages(2300), url=re.compile(rf"{CRM}/Leads.*"), is_reusable=True)
    code, out, _ = run(
        capsys,
        "run",
        "crmGetRecords",
        "--inputs",
        '{"recordType":"Leads","fields":["id"],"fetchAll":true}',
        "--connection",
        connection_file,
    )
    assert code == 0
    assert [r["id"] for r in out["data"]["data"]] == [str(i) for i in range(2300)]
    assert out["data"]["info"]["count"] == 2300 and out["data"]["info"]["more_records"] is False


def test_invoke_answers_one_json_request(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json={"data": [{"id": "1"}]})
    request = {"action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "1"}, "connection": connection}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    code, out, _ = run(capsys, "invoke")
    assert (code, out) == (0, {"ok": True, "data": {"data": [{"id": "1"}]}})


def test_invoke_reports_errors_in_its_response(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "7"}, json={"code": "TOO_MANY_REQUESTS"})
    request = {
        "action": "crmGetRecord",
        "inputs": {"recordType": "Leads", "recordId": "1"},
        "connection": connection,
        "engine": True,
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    code, out, _ = run(capsys, "invoke")
    assert code == EXIT_CODES["transient_or_rate_limited"]
    assert out["ok"] is False and out["error"]["retryable"] is True and out["error"]["retry_after"] == 7


def test_invoke_rejects_a_malformed_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[1, 2]"))
    code, out, _ = run(capsys, "invoke")
    assert code == EXIT_CODES["invalid_input"] and out["ok"] is False


def test_run_with_inputs_that_are_not_an_object(capsys: pytest.CaptureFixture[str], connection_file: str) -> None:
    code, _, err = run(capsys, "run", "crmGetRecords", "--inputs", "[1, 2]", "--connection", connection_file)
    assert code == EXIT_CODES["invalid_input"] and "must be a JSON object" in err["error"]["message"]
