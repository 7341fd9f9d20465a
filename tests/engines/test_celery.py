"""The connector on a real Celery worker: RabbitMQ as broker, Redis as result backend, the sandbox as Zoho.

The worker is `celery -A connector.engines.celery worker --pool=prefork -c 2` in its own process group, with a
connections file naming the sandbox; payloads carry only that name. Skipped when RabbitMQ or Redis is not
reachable, except with CI=true.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from connector.errors import TransientError
from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState
from tests.holds import Hold, held_sandbox
from tests.servers import require

pytest.importorskip("celery", reason="the celery extra is not installed: pip install 'zoho-connector[celery]'")

from celery.result import AsyncResult

from connector.engines.celery import ZohoTaskError, app, run_action

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BROKER = str(app.conf.broker_url)
QUEUE = str(app.conf.task_default_queue)
TOKEN_SHAPED = re.compile(r"1000\.[0-9a-f]{16,}\.[0-9a-f]{16,}")


# --- servers and the worker -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def brokers() -> None:
    require("RabbitMQ", "127.0.0.1", 5672)
    require("Redis", "127.0.0.1", 6379)


@pytest.fixture(scope="module")
def held_sandbox_() -> Iterator[tuple[str, SandboxState, Hold]]:
    state = SandboxState()
    with held_sandbox(state) as (base, hold):
        yield base, state, hold


@pytest.fixture(scope="module")
def sandbox(held_sandbox_: tuple[str, SandboxState, Hold]) -> tuple[str, SandboxState]:
    base, state, _ = held_sandbox_
    return base, state


@pytest.fixture
def hold(held_sandbox_: tuple[str, SandboxState, Hold]) -> Iterator[Hold]:
    """The sandbox's slowed answers held back on demand (tests/holds.py); released after the test."""
    _, _, holding = held_sandbox_
    yield holding
    holding.release()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery")


@pytest.fixture(scope="module")
def secrets(sandbox: tuple[str, SandboxState], workdir: Path) -> dict[str, str]:
    """The connections file the workers read; returns the secrets it holds, which no message may carry."""
    base, _ = sandbox
    tokens = httpx.post(f"{base}/__sandbox/tokens", json={}).json()
    connection = {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": tokens["refresh_token"],
        "accounts_url": base,
        "api_domain": base,
        "token_store": f"sqlite:///{workdir / 'tokens.db'}",  # shared by the workers: a poll's state and lock too
        "store_url": f"{base}/api/v1/partner",
        "retry_backoff_seconds": 1,
        "max_retries": 4,
    }
    memory = {**connection, "token_store": "memory:"}  # one process's tokens: no place for a poll's state
    (workdir / "connections.json").write_text(json.dumps({"sandbox": connection, "sandbox-memory": memory}))
    return {"client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": tokens["refresh_token"]}


class Worker:
    """A Celery worker in its own process group, logging to a file."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.log = workdir / f"{name}.log"
        self.name = name
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ZOHO_CONNECTIONS": str(workdir / "connections.json"),
            "ZOHO_CONNECTOR_HOME": str(workdir / "home"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [  # the wrapper the README gives: `celery -A connector.engines.celery worker` once connections are set
                    str(BIN / "zoho-connector"),
                    "celery",
                    "worker",
                    "--pool=prefork",
                    "-c",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "info",
                    "-n",
                    f"{self.name}-{uuid.uuid4().hex[:6]}@%h",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while " ready." not in self.log.read_bytes()[offset:].decode(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        return self

    def pool(self) -> list[int]:
        """The pids of the worker's pool processes."""
        assert self.process is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def kill(self) -> None:
        """SIGKILL to the whole worker: nothing is acknowledged, the broker gets the message back."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def worker(secrets: dict[str, str], workdir: Path) -> Iterator[Worker]:
    _purge()
    started = Worker(workdir, "worker").start()
    yield started
    started.stop()
    _delete_queue()


def _purge() -> None:
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[QUEUE].bind(connection.default_channel)
        queue.declare()
        queue.purge()


def _delete_queue() -> None:
    with app.connection_for_write() as connection:
        app.amqp.queues[QUEUE].bind(connection.default_channel).delete()


@pytest.fixture
def faults(sandbox: tuple[str, SandboxState]) -> Iterator[Callable[..., None]]:
    base, _ = sandbox

    def inject(**settings: Any) -> None:
        httpx.post(f"{base}/__sandbox/faults", json=settings).raise_for_status()

    httpx.delete(f"{base}/__sandbox/stats")
    yield inject
    httpx.delete(f"{base}/__sandbox/faults")


def stats(base: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{base}/__sandbox/stats").json()
    return result


def payload(action: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"action": action, "inputs": inputs, "connection": "sandbox"}


def create_lead(name: str, **inputs: Any) -> str:
    created = run_action.delay(
        payload("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": name}, **inputs})
    )
    lead: str = created.get(timeout=60)["data"]["data"][0]["details"]["id"]
    return lead


def leads_named(state: SandboxState, name: str) -> list[str]:
    return [rid for rid, record in state.records.get("Leads", {}).items() if record.get("Last_Name") == name]


# --- one action -------------------------------------------------------------------------------------------------


def test_an_action_runs_on_the_worker_by_connection_name(worker: Worker, sandbox: tuple[str, SandboxState]) -> None:
    lead = create_lead("Celery")
    got = run_action.delay(payload("crmGetRecord", {"recordType": "Leads", "recordId": lead})).get(timeout=60)
    assert got["data"]["data"][0]["Last_Name"] == "Celery"
    assert leads_named(sandbox[1], "Celery") == [lead]


def test_a_zoho_error_fails_the_task_with_zohos_code_and_is_not_retried(
    worker: Worker, sandbox: tuple[str, SandboxState], faults: Callable[..., None]
) -> None:
    base, _ = sandbox
    result = run_action.delay(payload("crmGetRecord", {"recordType": "Leads", "recordId": "404"}))
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=60)
    error = caught.value.error
    assert (error["type"], error["status"], error["retryable"]) == ("not_found", 204, False)
    assert AsyncResult(result.id, app=app).state == "FAILURE"
    assert stats(base)["requests"]["GET /crm/v8/Leads/404"] == 1


def test_a_connection_given_in_full_is_refused_before_it_reaches_the_broker(worker: Worker) -> None:
    from connector.errors import InputValidationError

    connection = {"refresh_token": "1000.aaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb", "client_secret": "s3cret"}
    with pytest.raises(InputValidationError, match="NAME of a connection") as caught:
        run_action.delay({"action": "crmGetRecord", "inputs": {}, "connection": connection})
    assert "s3cret" not in str(caught.value)
    assert "1000.aaaa" not in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "least_seconds"),
    [
        ({"fail_kind": "429", "retry_after": 1}, 2.0),  # Zoho's Retry-After: 1 s, twice
        ({"fail_kind": "5xx"}, 1.5),  # no Retry-After: the connection's backoff, 1 s doubling, equal jitter
        # a 503 saying when to come back: 2 s, twice (the backoff above waits at most 1 + 2 s)
        ({"fail_kind": "5xx", "status_5xx": 503, "retry_after": 2}, 4.0),
    ],
    ids=["429-retry-after", "5xx-backoff", "5xx-retry-after"],
)
def test_injected_failures_are_retried_by_celery_not_by_the_connector(
    worker: Worker,
    sandbox: tuple[str, SandboxState],
    faults: Callable[..., None],
    fault: dict[str, Any],
    least_seconds: float,
) -> None:
    base, _ = sandbox
    lead = create_lead("Retried")
    httpx.delete(f"{base}/__sandbox/stats")
    faults(fail_next=2, **fault)
    started = time.monotonic()
    result = run_action.delay(payload("crmGetRecord", {"recordType": "Leads", "recordId": lead}))
    got = result.get(timeout=60)
    elapsed = time.monotonic() - started
    assert got["data"]["data"][0]["id"] == lead
    seen = stats(base)
    # One request per task run: two failed attempts, then the one that succeeded; the connector retried nothing.
    assert seen["requests"][f"GET /crm/v8/Leads/{lead}"] == 3
    assert sum(seen["faults_injected"].values()) == 2
    assert elapsed >= least_seconds
    assert f"zoho.run_action[{result.id}]" in worker.text()
    assert len(re.findall(rf"zoho.run_action\[{result.id}\] \w+: retrying in", worker.text())) == 2


def test_retries_stop_at_the_actions_max_retries(
    worker: Worker, sandbox: tuple[str, SandboxState], faults: Callable[..., None]
) -> None:
    base, _ = sandbox
    lead = create_lead("Exhausted")
    httpx.delete(f"{base}/__sandbox/stats")
    faults(fail_next=10, fail_kind="429", retry_after=1)
    result = run_action.delay(payload("crmGetRecord", {"recordType": "Leads", "recordId": lead, "maxRetries": 1}))
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=60)
    assert caught.value.error["type"] == "rate_limited"
    assert stats(base)["requests"][f"GET /crm/v8/Leads/{lead}"] == 2


@pytest.mark.parametrize("loss", ["5xx", "timeout"])
def test_a_create_whose_response_is_lost_is_not_sent_again(
    worker: Worker, sandbox: tuple[str, SandboxState], faults: Callable[..., None], loss: str
) -> None:
    """A 5xx, or an answer that never came in time (the sandbox created the record, then held its answer back past
    the call's timeout): the create may have happened, so the task fails rather than re-sending it."""
    base, state = sandbox
    name = f"Lost-{loss}"
    inputs: dict[str, Any] = {"recordType": "Leads", "fieldValues": {"Last_Name": name}}
    if loss == "5xx":
        faults(fail_next=1, fail_kind="5xx")
    else:
        faults(slow_reply_ms=2500)
        inputs["timeout"] = 1000
    result = run_action.delay(payload("crmCreateRecord", inputs))
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=60)
    error = caught.value.error
    assert error["type"] == "transient"
    assert error["may_have_acted"] is True
    assert error["retryable"] is False
    # the timed-out create happened, once; the injected 5xx answered before creating anything
    assert len(leads_named(state, name)) == (1 if loss == "timeout" else 0)
    assert stats(base)["requests"]["POST /crm/v8/Leads"] == 1
    assert "retrying in" not in _lines_of(worker, result.id)


def _lines_of(worker: Worker, task_id: str) -> str:
    return "\n".join(line for line in worker.text().splitlines() if task_id in line)


# --- workers that die ---------------------------------------------------------------------------------------------


@pytest.fixture
def own_worker(secrets: dict[str, str], workdir: Path, worker: Worker) -> Iterator[Callable[[], Worker]]:
    """Workers a test may kill; the module's worker is stopped meanwhile so that the killed one holds the task."""
    worker.stop()
    started: list[Worker] = []

    def start() -> Worker:
        started.append(Worker(workdir, f"own-{len(started)}").start())
        return started[-1]

    yield start
    for each in started:
        each.stop()
    worker.start()


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("kill", ["pool process", "whole worker"])
def test_a_worker_killed_mid_fetch_all_gives_the_task_back_and_it_resumes_without_losing_or_repeating_records(
    own_worker: Callable[[], Worker],
    sandbox: tuple[str, SandboxState],
    faults: Callable[..., None],
    hold: Hold,
    kill: str,
) -> None:
    base, state = sandbox
    module = "Contacts"
    httpx.post(f"{base}/__sandbox/seed", json={"module": module, "count": 2400 - len(state.records[module])})
    expected = set(state.records[module])
    assert len(expected) == 2400
    faults(slow_ms=150)  # 12 pages of 200
    worker = own_worker()
    one = {"recordType": module, "fields": ["Last_Name"], "per_page": 1}
    run_action.delay(payload("crmGetRecords", one)).get(timeout=60)  # an access token is in the store now
    httpx.delete(f"{base}/__sandbox/stats")
    inputs = {"recordType": module, "fields": ["Last_Name"], "per_page": 200, "fetchAll": True}
    pages = f"GET /crm/v8/{module}"
    hold.hold_from(4, pages)  # page 4's answer waits until the worker is dead: killed midway, whatever the load
    result = run_action.delay(payload("crmGetRecords", inputs))
    _wait_for(hold.holding.is_set, "the walk to reach page 4")
    if kill == "whole worker":
        worker.kill()
        hold.release()
        worker = own_worker()  # the broker hands the unacknowledged message to the next worker
    else:
        for pid in worker.pool():
            os.kill(pid, signal.SIGKILL)  # the worker's main process gives the message back (reject_on_worker_lost)
        hold.release()
    got = result.get(timeout=120)
    ids = [record["id"] for record in got["data"]["data"]]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    fetched = stats(base)["requests"][pages]
    # The redelivery resumed from the last checkpoint: of the pages before the kill only the one in flight is
    # fetched again (a walk that started over would fetch at least 4 + 12).
    assert fetched <= 12 + 1, f"{fetched} page requests: the walk started over"
    assert f"zoho.run_action[{result.id}] crmGetRecords: Fetch All resumes after page" in worker.text()
    assert _checkpoint_keys(result.id) == []  # deleted once the answer was made
    faults(slow_ms=0)
    whole = run_action.delay(payload("crmGetRecords", inputs)).get(timeout=120)
    assert got == whole  # the same answer, in the same order, as a walk nothing interrupted
    # Every worker process started since (the pool's new processes, or a new worker) took the access token the
    # token store holds: workers share tokens through the connection's store, and none refreshed on its own.
    assert stats(base)["token_grants_total"] == 0


def result_backend() -> Any:
    """The result backend, a Redis key-value store (typed as Celery's base Backend)."""
    return app.backend


def _checkpoint_keys(task_id: str) -> list[str]:
    import redis

    backend = redis.Redis.from_url(str(app.conf.result_backend), decode_responses=True)
    return sorted(backend.scan_iter(match=f"zoho-fetch-all:{task_id}*", count=1000))


@pytest.fixture
def in_process(secrets: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's engine connector on the workers' connections file: tasks run here with `apply`."""
    from connector.engines._common import reset_engine_connector

    monkeypatch.setenv("ZOHO_CONNECTIONS", str(workdir / "connections.json"))
    reset_engine_connector()
    yield
    reset_engine_connector()


def _break_after_checkpoints(monkeypatch: pytest.MonkeyPatch, base: str, count: int) -> list[str]:
    """Makes the next page request fail (a 5xx, as a worker dying would end it) once `count` checkpoint headers
    are saved. Returns the keys saved."""
    saved: list[str] = []
    original = result_backend().set

    def set_and_break(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        done = original(key, value, *args, **kwargs)
        if key.startswith("zoho-fetch-all:"):
            saved.append(key)
            headers = sum(":" not in k.removeprefix("zoho-fetch-all:") for k in saved)
            if ":" not in key.removeprefix("zoho-fetch-all:") and headers == count:
                httpx.post(f"{base}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "5xx"}).raise_for_status()
        return done

    monkeypatch.setattr(result_backend(), "set", set_and_break)
    return saved


FETCH_ALL_DEALS = {"recordType": "Deals", "fields": ["Deal_Name"], "per_page": 2, "fetchAll": True, "sort_by": "id"}


@pytest.fixture
def deals(sandbox: tuple[str, SandboxState], faults: Callable[..., None]) -> list[str]:
    """Nine deals, five pages of two."""
    base, state = sandbox
    missing = 9 - len(state.records.get("Deals", {}))
    if missing:
        httpx.post(f"{base}/__sandbox/seed", json={"module": "Deals", "count": missing}).raise_for_status()
    assert len(state.records["Deals"]) == 9
    httpx.delete(f"{base}/__sandbox/stats")
    return sorted(state.records["Deals"])


def test_a_fetch_all_run_again_for_the_same_task_resumes_from_its_checkpoint_and_deletes_it(
    in_process: None, sandbox: tuple[str, SandboxState], deals: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.engines import celery as engine
    from connector.engines._common import checked_payload, engine_connector

    base, _ = sandbox
    whole = engine_connector().run("crmGetRecords", FETCH_ALL_DEALS, connection="sandbox")
    httpx.delete(f"{base}/__sandbox/stats")
    saved = _break_after_checkpoints(monkeypatch, base, 2)
    task_id = str(uuid.uuid4())
    task: Any = SimpleNamespace(request=SimpleNamespace(id=task_id, retries=0), backend=result_backend())  # a delivery
    checked = checked_payload(payload("crmGetRecords", FETCH_ALL_DEALS))
    with pytest.raises(TransientError) as died:
        engine._fetch_all(task_id, checked, engine._FetchAllProgress.of(task, checked))
    assert died.value.retryable
    prefix = f"zoho-fetch-all:{task_id}"
    # a page, then the header counting it; checkpoints written as soon as the next page is known to exist
    assert saved == [f"{prefix}:0", prefix, f"{prefix}:1", prefix]
    assert _checkpoint_keys(task_id) == [prefix, f"{prefix}:0", f"{prefix}:1"]
    header = json.loads(result_backend().get(prefix))
    assert (header["v"], header["pages"], header["count"], list(header["resume"])) == (1, 2, 4, ["page_token"])
    assert set(json.loads(result_backend().get(f"{prefix}:1"))[0]) == {"id", "Deal_Name"}  # records, nothing else
    assert stats(base)["requests"]["GET /crm/v8/Deals"] == 2 + 1  # pages 1-2, then page 3 failed

    again = engine._fetch_all(task_id, checked, engine._FetchAllProgress.of(task, checked))
    assert again == whole  # the answer Connector.run gives: every record once, in order, the summary's count
    assert [r["id"] for r in again["data"]["data"]] == [r["id"] for r in whole["data"]["data"]]
    assert again["data"]["info"]["count"] == 9
    assert stats(base)["requests"]["GET /crm/v8/Deals"] == 2 + 1 + 3  # pages 3-5: nothing before the failure again
    assert _checkpoint_keys(task_id) == []


def test_a_fetch_all_that_cannot_resume_starts_over_and_leaves_no_checkpoint(
    in_process: None, sandbox: tuple[str, SandboxState], deals: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An action whose resume point is not its inputs keeps no checkpoint: its redelivery walks from the first
    page. A header such an action left (or one of another call) is deleted, not used."""
    from connector.engines import celery as engine
    from connector.engines._common import checked_payload
    from connector.runner import Stream

    base, _ = sandbox
    task_id = str(uuid.uuid4())
    prefix = f"zoho-fetch-all:{task_id}"
    checked = checked_payload(payload("crmGetRecords", FETCH_ALL_DEALS))
    task: Any = SimpleNamespace(request=SimpleNamespace(id=task_id, retries=0), backend=result_backend())
    progress = engine._FetchAllProgress.of(task, checked)
    assert progress is not None
    stale = {"v": 1, "call": progress.call, "resume": {"cursor": "abc"}, "pages": 1, "count": 2}
    result_backend().set(prefix, json.dumps(stale))
    result_backend().set(f"{prefix}:0", json.dumps([{"id": "stale-1"}, {"id": "stale-2"}]))
    moves = iter(range(1000))
    monkeypatch.setattr(Stream, "resume", lambda self: {"cursor": next(moves)})  # not an input of crmGetRecords
    sets: list[str] = []
    original = result_backend().set

    def noting(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        sets.append(key)
        return original(key, value, *args, **kwargs)

    monkeypatch.setattr(result_backend(), "set", noting)

    answer = engine._fetch_all(task_id, checked, progress)
    assert sorted(r["id"] for r in answer["data"]["data"]) == deals  # from the first page: no stale record
    assert stats(base)["requests"]["GET /crm/v8/Deals"] == 5
    assert sets == [] and _checkpoint_keys(task_id) == []


def test_a_fetch_all_that_fails_for_good_deletes_its_checkpoint_and_one_retried_keeps_it(
    in_process: None, sandbox: tuple[str, SandboxState], deals: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retryable failure mid-walk is retried by Celery with the same task id: the checkpoint stays for it.
    The task failing for good (its retries spent) leaves nothing behind."""
    base, _ = sandbox
    retried, spent = str(uuid.uuid4()), str(uuid.uuid4())
    _break_after_checkpoints(monkeypatch, base, 1)
    # apply() runs the task here; retries past the connection's max_retries (4) make the failure final.
    final = run_action.apply((payload("crmGetRecords", FETCH_ALL_DEALS),), task_id=spent, retries=4)
    failure: Any = final.result
    assert final.failed() and failure.error["type"] == "transient"
    assert _checkpoint_keys(spent) == []
    _break_after_checkpoints(monkeypatch, base, 1)
    monkeypatch.setattr(run_action, "retry", lambda **_: RuntimeError("retried"))  # as Celery would re-send it
    with pytest.raises(RuntimeError, match="retried"):
        run_action.apply((payload("crmGetRecords", FETCH_ALL_DEALS),), task_id=retried, throw=True)
    assert _checkpoint_keys(retried) == [f"zoho-fetch-all:{retried}", f"zoho-fetch-all:{retried}:0"]
    for key in _checkpoint_keys(retried):
        result_backend().delete(key)


def test_a_create_redelivered_after_its_worker_died_is_not_sent_twice(
    own_worker: Callable[[], Worker], sandbox: tuple[str, SandboxState], faults: Callable[..., None]
) -> None:
    """Late acks hand a dead worker's task to another: a create that had started may have reached Zoho, so the
    second run fails in doubt instead of creating the record again."""
    base, state = sandbox
    worker = own_worker()
    faults(slow_reply_ms=3000)
    result = run_action.delay(payload("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Once"}}))
    _wait_for(lambda: len(leads_named(state, "Once")) == 1, "the create to be made (its answer is held back)")
    worker.kill()
    own_worker()
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=60)
    assert caught.value.error["may_have_acted"] is True
    assert "not sent again" in caught.value.error["message"]
    assert len(leads_named(state, "Once")) == 1
    assert stats(base)["requests"]["POST /crm/v8/Leads"] == 1


def test_a_create_delivered_again_after_it_finished_returns_its_result_and_sends_nothing(
    worker: Worker, sandbox: tuple[str, SandboxState], faults: Callable[..., None]
) -> None:
    """The message of a create that had finished comes again (its worker died before acknowledging it): the
    stored result is the answer, and Zoho is not called."""
    base, state = sandbox
    task_id = str(uuid.uuid4())
    stored = {"data": {"data": [{"code": "SUCCESS", "details": {"id": "5843166000000099999"}}]}}
    app.backend.store_result(task_id, stored, "SUCCESS")
    inputs = {"recordType": "Leads", "fieldValues": {"Last_Name": "Again"}}
    run_action.apply_async((payload("crmCreateRecord", inputs),), task_id=task_id)
    _wait_for(lambda: f"zoho.run_action[{task_id}] succeeded" in worker.text(), "the worker to run the task")
    assert AsyncResult(task_id, app=app).get(timeout=10) == stored
    assert leads_named(state, "Again") == []
    assert "POST /crm/v8/Leads" not in stats(base)["requests"]


# --- automations ------------------------------------------------------------------------------------------------

AUTOMATION = """\
name: celery-leads
description: three leads, each marked contacted, then the first read back
trigger: {schedule: {cron: "0 7 * * 1-5"}}
steps:
  - name: created
    action: crmCreateRecords
    inputs:
      recordType: Leads
      records: [{Last_Name: Chain-1}, {Last_Name: Chain-2}, {Last_Name: Chain-3}]
  - name: contacted
    action: crmUpdateRecord
    for_each: ${steps.created.data}
    inputs: {recordType: Leads, recordId: "${item.id}", fieldValues: {Lead_Status: Contacted}}
  - name: first
    action: crmGetRecord
    inputs: {recordType: Leads, recordId: "${steps.created.data.0.id}", fields: [Last_Name, Lead_Status]}
"""

FAILING = """\
name: celery-failing
trigger: {schedule: {cron: "0 7 * * *"}}
steps:
  - name: created
    action: crmCreateRecords
    inputs: {recordType: Leads, records: [{Last_Name: Fails-1}, {Last_Name: Fails-2}]}
  - name: missing
    action: crmGetRecord
    for_each: ${steps.created.data}
    inputs: {recordType: Leads, recordId: "404"}
  - name: never
    action: crmGetRecord
    inputs: {recordType: Leads, recordId: "${steps.created.data.0.id}"}
"""


def _file(workdir: Path, name: str, text: str) -> Path:
    path = workdir / "automations" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _chain_leads(state: SandboxState) -> dict[str, Any]:
    return {r["Last_Name"]: r for r in state.records["Leads"].values() if str(r.get("Last_Name")).startswith("Chain-")}


def test_an_automation_of_several_steps_runs_as_a_chain_and_a_chord(
    worker: Worker, sandbox: tuple[str, SandboxState], workdir: Path, faults: Callable[..., None]
) -> None:
    from connector.engines.celery import automation_document, run_automation

    base, state = sandbox
    before = len(_chain_leads(state))
    faults(fail_next=2, fail_kind="429", retry_after=1)  # the create is throttled twice: Celery retries it
    result = run_automation.delay(automation_document(_file(workdir, "leads.yaml", AUTOMATION)), "sandbox")
    outcome = result.get(timeout=120)
    assert outcome["automation"] == "celery-leads"
    assert outcome["ran"] is True
    created = [row["id"] for row in outcome["steps"]["created"]["data"]]
    assert len(created) == 3
    assert [answer["data"]["data"][0]["details"]["id"] for answer in outcome["steps"]["contacted"]] == created
    first = outcome["steps"]["first"]["data"]["data"][0]
    assert (first["id"], first["Last_Name"], first["Lead_Status"]) == (created[0], "Chain-1", "Contacted")
    leads = _chain_leads(state)
    assert len(leads) == before + 3  # a throttled create did not act, so retrying it made no duplicate
    assert all(state.records["Leads"][lead]["Lead_Status"] == "Contacted" for lead in created)
    assert stats(base)["faults_injected"] == {"429": 2}
    for task in ("zoho.run_automation", "zoho.automation_step", "zoho.automation_merge"):
        assert f"Task {task}[" in worker.text()


def test_a_failing_step_stops_the_automation_and_its_error_names_the_step(
    worker: Worker, sandbox: tuple[str, SandboxState], workdir: Path
) -> None:
    from celery.exceptions import ChordError

    from connector.engines.celery import automation_document, failure, run_automation

    base, _ = sandbox
    httpx.delete(f"{base}/__sandbox/stats")
    result = run_automation.delay(automation_document(_file(workdir, "failing.yaml", FAILING)), "sandbox")
    with pytest.raises(ChordError) as caught:  # a for_each step is a chord: Celery reports the failed member
        result.get(timeout=120)
    error = failure(caught.value)
    assert error is not None
    assert (error["type"], error["step"], error["call"], error["retryable"]) == ("not_found", "missing", 0, False)
    requests = stats(base)["requests"]
    assert requests["GET /crm/v8/Leads/404"] == 2
    assert [path for path in requests if path.startswith("GET /crm/v8/Leads/") and not path.endswith("/404")] == []


def test_the_cli_enqueues_an_automation_and_an_action(
    worker: Worker, sandbox: tuple[str, SandboxState], workdir: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [str(BIN / "zoho-connector"), "celery"]
    ran = subprocess.run(
        [*command, "run", str(_file(workdir, "leads.yaml", AUTOMATION)), "--connection", "sandbox"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    outcome = json.loads(ran.stdout)
    assert outcome["steps"]["first"]["data"]["data"][0]["Lead_Status"] == "Contacted"
    failed = subprocess.run(
        [*command, "call", "crmGetRecord", "--inputs", '{"recordType": "Leads", "recordId": "404"}'],
        capture_output=True,
        text=True,
        env={**env, "ZOHO_CONNECTION": "sandbox"},
        timeout=120,
    )
    assert failed.returncode == 4  # as `zoho-connector run` for a record that does not exist
    assert json.loads(failed.stderr)["error"]["type"] == "not_found"
    refused = subprocess.run(
        [*command, "worker"], capture_output=True, text=True, env={**env, "ZOHO_CONNECTIONS": ""}, timeout=120
    )
    assert refused.returncode == 3
    assert "--connections FILE" in json.loads(refused.stderr)["error"]["message"]


def test_a_beat_entry_sends_what_beat_sends_and_the_worker_runs_it(worker: Worker, workdir: Path) -> None:
    from connector.engines.celery import beat_schedule

    entries = beat_schedule([_file(workdir, "leads.yaml", AUTOMATION)], "sandbox")
    entry = entries["zoho:celery-leads"]
    # beat publishes by task name with the entry's args, as here
    outcome = app.send_task(entry["task"], args=entry["args"]).get(timeout=120)
    assert outcome["steps"]["first"]["data"]["data"][0]["Last_Name"] == "Chain-1"


# --- poll automations: the Partner Store → CRM sync, polled by Celery itself --------------------------------------

TRANSACTIONS = ROOT / "automations" / "partner-store" / "transactions.yaml"
UPSERT = "POST /crm/v8/Store_Transactions/upsert"


@pytest.fixture(scope="module")
def store_crm(secrets: dict[str, str], workdir: Path) -> Iterator[Any]:
    """The CRM prepared for the shipped transactions automation (`partner-store setup`), and a connector of this
    process on the workers' connections file (and so their token store)."""
    from connector import Connector
    from connector.automations import load_automation
    from connector.manifest import bundled_manifest
    from connector.strategies.partner_store import plan, setup

    with Connector.load(connections=workdir / "connections.json") as connector:
        setup(connector, plan([load_automation(TRANSACTIONS, bundled_manifest())]), connection="sandbox")
        yield connector


def poll_run(timeout: float = 120) -> dict[str, Any]:
    """The shipped transactions automation sent as beat sends it: its content and the connection's name, no
    trigger."""
    from connector.engines.celery import automation_document, run_automation

    outcome: dict[str, Any] = run_automation.delay(automation_document(TRANSACTIONS), "sandbox").get(timeout=timeout)
    return outcome


def add_transactions(base: str, count: int) -> None:
    httpx.post(f"{base}/__sandbox/store", json={"add": {"kind": "transactions", "count": count}}).raise_for_status()


def writes(base: str) -> dict[str, int]:
    """Requests that may change data since the last call (and forget them): not reads, not token refreshes."""
    requests = stats(base)["requests"]
    httpx.delete(f"{base}/__sandbox/stats")
    return {path: n for path, n in requests.items() if not path.startswith(("GET ", "POST /oauth/"))}


def assert_each_transaction_once(connector: Any) -> None:
    """The CRM holds every transaction the Store lists, each once (an id held twice fails)."""
    from collections import Counter

    store = connector.run("storeListTransactions", {"fetchAll": True}, connection="sandbox")["data"]
    rows = connector.iter_records(
        "crmGetRecords", {"recordType": "Store_Transactions", "fields": ["Store_Id"]}, connection="sandbox"
    )
    copies = Counter(row["Store_Id"] for row in rows)
    assert [rid for rid, n in copies.items() if n > 1] == []
    assert sorted(copies) == sorted(t["id"] for t in store)


def test_the_partner_store_sync_polls_on_celery_in_windows_and_writes_each_transaction_once(
    worker: Worker, sandbox: tuple[str, SandboxState], store_crm: Any, faults: Callable[..., None]
) -> None:
    from connector.engines.celery import beat_schedule

    base, _ = sandbox
    # Catch up with what the Store already lists (the seeded few, or an earlier test's), as beat would: its entry
    # for the automation, published by task name with the entry's arguments.
    entry = beat_schedule([TRANSACTIONS.parent], "sandbox")["zoho:partner-store-transactions"]
    assert (
        app.send_task(entry["task"], args=entry["args"]).get(timeout=120)["automation"] == "partner-store-transactions"
    )
    add_transactions(base, 450)
    writes(base)
    outcome = poll_run()
    assert (outcome["ran"], outcome["records"], outcome["polls"]) == (True, 450, 3)  # windows of 200, 200, 50
    assert writes(base) == {UPSERT: 5}  # 100 records a call
    assert_each_transaction_once(store_crm)
    assert "Task zoho.automation_poll[" in worker.text() and "Task zoho.automation_commit[" in worker.text()

    again = poll_run()  # nothing new: nothing written
    assert (again["ran"], again["records"], again["steps"]) == (False, 0, {})
    assert writes(base) == {}

    add_transactions(base, 7)
    writes(base)
    newer = poll_run()
    assert (newer["ran"], newer["records"]) == (True, 7)
    assert [row["status"] for row in newer["steps"]["transactions"]["data"]] == ["success"] * 7
    assert writes(base) == {UPSERT: 1}
    assert_each_transaction_once(store_crm)


def test_a_run_failing_in_its_second_window_keeps_the_first_and_the_next_run_ends_with_each_once(
    worker: Worker,
    sandbox: tuple[str, SandboxState],
    store_crm: Any,
    faults: Callable[..., None],
    hold: Hold,
) -> None:
    """The second window's first upsert call is answered with a 500: its 100 records are in doubt, so the step,
    and the run, fail; the state stays after the first window, the lock is given back, and the next run writes
    windows two and three only."""
    from connector.engines.celery import automation_document, run_automation

    base, _ = sandbox
    poll_run()
    add_transactions(base, 450)
    writes(base)
    # Once the first window's two upserts are in, the store's answers are held back until the fault is armed: the
    # second window cannot reach its upsert first (a 0.3 s slow poll was the only margin before, and a busy
    # machine could let the run through it).
    faults(slow_ms=1, fault_targets=["store"])
    hold.hold_from(2, UPSERT)
    result = run_automation.delay(automation_document(TRANSACTIONS), "sandbox")
    _wait_for(hold.holding.is_set, "the second window's poll, after the first window's two upsert calls")
    assert stats(base)["requests"][UPSERT] == 2, "the second window's upsert came before the fault was armed"
    faults(fail_next=1, fail_kind="5xx", fault_targets=["crm"])
    hold.release()
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=120)
    error = caught.value.error
    assert (error["step"], error["type"], error["may_have_acted"]) == ("transactions", "transient", True)
    assert "100 of 200 items were not written (100 in doubt)" in error["message"]
    assert "partner-store-transactions" in error["message"]
    assert writes(base) == {UPSERT: 4}
    _wait_for(lambda: "the failed run gave its lock back" in worker.text(), "the failed run to release its lock")
    httpx.delete(f"{base}/__sandbox/faults")

    outcome = poll_run()
    assert (outcome["ran"], outcome["records"], outcome["polls"]) == (True, 250, 2)  # from the second window on
    assert writes(base) == {UPSERT: 3}
    assert_each_transaction_once(store_crm)


def test_a_run_while_another_holds_the_lock_is_skipped_and_polls_nothing(
    worker: Worker, sandbox: tuple[str, SandboxState], store_crm: Any, faults: Callable[..., None]
) -> None:
    from connector.automations import load_automation
    from connector.engines import _polling
    from connector.manifest import bundled_manifest

    base, _ = sandbox
    poll_run()
    add_transactions(base, 5)
    job = _polling.PollJob.of(load_automation(TRANSACTIONS, bundled_manifest()), "sandbox")
    lease = _polling.begin(store_crm, job)  # a run "still going", elsewhere
    assert lease is not None
    try:
        httpx.delete(f"{base}/__sandbox/stats")
        skipped = poll_run()
        assert skipped["ran"] is False
        assert "still holds its lock" in skipped["skipped"]
        assert not [path for path in stats(base)["requests"] if "/partner/" in path or "Store_" in path]
    finally:
        _polling.finish(store_crm, job, lease)
    ran = subprocess.run(  # the lock given back, the next run (from the shell, as a user) takes it
        [str(BIN / "zoho-connector"), "celery", "run", str(TRANSACTIONS), "--connection", "sandbox"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    outcome = json.loads(ran.stdout)
    assert (outcome["ran"], outcome["records"], outcome["polls"]) == (True, 5, 1)
    assert_each_transaction_once(store_crm)


def test_a_poll_that_fails_retryably_is_retried_by_celery(
    worker: Worker, sandbox: tuple[str, SandboxState], store_crm: Any, faults: Callable[..., None]
) -> None:
    base, _ = sandbox
    poll_run()
    add_transactions(base, 4)
    faults(fail_next=1, fail_kind="5xx", fault_targets=["store"])
    outcome = poll_run()
    assert (outcome["ran"], outcome["records"]) == (True, 4)
    assert stats(base)["faults_injected"] == {"5xx": 1}
    assert re.search(r"zoho.automation_poll\[\S+\] transient: retrying in", worker.text())
    assert_each_transaction_once(store_crm)


def test_beat_from_the_cli_schedules_the_partner_store_sync(worker: Worker, workdir: Path) -> None:
    """`zoho-connector celery beat --automations DIR` starts beat with an entry per Partner Store automation."""
    command = [
        str(BIN / "zoho-connector"),
        "celery",
        "beat",
        "--automations",
        str(TRANSACTIONS.parent),
        "--connection",
        "sandbox",
        "-s",
        str(workdir / "beat-schedule"),
        "-l",
        "debug",  # beat then logs its schedule as it loaded it
    ]
    log = workdir / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT
        )
    loaded = "beat: Waking up"  # logged once the schedule is set up (stopping it sooner interrupts its imports)
    try:
        _wait_for(lambda: loaded in log.read_text(errors="replace") or beat.poll() is not None, "beat to start")
    finally:
        beat.terminate()
        beat.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert loaded in text, text
    for name, cron in [("transactions", "0 */2"), ("subscriptions", "5 */2"), ("commissions", "30 6")]:
        minute, hour = cron.split()
        assert f"zoho:partner-store-{name}: <crontab: {minute} {hour} * * * (m/h/dM/MY/d)>" in text
        assert f"<ScheduleEntry: zoho:partner-store-{name} zoho.run_automation(" in text


def test_a_window_whose_worker_died_mid_upsert_ends_the_run_and_the_next_run_writes_it_once(
    own_worker: Callable[[], Worker], sandbox: tuple[str, SandboxState], store_crm: Any, faults: Callable[..., None]
) -> None:
    """The shipped automation's upsert is a write without retryAllErrors: redelivered after its worker died, it
    fails in doubt (the write guard) rather than being sent again, the run ends, its lock is given back and its
    state stays; the next run writes the window again, and upserting by Store_Id leaves each record once."""
    from connector.engines.celery import automation_document, run_automation

    base, _ = sandbox
    worker = own_worker()
    poll_run()
    add_transactions(base, 150)
    writes(base)
    faults(slow_reply_ms=3000, fault_targets=["crm"])  # the upserts act; their answers are held back
    result = run_automation.delay(automation_document(TRANSACTIONS), "sandbox")
    _wait_for(lambda: stats(base)["requests"].get(UPSERT, 0) >= 2, "the window's upserts to be sent")
    worker.kill()
    httpx.delete(f"{base}/__sandbox/faults")
    successor = own_worker()  # the broker hands it the dead worker's unacknowledged upsert
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=120)
    error = caught.value.error
    assert (error["step"], error["may_have_acted"]) == ("transactions", True)
    assert "not sent again" in error["message"]
    _wait_for(lambda: "the failed run gave its lock back" in successor.text(), "the lock to be given back")
    writes(base)
    outcome = poll_run()
    assert (outcome["ran"], outcome["records"]) == (True, 150)  # the window again: its state was not saved
    assert writes(base) == {UPSERT: 2}
    assert_each_transaction_once(store_crm)


def test_a_poll_automation_on_a_connection_whose_token_store_workers_cannot_share_is_refused(
    worker: Worker, sandbox: tuple[str, SandboxState]
) -> None:
    from connector.engines.celery import automation_document, run_automation

    base, _ = sandbox
    httpx.delete(f"{base}/__sandbox/stats")
    result = run_automation.delay(automation_document(TRANSACTIONS), "sandbox-memory")
    with pytest.raises(ZohoTaskError) as caught:
        result.get(timeout=60)
    error = caught.value.error
    assert (error["type"], error["automation"]) == ("connection_error", "partner-store-transactions")
    assert "SQLite file, MySQL/MariaDB, PostgreSQL or Redis" in error["message"]
    assert not [path for path in stats(base)["requests"] if "/partner/" in path]


def test_a_batch_step_with_refused_or_doubtful_items_fails_naming_the_step() -> None:
    from connector.engines.celery import automation_merge

    context = {"automation": "a", "trigger": {}, "steps": {}, "ran": True}
    written = {"data": [{"index": 0, "status": "success", "code": "SUCCESS"}]}
    assert automation_merge(written, context, "rows", "crmUpsertRecords")["steps"] == {"rows": written}
    refused = {
        "data": [
            {"index": 0, "status": "success", "code": "SUCCESS"},
            {"index": 1, "status": "error", "code": "INVALID_DATA", "message": "invalid data", "details": {}},
        ]
    }
    with pytest.raises(ZohoTaskError) as caught:
        automation_merge([written, refused], context, "rows", "crmUpsertRecords")
    error = caught.value.error
    assert (error["type"], error["code"], error["step"], error["call"]) == ("zoho_error", "INVALID_DATA", "rows", 1)
    assert "step 'rows' (crmUpsertRecords), call 1 failed" in error["message"]
    assert "1 of 2 items were not written (0 in doubt)" in error["message"]
    json.dumps(error)  # stored by the result backend as JSON


# --- no secret in a message or a result ---------------------------------------------------------------------------


@pytest.fixture
def firehose() -> Iterator[Callable[[], list[str]]]:
    """RabbitMQ's firehose: every message published in the vhost (by this process, the worker's retries, chains
    and chords alike) is copied to amq.rabbitmq.trace, as the broker received it. Yields a function that drains
    the copies, each as the JSON of its headers and body."""
    import shutil

    if shutil.which("rabbitmqctl") is None:
        message = "rabbitmqctl is not installed: the firehose cannot be turned on"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(["rabbitmqctl", "trace_on"], check=True, capture_output=True, timeout=60)
    name = f"firehose-{uuid.uuid4().hex[:8]}"
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel  # py-amqp's channel, under kombu's StdChannel type
        channel.queue_declare(name, auto_delete=False, exclusive=False)
        channel.queue_bind(name, exchange="amq.rabbitmq.trace", routing_key="publish.#")

        def drain() -> list[str]:
            copies = []
            while (message := channel.basic_get(name, no_ack=True)) is not None:
                properties = {key: str(value) for key, value in message.properties.items()}
                copies.append(json.dumps({"properties": properties, "body": message.body.decode()}))
            return copies

        try:
            yield drain
        finally:
            channel.queue_delete(name)
            subprocess.run(["rabbitmqctl", "trace_off"], check=True, capture_output=True, timeout=60)


def test_messages_and_results_hold_no_client_secret_refresh_token_or_access_token(
    worker: Worker,
    sandbox: tuple[str, SandboxState],
    secrets: dict[str, str],
    workdir: Path,
    faults: Callable[..., None],
    firehose: Callable[[], list[str]],
    store_crm: Any,
) -> None:
    """Every message the broker received while an action ran (and was retried), an action failed, an automation
    ran and a poll automation polled its trigger (its lock and state in the token store), and every key of the
    result database, checked for the connection's secrets."""
    import redis

    from connector.engines.celery import automation_document, run_automation

    _, state = sandbox
    backend = redis.Redis.from_url(str(app.conf.result_backend), decode_responses=True)
    faults(fail_next=1, fail_kind="429", retry_after=1)
    lead = create_lead("Secretless")  # retried once
    with pytest.raises(ZohoTaskError):
        run_action.delay(payload("crmGetRecord", {"recordType": "Leads", "recordId": "404"})).get(timeout=60)
    document = automation_document(_file(workdir, "leads.yaml", AUTOMATION))
    run_automation.delay(document, "sandbox").get(timeout=120)
    add_transactions(sandbox[0], 3)
    polled = poll_run()
    assert polled["records"] == 3
    # The firehose copies are asynchronous: drain them until every kind of message expected has come (a fixed
    # half-second nap was not always enough on a busy machine).
    messages: list[str] = []

    def all_copied() -> bool:
        messages.extend(m for m in firehose() if QUEUE in m)
        # a create and its retry, a failed read, then the automation's run, 3 steps, 5 actions and 3 merges
        names = ("zoho.automation_merge", "zoho.automation_poll", "zoho.automation_commit")
        return len(messages) >= 15 and all(any(name in m for m in messages) for name in names)

    _wait_for(all_copied, "the broker's copies of the messages", seconds=30)
    messages.extend(m for m in firehose() if QUEUE in m)  # and any that came meanwhile
    keys: list[Any] = list(backend.scan_iter(count=1000))
    results = [f"{key} {backend.get(key)!s}" for key in keys if backend.type(key) == "string"]
    assert any('\\"connection\\": \\"sandbox\\"' in m for m in messages)  # the payloads themselves are read
    assert any(lead in result for result in results)  # the results are really there
    access_tokens = list(state.access_tokens)
    assert access_tokens
    forbidden = [secrets["client_secret"], secrets["refresh_token"], *access_tokens]
    for text in [*messages, *results, worker.text()]:
        for secret in forbidden:
            assert secret not in text
        assert not TOKEN_SHAPED.search(text)
