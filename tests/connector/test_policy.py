"""The policy through the runner: sleep schedules, Retry-After, safe writes, 401, rate limits, concurrency, debug."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, RateLimitedError, TransientError, ZohoAPIError
from connector.errors import AuthenticationError
from tests.conftest import ACCESS_TOKEN, CRM, FakeClock

GET = ("crmGetRecord", {"recordType": "Leads", "recordId": "1"})
CREATE = ("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}})
OK = {"data": [{"id": "1"}]}


def test_transient_errors_back_off_exponentially(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    for _ in range(3):
        httpx_mock.add_response(status_code=503)
    httpx_mock.add_response(json=OK)
    assert connector.run(*GET, connection=connection) == {"data": OK}
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_connection_backoff_seconds_sets_the_first_wait(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=500)
    httpx_mock.add_response(status_code=500)
    httpx_mock.add_response(json=OK)
    connector.run(*GET, connection={**connection, "retry_backoff_seconds": 2})
    assert clock.sleeps == [2.0, 4.0]


def test_action_retry_delay_wins_over_the_connection(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    for _ in range(3):
        httpx_mock.add_response(status_code=502)
    inputs = {**GET[1], "retryDelayMS": 250, "maxRetries": 2}
    with pytest.raises(TransientError) as caught:
        connector.run("crmGetRecord", inputs, connection={**connection, "max_retries": 9})
    assert clock.sleeps == [0.25, 0.25]
    assert caught.value.status == 502 and caught.value.retryable


def test_retry_after_seconds_is_honoured(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "3"}, json={"code": "TOO_MANY_REQUESTS"})
    httpx_mock.add_response(json=OK)
    connector.run(*GET, connection=connection)
    assert clock.sleeps == [3.0]


def test_retry_after_http_date_is_honoured(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    when = format_datetime(datetime.fromtimestamp(clock.now + 7, tz=UTC), usegmt=True)
    httpx_mock.add_response(status_code=429, headers={"Retry-After": when})
    httpx_mock.add_response(json=OK)
    connector.run(*GET, connection=connection)
    assert clock.sleeps == [7.0]


def test_retry_after_past_the_cap_fails_at_once_saying_when(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "900"})
    with pytest.raises(RateLimitedError) as caught:
        connector.run(*GET, connection=connection)
    assert caught.value.retry_after == 900 and "retry after 900s" in caught.value.message
    assert clock.sleeps == [] and len(httpx_mock.get_requests()) == 1


def test_throttle_answered_as_400_is_retried(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        status_code=400, json={"code": "Access Denied", "message": "You have made too many requests continuously."}
    )
    httpx_mock.add_response(json=OK)
    assert connector.run(*GET, connection=connection) == {"data": OK}
    assert clock.sleeps == [0.5]


def test_create_whose_answer_times_out_is_sent_once(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("no answer"))
    with pytest.raises(TransientError, match="may have reached Zoho"):
        connector.run(*CREATE, connection=connection)
    assert len(httpx_mock.get_requests()) == 1


def test_create_answered_503_is_not_resent(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=503)
    with pytest.raises(TransientError):
        connector.run(*CREATE, connection=connection)
    assert len(httpx_mock.get_requests()) == 1


def test_create_that_never_connected_is_retried(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    httpx_mock.add_response(status_code=201, json={"data": [{"code": "SUCCESS"}]})
    connector.run(*CREATE, connection=connection)
    assert len(httpx_mock.get_requests()) == 2


def test_create_rejected_by_throttling_is_retried(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=429)
    httpx_mock.add_response(status_code=201, json={"data": [{"code": "SUCCESS"}]})
    connector.run(*CREATE, connection=connection)
    assert len(httpx_mock.get_requests()) == 2


def test_retry_on_all_errors_retries_a_4xx_as_its_description_says(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    """retryAllErrors: "Also retry other 4xx answers"; without it a refusal is answered at once."""
    refusal = {"code": "INVALID_DATA", "details": {}, "message": "the id given seems to be invalid", "status": "error"}
    httpx_mock.add_response(status_code=400, json=refusal)
    with pytest.raises(ZohoAPIError):
        connector.run(*GET, connection=connection)
    assert len(httpx_mock.get_requests()) == 1 and clock.sleeps == []
    httpx_mock.add_response(status_code=400, json=refusal)
    httpx_mock.add_response(json=OK)
    assert connector.run(GET[0], {**GET[1], "retryAllErrors": True}, connection=connection) == {"data": OK}
    assert len(httpx_mock.get_requests()) == 3 and len(clock.sleeps) == 1
    httpx_mock.add_response(status_code=404, json=refusal, is_reusable=True)
    with pytest.raises(ZohoAPIError) as caught:  # still bounded by maxRetries, and the error is Zoho's
        connector.run(GET[0], {**GET[1], "retryAllErrors": True, "maxRetries": 2}, connection=connection)
    assert caught.value.code == "INVALID_DATA" and len(httpx_mock.get_requests()) == 6


def test_retry_on_all_errors_opts_a_create_in(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("no answer"))
    httpx_mock.add_response(status_code=201, json={"data": [{"code": "SUCCESS"}]})
    connector.run("crmCreateRecord", {**CREATE[1], "retryAllErrors": True}, connection=connection)
    assert len(httpx_mock.get_requests()) == 2


def test_update_is_idempotent_and_retried(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("no answer"))
    httpx_mock.add_response(json={"data": [{"code": "SUCCESS"}]})
    connector.run(
        "crmUpdateRecord", {"recordType": "Leads", "recordId": "1", "fieldValues": {"A": 1}}, connection=connection
    )
    assert len(httpx_mock.get_requests()) == 2


def test_raw_post_is_a_write_raw_get_a_read(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=503)
    with pytest.raises(TransientError):
        connector.run("crmRawRequest", {"url": "/Leads/1/actions/convert", "method": "POST"}, connection=connection)
    httpx_mock.add_response(status_code=503)
    httpx_mock.add_response(json=OK)
    connector.run("crmRawRequest", {"url": "/Leads/1"}, connection=connection)
    assert len(httpx_mock.get_requests()) == 3


def test_zoho_errors_are_not_retried(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=400, json={"code": "INVALID_MODULE", "message": "invalid module"})
    with pytest.raises(ZohoAPIError) as caught:
        connector.run(*GET, connection=connection)
    assert not caught.value.retryable and len(httpx_mock.get_requests()) == 1


def test_engine_mode_surfaces_the_classification_without_retrying(
    clock: FakeClock, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "20"})
    with (
        Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep) as connector,
        pytest.raises(RateLimitedError) as caught,
    ):
        connector.run(*GET, connection=connection)
    assert caught.value.to_dict()["error"] | {"message": ""} == {
        "type": "rate_limited",
        "message": "",
        "retryable": True,
        "retry_after": 20.0,
        "may_have_acted": False,
        "status": 429,
    }
    assert clock.sleeps == []


def test_401_without_a_refresh_token_fails_once_clearly(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=401, json={"code": "INVALID_TOKEN", "message": "invalid oauth token"})
    with pytest.raises(AuthenticationError, match="no refresh token"):
        connector.run(*GET, connection=connection)
    assert len(httpx_mock.get_requests()) == 1


def test_intercall_delay_spaces_calls(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=OK, is_reusable=True)
    spaced = {**connection, "intercall_delay": 1.5}
    for _ in range(3):
        connector.run(*GET, connection=spaced)
    assert clock.sleeps == [1.5, 1.5]


def test_daily_allowance_below_minimum_refuses_to_call(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=OK, headers={"X-RATELIMIT-REMAINING": "2", "X-RATELIMIT-RESET": "600"})
    guarded = {**connection, "min_calls_remaining": 3}
    connector.run(*GET, connection=guarded)
    with pytest.raises(RateLimitedError, match="below min_calls_remaining") as caught:
        connector.run(*GET, connection=guarded)
    assert caught.value.retry_after == 600 and len(httpx_mock.get_requests()) == 1
    clock.now += 601  # the window resets: calls go out again
    httpx_mock.add_response(json=OK)
    connector.run(*GET, connection=guarded)


def test_missing_rate_limit_headers_are_fine(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    """Fine: each call answers at once, sent once, with no wait before the next (the allowance is unknown, not 0)."""
    httpx_mock.add_response(json=OK, headers={"X-RATELIMIT-REMAINING": "many"})
    httpx_mock.add_response(json=OK)  # no rate-limit headers at all
    httpx_mock.add_response(json=OK, headers={"X-RATELIMIT-LIMIT": "", "X-RATELIMIT-RESET": "soon"})
    httpx_mock.add_response(json=OK)
    assert [connector.run(*GET, connection=connection) for _ in range(4)] == [{"data": OK}] * 4
    assert len(httpx_mock.get_requests()) == 4
    assert clock.sleeps == []


async def test_concurrency_cap_holds_under_50_async_runs(connection: dict[str, Any]) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)  # yield to the other runs without real waiting
        in_flight -= 1
        return httpx.Response(200, json=OK)

    connector = Connector.load(async_transport=httpx.MockTransport(handler))
    capped = {**connection, "max_concurrency": 4}
    results = await asyncio.gather(*(connector.arun(*GET, connection=capped) for _ in range(50)))
    await connector.aclose()
    assert len(results) == 50 and peak == 4


def test_debug_request_logs_with_every_secret_redacted(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    secret_body = {
        "data": [{"id": "1", "access_token": "1000.deadbeefdeadbeefdeadbeefdeadbeef.cafe1234cafe1234cafe1234cafe1234"}]
    }
    httpx_mock.add_response(json=secret_body)
    caplog.set_level(logging.INFO, logger="connector")
    connector.run(
        "crmRawRequest",
        {
            "url": "/Leads",
            "method": "POST",
            "debugRequest": True,
            "queryParams": {"code": "1000.grantcodegrantcode", "page": 1},
            "data": {"client_secret": "s3cr3t-value", "refresh_token": "1000.r3fr3sh"},
        },
        connection=connection,
    )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST" in text and "200" in text and "/crm/v8/Leads" in text
    for secret in (ACCESS_TOKEN, "1000.grantcodegrantcode", "s3cr3t-value", "1000.r3fr3sh", "deadbeefdeadbeef"):
        assert secret not in text
    assert "[redacted]" in text


def test_no_debug_output_unless_asked(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json=OK)
    caplog.set_level(logging.DEBUG, logger="connector")
    connector.run(*GET, connection=connection)
    assert not [r for r in caplog.records if r.name.startswith("connector")]


def test_a_non_json_error_body_is_kept_short_and_scrubbed(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    echoed = f"proxy error for Authorization: Zoho-oauthtoken {ACCESS_TOKEN} " + "x" * 2000
    httpx_mock.add_response(status_code=400, text=echoed, headers={"content-type": "text/plain"})
    with pytest.raises(ZohoAPIError) as caught:
        connector.run(*GET, connection=connection)
    assert ACCESS_TOKEN not in str(caught.value) and len(caught.value.message) < 600


def test_throttling_without_retry_after_backs_off_even_with_a_zero_delay(
    connector: Connector, connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    """The reference's example Retry Delay is 0 ms: against a 429 that must not become a burst of retries."""
    httpx_mock.add_response(status_code=429)
    httpx_mock.add_response(status_code=429)
    httpx_mock.add_response(json=OK)
    connector.run(
        "crmRawRequest", {"url": "/Leads", "retryDelayMS": 0, "useExponentialBackoff": False}, connection=connection
    )
    assert clock.sleeps == [0.5, 1.0]


# --- engine mode never causes a duplicate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (httpx.ReadTimeout("no answer"), False),  # the create may have reached Zoho
        (httpx.RemoteProtocolError("dropped"), False),
        (httpx.ConnectError("refused"), True),  # it certainly did not
    ],
)
def test_engine_mode_marks_a_write_that_may_have_acted_as_not_retryable(
    connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock, failure: Exception, retryable: bool
) -> None:
    httpx_mock.add_exception(failure)
    with (
        Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep) as connector,
        pytest.raises(TransientError) as caught,
    ):
        connector.run(*CREATE, connection=connection)
    error = caught.value.to_dict()["error"]
    assert (error["retryable"], error["may_have_acted"]) == (retryable, not retryable)
    assert len(httpx_mock.get_requests()) == 1


# Writes that may create something: a create, an attachment (from base64 and streamed from a file) and raw POSTs.
MAY_CREATE = {
    "crm-raw-post": ("crmRawRequest", {"url": "/Leads", "method": "POST", "data": {"data": [{"Last_Name": "Doe"}]}}),
    "books-raw-post": ("booksRawRequest", {"url": "/invoices", "method": "POST", "data": {"customer_id": "1"}}),
    "attachment": (
        "crmAddAttachment",
        {"recordType": "Leads", "recordId": "1", "file": {"base64": "eA=="}, "fileName": "a.txt"},
    ),
}


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("no answer"), httpx.RemoteProtocolError("dropped"), httpx.WriteError("cut off")]
)
@pytest.mark.parametrize("write", [*MAY_CREATE, "attachment-from-a-file"])
def test_engine_mode_no_write_that_may_have_created_something_is_retryable(
    write: str,
    failure: Exception,
    connection: dict[str, Any],
    clock: FakeClock,
    httpx_mock: HTTPXMock,
    tmp_path: Any,
) -> None:
    """Issue 8.5 names these: a create, an attachment, a raw POST after a timeout or a dropped connection. Neither
    the engine (retryable false, may_have_acted true) nor a local retry may send them twice."""
    if write == "attachment-from-a-file":
        path = tmp_path / "a.bin"
        path.write_bytes(b"x" * 100_000)
        key, inputs = "crmAddAttachment", {"recordType": "Leads", "recordId": "1", "file": path, "fileName": "a.bin"}
    else:
        key, inputs = MAY_CREATE[write]
    httpx_mock.add_exception(failure, is_reusable=True)
    with Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep) as connector:
        with pytest.raises(TransientError) as caught:
            connector.run(key, inputs, connection=connection)
        assert (caught.value.retryable, caught.value.may_have_acted) == (False, True)
        assert caught.value.to_dict()["error"]["may_have_acted"] is True
    with Connector.load(clock=clock, sleep=clock.sleep) as connector, pytest.raises(TransientError):
        connector.run(key, {**inputs, "maxRetries": 5}, connection=connection)
    assert len(httpx_mock.get_requests()) == 2  # once per connector: never re-sent


def test_engine_mode_a_5xx_answer_to_a_create_is_not_retryable_unless_asked(
    connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=502, is_reusable=True)
    with Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep) as connector:
        with pytest.raises(TransientError) as caught:
            connector.run(*CREATE, connection=connection)
        assert (caught.value.retryable, caught.value.may_have_acted) == (False, True)
        with pytest.raises(TransientError) as caught:
            connector.run(CREATE[0], {**CREATE[1], "retryAllErrors": True}, connection=connection)
        assert caught.value.retryable
        with pytest.raises(TransientError) as caught:
            connector.run(*GET, connection=connection)
        assert caught.value.retryable


# --- answers that are not what Zoho documents --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"<html><body>Bad gateway</body></html>", "text/html"), (b'{"data": [{"id": "1"', "application/json")],
    ids=["html", "truncated-json"],
)
def test_a_non_json_2xx_is_a_bad_response_retried_for_reads(
    connector: Connector,
    connection: dict[str, Any],
    clock: FakeClock,
    httpx_mock: HTTPXMock,
    content: bytes,
    content_type: str,
) -> None:
    from connector.errors import BadResponseError

    httpx_mock.add_response(content=content, headers={"content-type": content_type}, is_reusable=True)
    with pytest.raises(BadResponseError) as caught:
        connector.run(GET[0], {**GET[1], "maxRetries": 2}, connection=connection)
    assert caught.value.kind == "bad_response" and caught.value.retryable
    assert len(httpx_mock.get_requests()) == 3
    with pytest.raises(BadResponseError) as caught:
        connector.run(*CREATE, connection=connection)
    assert (caught.value.retryable, caught.value.may_have_acted) == (False, True)
    assert len(httpx_mock.get_requests()) == 4  # the create was sent once


def test_an_answer_over_the_size_ceiling_is_refused(connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    from connector.errors import BadResponseError

    httpx_mock.add_response(content=b'{"data": ["' + b"x" * 5000 + b'"]}', headers={"content-type": "application/json"})
    with Connector.load() as connector, pytest.raises(BadResponseError, match="max_response_bytes"):
        connector.run(*GET, connection={**connection, "max_response_bytes": 1024})


# --- a newcomer's unreachable host --------------------------------------------------------------------------------


def test_an_unreachable_host_is_retried_within_a_budget_and_named(
    connection: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), is_reusable=True)
    with (
        Connector.load(clock=clock, sleep=clock.sleep, jitter=lambda d: d) as connector,
        caplog.at_level(logging.INFO, logger="connector"),
        pytest.raises(TransientError) as caught,
    ):
        connector.run(*GET, connection={**connection, "retry_budget_seconds": 20})
    assert sum(clock.sleeps) <= 20 and len(httpx_mock.get_requests()) == 6  # 0.5+1+2+4+8 = 15.5 s of waiting
    assert "cannot connect to www.zohoapis.eu" in str(caught.value) and "after 6 attempts" in str(caught.value)
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert retries[0] == "retrying in 0.5 s (1/10): cannot connect to www.zohoapis.eu (ConnectError)"
    assert len(retries) == 5


# --- not found is one clear signal ----------------------------------------------------------------------------------


def test_a_crm_record_that_does_not_exist_is_not_found(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    from connector.errors import NotFoundError

    httpx_mock.add_response(status_code=204)
    with pytest.raises(NotFoundError) as caught:
        connector.run(*GET, connection=connection)
    assert caught.value.exit_code == 4 and caught.value.to_dict()["error"]["type"] == "not_found"


def test_a_books_record_that_does_not_exist_is_not_found(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    from connector.errors import NotFoundError

    httpx_mock.add_response(status_code=404, json={"code": 1002, "message": "Invoice does not exist."})
    with pytest.raises(NotFoundError) as caught:
        connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "1"}, connection=connection)
    assert (caught.value.code, caught.value.zoho_message) == ("1002", "Invoice does not exist.")
    assert isinstance(caught.value, ZohoAPIError)
