"""Rate-limit headers that lie: an allowance at zero with no (or a nonsense) reset, Retry-After values that are not
numbers of seconds, and remaining-call counts that are not numbers. No crash, no endless block, no zero-wait retry
burst, and no Infinity or NaN in the JSON an engine reads."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from connector import Connector
from connector.errors import ConnectorError, RateLimitedError, TransientError
from tests.conftest import FakeClock
from tests.hostile.conftest import within
from tests.hostile.server import HostileServer, Reply, Request, Wire

RECORD = "/crm/v8/Leads/5001"
GET_LEAD = {"recordType": "Leads", "recordId": "5001"}
LEAD = {"data": [{"id": "5001", "Last_Name": "Doe"}]}
BAD_NUMBERS = ["nan", "inf", "-inf", "1e400", "-5", "garbage", ""]


def _json_safe(error: ConnectorError) -> None:
    text = json.dumps(error.to_dict(), allow_nan=False)  # raises on Infinity / NaN
    retry_after = json.loads(text)["error"]["retry_after"]
    assert retry_after is None or retry_after >= 0


def _first_then_plain(headers: dict[str, str], status: int = 200, times: int = 1) -> Any:
    """The first `times` answers carry `headers` (and `status`); later ones are a plain 200 with the lead."""
    calls = iter(range(1_000_000))

    def handler(request: Request, wire: Wire) -> Reply:
        if next(calls) < times:
            body = LEAD if status == 200 else {"code": "TOO_MANY_REQUESTS", "message": "slow down"}
            return Reply(body, status=status, headers=headers)
        return Reply(LEAD)

    return handler


@pytest.mark.parametrize("remaining", ["0", "-1"])
@pytest.mark.parametrize("reset", [None, "nan", "inf", "1e400", "garbage", "-5"])
def test_a_spent_allowance_without_a_usable_reset_does_not_block_forever(
    remaining: str,
    reset: str | None,
    server: HostileServer,
    connector: Connector,
    clock: FakeClock,
    connection: dict[str, Any],
) -> None:
    headers = {"X-RateLimit-Remaining": remaining, **({"X-RateLimit-Reset": reset} if reset is not None else {})}
    server.on("GET", RECORD, _first_then_plain(headers))
    assert connector.run("crmGetRecord", GET_LEAD, connection=connection)["data"] == LEAD
    second = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection))
    if second.error is not None:
        assert isinstance(second.error, RateLimitedError), repr(second.error)
        _json_safe(second.error)
        wait = second.error.retry_after
        assert wait is not None, "blocked with no retry_after: the caller cannot know when to come back"
        assert math.isfinite(wait) and wait > 0
        clock.now += wait + 1
    third = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection))
    assert third.error is None, f"still blocked after waiting retry_after: {third.error!r}"
    assert third.result["data"] == LEAD


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_nonsense_retry_after_neither_crashes_nor_retries_at_once(
    value: str, server: HostileServer, connector: Connector, clock: FakeClock, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, _first_then_plain({"Retry-After": value}, status=429, times=2))
    outcome = within(10, lambda: connector.run("crmGetRecord", {**GET_LEAD, "maxRetries": 3}, connection=connection))
    if outcome.error is not None:
        assert isinstance(outcome.error, RateLimitedError), repr(outcome.error)
        _json_safe(outcome.error)
    else:
        assert outcome.result["data"] == LEAD
    assert clock.sleeps, "retried without waiting"
    assert all(math.isfinite(s) and s > 0 for s in clock.sleeps), f"waits: {clock.sleeps}"
    assert server.count() <= 3


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_engine_mode_reports_a_nonsense_retry_after_as_json_safe(
    value: str, server: HostileServer, clock: FakeClock, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, _first_then_plain({"Retry-After": value}, status=429, times=1))
    with Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep) as connector:
        outcome = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection))
    assert isinstance(outcome.error, RateLimitedError), repr(outcome.error)
    assert outcome.error.retryable is True
    _json_safe(outcome.error)


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-inf", "1e400", "", "1.5.2"])
def test_a_remaining_count_that_is_not_a_number_is_ignored(
    value: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", RECORD, Reply(LEAD, headers={"X-RateLimit-Remaining": value, "X-RateLimit-Reset": "60"}))
    for _ in range(2):
        outcome = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection))
        assert outcome.error is None, repr(outcome.error)
        assert outcome.result["data"] == LEAD


# Answers whose status line or headers break HTTP itself: a typed, retryable network failure for a read, never a
# traceback (h11 refuses each; the read is retried and then reported).
BROKEN_HEADS = {
    "status-not-a-number": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\n{}",
    "length-not-a-number": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
    "line-without-colon": b"HTTP/1.1 200 OK\r\nContent-Type application/json\r\nContent-Length: 2\r\n\r\n{}",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
    "a-200-kb-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
    "not-http": b"\x00\x01\x02 hello\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(BROKEN_HEADS))
def test_an_answer_with_a_broken_head_is_a_typed_retryable_error(
    kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    def handler(request: Request, wire: Wire) -> None:
        wire.send(BROKEN_HEADS[kind])

    server.on("GET", RECORD, handler)
    outcome = within(10, lambda: connector.run("crmGetRecord", {**GET_LEAD, "maxRetries": 1}, connection=connection))
    assert isinstance(outcome.error, TransientError), repr(outcome.error)
    assert outcome.error.retryable is True
    assert server.count() == 2


@pytest.mark.parametrize(
    "headers",
    [
        b"X-RateLimit-Remaining: \xff1\r\nX-RateLimit-Reset: \xe9",
        b"X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: \xe9",
    ],
)
def test_rate_limit_headers_in_latin_1_neither_crash_nor_wedge(
    headers: bytes, server: HostileServer, connector: Connector, clock: FakeClock, connection: dict[str, Any]
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headers + b"\r\nContent-Length: "
    body = json.dumps(LEAD).encode()

    def handler(request: Request, wire: Wire) -> None:
        wire.send(head + str(len(body)).encode() + b"\r\n\r\n" + body)

    server.on("GET", RECORD, handler)
    assert within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection)).result["data"] == LEAD
    clock.now += 61  # a spent allowance with an unreadable reset expires after the default window
    assert within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection)).result["data"] == LEAD
