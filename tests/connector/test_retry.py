"""The pure retry pieces: classification table, retry rule, schedule, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector._retry import (
    Outcome,
    Schedule,
    backoff,
    classify_exception,
    classify_response,
    retry_after,
    should_retry,
)
from connector.strategies import ENVELOPES

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "body", "envelope", "kind", "may_have_acted"),
    [
        pytest.param(200, {"data": []}, "crm", "ok", True, id="crm-ok"),
        pytest.param(204, None, "crm", "ok", True, id="crm-204"),
        pytest.param(207, {"data": [{"code": "SUCCESS"}, {"code": "INVALID_DATA"}]}, "crm", "ok", True, id="crm-207"),
        pytest.param(200, {"code": 0, "message": "success"}, "finance", "ok", True, id="books-ok"),
        pytest.param(
            200, {"code": 1002, "message": "Invoice does not exist."}, "finance", "error", True, id="books-nonzero-code"
        ),
        pytest.param(429, {"code": "TOO_MANY_REQUESTS"}, "crm", "throttled", False, id="429"),
        pytest.param(429, {"code": 45, "message": "request limit"}, "finance", "throttled", False, id="books-429"),
        pytest.param(
            400,
            {"code": "Access Denied", "message": "You have made too many requests continuously."},
            "crm",
            "throttled",
            False,
            id="crm-throttle-400",
        ),
        pytest.param(
            400,
            {"error": "Access Denied", "error_description": "too many requests", "status": "failure"},
            "crm",
            "throttled",
            False,
            id="crm-throttle-400-accounts-shape",
        ),
        pytest.param(
            401, {"code": "INVALID_TOKEN", "message": "invalid oauth token"}, "crm", "auth", False, id="invalid-token"
        ),
        pytest.param(401, {"code": "AUTHENTICATION_FAILURE"}, "crm", "auth", False, id="authentication-failure"),
        pytest.param(401, {"code": 57, "message": "You are not authorized"}, "finance", "auth", False, id="books-401"),
        pytest.param(401, {"code": "OAUTH_SCOPE_MISMATCH"}, "crm", "error", False, id="scope-mismatch"),
        pytest.param(400, {"code": "INVALID_DATA"}, "crm", "error", False, id="invalid-data"),
        pytest.param(403, {"code": "NO_PERMISSION"}, "crm", "error", False, id="no-permission"),
        pytest.param(404, {"code": "INVALID_URL_PATTERN"}, "crm", "error", False, id="not-found"),
        pytest.param(500, {"code": "INTERNAL_ERROR"}, "crm", "transient", True, id="500"),
        pytest.param(502, None, "crm", "transient", True, id="502"),
        pytest.param(503, None, "finance", "transient", True, id="503"),
        pytest.param(408, None, "crm", "transient", True, id="408"),
    ],
)
def test_classification_table(status: int, body: Any, envelope: str, kind: str, may_have_acted: bool) -> None:
    outcome = classify_response(status, body, {}, NOW, ENVELOPES[envelope])
    assert (outcome.kind, outcome.may_have_acted) == (kind, may_have_acted)


@pytest.mark.parametrize(
    ("exc", "may_have_acted"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool"), False),
        (httpx.ReadTimeout("slow answer"), True),
        (httpx.WriteTimeout("slow send"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.ReadError("reset"), True),
    ],
)
def test_network_failures_say_whether_zoho_may_have_acted(exc: Exception, may_have_acted: bool) -> None:
    outcome = classify_exception(exc)
    assert outcome.kind == "transient" and outcome.may_have_acted is may_have_acted


@pytest.mark.parametrize(
    ("kind", "may_have_acted", "safety", "retry_all", "expected"),
    [
        ("transient", True, "read", False, True),
        ("transient", True, "idempotent", False, True),
        ("transient", True, "write", False, False),  # a create that may have landed is not re-sent
        ("transient", False, "write", False, True),  # it certainly did not land
        ("throttled", False, "write", False, True),
        ("transient", True, "write", True, True),  # Retry On All Errors
        ("error", False, "read", False, False),
        ("error", False, "read", True, True),
        ("auth", False, "read", True, False),  # 401 is the refresh-once rule's, never a retry loop
    ],
)
def test_retry_rule(kind: Any, may_have_acted: bool, safety: str, retry_all: bool, expected: bool) -> None:
    outcome = Outcome(kind, may_have_acted=may_have_acted)
    assert should_retry(outcome, safety=safety, retry_all=retry_all, attempt=0, max_retries=3) is expected


def test_retry_budget_is_respected() -> None:
    outcome = Outcome("transient", may_have_acted=False)
    assert should_retry(outcome, safety="read", retry_all=False, attempt=2, max_retries=3)
    assert not should_retry(outcome, safety="read", retry_all=False, attempt=3, max_retries=3)


def test_exponential_schedule_is_capped() -> None:
    schedule = Schedule(base_seconds=0.5, exponential=True, cap_seconds=5)
    assert [backoff(n, schedule, jitter=lambda d: d) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5, 5]


def test_jitter_stays_between_half_and_full_delay() -> None:
    schedule = Schedule(base_seconds=1.0)
    for attempt in range(4):
        assert 2**attempt / 2 <= backoff(attempt, schedule) <= 2**attempt


def test_constant_schedule() -> None:
    assert backoff(7, Schedule(base_seconds=0.25, exponential=False)) == 0.25


def test_retry_after_in_seconds_and_http_date() -> None:
    assert retry_after({"retry-after": "12"}, NOW) == 12.0
    date = format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)
    assert retry_after({"retry-after": date}, NOW) == 30.0
    assert retry_after({}, NOW) is None
    assert retry_after({"retry-after": "soon"}, NOW) is None


def _http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("0", id="zero"),
        pytest.param("0.0", id="zero-float"),
        pytest.param("-1", id="negative"),
        pytest.param("-0", id="minus-zero"),
        pytest.param("nan", id="nan"),
        pytest.param("NaN", id="NaN"),
        pytest.param("inf", id="inf"),
        pytest.param("-inf", id="minus-inf"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("1e400", id="1e400"),
        pytest.param("1e3", id="exponent"),
        pytest.param("0x1f", id="hex"),
        pytest.param("1_000", id="underscore"),
        pytest.param("١٢", id="arabic-digits"),
        pytest.param("12, 12", id="repeated"),
        pytest.param("soon", id="word"),
        pytest.param(_http_date(NOW - 30), id="past-date"),
        pytest.param(_http_date(NOW), id="date-now"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", id="old-date"),
        pytest.param("Mon, 99 Foo 2030 99:99:99 GMT", id="broken-date"),
        pytest.param("Fri, 31 Dec 99999 23:59:59 GMT", id="year-99999"),
    ],
)
def test_unusable_retry_after_falls_back_to_backoff(value: str) -> None:
    """None, never 0: a zero wait would turn a 429 into a burst of immediate retries."""
    assert retry_after({"retry-after": value}, NOW) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("0.2", 1.0, id="fraction-rounds-up"),
        pytest.param("2.5", 3.0, id="fraction"),
        pytest.param(" 7 ", 7.0, id="padded"),
        pytest.param("100000", 86_400.0, id="over-a-day"),
        pytest.param("9" * 400, 86_400.0, id="huge-int"),
        pytest.param(_http_date(NOW + 3 * 86_400), 86_400.0, id="date-days-away"),
        pytest.param(_http_date(NOW + 7).replace("GMT", "-0000"), 7.0, id="date-minus-zero"),
    ],
)
def test_retry_after_is_whole_positive_seconds_capped_at_a_day(value: str, seconds: float) -> None:
    assert retry_after({"retry-after": value}, NOW) == seconds


def test_retry_after_header_name_is_case_insensitive_in_any_mapping() -> None:
    assert retry_after({"Retry-After": "12"}, NOW) == 12.0
    assert retry_after(httpx.Headers({"RETRY-AFTER": "12"}), NOW) == 12.0


@given(st.text(max_size=40))
def test_retry_after_never_crashes_nor_returns_an_unusable_wait(value: str) -> None:
    wait = retry_after({"retry-after": value}, NOW)
    assert wait is None or (1 <= wait <= 86_400 and wait == int(wait))
