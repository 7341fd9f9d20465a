"""What every engine adapter shares: the payload, the process's engine-mode connector, the retry decision."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector._retry import Schedule
from connector.engines._common import (
    Payload,
    RetrySettings,
    checked_payload,
    engine_connector,
    fetches_all,
    reset_engine_connector,
    resumable,
    retry_delay,
    retry_settings,
)
from connector.errors import InputValidationError, RateLimitedError, TransientError, ZohoAPIError
from tests.conftest import ACCESS_TOKEN, CRM

SECRET = "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef"


@pytest.fixture
def named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]) -> Iterator[None]:
    """A connections file holding `eu` (slow backoff, 3 retries), as a worker finds it through ZOHO_CONNECTIONS."""
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"eu": {**connection, "retry_backoff_seconds": 2, "max_retries": 3}}))
    monkeypatch.setenv("ZOHO_CONNECTIONS", str(path))
    reset_engine_connector()
    yield
    reset_engine_connector()


def test_a_payload_is_an_action_its_inputs_and_a_connection_name() -> None:
    payload = checked_payload({"action": "crmGetRecord", "inputs": {"recordId": "1"}, "connection": "eu-prod.2"})
    assert payload == Payload("crmGetRecord", {"recordId": "1"}, "eu-prod.2")
    assert payload.to_dict() == {"action": "crmGetRecord", "inputs": {"recordId": "1"}, "connection": "eu-prod.2"}
    assert checked_payload({"action": "crmGetOrg", "connection": "eu"}).inputs == {}


def test_a_connection_itself_is_refused_and_its_secrets_are_not_repeated() -> None:
    connection = {"region": "eu", "client_secret": "s3cret-value", "refresh_token": SECRET}
    with pytest.raises(InputValidationError) as caught:
        checked_payload({"action": "crmGetRecord", "inputs": {}, "connection": connection})
    error = caught.value.to_dict()["error"]
    assert [v["input"] for v in error["violations"]] == ["connection"]
    assert "NAME of a connection" in error["message"]
    assert "secrets must never travel" in error["message"]
    text = json.dumps(error)
    assert "s3cret-value" not in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("payload", "inputs"),
    [
        ("not a payload", ["(payload)"]),
        ({"inputs": {}, "connection": "eu"}, ["action"]),
        ({"action": "", "inputs": [], "connection": "eu"}, ["action", "inputs"]),
        ({"action": "crmGetRecord", "connection": json.dumps({"refresh_token": SECRET})}, ["connection"]),
        ({"action": "crmGetRecord", "connection": None}, ["connection"]),
        ({"action": "crmGetRecord", "connection": "eu", "refresh_token": SECRET}, ["refresh_token"]),
    ],
)
def test_a_bad_payload_names_every_bad_field_without_quoting_it(payload: Any, inputs: list[str]) -> None:
    with pytest.raises(InputValidationError) as caught:
        checked_payload(payload)
    assert sorted(v.input for v in caught.value.violations) == sorted(inputs)
    assert SECRET not in str(caught.value)


def test_the_engine_connector_is_one_per_process_in_engine_mode(
    named: None, httpx_mock: HTTPXMock, connection: dict[str, Any]
) -> None:
    connector = engine_connector()
    assert engine_connector() is connector
    httpx_mock.add_response(url=f"{CRM}/Leads/1", status_code=429, json={"code": "TOO_MANY_REQUESTS"})
    with pytest.raises(RateLimitedError) as caught:  # engine mode: raised at once, the engine retries
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection="eu")
    assert caught.value.retryable
    assert len(httpx_mock.get_requests()) == 1
    reset_engine_connector()
    assert engine_connector() is not connector


def test_a_forked_child_builds_its_own_connector(named: None) -> None:
    parent = engine_connector()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a new connector, then leave at once
        os.write(write, b"new" if engine_connector() is not parent else b"inherited")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"new"
    assert engine_connector() is parent


# --- retries ---------------------------------------------------------------------------------------------------

SETTINGS = RetrySettings(
    safety="read",
    max_retries=3,
    schedule=Schedule(base_seconds=2, exponential=True),
    throttle_schedule=Schedule(base_seconds=2, exponential=True),
    max_retry_after=180,
    retry_all=False,
)


def same(delay: float) -> float:
    return delay


def test_zohos_retry_after_is_the_delay() -> None:
    throttled = RateLimitedError("throttled", retry_after=7)
    assert retry_delay(throttled, SETTINGS, 0, same) == 7
    assert retry_delay(throttled, SETTINGS, 2, same) == 7


def test_without_retry_after_the_connectors_backoff_schedule_is_the_delay() -> None:
    assert [retry_delay(TransientError("503"), SETTINGS, n, same) for n in range(3)] == [2, 4, 8]
    constant = SETTINGS._replace(schedule=Schedule(base_seconds=0.25, exponential=False))
    assert retry_delay(TransientError("503"), constant, 2, same) == 0.25
    # throttling without Retry-After backs off exponentially whatever the action's constant delay
    assert retry_delay(RateLimitedError("throttled"), constant, 2, same) == 8


def test_no_retry_when_the_failure_is_final_the_retries_are_spent_or_the_wait_too_long() -> None:
    assert retry_delay(TransientError("503"), SETTINGS, 3, same) is None
    lost_write = TransientError("timeout", retryable=False, may_have_acted=True)
    assert retry_delay(lost_write, SETTINGS, 0, same) is None
    assert retry_delay(ZohoAPIError(status=400, code="INVALID_DATA", message="bad"), SETTINGS, 0, same) is None
    assert retry_delay(RateLimitedError("daily limit", retry_after=3600), SETTINGS, 0, same) is None


def test_retry_settings_follow_the_action_then_the_connection(named: None) -> None:
    connector = engine_connector()
    read = retry_settings(connector, Payload("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, "eu"))
    assert (read.safety, read.max_retries, read.schedule) == ("read", 3, Schedule(2, True))
    assert read.may_resend
    chosen = {"recordType": "Leads", "recordId": "1", "maxRetries": 1, "retryDelayMS": 500}
    own = retry_settings(connector, Payload("crmGetRecord", chosen, "eu"))
    assert (own.max_retries, own.schedule.base_seconds, own.schedule.exponential) == (1, 0.5, False)
    assert own.throttle_schedule == Schedule(2, True)


def test_a_write_may_not_be_sent_twice_unless_the_user_asked(named: None) -> None:
    connector = engine_connector()
    create = {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}}
    assert not retry_settings(connector, Payload("crmCreateRecord", create, "eu")).may_resend
    everything = {**create, "retryAllErrors": True}
    assert retry_settings(connector, Payload("crmCreateRecord", everything, "eu")).may_resend
    post = retry_settings(connector, Payload("crmRawRequest", {"method": "POST", "url": "/Leads"}, "eu"))
    get = retry_settings(connector, Payload("crmRawRequest", {"method": "GET", "url": "/Leads"}, "eu"))
    assert (post.safety, get.safety) == ("write", "idempotent")
    assert not post.may_resend
    assert get.may_resend


def test_connection_name_lookups_need_no_secret_in_the_payload(
    named: None, httpx_mock: HTTPXMock, connection: dict[str, Any]
) -> None:
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json={"data": [{"id": "1"}]})
    payload = checked_payload(
        {"action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "1"}, "connection": "eu"}
    )
    assert engine_connector().run(payload.action, payload.inputs, connection=payload.connection) == {
        "data": {"data": [{"id": "1"}]}
    }
    assert httpx_mock.get_requests()[0].headers["authorization"] == f"Zoho-oauthtoken {ACCESS_TOKEN}"


# --- Fetch All, as the engines walk it ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("yes", True), (" TRUE ", True), (False, False), ("no", False), (None, False)]
)
def test_fetch_all_is_the_paginated_actions_fetch_all_input(value: Any, expected: bool) -> None:
    from connector.manifest import bundled_manifest

    actions = bundled_manifest().actions
    inputs = {"recordType": "Leads", "fetchAll": value}
    assert fetches_all(actions["crmGetRecords"], inputs) is expected
    assert fetches_all(actions["crmGetRecord"], inputs) is False  # not paginated: there is nothing to walk


def test_a_resume_point_resumes_only_when_it_is_made_of_the_actions_inputs() -> None:
    schema: dict[str, Any] = {"properties": {"page": {}, "page_token": {}, "recordType": {}}}
    assert resumable(schema, {"page_token": "abc"})
    assert resumable(schema, {"page": 3})
    assert not resumable(schema, {"page_token": "abc", "offset": 400})  # a body member, not an input
    assert not resumable(schema, {})  # the first page: nothing to resume from
