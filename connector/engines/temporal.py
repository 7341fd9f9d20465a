"""Temporal: one activity runs one action, one workflow runs an automation file step by step.

    zoho.run_action      activity; payload {"action", "inputs", "connection": NAME} → the action's {"data": …}
    zoho.plan_automation activity; {"automation": file content} → the checked steps (validated by the worker)
    zoho.poll_begin, zoho.poll_window, zoho.poll_commit, zoho.poll_finish
                         activities; a poll automation's lock and state in the connection's token store (_polling)
    zoho.automation      workflow; {"automation": file content, "connection": NAME, "trigger"?, "options"?}

Workers run the connector in engine mode, so Temporal does every retry, by the connector's rules (`_common`'s
`retry_settings`/`retry_delay`, as Celery's tasks): a ConnectorError becomes an ApplicationError whose `type` is
the error's kind, whose details hold the error's JSON, retryable only while the connector would retry it (never a
write that may have reached Zoho; not past the action's max retries, attempts whose worker died included; not for
a Retry-After past the connection's max_retry_after) with `next_retry_delay` Zoho's Retry-After or the connector's
backoff. A write that is not to be re-sent heartbeats `{"write": "sending", "attempt": n}` before it sends, and
`not_sent` with a failure that certainly did not reach Zoho; Temporal gives an attempt the last heartbeat of the
one before (a failed one's too), and an attempt that follows anything but that attempt's `not_sent` (a worker that
died mid-call) fails in doubt instead of sending the write again. Activities are synchronous and run in the
worker's thread pool: the connector's blocking path is its primary one (token stores, bulk-read jobs and the
streamed Fetch All are built on it), and a slow call then holds one thread, never the event loop that heartbeats
every other activity.

Fetch All heartbeats page by page with a checkpoint, `{"resume": the next page's query, "records": so far}`; an
attempt that follows a dead worker starts from the last checkpoint Temporal kept, so no record is lost or repeated
(an action whose resume point is not expressible as its inputs starts over, dropping the checkpoint's records).
All records come back in the activity's result, which Temporal stores in the workflow's history: past
`max_result_bytes` (1.5 MB, under Temporal's 2 MB payload limit) the activity fails, not retryable, and says to
fetch page by page, narrow the query or use a bulk read.

A poll automation (`trigger: {poll: {trigger, inputs, cron}}`) started without records polls on the engine: the
workflow takes the automation's lock (another run going: this one ends, skipped), then window after window polls
from the state the last run kept, runs the steps on the window's records and keeps its state once they succeeded,
until the trigger has nothing more, and gives the lock back however it ends. Every window is a few activities whose
records are in the history, so after `poll_windows_per_run` windows the run continues as new, carrying its lease. Its
state is not: `zoho.poll_window` stages it in the token store and returns its digest, which `zoho.poll_commit` gives
back. `schedule_automation` schedules such a file on its `cron`. A batch step that did not write every item fails
the run (not retryable), so a window with refused or in-doubt records is never marked done.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

try:
    from temporalio import activity, workflow
    from temporalio.client import (
        Client,
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleUpdate,
        ScheduleUpdateInput,
    )
    from temporalio.common import RetryPolicy
    from temporalio.exceptions import ActivityError, ApplicationError
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "connector.engines.temporal needs the Temporal SDK: pip install 'zoho-connector[temporal]'"
    ) from exc

with workflow.unsafe.imports_passed_through():
    from connector._redact import redact_value
    from connector.automations import (
        Automation,
        AutomationError,
        item_failures,
        items_error,
        load_automation,
        parse,
        step_calls,
    )
    from connector.engines import _polling
    from connector.engines._common import (
        CONNECTION_NAME,
        Payload,
        RetrySettings,
        checked_payload,
        engine_connector,
        fetch_all_answer,
        fetches_all,
        resumable,
        retry_delay,
        retry_settings,
    )
    from connector.errors import ConnectorError, InputValidationError, TransientError, Violation
    from connector.runner import Stream

if TYPE_CHECKING:
    from connector.models import Manifest
    from connector.runner import Connector

__all__ = [
    "ACTIVITIES",
    "MAX_RESULT_BYTES",
    "TASK_QUEUE",
    "AutomationWorkflow",
    "application_error",
    "automation_input",
    "checked_automation",
    "cron_of",
    "option_problems",
    "plan_automation",
    "poll_begin",
    "poll_commit",
    "poll_finish",
    "poll_window",
    "run_action",
    "running_worker",
    "schedule_automation",
    "start_automation",
    "workflow_runner",
]

TASK_QUEUE = "zoho-connector"
MAX_RESULT_BYTES = 1_500_000  # Temporal refuses payloads past 2 MB (its default blob size limit)
_CHECKPOINT = 1  # version of the Fetch All heartbeat's layout


# --- activities ------------------------------------------------------------------------------------------------


@activity.defn(name="zoho.run_action")
def run_action(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one action in engine mode and return `{"data": …}`; failures as classified ApplicationErrors, retried
    (or not) by the connector's own rules (`_engine_error`), a write that may have reached Zoho never sent again
    (`_write_guard`)."""
    safety = "read"
    attempt = activity.info().attempt
    checked: Payload | None = None
    settings: RetrySettings | None = None
    guarded = False
    with _Pulse() as pulse:
        try:
            checked = checked_payload(payload)
            connector = engine_connector()
            definition = connector.actions.get(checked.action)
            safety = definition.safety if definition is not None else "read"
            if attempt > 1 or safety == "write":
                settings = retry_settings(connector, checked)  # plans the call: nothing is sent
                _past_retries(checked.action, settings, attempt)
                guarded = _write_guard(checked.action, settings, attempt, pulse)
            if definition is not None and definition.job is None and fetches_all(definition, checked.inputs):
                return _fetch_all(checked.action, checked.inputs, checked.connection, pulse)
            return connector.run(checked.action, checked.inputs, connection=checked.connection)
        except ConnectorError as exc:
            if guarded and exc.retryable and not exc.may_have_acted:
                # Certainly not sent (a 429, a refused connection): the next attempt may send it. The SDK sends
                # the last heartbeat along with the failure, and Temporal gives it to the next attempt.
                pulse.beat({"write": _NOT_SENT, "attempt": attempt})
            if exc.retryable and settings is None and checked is not None:
                settings = retry_settings(engine_connector(), checked)
            raise _engine_error(exc, settings, attempt) from None
        except ApplicationError:
            raise
        except Exception as exc:
            # A bug, not Zoho: retrying a read is harmless, but a write may have acted before it happened.
            raise ApplicationError(
                f"{type(exc).__name__} while running the action", type="unexpected", non_retryable=safety == "write"
            ) from None


_SENDING, _NOT_SENT = "sending", "not_sent"  # a guarded write's heartbeat: {"write": …, "attempt": n}


def _write_guard(action: str, settings: RetrySettings, attempt: int, pulse: _Pulse) -> bool:
    """Whether this is a guarded write: one not to be re-sent (safety write, without Retry On All Errors), which
    runs again only when the attempt before it said it certainly did not send it. Each attempt heartbeats
    `sending` before it sends, and `not_sent` (with its failure) when the connector says nothing reached Zoho. An
    attempt that follows one whose last word is anything else fails in doubt, not retryable: `sending` (its worker
    died or it timed out mid-call), nothing or an older attempt's word (it died before its first heartbeat reached
    the server). The attempt number in the word is what tells an older attempt's `not_sent` apart."""
    if settings.may_resend:
        return False
    if attempt > 1:
        details = activity.info().heartbeat_details
        last = details[-1] if details else None
        if not (isinstance(last, Mapping) and last.get("write") == _NOT_SENT and last.get("attempt") == attempt - 1):
            raise TransientError(
                f"{action}: the earlier attempt stopped without an answer (its worker stopped or it timed out) and "
                "may have reached Zoho, so it is not sent again (retrying a write could create a duplicate)",
                retryable=False,
                may_have_acted=True,
            )
    pulse.beat({"write": _SENDING, "attempt": attempt})  # the pulse repeats it: the marker is never overwritten
    return True


def _past_retries(action: str, settings: RetrySettings, attempt: int) -> None:
    """Refuses an attempt past the action's max retries. Those before it ended without a classified failure
    (`_engine_error` refuses those past the limit): workers that died, attempts that timed out, which Temporal
    retries on its own, so the connector's limit is applied here."""
    if attempt - 1 > settings.max_retries:
        raise TransientError(
            f"{action}: {attempt - 1} attempts ended without an answer (their workers stopped or they timed out), "
            f"more than the action's max retries ({settings.max_retries}); not tried again",
            retryable=False,
            may_have_acted=settings.safety == "write",
        )


def _engine_error(exc: ConnectorError, settings: RetrySettings | None, attempt: int) -> ApplicationError:
    """The connector's error with the connector's retry decision, `retry_delay` (as Celery's): a retryable failure
    past the action's max retries, or whose Retry-After is longer than the connection's max_retry_after, is not
    retried, saying why; a retry waits Zoho's Retry-After, else the connector's backoff (the action's retryDelayMS
    and useExponentialBackoff, then the connection's), given to Temporal as the next retry's delay."""
    error = application_error(exc)
    if not exc.retryable or settings is None:
        return error
    retries = attempt - 1
    delay = retry_delay(exc, settings, retries)
    if delay is not None:
        details = error.details[0]
        return ApplicationError(
            error.message, details, type=error.type, non_retryable=False, next_retry_delay=timedelta(seconds=delay)
        )
    if retries >= settings.max_retries:
        why = f"its {settings.max_retries} retries are spent (the action's maxRetries, else the connection's)"
    else:
        why = (
            f"Zoho asked to wait {exc.retry_after:g} s, longer than the connection's max_retry_after "
            f"({settings.max_retry_after:g} s)"
        )
    details = {**error.details[0], "retryable": False}
    return ApplicationError(f"{error.message} (not retried: {why})", details, type=error.type, non_retryable=True)


@activity.defn(name="zoho.plan_automation")
def plan_automation(payload: dict[str, Any]) -> dict[str, Any]:
    """An automation file's content checked against the worker's manifest, as the plan the workflow follows
    (`Automation.to_dict`). An activity, so the plan is recorded in the history: a replay never reads a file."""
    try:
        return checked_automation(payload.get("automation"), payload.get("file"), engine_connector().manifest).to_dict()
    except ConnectorError as exc:
        raise application_error(exc) from None


def checked_automation(source: Any, file: Any = None, manifest: Manifest | None = None) -> Automation:
    """An automation file's content (YAML or JSON) checked against the manifest (default: the bundled one)."""
    name = file if isinstance(file, str) and file else "(automation)"
    if not isinstance(source, str):
        raise AutomationError(name, [Violation("(automation)", "", "expected the automation file's content")])
    if manifest is None:
        from connector.manifest import bundled_manifest

        manifest = bundled_manifest()
    try:
        return load_automation(parse(source, name), manifest)
    except AutomationError as exc:
        raise AutomationError(name, exc.problems) from None


def application_error(exc: ConnectorError) -> ApplicationError:
    """The connector's classification, as Temporal reads it. Details carry the error's JSON, scrubbed again."""
    error = redact_value(exc.to_dict()["error"])
    delay = timedelta(seconds=exc.retry_after) if exc.retryable and exc.retry_after else None
    return ApplicationError(
        error["message"], error, type=exc.kind, non_retryable=not exc.retryable, next_retry_delay=delay
    )


def _fetch_all(action: str, inputs: dict[str, Any], connection: str, pulse: _Pulse) -> dict[str, Any]:
    """Fetch All page by page, a heartbeat after each, resuming from the last checkpoint a dead attempt left."""
    connector = engine_connector()
    records: list[Any] = []
    size = 0
    start = inputs
    head: Any = None
    checkpoint = _last_checkpoint()
    if checkpoint is not None and resumable(connector.actions[action].input_schema, checkpoint["resume"]):
        records, size = list(checkpoint["records"]), int(checkpoint["bytes"])
        start, head = {**inputs, **checkpoint["resume"]}, checkpoint.get("head")
        pulse.details = checkpoint
    stream = connector.stream(action, start, connection=connection)
    assert isinstance(stream, Stream)  # a paginated walk: jobs are run whole
    stream.count, stream.first = len(records), head  # the summary is the whole walk's, as Connector.run's
    pending: dict[str, Any] | None = None
    for page in stream.pages():
        if pending is not None:
            # The previous page's checkpoint, sent once another page exists: a checkpoint never points past the
            # last page, so a retry after the walk ended cannot fetch that page twice. A copy of the records:
            # the SDK encodes the details later, on its own thread.
            pulse.beat(pending)
        size += len(json.dumps(page, ensure_ascii=False, default=str).encode())
        if size > MAX_RESULT_BYTES:
            raise ApplicationError(
                f"{action}: Fetch All passed {MAX_RESULT_BYTES:,} bytes after {len(records) + len(page):,} records, "
                "more than one Temporal payload can hold; fetch page by page (without fetchAll), "
                "narrow the query, or use a bulk read",
                type="result_too_large",
                non_retryable=True,
            )
        records.extend(page)
        pending = {
            "v": _CHECKPOINT,
            "resume": stream.resume(),
            "records": list(records),
            "bytes": size,
            "head": stream.head(),  # the first page without its records: what the answer's summary is made of
        }
    return fetch_all_answer(stream, records)


def _last_checkpoint() -> dict[str, Any] | None:
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    if not isinstance(last, Mapping) or last.get("v") != _CHECKPOINT:
        return None
    if not isinstance(last.get("resume"), Mapping) or not isinstance(last.get("records"), list):
        return None
    return dict(last)


class _Pulse:
    """Heartbeats from a side thread while the action runs, repeating the last checkpoint: a worker that dies is
    noticed within the heartbeat timeout, even during one long call or a bulk-read job's polling."""

    def __init__(self) -> None:
        timeout = activity.info().heartbeat_timeout
        self.every = max(timeout.total_seconds() / 3, 0.1) if timeout else None
        self.details: Any = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._context = contextvars.copy_context()
        self._thread: threading.Thread | None = None

    def beat(self, details: Any) -> None:
        with self._lock:
            self.details = details
            activity.heartbeat(details)

    def _run(self) -> None:
        assert self.every is not None
        while not self._stop.wait(self.every):
            with self._lock:
                details = () if self.details is None else (self.details,)
                self._context.run(activity.heartbeat, *details)

    def __enter__(self) -> _Pulse:
        if self.every is not None:
            self._thread = threading.Thread(target=self._run, name="zoho-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --- poll automations: the poll's state and the run's lock, kept in the connection's token store ----------------


@activity.defn(name="zoho.poll_begin")
def poll_begin(payload: dict[str, Any]) -> str | None:
    """Take the poll automation's lock: a lease id, or None when another run holds it (`_polling.begin`). Owned by
    the workflow run, so an attempt that follows a lost answer gets its own lease back rather than being skipped."""
    info = activity.info()
    owner = f"temporal:{info.workflow_id}/{info.workflow_run_id}"
    lease: str | None = _polling_step(payload, lambda connector, job: _polling.begin(connector, job, owner))
    return lease


@activity.defn(name="zoho.poll_window")
def poll_window(payload: dict[str, Any]) -> dict[str, Any]:
    """The next window from the stored state, `{"records", "staged", "more"}`: its state is staged in the token
    store and only its digest comes back, so the history never holds a poll's state. Renews the lock."""
    lease = _lease(payload)
    with _Pulse():
        window: dict[str, Any] = _polling_step(payload, lambda c, job: _polling.poll_window_staged(c, job, lease))
        return window


@activity.defn(name="zoho.poll_commit")
def poll_commit(payload: dict[str, Any]) -> None:
    """Keep the window's staged state (`staged`: its digest) once its steps succeeded; refused (LostLock, not
    retryable) when the lock was lost. Takes a `state` too, as runs started before states were staged give it."""
    lease = _lease(payload)
    staged = payload.get("staged")
    if isinstance(staged, str):
        _polling_step(payload, lambda connector, job: _polling.commit_staged(connector, job, lease, staged))
    else:
        state = payload.get("state")
        _polling_step(payload, lambda connector, job: _polling.commit(connector, job, lease, state))


@activity.defn(name="zoho.poll_finish")
def poll_finish(payload: dict[str, Any]) -> None:
    """Give the lock back."""
    lease = _lease(payload)
    _polling_step(payload, lambda connector, job: _polling.finish(connector, job, lease))


def _polling_step(payload: Any, call: Callable[[Connector, _polling.PollJob], Any]) -> Any:
    try:
        job = _poll_job(payload)
        return call(engine_connector(), job)
    except ConnectorError as exc:
        raise application_error(exc) from None
    except ApplicationError:
        raise
    except Exception as exc:
        # The store's own failure (a dropped database connection, …): tried again. Committing a state or giving
        # the lock back twice is harmless, and a lock taken by an attempt whose answer was lost is the run's own
        # (zoho.poll_begin names the run as its owner), so the retry gets it back.
        raise ApplicationError(f"{type(exc).__name__} while keeping the poll's state", type="unexpected") from None


def _poll_job(payload: Any) -> _polling.PollJob:
    job = payload.get("job") if isinstance(payload, Mapping) else None
    try:
        if not isinstance(job, Mapping):
            raise TypeError
        parsed = _polling.PollJob.from_dict(job)
    except (KeyError, TypeError, ValueError):
        expected = "expected {job: {automation, trigger, connection, inputs}, lease?, staged?}"
        raise ApplicationError(expected, type="invalid_input", non_retryable=True) from None
    if not CONNECTION_NAME.fullmatch(parsed.connection):
        message = "job.connection: expected the NAME of a connection in the workers' connections file"
        raise ApplicationError(message, type="invalid_input", non_retryable=True)
    return parsed


def _lease(payload: Any) -> str:
    lease = payload.get("lease") if isinstance(payload, Mapping) else None
    if not isinstance(lease, str) or not lease:
        message = "lease: expected the lease id zoho.poll_begin gave"
        raise ApplicationError(message, type="invalid_input", non_retryable=True)
    return lease


# --- the workflow ----------------------------------------------------------------------------------------------


@workflow.defn(name="zoho.automation")
class AutomationWorkflow:
    """Runs an automation's steps in order; a step with `for_each` runs one activity per element, concurrently
    (at most `options.for_each_concurrency` at once; 1 runs them in order), its result the list of their answers.
    A step whose answer lists items the action did not write (a batch with refused or in-doubt records) fails the
    run, as `run_automation` does. Deterministic: the plan comes from an activity, references are resolved by pure
    functions, and every call to Zoho or to the token store is an activity under the retry policy of
    `options.retry`.

    A poll automation started without records polls itself: under the automation's lock (a second run meanwhile
    ends at once, `ran` false and `skipped` saying why), window after window from the state the last run left,
    the steps on each window's records, the window's state kept once they succeeded, until the trigger has nothing
    more; the lock is given back however the run ends. Past `options.poll_windows_per_run` windows (or when
    Temporal suggests it) the run continues as new with the lock, so a long backlog never grows one history."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        connection, options = _checked_input(params)
        plan = await workflow.execute_activity(
            "zoho.plan_automation",
            {"automation": params["automation"], "file": params.get("file")},
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        automation = Automation.from_dict(plan)
        if automation.trigger_kind == "poll" and params.get("trigger") is None:
            return await self._poll(automation, connection, options, params)
        context: dict[str, Any] = {"trigger": dict(params.get("trigger") or {}), "steps": {}}
        outcome = {"automation": automation.name, "trigger": context["trigger"], "steps": context["steps"]}
        if automation.trigger_kind != "schedule" and not context["trigger"].get("records"):
            return {**outcome, "ran": False}  # as run_automation: a poll or webhook with no records runs nothing
        await self._steps(automation, context, connection, options)
        return {**outcome, "ran": True}

    async def _poll(
        self, automation: Automation, connection: str, options: dict[str, Any], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        job = _polling.PollJob.of(automation, connection)
        trigger = job.trigger
        carried = _carried(params.get("poll"))  # a run that continued as new holds the lock already
        counts = {key: carried.get(key, 0) for key in ("polls", "windows", "records")}
        outcome: dict[str, Any] = {"automation": automation.name, "trigger": {"poll": trigger}}
        if carried:
            lease = carried["lease"]
        else:
            lease = await _poll_activity("zoho.poll_begin", {"job": job.to_dict()}, trigger, options)
            if lease is None:
                skipped = "another run of this automation is going (it holds the automation's lock)"
                return {**outcome, **counts, "ran": False, "skipped": skipped}
        held = {"job": job.to_dict(), "lease": lease}
        handed_over = False
        try:
            this_run = 0
            while True:
                window = await _poll_activity("zoho.poll_window", held, trigger, options)
                counts["polls"] += 1
                this_run += 1
                if window["records"]:
                    await self._steps(automation, _context(window["records"]), connection, options)
                    counts["windows"] += 1
                    counts["records"] += len(window["records"])
                # The staged state's digest; a window polled before an upgrade carries the state itself.
                kept = {"staged": window["staged"]} if "staged" in window else {"state": window["state"]}
                await _poll_activity("zoho.poll_commit", {**held, **kept}, trigger, options)
                if not window["more"]:
                    break
                if this_run >= options["poll_windows_per_run"] or workflow.info().is_continue_as_new_suggested():
                    handed_over = True
                    workflow.continue_as_new({**params, "poll": {"lease": lease, **counts}})
        except BaseException:
            if not handed_over:
                await _let_go(held, trigger, options)  # the run's own failure is the one to report
            raise
        await _poll_activity("zoho.poll_finish", held, trigger, options)
        return {**outcome, **counts, "ran": counts["windows"] > 0}

    async def _steps(
        self, automation: Automation, context: dict[str, Any], connection: str, options: dict[str, Any]
    ) -> None:
        for step in automation.steps:
            try:
                calls = step_calls(step, context)
            except AutomationError as exc:
                error = application_error(AutomationError(automation.source, exc.problems))
                raise ApplicationError(error.message, *error.details, type=error.type, non_retryable=True) from None
            results = await self._calls(step.name, step.action, calls, connection, options)
            for index, result in enumerate(results):
                failures = item_failures(result)
                if failures:
                    call = index if step.for_each is not None else None
                    raise _items_failed(step.name, step.action, call, result, failures)
            context["steps"][step.name] = results if step.for_each is not None else results[0]

    async def _calls(
        self, name: str, action: str, calls: list[dict[str, Any]], connection: str, options: dict[str, Any]
    ) -> list[Any]:
        limit = asyncio.Semaphore(options["for_each_concurrency"])

        async def one(inputs: dict[str, Any]) -> Any:
            async with limit:
                return await _activity(name, action, inputs, connection, options)

        return list(await asyncio.gather(*(one(inputs) for inputs in calls)))


def _context(records: list[Any]) -> dict[str, Any]:
    return {"trigger": {"records": records}, "steps": {}}


def _items_failed(
    name: str, action: str, call: int | None, result: Any, failures: list[dict[str, Any]]
) -> ApplicationError:
    """A batch step that did not write every item fails the run, not retryable (its other items were written: the
    workflow does not send them again), naming the step as local runs do; a poll window's state is then not kept."""
    error = application_error(items_error(failures, len(result["data"])))
    details = {**error.details[0], "step": name, **({"call": call} if call is not None else {})}
    where = f"step {name!r} ({action}" + (f", call {call}" if call is not None else "") + ")"
    return ApplicationError(f"{where} failed: {error.message}", details, type=error.type, non_retryable=True)


def _carried(value: Any) -> dict[str, Any]:
    """What a run that continued as new passed on: its lease and counts ({} for a first run)."""
    if value is None:
        return {}
    counts = ("polls", "windows", "records")
    if (
        not isinstance(value, Mapping)
        or not isinstance(value.get("lease"), str)
        or not all(type(value.get(key, 0)) is int and value.get(key, 0) >= 0 for key in counts)
    ):
        raise ApplicationError(
            "poll: expected {lease, polls, windows, records}, as a run that continued as new passes on",
            type="invalid_input",
            non_retryable=True,
        )
    return {"lease": value["lease"], **{key: int(value.get(key, 0)) for key in counts}}


async def _poll_activity(name: str, payload: dict[str, Any], trigger: str, options: dict[str, Any]) -> Any:
    """One polling step under the workflow's retry policy; a failure fails the run, naming the trigger."""
    long = name == "zoho.poll_window"  # a poll reads the source, maybe several pages; the others are one store call
    try:
        return await workflow.execute_activity(
            name,
            payload,
            start_to_close_timeout=timedelta(seconds=options["timeout_seconds"] if long else 120),
            heartbeat_timeout=timedelta(seconds=options["heartbeat_seconds"]) if long else None,
            retry_policy=_retry_policy(options["retry"], options["retry"]["maximum_attempts"]),
        )
    except ActivityError as err:
        raise _failed(f"poll {trigger!r} ({name})", err) from err


async def _let_go(held: dict[str, Any], trigger: str, options: dict[str, Any]) -> None:
    """Give the lock back after a failure, without hiding it: a lock not given back expires on its own."""
    try:
        await _poll_activity("zoho.poll_finish", held, trigger, options)
    except ApplicationError:
        workflow.logger.warning("could not give back the lock of poll %r; it expires on its own", trigger)


async def _activity(name: str, action: str, inputs: dict[str, Any], connection: str, options: dict[str, Any]) -> Any:
    try:
        return await workflow.execute_activity(
            "zoho.run_action",
            {"action": action, "inputs": inputs, "connection": connection},
            start_to_close_timeout=timedelta(seconds=options["timeout_seconds"]),
            heartbeat_timeout=timedelta(seconds=options["heartbeat_seconds"]),
            retry_policy=_retry_policy(options["retry"], options["action_attempts"]),
        )
    except ActivityError as err:
        raise _failed(f"step {name!r} ({action})", err) from err


def _retry_policy(retry: Mapping[str, Any], attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry["initial_seconds"]),
        backoff_coefficient=retry["backoff"],
        maximum_interval=timedelta(seconds=retry["maximum_seconds"]),
        maximum_attempts=attempts,
    )


def _failed(what: str, err: ActivityError) -> ApplicationError:
    """The run's failure for an activity that failed for good: its error (type and details kept), named."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return ApplicationError(f"{what} failed: {cause.message}", *cause.details, type=cause.type, non_retryable=True)
    return ApplicationError(f"{what} failed: {err.message}", non_retryable=True)


DEFAULT_OPTIONS: dict[str, Any] = {
    # Temporal's own backoff, for what the connector does not classify (a worker that died, an attempt that timed
    # out) and the polling steps; an action's classified failures wait the connector's delay (see _engine_error).
    # maximum_attempts caps the polling steps, and actions only when given (else the connector's max_retries).
    "retry": {"initial_seconds": 1.0, "backoff": 2.0, "maximum_seconds": 300.0, "maximum_attempts": 10},
    "timeout_seconds": 3600.0,  # one action, a whole Fetch All or bulk read included
    "heartbeat_seconds": 60.0,  # a dead worker's activity is retried elsewhere after this long
    "for_each_concurrency": 4,
    "poll_windows_per_run": 10,  # a poll run continues as new after this many windows: a history of a few MB
}


def _checked_input(params: Any) -> tuple[str, dict[str, Any]]:
    """The workflow's input, or a non-retryable failure that names what is wrong."""
    if not isinstance(params, Mapping) or not isinstance(params.get("automation"), str):
        raise ApplicationError(
            "expected {automation: file content, connection: NAME}", type="invalid_input", non_retryable=True
        )
    connection = params.get("connection")
    if not isinstance(connection, str) or not connection:
        raise ApplicationError(
            "connection must be the NAME of a connection in the workers' connections file, never its settings",
            type="invalid_input",
            non_retryable=True,
        )
    problems = option_problems(params.get("options"))
    if problems:
        raise ApplicationError("invalid options: " + "; ".join(problems), type="invalid_input", non_retryable=True)
    given = params.get("options") or {}
    options = {**DEFAULT_OPTIONS, **{k: v for k, v in given.items() if k != "retry"}}
    options["retry"] = {**DEFAULT_OPTIONS["retry"], **given.get("retry", {})}
    # An action's retries are the connector's to count (its maxRetries, then the connection's max_retries, see
    # run_action): Temporal's cap applies to them only when the options set one.
    options["action_attempts"] = given.get("retry", {}).get("maximum_attempts", 0)
    return connection, options


def option_problems(given: Any) -> list[str]:
    """What is wrong with workflow options (checked before starting, and again in the workflow, where a bad value
    must fail the run rather than its workflow task, which Temporal would retry for ever)."""
    if given is None:
        return []
    if not isinstance(given, Mapping):
        return ["expected an object"]
    problems = []
    for key, value in given.items():
        if key == "retry":
            if not isinstance(value, Mapping):
                problems.append("retry: expected an object")
                continue
            for name, number in value.items():
                default = DEFAULT_OPTIONS["retry"].get(name)
                if default is None:
                    problems.append(f"retry.{name}: unknown; known: {', '.join(DEFAULT_OPTIONS['retry'])}")
                elif name == "backoff" and not (_positive(number, whole=False) and number >= 1):
                    problems.append("retry.backoff: expected a coefficient of at least 1")
                elif not _positive(number, whole=isinstance(default, int)):
                    problems.append(f"retry.{name}: expected a positive {_kind(default)}")
        elif key not in DEFAULT_OPTIONS:
            problems.append(f"{key}: unknown; known: {', '.join(DEFAULT_OPTIONS)}")
        elif not _positive(value, whole=isinstance(DEFAULT_OPTIONS[key], int)):
            problems.append(f"{key}: expected a positive {_kind(DEFAULT_OPTIONS[key])}")
    return problems


def _positive(value: Any, *, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return False
    return not whole or float(value).is_integer()


def _kind(default: Any) -> str:
    return "whole number" if isinstance(default, int) else "number of seconds"


# --- clients and workers ---------------------------------------------------------------------------------------


def automation_input(
    source: str,
    connection: str,
    *,
    trigger: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """The workflow's input: the automation file's content (not a path: workers may be other machines) and a
    connection NAME. Refuses anything but a name, before a secret could reach the history."""
    if not isinstance(connection, str) or not connection:
        raise InputValidationError(
            "connection", [Violation("connection", "", "expected the NAME of a connection in the workers' file")]
        )
    problems = option_problems(options)
    if problems:
        raise InputValidationError("options", [Violation("options", "", problem) for problem in problems])
    params: dict[str, Any] = {"automation": source, "connection": connection}
    if file is not None:
        params["file"] = file
    if trigger is not None:
        params["trigger"] = dict(trigger)
    if options is not None:
        params["options"] = dict(options)
    return params


async def start_automation(
    client: Client,
    source: str,
    connection: str,
    *,
    task_queue: str = TASK_QUEUE,
    workflow_id: str | None = None,
    trigger: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    file: str | None = None,
) -> Any:
    """Check the automation (deploy-time validation, on this side: a broken file never starts a workflow), start
    its workflow and return the handle (`await handle.result()`: {"automation", "trigger", "steps", "ran"})."""
    automation = checked_automation(source, file)
    params = automation_input(source, connection, trigger=trigger, options=options, file=file)
    return await client.start_workflow(
        "zoho.automation",
        params,
        id=workflow_id or f"zoho-automation-{automation.name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
    )


async def schedule_automation(
    client: Client,
    source: str,
    connection: str,
    *,
    task_queue: str = TASK_QUEUE,
    schedule_id: str | None = None,
    options: Mapping[str, Any] | None = None,
    file: str | None = None,
) -> str:
    """Create (or replace) the Temporal Schedule of an automation whose trigger is `{schedule: {cron}}` or
    `{poll: {trigger, inputs, cron}}` (UTC, as automation files say; a poll's runs poll from the state the last one
    kept); runs never overlap (a run still going when the next is due skips that one). Returns the schedule id."""
    automation = checked_automation(source, file)
    cron = cron_of(automation)
    sid = schedule_id or f"zoho-automation-{automation.name}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            "zoho.automation",
            automation_input(source, connection, options=options, file=file),
            id=f"zoho-automation-{automation.name}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(sid, schedule)
    except ScheduleAlreadyRunningError:

        async def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(sid).update(replace)
    return sid


ACTIVITIES: tuple[Callable[..., Any], ...] = (
    run_action,
    plan_automation,
    poll_begin,
    poll_window,
    poll_commit,
    poll_finish,
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """Temporal's workflow sandbox, with the connector passed through: it is pure Python with no global side
    effects at import, so it is loaded once rather than for every workflow run (also for a Replayer)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("connector"))


def cron_of(automation: Automation) -> str:
    """The cron expression of an automation's schedule trigger, or of its poll trigger (how often it polls); an
    error for a webhook, or a poll without a cron."""
    body = automation.trigger.get(automation.trigger_kind)
    cron = body.get("cron") if automation.trigger_kind in ("schedule", "poll") and isinstance(body, Mapping) else None
    if not isinstance(cron, str):
        problem = (
            "only an automation with a schedule trigger, or a poll trigger with a cron, can be scheduled; this "
            f"one's is {automation.trigger_kind}" + (" without a cron" if automation.trigger_kind == "poll" else "")
        )
        raise AutomationError(automation.source, [Violation("trigger", "/trigger", problem)])
    return cron


@asynccontextmanager
async def running_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    max_concurrent_activities: int = 8,
    activities: Sequence[Callable[..., Any]] | None = None,
) -> AsyncIterator[Worker]:
    """A worker polling `task_queue` for the automation workflow and the activities (default: ACTIVITIES, i.e.
    run_action, plan_automation and the four polling steps; pass others to add your own or wrap these), until the
    block ends."""
    executor = ThreadPoolExecutor(max_workers=max_concurrent_activities, thread_name_prefix="zoho-activity")
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[AutomationWorkflow],
        activities=list(activities or ACTIVITIES),
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=workflow_runner(),
    )
    try:
        async with worker:
            yield worker
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
