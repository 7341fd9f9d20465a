"""End to end: the five CRM notification actions through the Python API, the CLI and `invoke`, against the sandbox
over loopback, with Zoho's notifications arriving at a real listener."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.errors import InputValidationError, ZohoAPIError
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token
from tests.e2e.test_every_action import WAYS, runner
from tests.webhooks import Listener, listening

_ids = itertools.count(1_000_000_068_001)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connection(sandbox: str, tmp_path: Path) -> dict[str, Any]:
    return with_refresh_token(sandbox, tmp_path)


@pytest.fixture(params=WAYS)
def run(
    request: pytest.FixtureRequest,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    return runner(request.param, connection, capsys, monkeypatch)


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening() as endpoint:
        yield endpoint


def deliveries(sandbox: str, channel: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"channel_id": channel, "wait": 10}
    body = httpx.get(f"{sandbox}/__sandbox/notifications/deliveries", params=params, timeout=15).json()
    assert body["idle"], body
    log: list[dict[str, Any]] = body["deliveries"]
    return log


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def test_subscribe_receive_update_and_disable(run: Any, sandbox: str, listener: Listener) -> None:
    channel = str(next(_ids))
    token = f"verify-{channel}"
    expiry = in_hours(24)
    enabled = run(
        "crmEnableNotification",
        {
            "channelId": channel,
            "events": ["Leads.all", "Contacts.create"],
            "notifyUrl": f"{listener.url}/zoho?channel={channel}",
            "token": token,
            "channelExpiry": expiry,
            "returnAffectedFieldValues": True,
        },
    )
    (result,) = enabled["watch"]
    assert (result["code"], result["status"]) == ("SUCCESS", "success")
    assert [(e["resource_name"], e["channel_expiry"], e["channel_id"]) for e in result["details"]["events"]] == [
        ("Leads", expiry, channel),
        ("Contacts", expiry, channel),
    ]
    with pytest.raises(ZohoAPIError) as caught:  # the channel already watches Leads
        run("crmEnableNotification", {"channelId": channel, "events": ["Leads.edit"], "notifyUrl": listener.url})
    assert (caught.value.status, caught.value.code) == (400, "DUPLICATE_DATA")

    listed = run("crmGetNotificationDetails", {"channelId": channel})
    assert [(w["resource_name"], w["events"], w["token"]) for w in listed["watch"]] == [
        ("Leads", ["Leads.edit", "Leads.create", "Leads.delete"], token),
        ("Contacts", ["Contacts.create"], token),
    ]
    assert listed["info"]["count"] == 2
    paged = run("crmGetNotificationDetails", {"channelId": channel, "per_page": 1, "fetchAll": True})
    assert [w["resource_name"] for w in paged["watch"]] == ["Leads", "Contacts"]
    only = run("crmGetNotificationDetails", {"channelId": channel, "module": "Contacts"})
    assert [w["resource_name"] for w in only["watch"]] == ["Contacts"]

    lead = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}})["data"][0]["details"]
    run("crmUpdateRecord", {"recordType": "Leads", "recordId": lead["id"], "fieldValues": {"Company": "Zylker"}})
    run("crmRemoveRecord", {"recordType": "Leads", "recordId": lead["id"]})
    received = [r.json() for r in listener.wait_for(3)]
    assert [(p["operation"], p["ids"], p["channel_id"], p["token"]) for p in received] == [
        ("insert", [lead["id"]], channel, token),
        ("update", [lead["id"]], channel, token),
        ("delete", [lead["id"]], channel, token),
    ]
    assert received[1]["affected_fields"] == [{lead["id"]: ["Company"]}]
    assert received[1]["affected_values"] == [{"record_id": lead["id"], "values": {"Company": "Zylker"}}]
    assert all(p["query_params"] == {"channel": channel} for p in received)
    assert [d["payload"] for d in deliveries(sandbox, channel)] == received

    # Edits of leads stop; creates go on.
    stopped = run("crmDisableSpecificNotification", {"channelId": channel, "events": ["Leads.edit"]})
    assert stopped["watch"][0]["message"] == "Successfully removed the subscribe details"
    second = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Roe"}})
    second_id = second["data"][0]["details"]["id"]
    run("crmUpdateRecord", {"recordType": "Leads", "recordId": second_id, "fieldValues": {"Company": "X"}})
    assert [d["operation"] for d in deliveries(sandbox, channel)][3:] == ["insert"]

    # Update replaces the whole channel: Contacts only now, renewed for an hour without channelExpiry.
    updated = run(
        "crmUpdateNotification",
        {"channelId": channel, "events": ["Contacts.all"], "notifyUrl": listener.url, "token": token},
    )
    (event,) = updated["watch"][0]["details"]["events"]
    assert event["resource_name"] == "Contacts"
    lasts = datetime.fromisoformat(event["channel_expiry"]) - datetime.now(UTC)
    assert timedelta(minutes=58) < lasts <= timedelta(hours=1)
    run("crmUpdateRecord", {"recordType": "Leads", "recordId": second_id, "fieldValues": {"Company": "Y"}})
    run("crmCreateRecord", {"recordType": "Contacts", "fieldValues": {"Last_Name": "Poe"}})
    assert [(d["module"], d["operation"]) for d in deliveries(sandbox, channel)][4:] == [("Contacts", "insert")]

    gone = run("crmDisableNotification", {"channelIds": [channel]})
    assert [(r["code"], r["details"]["channel_id"]) for r in gone["watch"]] == [("SUCCESS", channel)]
    run("crmCreateRecord", {"recordType": "Contacts", "fieldValues": {"Last_Name": "After"}})
    assert len(deliveries(sandbox, channel)) == 5
    with pytest.raises(ZohoAPIError) as caught:
        run("crmDisableNotification", {"channelIds": [channel]})
    assert caught.value.code == "NOT_SUBSCRIBED"
    with pytest.raises(ZohoAPIError) as caught:
        run("crmUpdateNotification", {"channelId": channel, "events": ["Leads.all"], "notifyUrl": listener.url})
    assert caught.value.code == "NOT_SUBSCRIBED"
    assert len(listener.received) == 5


def test_zoho_refusals_and_bad_inputs(run: Any, sandbox: str) -> None:
    before = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests_total"]
    bad = [
        ("crmEnableNotification", {"channelId": "1", "events": ["Leads"], "notifyUrl": "https://x.example"}, "events"),
        ("crmEnableNotification", {"channelId": "x1", "events": ["Leads.all"], "notifyUrl": "https://x"}, "channelId"),
        ("crmEnableNotification", {"channelId": "1", "events": ["Leads.all"], "notifyUrl": "x.example"}, "notifyUrl"),
        (
            "crmEnableNotification",
            {"channelId": "1", "events": ["Leads.all"], "notifyUrl": "https://x", "token": "t" * 51},
            "token",
        ),
        (
            "crmEnableNotification",
            {"channelId": "1", "events": ["Leads.all"], "notifyUrl": "https://x", "channelExpiry": "tomorrow"},
            "channelExpiry",
        ),
        ("crmDisableNotification", {"channelIds": []}, "channelIds"),
        ("crmDisableSpecificNotification", {"channelId": "1"}, "events"),
        ("crmGetNotificationDetails", {"per_page": 500}, "per_page"),
    ]
    for key, inputs, name in bad:
        with pytest.raises(InputValidationError) as caught:
            run(key, inputs)
        assert [v.input for v in caught.value.violations] == [name], key
    assert httpx.get(f"{sandbox}/__sandbox/stats").json()["requests_total"] == before  # nothing was sent

    channel = str(next(_ids))
    with pytest.raises(ZohoAPIError) as refused:  # the schema cannot know the modules: Zoho's INVALID_DATA
        run("crmEnableNotification", {"channelId": channel, "events": ["Widgets.all"], "notifyUrl": "https://x"})
    assert (refused.value.code, refused.value.details) == (
        "INVALID_DATA",
        {"api_name": "events", "json_path": "$.watch[0].events[0]"},
    )
    # More than a week ahead: Zoho keeps the channel for its default hour, and says so.
    answer = run(
        "crmEnableNotification",
        {"channelId": channel, "events": ["Deals.all"], "notifyUrl": "https://x", "channelExpiry": in_hours(24 * 8)},
    )
    (event,) = answer["watch"][0]["details"]["events"]
    assert datetime.fromisoformat(event["channel_expiry"]) - datetime.now(UTC) <= timedelta(hours=1)
    run("crmDisableNotification", {"channelIds": [channel]})
