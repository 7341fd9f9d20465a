"""Temporal: one activity runs one action, one workflow runs an automation file step by step.

    zoho.run_action      activity; payload {"action", "inputs", "connection": NAME} → the action's {"data": …}
    zoho.plan_automation activity; {"automation": file content} → the checked steps (validated by the worker)
    zoho.automation      workflow; {"automation": file content, "connection": NAME, "trigger"?, "options"?}

Workers run the connector in engine mode, so Temporal does every retry: a ConnectorError becomes an
ApplicationError whose `type` is the error's kind, `non_retryable` the connector's classification (a write that may
have reached Zoho is never retryable, so a retry cannot create a duplicate), `next_retry_delay` Zoho's Retry-After,
and whose details hold the error's JSON. Activities are synchronous and run in the worker's thread pool: the
connector's blocking path is its primary one (token stores, bulk-read jobs and the streamed Fetch All are built on
it), and a slow call then holds one thread, never the event loop that heartbeats every other activity.

Fetch All heartbeats page by page with a checkpoint, `{"resume": the next page's query, "records": so far}`; an
attempt that follows a dead worker starts from the last checkpoint Temporal kept, so no record is lost or repeated
(an action whose resume point is not expressible as its inputs starts over, dropping the checkpoint's records).
All records come back in the activity's result, which Temporal stores in the workflow's history: past
`max_result_bytes` (1.5 MB, under Temporal's 2 MB payload limit) the activity fails, not retryable, and says to
fetch page by page, narrow the query or use a bulk read.
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
    from connector.automations import Automation, AutomationError, load_automation, parse, step_calls
    from connector.engines._common import checked_payload, engine_connector
    from connector.errors import ConnectorError, InputValidationError, Violation
    from connector.runner import Stream

if TYPE_CHECKING:
    from connector.models import Action, Manifest

__all__ = [
    "MAX_RESULT_BYTES",
    "TASK_QUEUE",
    "AutomationWorkflow",
    "application_error",
    "automation_input",
    "checked_automation",
    "cron_of",
    "option_problems",
    "plan_automation",
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
    """Run one action in engine mode and return `{"data": …}`; failures as classified ApplicationErrors."""
    safety = "read"
    try:
        action, inputs, connection = checked_payload(payload)
        connector = engine_connector()
        definition = connector.actions.get(action)
        safety = definition.safety if definition is not None else "read"
        with _Pulse() as pulse:
            if definition is not None and definition.job is None and _fetches_all(definition, inputs):
                return _fetch_all(action, inputs, connection, pulse)
            return connector.run(action, inputs, connection=connection)
    except ConnectorError as exc:
        raise application_error(exc) from None
    except ApplicationError:
        raise
    except Exception as exc:
        # A bug, not Zoho: retrying a read is harmless, but a write may have acted before it happened.
        raise ApplicationError(
            f"{type(exc).__name__} while running the action", type="unexpected", non_retryable=safety == "write"
        ) from None


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


def _fetches_all(definition: Action, inputs: Mapping[str, Any]) -> bool:
    name = definition.inputs_with_role("fetch_all")
    value = inputs.get(name) if definition.pagination and name else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def _fetch_all(action: str, inputs: dict[str, Any], connection: str, pulse: _Pulse) -> dict[str, Any]:
    """Fetch All page by page, a heartbeat after each, resuming from the last checkpoint a dead attempt left."""
    connector = engine_connector()
    records: list[Any] = []
    size = 0
    start = inputs
    checkpoint = _last_checkpoint()
    if checkpoint is not None and _resumable(connector.actions[action].input_schema, checkpoint["resume"]):
        records, size = list(checkpoint["records"]), int(checkpoint["bytes"])
        start = {**inputs, **checkpoint["resume"]}
        pulse.details = checkpoint
    stream = connector.stream(action, start, connection=connection)
    assert isinstance(stream, Stream)  # a paginated walk: jobs are run whole
    stream.count = len(records)
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
                "more than one Temporal payload can hold; fetch page by page (page/page_token without fetchAll), "
                "narrow the query, or use a bulk read",
                type="result_too_large",
                non_retryable=True,
            )
        records.extend(page)
        pending = {"v": _CHECKPOINT, "resume": stream.resume(), "records": list(records), "bytes": size}
    summary = stream.summary()
    member = stream.records_member
    if member is None:
        return {"data": records}
    return {"data": {**summary, member: records}}


def _last_checkpoint() -> dict[str, Any] | None:
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    if not isinstance(last, Mapping) or last.get("v") != _CHECKPOINT:
        return None
    if not isinstance(last.get("resume"), Mapping) or not isinstance(last.get("records"), list):
        return None
    return dict(last)


def _resumable(schema: Mapping[str, Any], resume: Mapping[str, Any]) -> bool:
    """Whether the resume point is made of the action's own inputs (page, page_token, …): else start over."""
    properties = schema.get("properties", {})
    return bool(resume) and all(key in properties for key in resume)


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


# --- the workflow ----------------------------------------------------------------------------------------------


@workflow.defn(name="zoho.automation")
class AutomationWorkflow:
    """Runs an automation's steps in order; a step with `for_each` runs one activity per element, concurrently
    (at most `options.for_each_concurrency` at once; 1 runs them in order), its result the list of their answers.
    Deterministic: the plan comes from an activity, references are resolved by pure functions, and every call to
    Zoho is a `zoho.run_action` activity under the retry policy of `options.retry`."""

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
        context: dict[str, Any] = {"trigger": dict(params.get("trigger") or {}), "steps": {}}
        outcome = {"automation": automation.name, "trigger": context["trigger"], "steps": context["steps"]}
        if automation.trigger_kind != "schedule" and not context["trigger"].get("records"):
            return {**outcome, "ran": False}  # as run_automation: a poll or webhook with no records runs nothing
        for step in automation.steps:
            try:
                calls = step_calls(step, context)
            except AutomationError as exc:
                error = application_error(AutomationError(automation.source, exc.problems))
                raise ApplicationError(error.message, *error.details, type=error.type, non_retryable=True) from None
            results = await self._calls(step.name, step.action, calls, connection, options)
            context["steps"][step.name] = results if step.for_each is not None else results[0]
        return {**outcome, "ran": True}

    async def _calls(
        self, name: str, action: str, calls: list[dict[str, Any]], connection: str, options: dict[str, Any]
    ) -> list[Any]:
        limit = asyncio.Semaphore(options["for_each_concurrency"])

        async def one(inputs: dict[str, Any]) -> Any:
            async with limit:
                return await _activity(name, action, inputs, connection, options)

        return list(await asyncio.gather(*(one(inputs) for inputs in calls)))


async def _activity(name: str, action: str, inputs: dict[str, Any], connection: str, options: dict[str, Any]) -> Any:
    retry = options["retry"]
    try:
        return await workflow.execute_activity(
            "zoho.run_action",
            {"action": action, "inputs": inputs, "connection": connection},
            start_to_close_timeout=timedelta(seconds=options["timeout_seconds"]),
            heartbeat_timeout=timedelta(seconds=options["heartbeat_seconds"]),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=retry["initial_seconds"]),
                backoff_coefficient=retry["backoff"],
                maximum_interval=timedelta(seconds=retry["maximum_seconds"]),
                maximum_attempts=retry["maximum_attempts"],
            ),
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            raise ApplicationError(
                f"step {name!r} ({action}) failed: {cause.message}", *cause.details, type=cause.type, non_retryable=True
            ) from err
        raise ApplicationError(f"step {name!r} ({action}) failed: {err.message}", non_retryable=True) from err


DEFAULT_OPTIONS: dict[str, Any] = {
    # Temporal's own backoff, for failures Zoho gave no Retry-After for (5xx, timeouts, throttling without it).
    "retry": {"initial_seconds": 1.0, "backoff": 2.0, "maximum_seconds": 300.0, "maximum_attempts": 10},
    "timeout_seconds": 3600.0,  # one action, a whole Fetch All or bulk read included
    "heartbeat_seconds": 60.0,  # a dead worker's activity is retried elsewhere after this long
    "for_each_concurrency": 4,
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
    """Create (or replace) the Temporal Schedule of an automation whose trigger is `{schedule: {cron}}` (UTC, as
    automation files say); runs never overlap (a run still going when the next is due skips that one). Returns
    the schedule id."""
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


def workflow_runner() -> SandboxedWorkflowRunner:
    """Temporal's workflow sandbox, with the connector passed through: it is pure Python with no global side
    effects at import, so it is loaded once rather than for every workflow run (also for a Replayer)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("connector"))


def cron_of(automation: Automation) -> str:
    """The cron expression of an automation's schedule trigger; an error for any other trigger."""
    cron = automation.trigger.get("schedule", {}).get("cron")
    if not isinstance(cron, str):
        problem = (
            f"only an automation with a schedule trigger can be scheduled; this one's is {automation.trigger_kind}"
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
    """A worker polling `task_queue` for the automation workflow and the activities (default: run_action and
    plan_automation; pass others to add your own or wrap these), until the block ends."""
    executor = ThreadPoolExecutor(max_workers=max_concurrent_activities, thread_name_prefix="zoho-activity")
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[AutomationWorkflow],
        activities=list(activities or (run_action, plan_automation)),
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=workflow_runner(),
    )
    try:
        async with worker:
            yield worker
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
