"""The long-lived workers' plumbing in-process: `invoke --lines` answers in completion order with ids and survives
bad lines, a bug becomes an internal_error answer without secrets, and `serve` maps each answer to an HTTP status."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import httpx
import pytest

from connector._dispatch import Worker
from connector.errors import (
    AuthenticationError,
    ConnectionConfigError,
    ConnectorError,
    InputValidationError,
    ManifestError,
    NotFoundError,
    PaginationError,
    RateLimitedError,
    TransientError,
    Violation,
    ZohoAPIError,
)
from connector.lines import serve_lines
from connector.protocol import Response
from connector.serve import app, status_of

SECRET = "1000.0a1b2c3d4e5f60718293a4b5c6d7e8f9.0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class ScriptedWorker(Worker):
    """A Worker whose connector answers from a script: what the request's inputs say."""

    def __init__(self) -> None:
        super().__init__()
        self.fast_done = threading.Event()
        self.connector_in_use = _Scripted(self)

    def connector(self, engine: bool) -> Any:
        return self.connector_in_use


class _Scripted:
    def __init__(self, worker: ScriptedWorker) -> None:
        self.worker = worker
        self.manifest = None

    def run(self, action: str, inputs: dict[str, Any], *, connection: Any) -> dict[str, Any]:
        what = inputs.get("do")
        if what == "wait_for_fast":  # finishes only once a later request has: proves they ran at once
            if not self.worker.fast_done.wait(timeout=10):
                raise TransientError("the fast request never ran alongside")
            return {"data": "slow"}
        if what == "fast":
            self.worker.fast_done.set()
            return {"data": "fast"}
        if what == "bug":
            raise ValueError(f"broken while holding {SECRET}")
        if isinstance(what, dict):
            raise ConnectorError(**what)
        return {"data": inputs}

    async def arun(self, action: str, inputs: dict[str, Any], *, connection: Any) -> dict[str, Any]:
        return self.run(action, inputs, connection=connection)


def request(ident: Any, do: Any) -> str:
    return json.dumps({"id": ident, "action": "anything", "inputs": {"do": do}, "connection": "c"})


def answers(text: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in text.splitlines()]
    for response in found:
        Response.model_validate(response)  # every line is a protocol response
    return found


def test_lines_are_answered_as_they_complete_with_their_ids() -> None:
    lines = [request("slow", "wait_for_fast"), request("fast", "fast"), request(3, "echo")]
    out = io.StringIO()
    assert serve_lines([f"{line}\n".encode() for line in lines], out, ScriptedWorker(), concurrency=4) is True
    found = answers(out.getvalue())
    assert [r["id"] for r in found].index("fast") < [r["id"] for r in found].index("slow")
    by_id = {r["id"]: r for r in found}
    assert by_id["slow"] == {"id": "slow", "ok": True, "data": "slow"}
    assert by_id[3] == {"id": 3, "ok": True, "data": {"do": "echo"}}


def test_a_bad_line_gets_an_error_and_the_stream_goes_on() -> None:
    lines = [b"{oops\n", b"\xff\xfe\n", b"\n", b"[1, 2]\n", request("ok", "echo").encode() + b"\n"]
    out = io.StringIO()
    assert serve_lines(lines, out, ScriptedWorker(), concurrency=1) is True
    found = answers(out.getvalue())
    assert len(found) == 4  # the blank line is skipped
    errors = [r["error"] for r in found if not r["ok"]]
    assert all(e["type"] == "invalid_input" for e in errors)
    messages = sorted(e["message"] for e in errors)
    assert "on line 1" in messages[0] and "not valid JSON" in messages[0]
    assert "on line 2" in messages[1] and "not UTF-8 text" in messages[1]
    assert messages[2].startswith("line 4: ") and "must be a JSON object" in messages[2]
    assert next(r for r in found if r["ok"])["id"] == "ok"


def test_a_bug_is_an_internal_error_without_secrets_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    serve_lines([request(1, "bug").encode(), request(2, "echo").encode()], out, ScriptedWorker(), concurrency=1)
    first, second = answers(out.getvalue())
    assert first["id"] == 1 and first["error"]["type"] == "internal_error"
    assert first["error"]["message"].startswith("unexpected ValueError: broken while holding [redacted]")
    assert first["error"]["may_have_acted"] is True and first["error"]["retryable"] is False
    assert second == {"id": 2, "ok": True, "data": {"do": "echo"}}
    assert SECRET not in out.getvalue() and SECRET not in caplog.text
    assert "unexpected ValueError" in caplog.text  # the worker's log says what happened


def test_a_reader_that_goes_away_stops_the_worker() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    lines = [request(n, "echo").encode() for n in range(50)]
    assert serve_lines(lines, Gone(), ScriptedWorker(), concurrency=2) is False


def test_an_invalid_id_is_refused_and_a_valid_one_comes_back_on_errors() -> None:
    out = io.StringIO()
    bad_id = json.dumps({"id": True, "action": "a", "connection": "c"}).encode()
    bad_inputs = json.dumps({"id": "x", "action": "a", "inputs": [], "connection": "c"}).encode()
    serve_lines([bad_id, bad_inputs], out, ScriptedWorker(), concurrency=1)
    first, second = answers(out.getvalue())
    assert "id" not in first and first["error"]["violations"][0] == {
        "input": "id",
        "pointer": "/id",
        "message": "must be a string or an integer",
    }
    assert second["id"] == "x" and second["error"]["violations"][0]["input"] == "inputs"


# --- serve: HTTP statuses ------------------------------------------------------------------------------------


def invalid(action: bool = False) -> ConnectorError:
    return InputValidationError("a", [Violation("(action)" if action else "x", "", "bad")])


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [
        (invalid(), 400, {}),
        (invalid(action=True), 404, {}),
        (NotFoundError(status=404, code="INVALID_URL_PATTERN", message="no"), 404, {}),
        (ConnectionConfigError("no such connection"), 403, {}),
        (AuthenticationError("refused", reason="invalid_client"), 401, {}),
        (ZohoAPIError(status=400, code="INVALID_DATA", message="bad"), 502, {}),
        (PaginationError("endless", code="REPEATED_PAGE"), 502, {}),
        (TransientError("5xx after a write", status=500, retryable=False, may_have_acted=True), 502, {}),
        (TransientError("timeout", retry_after=None), 503, {}),
        (RateLimitedError("slow down", retry_after=2.2), 503, {"Retry-After": "3"}),
        (ManifestError("actions/x.yaml", "broken"), 500, {}),
        (ValueError("bug"), 500, {}),
    ],
)
def test_each_answer_has_its_http_status(error: Exception, status: int, headers: dict[str, str]) -> None:
    from connector._dispatch import error_response

    assert status_of(error_response(error, None)) == (status, headers)
    assert status_of({"ok": True, "data": 1}) == (200, {})


async def test_serve_passes_the_action_from_the_url_and_the_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = ScriptedWorker()
    transport = httpx.ASGITransport(app=app(worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        answer = await client.post("/actions/anything", json={"inputs": {"do": "echo"}, "connection": "c", "id": "r1"})
        assert answer.status_code == 200
        assert answer.json() == {"id": "r1", "ok": True, "data": {"do": "echo"}}
        limited = await client.post(
            "/actions/anything",
            json={"inputs": {"do": {"message": "later", "retryable": True, "retry_after": 4}}, "connection": "c"},
        )
        assert limited.status_code == 503 and limited.headers["retry-after"] == "4"
        from connector import serve

        monkeypatch.setattr(serve, "MAX_BODY_BYTES", 100)
        too_large = await client.post("/actions/anything", json={"inputs": {"x": "y" * 200}, "connection": "c"})
        assert too_large.status_code == 413
        not_object = await client.post("/actions/anything", json=[1])
        assert not_object.status_code == 400
        assert not_object.json()["error"]["violations"][0]["message"] == "must be a JSON object"


def test_a_single_invoke_returns_the_request_id_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from connector.cli import main

    request = {"id": "one", "action": "crmGetRecord", "inputs": {"recordType": "Leads"}, "connection": {"region": "eu"}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    assert main(["invoke"]) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["id"] == "one" and answer["error"]["violations"][0]["input"] == "recordId"


async def test_serve_publishes_the_protocol_schemas_and_the_body_it_takes() -> None:
    from jsonschema import Draft202012Validator

    from connector.manifest import data_root

    transport = httpx.ASGITransport(app=app(ScriptedWorker()))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        index = (await client.get("/schemas")).json()
        assert index == {name: f"/schemas/{name}.json" for name in ("request", "response", "error", "body")}
        served = {}
        for name, url in index.items():
            answer = await client.get(url)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/schema+json")
            served[name] = answer.json()
            Draft202012Validator.check_schema(served[name])
        for name in ("request", "response", "error"):  # the checked-in files, as generated from connector/protocol.py
            assert served[name] == json.loads((data_root() / "schemas" / "protocol" / f"{name}.json").read_text())
        body = Draft202012Validator(served["body"])
        assert body.is_valid({"inputs": {"recordId": "1"}, "connection": "eu", "engine": True, "id": 3})
        assert not body.is_valid({"action": "crmGetRecord", "inputs": {}, "connection": "eu"})  # the URL names it
        assert not body.is_valid({"inputs": {}})  # a connection is required, as in a request
        answer = await client.post("/actions/anything", json={"inputs": {"do": "echo"}, "connection": "c", "id": 1})
        assert Draft202012Validator(served["response"]).is_valid(answer.json())
        missing = await client.get("/schemas/requests.json")
        assert missing.status_code == 404 and "known: request.json" in missing.json()["error"]["message"]
