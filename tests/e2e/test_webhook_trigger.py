"""End to end: the crmRecordEvents webhook trigger against the sandbox, whose notifications reach a real listener.

Subscribe; create, edit and delete records; every change arrives as exactly one event; a forged callback is refused;
a channel near expiry is renewed without losing an event; unsubscribing stops the callbacks. The sandbox and the
connector share one clock, so expiry is reached without waiting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.errors import WebhookRejected
from connector.sandbox import SandboxState, serve_in_thread
from tests.conftest import FakeClock
from tests.e2e.connections import with_refresh_token
from tests.webhooks import Listener, listening


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[str]:
    with serve_in_thread(SandboxState(), clock=clock) as base:
        yield base


@pytest.fixture
def connection(sandbox: str, tmp_path: Path) -> dict[str, Any]:
    return with_refresh_token(sandbox, tmp_path)


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening() as endpoint:
        yield endpoint


def delivered(sandbox: str, listener: Listener, already: int) -> list[bytes]:
    """The callbacks that reached the listener since `already`, once the sandbox has sent all it queued."""
    flushed = httpx.get(f"{sandbox}/__sandbox/notifications/deliveries", params={"wait": 10}, timeout=15).json()
    assert flushed["idle"], flushed
    return [r.body for r in listener.received[already:]]


def lead(connector: Connector, connection: dict[str, Any], name: str) -> str:
    created = connector.run(
        "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": name}}, connection=connection
    )
    return str(created["data"]["data"][0]["details"]["id"])


def events_of(connector: Connector, subscription: dict[str, Any], bodies: list[bytes], connection: Any) -> list[Any]:
    return [e for body in bodies for e in connector.handle_webhook(subscription, {}, body, connection=connection)]


def test_every_change_arrives_once_and_unsubscribing_stops_them(
    connector: Connector, connection: dict[str, Any], sandbox: str, listener: Listener
) -> None:
    inputs = {"recordType": "Leads", "fetchRecords": True}
    subscription = connector.subscribe("crmRecordEvents", inputs, connection=connection, notify_url=listener.url)
    assert json.loads(json.dumps(subscription)) == subscription

    first = lead(connector, connection, "Hook One")
    second = lead(connector, connection, "Hook Two")
    connector.run(
        "crmUpdateRecord",
        {"recordType": "Leads", "recordId": first, "fieldValues": {"Email": "one@example.com"}},
        connection=connection,
    )
    connector.run("crmRemoveRecord", {"recordType": "Leads", "recordId": second}, connection=connection)
    events = events_of(connector, subscription, delivered(sandbox, listener, 0), connection)
    assert [(e["operation"], e["id"]) for e in events] == [
        ("create", first),
        ("create", second),
        ("edit", first),
        ("delete", second),
    ]
    assert "Email" in events[2]["affected_fields"]
    assert events[2]["record"]["Email"] == "one@example.com" and events[3]["record"] is None

    connector.unsubscribe(subscription, connection=connection)
    connector.unsubscribe(subscription, connection=connection)  # closing twice is fine
    seen = len(listener.received)
    lead(connector, connection, "After")
    assert delivered(sandbox, listener, seen) == []


def test_a_forged_callback_is_refused(connector: Connector, connection: dict[str, Any], listener: Listener) -> None:
    subscription = connector.subscribe(
        "crmRecordEvents", {"recordType": "Leads"}, connection=connection, notify_url=listener.url
    )
    genuine = {
        "server_time": 0,
        "module": "Leads",
        "ids": ["1"],
        "operation": "insert",
        "channel_id": subscription["channel_id"],
        "token": "guessed-" + subscription["token"][8:],
    }
    with pytest.raises(WebhookRejected) as caught:
        connector.handle_webhook(subscription, {}, json.dumps(genuine).encode(), connection=connection)
    assert caught.value.reason == "forged"


def test_renewal_near_expiry_loses_no_event(
    connector: Connector, connection: dict[str, Any], sandbox: str, listener: Listener, clock: FakeClock
) -> None:
    subscription = connector.subscribe(
        "crmRecordEvents", {"recordType": "Leads"}, connection=connection, notify_url=listener.url
    )
    clock.now += 86400 - 1800  # inside the renewal window, half an hour before the channel would expire
    before = lead(connector, connection, "Before renewal")
    renewed = connector.renew(subscription, connection=connection)
    assert renewed["channel_id"] == subscription["channel_id"] and renewed["expires_at"] > subscription["expires_at"]
    during = lead(connector, connection, "During renewal")
    clock.now += 3600  # past the first expiry: only the renewal keeps the channel alive
    after = lead(connector, connection, "After first expiry")
    bodies = delivered(sandbox, listener, 0)
    events = events_of(connector, renewed, bodies, connection)
    assert [(e["operation"], e["id"]) for e in events] == [("create", before), ("create", during), ("create", after)]

    with pytest.raises(WebhookRejected):  # the old subscription's life is over: its view of a new callback is stale
        connector.handle_webhook(subscription, {}, bodies[-1], connection=connection)


def test_a_channel_zoho_let_expire_is_opened_again_by_renew(
    connector: Connector, connection: dict[str, Any], sandbox: str, listener: Listener, clock: FakeClock
) -> None:
    subscription = connector.subscribe(
        "crmRecordEvents", {"recordType": "Leads"}, connection=connection, notify_url=listener.url
    )
    httpx.post(f"{sandbox}/__sandbox/notifications/expire", json={"channel_id": subscription["channel_id"]})
    renewed = connector.renew(subscription, connection=connection)
    created = lead(connector, connection, "Reopened")
    events = events_of(connector, renewed, delivered(sandbox, listener, 0), connection)
    assert [(e["operation"], e["id"]) for e in events] == [("create", created)]


def test_webhook_listen_prints_events_and_unsubscribes_on_sigterm(tmp_path: Path) -> None:
    with serve_in_thread(SandboxState()) as base:
        connection = with_refresh_token(base, tmp_path)
        conn_file = tmp_path / "connection.json"
        conn_file.write_text(json.dumps(connection))
        port = _free_port()
        argv = [sys.executable, "-m", "connector.cli", "webhook", "listen", "--trigger", "crmRecordEvents"]
        argv += ["--inputs", '{"recordType": "Leads"}', "--connection", f"@{conn_file}", "--port", str(port)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
        try:
            assert process.stderr is not None and process.stdout is not None
            status = json.loads(process.stderr.readline())
            assert status["event"] == "subscribed" and "token" not in status
            with Connector.load() as connector:
                created = lead(connector, connection, "Listened")
            event = json.loads(process.stdout.readline())
            assert (event["operation"], event["module"], event["id"]) == ("create", "Leads", created)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert '"unsubscribed"' in err and connection["refresh_token"] not in err
        channels = httpx.get(f"{base}/__sandbox/notifications/channels").json()
        assert all(c["channel_id"] != status["channel_id"] for c in channels.get("channels", [])), channels


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
