"""End to end: the long-lived workers for engines in other languages, `invoke --lines` and `serve`, as separate
processes against the sandbox over loopback (its own in-flight count shows the concurrency)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    """The environment now (the test's isolated home and caches), plus this checkout on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture(autouse=True)
def no_faults(sandbox: str) -> Iterator[None]:
    httpx.delete(f"{sandbox}/__sandbox/faults").raise_for_status()
    httpx.delete(f"{sandbox}/__sandbox/stats").raise_for_status()
    yield
    httpx.delete(f"{sandbox}/__sandbox/faults").raise_for_status()


@pytest.fixture
def connections(sandbox: str, tmp_path: Path) -> Path:
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump({"sandbox": with_refresh_token(sandbox, tmp_path)}))
    return path


def stats(sandbox: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{sandbox}/__sandbox/stats").json()
    return result


def lead(sandbox: str, name: str) -> str:
    """A lead created straight in the sandbox, by id."""
    token = httpx.post(f"{sandbox}/__sandbox/tokens", json={}).json()["access_token"]
    answer = httpx.post(
        f"{sandbox}/crm/v8/Leads",
        json={"data": [{"Last_Name": name}]},
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
    ).json()
    record_id: str = answer["data"][0]["details"]["id"]
    return record_id


def get(record_id: str, ident: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "action": "crmGetRecord",
        "inputs": {"recordType": "Leads", "recordId": record_id},
        "connection": "sandbox",
    }


class Lines:
    """A reader of a pipe's lines with a timeout, so a test never hangs on a worker that does not answer."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def next(self, timeout: float = 30) -> Any:
        line = self._queue.get(timeout=timeout)
        return json.loads(line) if line else None


# --- invoke --lines --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_invoke_lines_answers_as_calls_complete_concurrently(sandbox: str, connections: Path) -> None:
    record_id = lead(sandbox, "Lines")
    httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 300}).raise_for_status()
    grants_before = stats(sandbox)["token_grants_total"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector.cli",
            "invoke",
            "--lines",
            "--concurrency",
            "8",
            "--connections",
            str(connections),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert process.stdin is not None and process.stdout is not None
    out = Lines(process.stdout)
    try:
        # one request, answered while the input stays open: a long-lived worker, not a batch
        process.stdin.write(json.dumps(get(record_id, "first")) + "\n")
        process.stdin.flush()
        first = out.next()
        assert first["id"] == "first" and first["ok"] is True and first["data"]["data"][0]["id"] == record_id

        requests = [json.dumps(get(record_id, n)) for n in range(8)]
        broken = [
            "{not json",
            json.dumps({"id": "bad", "action": "crmGetRecord", "inputs": {}, "connection": "sandbox"}),
            "",
        ]
        process.stdin.write("\n".join(requests[:4] + broken + requests[4:]) + "\n")
        process.stdin.close()  # EOF: the worker drains and exits
        responses = [out.next() for _ in range(10)]
        assert out.next() is None
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()

    from jsonschema import Draft202012Validator

    from connector.manifest import data_root

    published = json.loads((data_root() / "schemas" / "protocol" / "response.json").read_text())
    assert all(Draft202012Validator(published).is_valid(r) for r in [first, *responses])  # the protocol's answers
    by_id = {r.get("id"): r for r in responses}
    assert sorted(k for k in by_id if isinstance(k, int)) == list(range(8))
    assert all(by_id[n]["ok"] and by_id[n]["data"]["data"][0]["id"] == record_id for n in range(8))
    assert by_id["bad"]["ok"] is False and by_id["bad"]["error"]["type"] == "invalid_input"
    unreadable = by_id[None]
    assert unreadable["error"]["type"] == "invalid_input" and "line 6" in unreadable["error"]["message"]
    seen = stats(sandbox)
    assert seen["peak_in_flight"] >= 4  # several calls at once: 8 slow calls overlapped
    assert seen["token_grants_total"] - grants_before == 1  # one connector: one token for every request


@pytest.mark.slow
def test_invoke_lines_with_nothing_to_do_exits_0(connections: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "invoke", "--lines"],
        input="\n\n",
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "")


# --- serve -----------------------------------------------------------------------------------------------------


@pytest.fixture
def server(connections: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "--connections", str(connections), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        started = Lines(process.stdout).next(timeout=60)
        base = started["listening"]
        assert base.startswith("http://127.0.0.1:")
        for _ in range(100):  # the socket is bound before the line is printed; wait for the app
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        logged = process.stderr.read()
    assert code == 0, logged
    assert "refresh_token" not in logged and "client_secret" not in logged


@pytest.mark.slow
def test_serve_answers_the_protocol_with_matching_http_statuses(sandbox: str, server: str) -> None:
    from jsonschema import Draft202012Validator

    record_id = lead(sandbox, "Served")
    with httpx.Client(base_url=server, timeout=30) as http:
        # the protocol's schemas, as the server publishes them: every body sent and every answer below fits them
        schemas = {name: http.get(url).json() for name, url in http.get("/schemas").json().items()}
        body_schema, response_schema = Draft202012Validator(schemas["body"]), Draft202012Validator(schemas["response"])
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["ok"] is True
        listed = http.get("/actions").json()
        assert {"key": "crmGetRecord", "safety": "read"}.items() <= next(
            a for a in listed if a["key"] == "crmGetRecord"
        ).items()
        described = http.get("/actions/crmGetRecord").json()
        assert "recordId" in described["input_schema"]["properties"]
        assert http.get("/actions/crmGetRecrod").status_code == 404

        body = {"inputs": {"recordType": "Leads", "recordId": record_id}, "connection": "sandbox", "id": 7}
        assert body_schema.is_valid(body)
        ok = http.post("/actions/crmGetRecord", json=body)
        assert ok.status_code == 200 and response_schema.is_valid(ok.json())
        assert ok.json()["id"] == 7 and ok.json()["ok"] is True and ok.json()["data"]["data"][0]["id"] == record_id

        def post(key: str, payload: Any) -> tuple[int, dict[str, Any], httpx.Headers]:
            answer = (
                http.post(f"/actions/{key}", json=payload)
                if not isinstance(payload, bytes)
                else http.post(f"/actions/{key}", content=payload)
            )
            assert list(response_schema.iter_errors(answer.json())) == []  # errors too are protocol answers
            return answer.status_code, answer.json(), answer.headers

        missing = post("crmGetRecord", {**body, "inputs": {"recordType": "Leads", "recordId": "404"}})
        assert missing[0] == 404 and missing[1]["error"]["type"] == "not_found"
        invalid = post("crmGetRecord", {**body, "inputs": {"recordType": "Leads"}})
        assert invalid[0] == 400 and invalid[1]["error"]["violations"][0]["input"] == "recordId"
        unknown = post("crmGetRecrod", body)
        assert unknown[0] == 404 and "did you mean crmGetRecord" in unknown[1]["error"]["message"]
        no_such_connection = post("crmGetRecord", {**body, "connection": "nobody"})
        assert no_such_connection[0] == 403 and no_such_connection[1]["error"]["type"] == "connection_error"
        not_json = post("crmGetRecord", b"{nope")
        assert not_json[0] == 400 and not_json[1]["error"]["type"] == "invalid_input"
        named_twice = post("crmGetRecord", {**body, "action": "crmGetRecords"})
        assert named_twice[0] == 400 and named_twice[1]["error"]["violations"][0]["input"] == "action"

        httpx.post(f"{sandbox}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "429", "retry_after": 7})
        limited = post("crmGetRecord", {**body, "engine": True})
        assert limited[0] == 503 and limited[2]["retry-after"] == "7"
        assert limited[1]["error"]["type"] == "rate_limited" and limited[1]["error"]["retry_after"] == 7

        httpx.post(f"{sandbox}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "5xx", "status_5xx": 502})
        failing = post("crmGetRecord", {**body, "engine": True})
        assert failing[0] == 503 and "retry-after" not in failing[2]  # retryable, Zoho said nothing about when
        assert failing[1]["error"]["type"] == "transient"


@pytest.mark.slow
def test_serve_runs_requests_concurrently_on_one_connector(sandbox: str, server: str) -> None:
    record_id = lead(sandbox, "Concurrent")
    body = {"inputs": {"recordType": "Leads", "recordId": record_id}, "connection": "sandbox"}
    assert httpx.post(f"{server}/actions/crmGetRecord", json=body, timeout=30).status_code == 200  # gets a token
    httpx.post(f"{sandbox}/__sandbox/faults", json={"slow_ms": 300}).raise_for_status()
    grants_before = stats(sandbox)["token_grants_total"]

    results: list[int] = []

    def call() -> None:
        results.append(httpx.post(f"{server}/actions/crmGetRecord", json=body, timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    seen = stats(sandbox)
    assert seen["peak_in_flight"] >= 4
    assert seen["token_grants_total"] == grants_before  # the token the first call got serves them all
