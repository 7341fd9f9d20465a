"""2xx answers whose body is not what Zoho documents: not JSON, trickling in, or far too large."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from connector import Connector
from connector.errors import (
    AuthenticationError,
    BadResponseError,
    ConnectionConfigError,
    ConnectorError,
    InputValidationError,
    TransientError,
)
from tests.hostile.conftest import Outcome, raised, within
from tests.hostile.listings import BROKEN
from tests.hostile.server import HostileServer, Reply, Request, Wire

RECORD = "/crm/v8/Leads/5001"
GET_LEAD = {"recordType": "Leads", "recordId": "5001"}
CREATE_LEAD = {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}}


@pytest.mark.parametrize("kind", ["html", "html-as-json", "truncated-json"])
def test_a_read_answered_2xx_without_json_is_a_retryable_bad_response(
    kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, BROKEN[kind])
    outcome = within(10, lambda: connector.run("crmGetRecord", {**GET_LEAD, "maxRetries": 0}, connection=connection))
    error = raised(outcome, BadResponseError)
    assert error.to_dict()["error"]["type"] == "bad_response"
    assert error.retryable is True
    assert server.count() == 1


def test_a_read_retries_a_bad_response_and_then_gets_the_record(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    answers = iter([BROKEN["truncated-json"], Reply({"data": [{"id": "5001", "Last_Name": "Doe"}]})])
    server.on("GET", RECORD, lambda _request, _wire: next(answers))
    outcome = within(10, lambda: connector.run("crmGetRecord", {**GET_LEAD, "maxRetries": 2}, connection=connection))
    assert outcome.error is None, repr(outcome.error)
    assert outcome.result == {"data": {"data": [{"id": "5001", "Last_Name": "Doe"}]}}
    assert server.count() == 2


@pytest.mark.parametrize("kind", ["html", "html-as-json", "truncated-json"])
def test_a_create_answered_2xx_without_json_is_not_resent(
    kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    """Zoho may well have created the record: re-sending could make a duplicate, so the write is never retried."""
    server.on("POST", "/crm/v8/Leads", BROKEN[kind])
    outcome = within(10, lambda: connector.run("crmCreateRecord", CREATE_LEAD, connection=connection))
    error = raised(outcome, BadResponseError)
    assert error.retryable is False
    assert error.may_have_acted is True
    assert server.count() == 1


def _trickle(request: Request, wire: Wire) -> None:
    """A JSON body of ~250 bytes at one byte every 100 ms: each read is quick, the whole answer takes 25 s."""
    body = json.dumps({"data": [{"id": "5001", "Description": "x" * 200}]}).encode()
    if not wire.head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}):
        return
    for byte in body:
        if not wire.send(bytes([byte])) or wire.stopping.wait(0.1):
            return


def kept(deadline_call: Callable[[float], Outcome], factor: float) -> Outcome:
    """The outcome of `deadline_call(deadline)`, a call bounded by `deadline` seconds of wall time, having ended
    within `factor` times its deadline: first with a 0.5 s deadline, again with longer ones when a busy machine
    made it late (an overrun of a few hundred ms is the machine's, not the code's). A trickle takes 25 s whole,
    so even the longest deadline tells a bound on the whole answer from one on each read."""
    took = []
    for deadline in (0.5, 2.0, 6.0):
        outcome = deadline_call(deadline)
        if outcome.seconds < factor * deadline:
            return outcome
        took.append(f"{outcome.seconds:.2f}s for {deadline}s")
    raise AssertionError(f"the deadline was overrun every time: {', '.join(took)}")


def test_a_trickling_body_fails_within_the_call_timeout(server: HostileServer, connection: dict[str, Any]) -> None:
    """`timeout` bounds the whole call, not each read: 1 byte per 100 ms must not keep a 500 ms call alive."""
    server.on("GET", RECORD, _trickle)
    with Connector.load() as connector:  # the real clock: the deadline is wall time

        def call(deadline: float) -> Outcome:
            inputs = {**GET_LEAD, "timeout": int(deadline * 1000), "maxRetries": 0}
            outcome = within(6 * deadline, lambda: connector.run("crmGetRecord", inputs, connection=connection))
            raised(outcome, TransientError)
            return outcome

        outcome = kept(call, 2.0)
    error = raised(outcome, TransientError)
    assert "time" in error.message.lower(), error.message  # says it timed out, not just "network failure"
    assert error.retryable is True


TOTAL = 50 * 1024 * 1024  # 50 MB of body against a 1,000-byte ceiling


def _huge(framing: str) -> Any:
    prefix, suffix = b'{"data": [{"id": "5001", "Description": "', b'"}]}'
    chunk = b"x" * 65536

    def frame(data: bytes) -> bytes:
        return data if framing == "content-length" else b"%x\r\n%s\r\n" % (len(data), data)

    def handler(request: Request, wire: Wire) -> None:
        headers = {"Content-Type": "application/json"}
        if framing == "content-length":
            headers["Content-Length"] = str(len(prefix) + TOTAL + len(suffix))
        else:
            headers["Transfer-Encoding"] = "chunked"

        if not (wire.head(200, headers) and wire.send(frame(prefix))):
            return
        for _ in range(TOTAL // len(chunk)):
            if not wire.send(frame(chunk)):
                return
        wire.send(frame(suffix) + (b"0\r\n\r\n" if framing == "chunked" else b""))

    return handler


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_max_response_bytes_is_refused_before_it_is_read(
    framing: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, _huge(framing))
    limited = {**connection, "max_response_bytes": 1000}
    outcome = within(20, lambda: connector.run("crmGetRecord", GET_LEAD, connection=limited))
    error = raised(outcome, ConnectorError)
    assert not isinstance(error, InputValidationError | ConnectionConfigError), f"the setting was refused: {error}"
    assert "max_response_bytes" in str(error), str(error)  # the user learns which setting to raise
    assert server.count("GET", RECORD) == 1  # refused, not retried: the next answer would be as large
    sent = server.sent_once_ended()
    assert sent and sent[0] < 16 * 1024 * 1024, f"read {sent} bytes"


def test_an_answer_under_max_response_bytes_is_returned(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, Reply({"data": [{"id": "5001", "Description": "x" * 400}]}))
    result = connector.run("crmGetRecord", GET_LEAD, connection={**connection, "max_response_bytes": 1000})
    assert result["data"]["data"][0]["id"] == "5001"


def _raw(data: bytes) -> Any:
    def handler(request: Request, wire: Wire) -> None:
        wire.send(data)

    return handler


# Content-Encoding that lies: the body arrives whole but cannot be decoded (httpx.DecodingError escaped before).
UNDECODABLE = {
    "gzip-that-is-not": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    "deflate-that-is-not": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\n"
    b"Content-Length: 9\r\nConnection: close\r\n\r\nnot zlib!",
}


@pytest.mark.parametrize("kind", list(UNDECODABLE))
def test_a_read_whose_body_cannot_be_decoded_is_a_retryable_bad_response(
    kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, _raw(UNDECODABLE[kind]))
    outcome = within(10, lambda: connector.run("crmGetRecord", {**GET_LEAD, "maxRetries": 1}, connection=connection))
    error = raised(outcome, BadResponseError)
    assert error.retryable is True and "decode" in error.message
    assert server.count() == 2  # retried once, as a read may be


@pytest.mark.parametrize("kind", list(UNDECODABLE))
def test_a_create_whose_answer_cannot_be_decoded_is_not_resent(
    kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("POST", "/crm/v8/Leads", _raw(UNDECODABLE[kind]))
    outcome = within(10, lambda: connector.run("crmCreateRecord", CREATE_LEAD, connection=connection))
    error = raised(outcome, BadResponseError)
    assert (error.retryable, error.may_have_acted) == (False, True)
    assert server.count() == 1


def test_a_token_answer_that_cannot_be_decoded_is_a_typed_error(server: HostileServer, connector: Connector) -> None:
    server.on("POST", "/oauth/v2/token", _raw(UNDECODABLE["gzip-that-is-not"]))
    refreshing = {
        "client_id": "1000.CLIENT",
        "client_secret": "client-secret-value",
        "refresh_token": "1000.refresh.undecodable",
        "accounts_url": server.url,
        "api_domain": server.url,
        "token_store": "memory:",
    }
    outcome = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=refreshing))
    error = raised(outcome, AuthenticationError)
    assert error.reason == "bad_token_response" and "client-secret-value" not in str(error)
    assert server.count("GET", RECORD) == 0


def _refreshing_at(server: HostileServer) -> dict[str, Any]:
    return {
        "client_id": "1000.CLIENT",
        "client_secret": "client-secret-value",
        "refresh_token": "1000.refresh.slow",
        "accounts_url": server.url,
        "api_domain": server.url,
        "token_store": "memory:",
    }


def _trickled_token(request: Request, wire: Wire) -> None:
    body = json.dumps({"access_token": "1000.fresh.token", "expires_in": 3600, "pad": "x" * 200}).encode()
    if not wire.head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}):
        return
    for byte in body:
        if not wire.send(bytes([byte])) or wire.stopping.wait(0.1):
            return


def test_a_trickling_token_endpoint_is_bounded_as_a_whole(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh a call waits on is bounded too: the token timeout covers the whole answer, not each read (before,
    each byte restarted a 20 s read timeout, so a trickling accounts server held the call, and every call waiting on
    the same refresh, for as long as it liked)."""
    from connector.auth import oauth

    server.on("POST", "/oauth/v2/token", _trickled_token)

    def call(deadline: float) -> Outcome:
        monkeypatch.setattr(oauth, "TOKEN_DEADLINE", deadline)  # the real one is 20 s
        with Connector.load() as connector:  # the real clock: the deadline is wall time
            refreshing = _refreshing_at(server)
            outcome = within(10 * deadline, lambda: connector.run("crmGetRecord", GET_LEAD, connection=refreshing))
        raised(outcome, AuthenticationError)
        return outcome

    error = raised(kept(call, 4.0), AuthenticationError)
    assert error.retryable is True and server.count("GET", RECORD) == 0


def test_a_huge_token_answer_is_refused_before_it_is_read(server: HostileServer, connector: Connector) -> None:
    server.on("POST", "/oauth/v2/token", _huge("chunked"))
    outcome = within(20, lambda: connector.run("crmGetRecord", GET_LEAD, connection=_refreshing_at(server)))
    error = raised(outcome, AuthenticationError)
    assert error.reason == "bad_token_response" and "bytes" in error.message
    assert server.sent_once_ended()[0] < 16 * 1024 * 1024


def test_a_trickling_body_fails_within_the_call_timeout_in_async_code_too(
    server: HostileServer, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, _trickle)

    def call(deadline: float) -> Outcome:
        inputs = {**GET_LEAD, "timeout": int(deadline * 1000), "maxRetries": 0}
        connector = Connector.load()  # the real clock: the deadline is wall time

        async def arun() -> Any:
            try:
                return await connector.arun("crmGetRecord", inputs, connection=connection)
            finally:
                await connector.aclose()

        outcome = within(10 * deadline, lambda: anyio.run(arun))
        raised(outcome, TransientError)
        return outcome

    error = raised(kept(call, 3.0), TransientError)
    assert "time" in error.message.lower(), error.message
