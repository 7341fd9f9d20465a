"""End to end: the crmRecordEvents webhook trigger against the sandbox, whose notifications reach a real listener.

Subscribe; create, edit and delete records; every change arrives as exactly one event; a forged callback is refused;
a channel near expiry is renewed without losing an event; unsubscribing stops the callbacks. The sandbox and the
connector share one clock, so expiry is reached without waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector, webhook_cli
from connector.errors import WebhookRejected
from connector.sandbox import SandboxState, serve_in_thread
from tests.conftest import FakeClock
from tests.e2e.connections import with_refresh_token
from tests.webhooks import Listener, listening

ROOT = Path(__file__).resolve().parents[2]


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


def test_renewing_early_and_again_keeps_one_channel_and_each_event_once(
    connector: Connector, connection: dict[str, Any], sandbox: str, listener: Listener, clock: FakeClock
) -> None:
    """Renewing is idempotent: long before it is due, and repeated (a retry, two workers), it leaves one channel with
    the same id and token, and every change still arrives once, verifiable with any of the stored subscriptions."""
    subscription = connector.subscribe(
        "crmRecordEvents", {"recordType": "Leads"}, connection=connection, notify_url=listener.url
    )
    clock.now += 60
    early = connector.renew(subscription, connection=connection)
    again = connector.renew(subscription, connection=connection)  # the same stored subscription, renewed twice
    assert early == again
    assert (early["channel_id"], early["token"]) == (subscription["channel_id"], subscription["token"])
    channels = httpx.get(f"{sandbox}/__sandbox/notifications/channels").json()["channels"]
    assert [c["channel_id"] for c in channels] == [subscription["channel_id"]]
    created = lead(connector, connection, "Renewed early")
    bodies = delivered(sandbox, listener, 0)
    for held in (subscription, early):
        events = events_of(connector, held, bodies, connection)
        assert [(e["operation"], e["id"]) for e in events] == [("create", created)]


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


def test_webhook_listen_renews_the_channel_when_due_and_again_after_a_failure(
    connector: Connector,
    connection: dict[str, Any],
    sandbox: str,
    listener: Listener,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The renewer of `webhook listen`, on the sandbox's clock: it sleeps until the subscription's renew_after (an
    hour before the channel expires) and renews, then does the same for the renewed channel; a renewal Zoho refuses
    is tried again a minute later, well before the expiry. The channel then outlives its first expiry."""
    listen = webhook_cli.Listener(connector, "crmRecordEvents", {"recordType": "Leads"}, connection, listener.url)
    inputs = {"recordType": "Leads"}
    first = connector.subscribe("crmRecordEvents", inputs, connection=connection, notify_url=listener.url)
    listen.subscription = first
    held: list[dict[str, Any]] = [first]  # the subscription after each renewal
    naps: list[tuple[float, float]] = []  # (when, how long) the renewer slept

    async def renew_twice() -> None:
        done = asyncio.Event()

        async def sleep(seconds: float) -> None:
            naps.append((clock.now, seconds))
            if listen.subscription is not held[-1]:
                held.append(listen.subscription)  # type: ignore[arg-type]
            if len(naps) == 2:  # the first renewal failed: Zoho answers again from now on
                httpx.delete(f"{sandbox}/__sandbox/faults").raise_for_status()
            if len(held) == 3:
                done.set()
                await asyncio.Event().wait()  # asleep until cancelled
            clock.now += seconds
            if len(naps) == 1:  # the first renewal meets a failing Zoho
                faults = {"fail_next": 50, "fail_kind": "5xx", "fault_targets": ["crm"]}
                httpx.post(f"{sandbox}/__sandbox/faults", json=faults).raise_for_status()

        listen._sleep = sleep
        renewer = asyncio.create_task(listen._renew_forever())
        await asyncio.wait_for(done.wait(), 60)
        renewer.cancel()

    asyncio.run(renew_twice())
    # stderr holds the listener's JSON status lines and, between them, the connector's retry lines
    lines = capsys.readouterr().err.splitlines()
    statuses = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert statuses == ["renew_failed", "renewed", "renewed"]
    start = _epoch(first["created_at"])
    assert naps[0] == (start, _epoch(first["renew_after"]) - start)  # asleep until renew_after, then renewing
    assert naps[1][1] == 60  # the renewal failed: again in a minute
    for before, after in itertools.pairwise(held):
        renewed_at = _epoch(after["expires_at"]) - 86400  # each renewal asks for a day from its moment
        assert _epoch(before["renew_after"]) <= renewed_at < _epoch(before["expires_at"]) - 3000
        assert (after["channel_id"], after["token"]) == (first["channel_id"], first["token"])
    channels = httpx.get(f"{sandbox}/__sandbox/notifications/channels").json()["channels"]
    assert [(c["channel_id"], c["expired"]) for c in channels] == [(first["channel_id"], False)]

    clock.now = _epoch(held[1]["expires_at"]) + 60  # the first two expiries are past: only the renewals hold it
    created = lead(connector, connection, "After renewals")
    events = events_of(connector, held[-1], delivered(sandbox, listener, 0), connection)
    assert [(e["operation"], e["id"]) for e in events] == [("create", created)]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Listen:
    """`zoho-connector webhook listen` in its own process, on a sandbox in this one."""

    def __init__(self, base: str, connection: dict[str, Any], tmp_path: Path) -> None:
        conn_file = tmp_path / "connection.json"
        conn_file.write_text(json.dumps(connection))
        self.port = _free_port()
        argv = [sys.executable, "-m", "connector.cli", "webhook", "listen", "--trigger", "crmRecordEvents"]
        argv += ["--inputs", '{"recordType": "Leads"}', "--connection", f"@{conn_file}", "--port", str(self.port)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )

    def status(self) -> Any:
        assert self.process.stderr is not None
        return json.loads(self.process.stderr.readline())

    def event(self) -> Any:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def stop(self, signum: int) -> tuple[str, str]:
        self.process.send_signal(signum)
        return self.process.communicate(timeout=30)


SIGNALS = [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGTERM, id="sigterm")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_webhook_listen_prints_events_refuses_forgeries_and_unsubscribes_on_a_signal(
    tmp_path: Path, signum: int
) -> None:
    state = SandboxState()
    with serve_in_thread(state) as base:
        connection = with_refresh_token(base, tmp_path)
        listen = Listen(base, connection, tmp_path)
        try:
            status = listen.status()
            assert status["event"] == "subscribed" and "token" not in status
            with Connector.load() as connector:
                created = lead(connector, connection, "Listened")
            event = listen.event()
            assert (event["operation"], event["module"], event["id"]) == ("create", "Leads", created)
            forged = {"module": "Leads", "ids": ["1"], "operation": "insert", "channel_id": status["channel_id"]}
            answer = httpx.post(f"http://127.0.0.1:{listen.port}/", json={**forged, "token": "x" * 32}, timeout=15)
            assert answer.status_code == 403
            assert listen.status() == {"event": "rejected", "reason": "forged"}
        finally:
            out, err = listen.stop(signum)
        assert listen.process.returncode == 0, err
        assert out == ""  # the forged callback printed nothing
        assert json.loads(err.splitlines()[-1]) == {"event": "unsubscribed", "channel_id": status["channel_id"]}
        assert connection["refresh_token"] not in err
        assert state.watch.get(status["channel_id"]) in (None, {})


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_while_webhook_listen_subscribes_still_closes_the_channel(tmp_path: Path, signum: int) -> None:
    """Ctrl-C or SIGTERM that comes while Zoho is opening the channel (its answer held back) is not lost: the
    command ends once the channel is open, and closes it, rather than leaving it to expire a day later."""
    state = SandboxState()
    with serve_in_thread(state) as base:
        connection = with_refresh_token(base, tmp_path)
        slow = {"slow_reply_ms": 1500, "fault_targets": ["crm"]}
        httpx.post(f"{base}/__sandbox/faults", json=slow).raise_for_status()
        listen = Listen(base, connection, tmp_path)
        try:
            _until(lambda: bool(state.watch), "the channel opened")  # opened; its answer is on its way back
        except BaseException:
            listen.stop(signal.SIGKILL)
            raise
        httpx.delete(f"{base}/__sandbox/faults").raise_for_status()
        (channel,) = state.watch
        _, err = listen.stop(signum)
        assert listen.process.returncode == 0, err
        assert json.loads(err.splitlines()[-1]) == {"event": "unsubscribed", "channel_id": channel}
        assert state.watch.get(channel) in (None, {})


def _until(done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait (on an Event, in short steps) until `done()`; AssertionError naming `what` after `timeout` seconds."""
    deadline, tick = time.monotonic() + timeout, threading.Event()
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        tick.wait(0.01)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
