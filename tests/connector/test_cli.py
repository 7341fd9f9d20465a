"""The command line: results on stdout, errors as JSON on stderr, one exit code per kind of failure."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
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


FINANCE_AND_STORE = {
    **{
        f"{app}{verb}": f"{label} - {words}"
        for app, label in [
            ("books", "Books"),
            ("inventory", "Inventory"),
            ("invoice", "Invoice"),
            ("expense", "Expense"),
            ("billing", "Billing"),
        ]
        for verb, words in [
            ("CreateRecord", "Create Record"),
            ("GetRecord", "Get Record"),
            ("GetRecords", "Get Records"),
            ("UpdateRecord", "Update Record"),
            ("RemoveRecord", "Remove Record"),
            ("RawRequest", "Raw Request"),
        ]
    },
    "booksEmailDocument": "Books - Email Document",
    "booksMarkStatus": "Books - Mark Status",
    "booksDownloadPdf": "Books - Download PDF",
    "storeListSubscriptions": "Partner Store - List Subscriptions",
    "storeListTransactions": "Partner Store - List Transactions",
    "storeListCommissions": "Partner Store - List Commissions",
    "storeListLeads": "Partner Store - List Leads",
}


def test_actions_lists_the_finance_and_partner_store_actions_with_their_labels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["actions"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for key, label in FINANCE_AND_STORE.items():
        assert re.match(rf"^{key}\s+{re.escape(label)}\s{{2,}}\S", rows[key]), rows.get(key)
        assert bundled_manifest().action(key).label == label


def test_describe_shows_types_defaults_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "crmGetRecords"]) == 0
    out = capsys.readouterr().out
    assert "per_page  [integer, optional]" in out and "default: 200" in out and 'example: ["Last_Name", "Email"]' in out


def test_docs_is_a_markdown_reference_of_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    for action in bundled_manifest().actions.values():
        assert f"### {action.label}" in out and f"key: `{action.key}`" in out


def test_triggers_lists_every_trigger_and_describe_and_docs_show_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triggers"]) == 0
    out = capsys.readouterr().out
    for key, trigger in bundled_manifest().triggers.items():
        assert re.search(rf"^{key}\s.*\s{trigger.kind}$", out, flags=re.M)
    assert main(["describe", "crmUpdatedRecords"]) == 0
    out = capsys.readouterr().out
    assert "kind: poll (crmGetRecords, by Modified_Time, ascending)" in out and "since  [string, optional]" in out
    assert main(["describe", "crmRecordEvents"]) == 0
    assert "kind: webhook (channel crm_notifications, opened by crmEnableNotification)" in capsys.readouterr().out
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert "## Triggers" in out
    for trigger in bundled_manifest().triggers.values():
        assert f"### {trigger.label}" in out and f"key: `{trigger.key}`" in out


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
    assert code == EXIT_CODES["invalid_input"]  # a malformed connection is bad input; 3 is for failed auth
    assert "mars" in err["error"]["message"] and "ca (Canada)" in err["error"]["message"]
    assert err["error"]["violations"][0]["input"] == "region"


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


# --- the engine protocol ---------------------------------------------------------------------------------------

RESPONSE_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas/protocol/response.json").read_text())


def invoke(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str) -> tuple[int, Any]:
    """Run `invoke` and check its answer against the published response schema."""
    from jsonschema import Draft202012Validator

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code, out, err = run(capsys, "invoke")
    assert err is None
    assert list(Draft202012Validator(RESPONSE_SCHEMA).iter_errors(out)) == []
    return code, out


def test_invoke_names_every_bad_field_of_the_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    request = {"action": "crmGetRecord", "input": {}, "inputs": [1], "connection": 3, "engine": "yes"}
    code, out = invoke(capsys, monkeypatch, json.dumps(request))
    assert code == EXIT_CODES["invalid_input"] and out["error"]["type"] == "invalid_input"
    named = {v["input"]: v["message"] for v in out["error"]["violations"]}
    assert named == {
        "input": "unknown field; expected one of: action, inputs, connection, engine, id",
        "inputs": "must be a JSON object",
        "connection": "must be a JSON object or a string",
        "engine": "must be true or false",
    }
    assert httpx_mock.get_requests() == []


def test_invoke_without_an_action_says_it_is_required(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]
) -> None:
    code, out = invoke(capsys, monkeypatch, json.dumps({"connection": connection}))
    assert code == EXIT_CODES["invalid_input"]
    assert out["error"]["violations"] == [{"input": "action", "pointer": "/action", "message": "is required"}]


@pytest.mark.parametrize("stdin", ["", "not json", "[1, 2]", "null"])
def test_invoke_answers_a_request_that_is_not_an_object(
    stdin: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke(capsys, monkeypatch, stdin)
    assert code == EXIT_CODES["invalid_input"] and out["error"]["type"] == "invalid_input"
    assert out["error"]["violations"][0]["input"] == "(request)"


def test_invoke_refuses_json_nested_100k_deep(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    stdin = '{"action": "crmRunQuery", "inputs": {"query": ' + deep + '}, "connection": ' + json.dumps(connection) + "}"
    code, out = invoke(capsys, monkeypatch, stdin)
    assert code == EXIT_CODES["invalid_input"] and "nested too deeply" in out["error"]["message"]


def test_inputs_deep_enough_to_parse_but_not_to_check_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]
) -> None:
    deep = "[" * 500 + "]" * 500  # json reads it; the schema validator would run out of stack
    request = '{"action": "crmGetRecords", "inputs": {"recordType": "Leads", "fields": ' + deep + "}"
    code, out = invoke(capsys, monkeypatch, request + ', "connection": ' + json.dumps(connection) + "}")
    assert code == EXIT_CODES["invalid_input"]
    assert out["error"]["violations"] == [
        {"input": "fields", "pointer": "/fields", "message": "nested more than 100 levels deep"}
    ]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_invoke_refuses_nan_and_infinity(
    constant: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    inputs = '{"recordType": "Leads", "recordId": "1", "x": ' + constant + "}"
    code, out = invoke(
        capsys,
        monkeypatch,
        '{"action": "crmGetRecord", "inputs": ' + inputs + ', "connection": ' + json.dumps(connection) + "}",
    )
    assert code == EXIT_CODES["invalid_input"] and "not valid JSON" in out["error"]["message"]
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("flag", ["--inputs", "--connection"])
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_run_refuses_nan_and_infinity(flag: str, constant: str, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = {
        "--inputs": '{"recordType": "Leads", "recordId": "1"}',
        "--connection": '{"region": "eu", "access_token": "t"}',
    }
    arguments[flag] = arguments[flag][:-1] + f', "n": {constant}}}'
    code, _, err = run(capsys, "run", "crmGetRecord", *(item for pair in arguments.items() for item in pair))
    assert code == EXIT_CODES["invalid_input"]
    assert err["error"]["violations"][0]["input"] == flag and constant.lstrip("-") in err["error"]["message"]


@pytest.mark.parametrize(("connection", "kind"), [('["eu"]', "a list"), ("3", "a number")])
def test_run_with_a_connection_that_is_not_an_object(
    connection: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "run", "crmGetRecord", "--inputs", '{"recordType":"Leads","recordId":"1"}', "--connection", connection
    )
    assert code == EXIT_CODES["invalid_input"]
    assert err["error"]["violations"] == [
        {"input": "(connection)", "pointer": "", "message": f"the connection must be a JSON object, not {kind}"}
    ]


def test_run_refuses_a_lone_surrogate_in_inputs(
    capsys: pytest.CaptureFixture[str], connection_file: str, httpx_mock: HTTPXMock
) -> None:
    code, _, err = run(
        capsys,
        "run",
        "crmCreateRecord",
        "--inputs",
        '{"recordType": "Leads", "fieldValues": {"Last_Name": "Doe \\ud800"}}',
        "--connection",
        connection_file,
    )
    assert code == EXIT_CODES["invalid_input"]
    assert err["error"]["violations"] == [
        {
            "input": "fieldValues",
            "pointer": "/fieldValues/Last_Name",
            "message": "contains a lone surrogate (0xd800), not valid Unicode",
        }
    ]
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("connection", "missing"),
    [
        ({"client_id": "1000.ID", "refresh_token": "1000.rt"}, ["client_secret"]),
        ({"refresh_token": "1000.rt"}, ["client_id", "client_secret"]),
        ({"client_id": "1000.ID"}, ["client_secret"]),
        ({"client_id": "1000.ID", "client_secret": "", "refresh_token": "1000.rt"}, ["client_secret"]),
    ],
    ids=["refresh-token-no-secret", "refresh-token-alone", "client-id-alone", "empty-secret"],
)
def test_run_with_a_connection_missing_a_field_names_it_and_exits_2(
    connection: dict[str, Any], missing: list[str], capsys: pytest.CaptureFixture[str], httpx_mock: HTTPXMock
) -> None:
    code, _, err = run(
        capsys,
        "run",
        "crmGetRecord",
        "--inputs",
        '{"recordType":"Leads","recordId":"1"}',
        "--connection",
        json.dumps({"region": "eu", **connection}),
    )
    assert code == EXIT_CODES["invalid_input"]
    assert [v["input"] for v in err["error"]["violations"]] == missing
    assert "1000.rt" not in json.dumps(err)
    assert httpx_mock.get_requests() == []


def test_describe_an_unknown_action_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "describe", "crmGetRecrod")
    assert code == EXIT_CODES["invalid_input"]
    assert err["error"]["type"] == "invalid_input" and "crmGetRecord" in err["error"]["message"]


# --- processes -------------------------------------------------------------------------------------------------


def _python(*code: str) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, env=env, check=False)


def test_import_and_run_never_import_pydantic() -> None:
    """pydantic checks the data files when the manifest bundle is built; a run reads the cached bundle."""
    warm = _python("from connector.manifest import bundled_manifest", "bundled_manifest()")
    assert warm.returncode == 0, warm.stderr
    result = _python(
        "import sys",
        "import connector, connector.cli, connector.runner",
        "assert 'pydantic' not in sys.modules, 'imported by import'",
        "from connector.cli import main",
        "code = main(['run', 'crmGetRecord', '--inputs', '{}', '--connection', '{\"access_token\": \"t\"}'])",
        "assert code == 2, code",
        "assert 'pydantic' not in sys.modules, 'imported by run'",
    )
    assert result.returncode == 0, result.stderr


def test_the_run_path_never_imports_pydantic_yaml_or_jsonschema() -> None:
    """The whole run path on a cached bundle: a call, a Fetch All over pages, a product's error through its envelope,
    a stream, and one `invoke` request (checked against schemas/protocol/request.json), with the transport mocked."""
    warm = _python("from connector.manifest import bundled_manifest", "bundled_manifest()")
    assert warm.returncode == 0, warm.stderr
    result = _python(
        "import io, json, sys, httpx",
        "def answer(request):",
        "    if request.url.path.endswith('/Leads/404'):",
        "        return httpx.Response(400, json={'code': 'INVALID_DATA', 'message': 'bad', 'status': 'error'})",
        "    page = int(request.url.params.get('page', 1))",
        "    info = {'more_records': page < 3, 'page': page, 'per_page': 1, 'count': 1}",
        "    return httpx.Response(200, json={'data': [{'id': str(page)}], 'info': info})",
        "from connector import Connector, ZohoAPIError",
        "connection = {'region': 'eu', 'access_token': 't'}",
        "with Connector.load(transport=httpx.MockTransport(answer)) as c:",
        "    c.run('crmGetRecord', {'recordType': 'Leads', 'recordId': '1'}, connection=connection)",
        "    walk = {'recordType': 'Leads', 'fields': ['id'], 'fetchAll': True}",
        "    assert len(c.run('crmGetRecords', walk, connection=connection)['data']['data']) == 3",
        "    assert len(list(c.stream('crmGetRecords', walk, connection=connection).records())) == 3",
        "    try:",
        "        c.run('crmGetRecord', {'recordType': 'Leads', 'recordId': '404'}, connection=connection)",
        "    except ZohoAPIError as e:",
        "        assert e.code == 'INVALID_DATA'",
        "from connector import cli",
        "request = {'action': 'crmGetRecord', 'inputs': {'recordType': 'Leads', 'recordId': '1'},",
        "           'connection': {'access_token': 't', 'api_domain': 'http://127.0.0.1:9'}, 'id': 1, 'engine': True}",
        "sys.stdin, sys.stdout = io.StringIO(json.dumps(request)), io.StringIO()",
        "code = cli.main(['invoke'])",
        "answer_ = json.loads(sys.stdout.getvalue()); sys.stdout = sys.__stdout__",
        "assert answer_['id'] == 1 and answer_['ok'] is False, answer_",
        "assert answer_['error']['type'] == 'transient' and code == 5, answer_",  # sent: past the request check
        "loaded = [m for m in ('pydantic', 'yaml', 'jsonschema') if m in sys.modules]",
        "assert loaded == [], loaded",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_docs_into_a_closed_pipe_ends_quietly() -> None:
    """`zoho-connector docs | head`: the reader is gone before the first write."""
    root = str(Path(__file__).resolve().parents[2])
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "docs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, EXIT_CODES["broken_pipe"])
    assert err == ""


def test_docs_through_head(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        f"{shlex.quote(sys.executable)} -m connector.cli docs | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
        check=False,
    )
    assert result.stdout.startswith("#") and result.stderr == ""


def test_run_prints_each_retry_and_names_the_unreachable_host(capsys: pytest.CaptureFixture[str]) -> None:
    inputs = {
        "recordType": "Leads",
        "recordId": "1",
        "maxRetries": 2,
        "useExponentialBackoff": False,
        "retryDelayMS": 1,
    }
    connection = {"access_token": "t", "api_domain": "http://127.0.0.1:9", "accounts_url": "http://127.0.0.1:9"}
    code = main(["run", "crmGetRecord", "--inputs", json.dumps(inputs), "--connection", json.dumps(connection)])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["transient_or_rate_limited"]
    assert "retrying in 0.0 s (1/2): cannot connect to 127.0.0.1" in err
    assert "retrying in 0.0 s (2/2)" in err
    assert "cannot connect to 127.0.0.1 (ConnectError)" in json.loads(err.strip().splitlines()[-1])["error"]["message"]


def test_a_product_registers_its_own_subcommand(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line names no product: a product's commands come from connector.strategies.COMMANDS."""
    import types

    from connector.cli import EXTENSIONS
    from connector.strategies import COMMANDS

    assert "partner-store" in COMMANDS and "partner-store" not in EXTENSIONS
    module = types.ModuleType("widgets_cli")
    module.main = lambda argv: 7 if argv == ["sync"] else 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "widgets_cli", module)
    monkeypatch.setitem(COMMANDS, "widgets", ("sync the widgets", "widgets_cli"))
    assert main(["widgets", "sync"]) == 7
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "sync the widgets" in out and "Partner Store" in out


def test_a_command_takes_its_log_handler_with_it(capsys: pytest.CaptureFixture[str]) -> None:
    """An embedding program (or a test run) calls main() many times: while a command runs, the connector's log
    lines go once to its stderr; after it, no handler is left behind to write to a stream replaced since."""
    import logging

    from connector.cli import _logging_to_stderr

    logger = logging.getLogger("connector")
    before = list(logger.handlers)
    for _ in range(3):
        with _logging_to_stderr():
            capsys.readouterr()
            logger.info("retrying in 1.0 s (1/10): probe")
            assert capsys.readouterr().err.count("probe") == 1
    assert logger.handlers == before
