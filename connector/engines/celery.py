"""The connector on Celery: one task per action call, automations as chains and chords, beat for schedules.

    pip install 'zoho-connector[celery]'
    ZOHO_CONNECTIONS=connections.yaml celery -A connector.engines.celery worker      # or: zoho-connector celery worker
    celery -A connector.engines.celery beat                                           # scheduled and poll automations

    from connector.engines.celery import run_action
    run_action.delay({"action": "crmGetRecord", "inputs": {…}, "connection": "eu-prod"}).get()

Settings, from the environment of every worker and client:

    ZOHO_CELERY_BROKER       amqp://guest:guest@127.0.0.1:5672//  (RabbitMQ; redis://… works too)
    ZOHO_CELERY_BACKEND      redis://127.0.0.1:6379/0             (where results are kept; needed for chords)
    ZOHO_CELERY_QUEUE        zoho                                  (the queue tasks go to and workers read)
    ZOHO_CONNECTIONS         the workers' connections file: payloads carry a connection NAME, never a secret
    ZOHO_CELERY_AUTOMATIONS  automation files (or folders of them), os.pathsep-separated, scheduled by beat
    ZOHO_CONNECTION          the connection NAME beat's automations run with

`zoho.run_action` runs in engine mode: the connector does not retry, the task does, from the connector's
classification of the failure. A retryable failure is retried after Zoho's Retry-After, or else on the connector's
own backoff schedule, up to the action's (or the connection's) max retries; anything else fails the task with the
error's JSON (`ZohoTaskError.error`, secrets scrubbed). A write that may have reached Zoho is never retryable.

Late acks: a task whose worker dies mid-run goes back to the queue and runs again (at least once). For reads and
idempotent calls (get, list, update and delete of one record) that is harmless. A Fetch All resumes: after each
page it keeps the page's records under `zoho-fetch-all:<task id>:<n>` in the result backend and a header (where
the next page starts) under `zoho-fetch-all:<task id>`, so the task's next delivery, or its Celery retry, goes on
from the last page saved and returns every record once, in order; the keys go with the answer. A backend that is
not a key-value store, or an action whose resume point is not its inputs, starts over.

A write (create, upload, POST, the bulk actions) records in the result backend that it started; run again after it
may have been sent, it fails as `may_have_acted` instead of sending a duplicate, and one that had finished returns
its stored result. A write that must complete despite crashes should be idempotent and say so: an upsert with
duplicateCheckFields and `retryAllErrors: true` is retried and re-run like a read.

A poll automation (`trigger: {poll: {trigger, inputs, cron}}`) sent with no trigger polls it (engines/_polling.py):
`zoho.run_automation` takes the automation's lock in the connection's token store (while another run holds it, the
run is skipped: `{"ran": false, "skipped": …}`), `zoho.automation_poll` polls a window from the stored state, the
window's steps run as the chain above, and `zoho.automation_commit` saves the window's state, then polls the next
window while the trigger says `more`, and at the end gives the lock back. A failing task ends the run: its errback
(`zoho.automation_release`) gives the lock back at once, and the state stays that of the last window whose steps
succeeded, so the next run hands out the same records again. A worker that dies outright runs no errback: the run's
messages go back to the queue (late acks) and go on with the same lock, or else the lock expires an hour after the
run last renewed it. A batch step where any item was refused or is in doubt fails, naming the step, in every
automation. Beat sends poll automations on their `poll.cron`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from celery import Celery, Signature, Task, chain, chord
from celery.backends.base import BaseKeyValueStoreBackend
from celery.result import AsyncResult
from celery.schedules import crontab
from celery.signals import worker_process_shutdown

from connector._redact import redact_text
from connector._retry import Schedule, backoff
from connector.automations import Automation, item_failures, items_error, load_automation, parse, step_calls
from connector.engines import _polling
from connector.engines._common import (
    Payload,
    checked_payload,
    engine_connector,
    fetch_all_answer,
    fetches_all,
    reset_engine_connector,
    resumable,
    retry_delay,
    retry_settings,
)
from connector.errors import ConnectorError, InputValidationError, TransientError, Violation
from connector.manifest import bundled_manifest
from connector.runner import Stream

__all__ = [
    "ZohoTaskError",
    "app",
    "automation_commit",
    "automation_document",
    "automation_poll",
    "automation_release",
    "automation_signature",
    "beat_schedule",
    "cron_schedule",
    "failure",
    "run_action",
    "run_automation",
]

log = logging.getLogger("connector.engines.celery")

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
BACKEND = "redis://127.0.0.1:6379/0"
QUEUE = "zoho"


class ZohoTaskError(Exception):
    """A failed action, as its JSON error (`type`, `message`, `retryable`, `retry_after`, `may_have_acted`, Zoho's
    status/code/details…). One JSON argument, so Celery's result backend stores it and a client rebuilds it."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(dict(error))

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.args[0]
        return error

    def __str__(self) -> str:
        return f"{self.error.get('type', 'error')}: {self.error.get('message', '')}"


def _app() -> Celery:
    app = Celery("zoho-connector", set_as_current=False)
    app.conf.update(
        broker_url=os.environ.get("ZOHO_CELERY_BROKER") or BROKER,
        result_backend=os.environ.get("ZOHO_CELERY_BACKEND") or BACKEND,
        task_default_queue=os.environ.get("ZOHO_CELERY_QUEUE") or QUEUE,
        # JSON only: nothing a worker unpickles, and messages and results anyone can read (and check for secrets).
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # At least once: a message is acknowledged after its task ends, so a worker that dies gives it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds no more unacknowledged messages than it runs
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
    )
    return app


app = _app()


@worker_process_shutdown.connect
def _close_connector(**_: Any) -> None:
    reset_engine_connector()


class _CheckedTask(Task):  # type: ignore[type-arg]
    """Checks a task's arguments before the message is published, so a secret given by mistake (a connection
    instead of its name) never reaches the broker; the worker checks them again."""

    def check(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Raises InputValidationError for arguments that must not be sent."""

    def apply_async(
        self, args: tuple[Any, ...] | None = None, kwargs: dict[str, Any] | None = None, *rest: Any, **options: Any
    ) -> Any:
        if args or kwargs:  # a signature filled in by the previous task of a chain is checked by the worker
            self.check(tuple(args or ()), kwargs or {})
        return super().apply_async(args, kwargs, *rest, **options)


class _ActionTask(_CheckedTask):
    def check(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        checked_payload(args[0] if args else kwargs.get("payload"))


class _AutomationTask(_CheckedTask):
    def check(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        names = ("automation", "connection", "trigger")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        _checked_run(given.get("automation"), given.get("connection"), given.get("trigger"))


# --- one action ------------------------------------------------------------------------------------------------


@app.task(
    name="zoho.run_action", base=_ActionTask, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None
)
def run_action(self: Task[Any, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run one action: `{"action", "inputs", "connection": NAME}` → the action's `{"data": …}`."""
    progress: _FetchAllProgress | None = None
    try:
        checked = checked_payload(payload)
        stored = _write_guard(self, checked)
        if stored is not None:
            return stored
        connector = engine_connector()
        definition = connector.actions.get(checked.action)
        if definition is not None and definition.job is None and fetches_all(definition, checked.inputs):
            progress = _FetchAllProgress.of(self, checked)
            return _fetch_all(self.request.id, checked, progress)
        return connector.run(checked.action, checked.inputs, connection=checked.connection)
    except ConnectorError as exc:
        error = ZohoTaskError({**exc.to_dict()["error"], **_step_of(self.request.id)})
        delay = _retry_delay(exc, payload, self.request.retries)
        if delay is None:
            if progress is not None:
                progress.clear()  # the task ends here: nothing will resume the walk
            raise error from None
        log.info("zoho.run_action[%s] %s: retrying in %.1f s", self.request.id, exc.kind, delay)
        raise self.retry(countdown=delay, max_retries=None, exc=error) from None
    except Exception as exc:  # a bug, not a classified failure: fail without quoting anything that may be secret
        if progress is not None:
            progress.clear()
        message = redact_text(f"{type(exc).__name__}: {exc}")
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("zoho.run_action[%s] failed: %s\n%s", self.request.id, message, frames)
        unexpected = {"type": "unexpected", "message": message, "retryable": False, "retry_after": None}
        raise ZohoTaskError({**unexpected, "may_have_acted": True, **_step_of(self.request.id)}) from None


def failure(exc: BaseException) -> dict[str, Any] | None:
    """The action error behind a failed task, an automation's included: a for_each step fails its chord with a
    ChordError naming the failed task, whose own error is then read from the result backend. None for others."""
    if isinstance(exc, ZohoTaskError):
        return exc.error
    match = re.match(r"Dependency (\S+) raised", str(exc))
    if match:
        cause = AsyncResult(match.group(1), app=app).result
        if isinstance(cause, ZohoTaskError):
            return cause.error
    return None


_STEP_ID = re.compile(r":step:(?P<step>\w+):(?P<call>\d+|-)$")


def _step_id(root: str, step: str, call: int | None) -> str:
    """An automation's action task is named after its step (and call, for for_each), so its error can say which."""
    return f"{root}:step:{step}:{'-' if call is None else call}"


def _step_of(task_id: str | None) -> dict[str, Any]:
    match = _STEP_ID.search(task_id or "")
    if match is None:
        return {}
    call = match.group("call")
    return {"step": match.group("step"), **({} if call == "-" else {"call": int(call)})}


def _retry_delay(exc: ConnectorError, payload: Mapping[str, Any], attempt: int) -> float | None:
    if not exc.retryable:
        return None
    return retry_delay(exc, retry_settings(engine_connector(), checked_payload(payload)), attempt)


STARTED = "STARTED"


def _write_guard(task: Task[Any, Any], payload: Payload) -> dict[str, Any] | None:
    """A write that runs again for the same task (a redelivery after its worker died) must not be sent twice:
    one that finished returns its stored result; one that had started may have reached Zoho, so it fails in doubt.
    Reads and idempotent calls are simply run again."""
    connector = engine_connector()
    action = connector.manifest.actions.get(payload.action)
    if action is None or action.safety in ("read", "idempotent"):
        return None
    if retry_settings(connector, payload).may_resend:
        return None
    task_id = task.request.id
    meta = task.backend.get_task_meta(task_id) if task_id else {}
    if meta.get("status") == "SUCCESS":
        stored: dict[str, Any] = meta["result"]
        return stored
    if meta.get("status") == STARTED:
        raise TransientError(
            f"{payload.action} was running when its worker stopped; it may have reached Zoho, so it is not sent "
            "again (retrying a write could create a duplicate)",
            retryable=False,
            may_have_acted=True,
        )
    task.update_state(state=STARTED, meta={"action": payload.action})
    return None


# --- Fetch All, resumed by the task's next delivery -----------------------------------------------------------

FETCH_ALL_KEY = "zoho-fetch-all:"  # + task id: the header; + task id + ":<n>": page n's records
_CHECKPOINT = 1  # version of the header's layout
CHECKPOINT_SECONDS = 86_400  # how long a checkpoint is kept when the app sets no result_expires


def _fetch_all(task_id: str | None, payload: Payload, progress: _FetchAllProgress | None) -> dict[str, Any]:
    """Fetch All page by page, saving each page in the result backend, resuming where an earlier delivery of the
    same task left off. The answer is `Connector.run`'s; the checkpoint is deleted once it is made."""
    connector = engine_connector()
    schema = connector.actions[payload.action].input_schema
    records: list[Any] = []
    start = payload.inputs
    held = progress.held() if progress is not None else None
    head: Any = None
    if progress is not None and held is not None:
        resume, head, records = held
        if resumable(schema, resume):
            start = {**payload.inputs, **resume}
            log.info(
                "zoho.run_action[%s] %s: Fetch All resumes after page %d (%d records held)",
                task_id,
                payload.action,
                progress.pages,
                len(records),
            )
        else:
            log.info("zoho.run_action[%s] %s: its checkpoint cannot be resumed; starting over", task_id, payload.action)
            progress.clear()
            head, records = None, []
    stream = connector.stream(payload.action, start, connection=payload.connection)
    assert isinstance(stream, Stream)  # a paginated walk: jobs are run whole
    stream.count, stream.first = len(records), head  # the summary is the whole walk's, as Connector.run's
    at = stream.resume()
    for page in stream.pages():
        records.extend(page)
        following = stream.resume()
        # The pager moves its position only when another page follows, so a checkpoint saved once it moved never
        # points past the last page (a delivery after the walk ended cannot fetch that page twice), and one after
        # a death fetches again only the page that was in flight.
        if progress is not None and following != at:
            if resumable(schema, following):
                progress.save(page, following, stream.head(), len(records))
            elif not progress.broken:
                log.info(
                    "zoho.run_action[%s] %s: where its walk goes on is not expressible as its inputs, so no "
                    "checkpoint is kept; a redelivery starts over",
                    task_id,
                    payload.action,
                )
                progress.broken = True
        at = following
    answer = fetch_all_answer(stream, records)
    if progress is not None:
        progress.clear()
    return answer


class _FetchAllProgress:
    """How far a Fetch All got, in the result backend, for the task's next delivery: late acks hand a dead
    worker's message to another worker with the same task id, and a Celery retry keeps the id too.

    Each page's records go under a key of their own, `zoho-fetch-all:<task id>:<n>`, then a header under
    `zoho-fetch-all:<task id>`, `{v, call, resume, head, pages, count}`, so the walk writes O(records) in all and
    the header never names a page the backend does not hold. What Zoho answered only: `resume` is the next page's
    paging inputs, `head` the first page without its records, `call` a digest of the payload (a task id reused for
    another call does not resume it). Every key expires (the app's result_expires, else a day); a backend that
    fails is logged and the walk goes on without checkpoints. Redis's backend also publishes what it sets on a
    channel of the key's name, which no result consumer listens to."""

    def __init__(self, backend: BaseKeyValueStoreBackend, task_id: str, call: str, expires: int) -> None:
        self.backend = backend
        self.task_id = task_id
        self.key = f"{FETCH_ALL_KEY}{task_id}"
        self.call = call
        self.expires = expires
        self.pages = 0  # pages the header counts
        self.broken = False  # no more checkpoints: one failed to save, or the action cannot resume

    @classmethod
    def of(cls, task: Task[Any, Any], payload: Payload) -> _FetchAllProgress | None:
        """The task's checkpoint store, or None (logged) when its result backend is not a key-value store."""
        task_id = task.request.id
        if not task_id:  # called as a plain function: there is no delivery to resume
            return None
        backend = task.backend
        if not isinstance(backend, BaseKeyValueStoreBackend):
            log.warning(
                "zoho.run_action[%s] %s: the result backend (%s) is not a key-value store, so Fetch All keeps no "
                "checkpoint and a redelivery starts over",
                task_id,
                payload.action,
                type(backend).__name__,
            )
            return None
        expires = int(getattr(backend, "expires", None) or 0) or CHECKPOINT_SECONDS
        call = hashlib.sha256(json.dumps(payload.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
        return cls(backend, task_id, call[:32], expires)

    def held(self) -> tuple[dict[str, Any], Any, list[Any]] | None:
        """The resume point, the walk's first page without its records and every record an earlier delivery
        saved, or None (nothing saved, or not usable: then it is deleted and the walk starts over)."""
        try:
            raw = self.backend.get(self.key)
            if raw is None:
                return None
            header = json.loads(raw)
            pages = header.get("pages") if isinstance(header, Mapping) else None
            self.pages = pages if isinstance(pages, int) and pages >= 0 else 0  # what clear() deletes
            if not self._valid(header):
                self._unusable("its header is not this call's")
                return None
            saved = self._get_many([f"{self.key}:{n}" for n in range(self.pages)])
            if any(page is None for page in saved):
                self._unusable("a page of it is gone (expired?)")
                return None
            records = [record for page in saved for record in json.loads(page)]
            if len(records) != header["count"]:
                self._unusable("its pages do not add up to its count")
                return None
        except Exception as exc:
            # Saving over a checkpoint this walk could not read could mix two walks' pages: keep none.
            self.broken = True
            log.warning(
                "zoho.run_action[%s]: reading the Fetch All checkpoint failed (%s); starting over without one",
                self.task_id,
                _what(exc),
            )
            return None
        return dict(header["resume"]), header["head"], records

    def _valid(self, header: Any) -> bool:
        return (
            isinstance(header, Mapping)
            and header.get("v") == _CHECKPOINT
            and header.get("call") == self.call
            and isinstance(header.get("resume"), Mapping)
            and isinstance(header.get("head"), dict | list)
            and isinstance(header.get("pages"), int)
            and header["pages"] >= 0
            and isinstance(header.get("count"), int)
        )

    def _unusable(self, why: str) -> None:
        log.info("zoho.run_action[%s]: the Fetch All checkpoint is not used: %s; starting over", self.task_id, why)
        self.clear()

    def _get_many(self, keys: list[str]) -> list[Any]:
        if not keys:
            return []
        try:
            return list(self.backend.mget(keys))
        except NotImplementedError:
            return [self.backend.get(key) for key in keys]

    def save(self, page: list[Any], resume: Mapping[str, Any], head: Any, count: int) -> None:
        """Saves one more page, then the header that counts it; the next page starts at `resume`, `head` is the
        walk's first page without its records (what the answer's summary is made from)."""
        if self.broken:
            return
        header = {
            "v": _CHECKPOINT,
            "call": self.call,
            "resume": dict(resume),
            "head": head,
            "pages": self.pages + 1,
            "count": count,
        }
        try:
            self._set(f"{self.key}:{self.pages}", json.dumps(page, ensure_ascii=False, default=str))
            self._set(self.key, json.dumps(header, ensure_ascii=False, default=str))
        except Exception as exc:
            # The header last saved still names only pages the backend holds: a redelivery resumes from it.
            self.broken = True
            log.warning(
                "zoho.run_action[%s]: saving the Fetch All checkpoint failed (%s); the walk goes on without",
                self.task_id,
                _what(exc),
            )
            return
        self.pages += 1

    def _set(self, key: str, value: str) -> None:
        self.backend.set(key, value)
        self.backend.expire(key, self.expires)

    def clear(self) -> None:
        """Deletes the checkpoint: the header first, so that no reader finds a header without its pages."""
        try:
            self.backend.delete(self.key)
            for n in range(self.pages + 1):  # + 1: a page saved by a worker that died before its header
                self.backend.delete(f"{self.key}:{n}")
        except Exception as exc:
            log.warning(
                "zoho.run_action[%s]: deleting the Fetch All checkpoint failed (%s); it expires in %d s",
                self.task_id,
                _what(exc),
                self.expires,
            )
        self.pages = 0


def _what(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")


# --- automations -----------------------------------------------------------------------------------------------


@app.task(name="zoho.run_automation", base=_AutomationTask, bind=True)
def run_automation(
    self: Task[Any, Any],
    automation: Mapping[str, Any],
    connection: str,
    trigger: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run an automation: `automation` is its file's content (a mapping; it holds no secret), `connection` a NAME,
    `trigger` what the trigger handed out (`{"records": […]}`; none for a schedule). Replaced by a chain of one
    task per step, whose result is `{"automation", "trigger", "steps": {name: result}, "ran": true}`.

    A poll automation given no trigger polls it itself, window after window (see `automation_poll`): the result
    adds `polls`, `records` (how many were handed out) and the poll's `state`; `ran` says whether any window had
    records. When another run of it still holds its lock, nothing is polled: `{"ran": false, "skipped": why}`."""
    document, checked = _checked_run(automation, connection, trigger)
    if trigger is None and checked.trigger_kind == "poll":
        job = _polling.PollJob.of(checked, connection)
        try:
            # Owned by this task's id, the same on a redelivery: a worker that died after taking the lock
            # leaves it to the task's next delivery, not to the lock's expiry.
            lease = _polling.begin(engine_connector(), job, owner=f"celery:{self.request.id}")
        except ConnectorError as exc:  # e.g. a memory: token store, which no other worker could read
            raise ZohoTaskError({**exc.to_dict()["error"], "automation": checked.name}) from None
        if lease is None:
            skipped = (
                f"another run of automation {checked.name!r} on connection {connection!r} still holds its lock "
                f"(it ends with that run, or {job.lock_seconds:g} s after the run last renewed it)"
            )
            log.info("zoho.run_automation[%s] %s", self.request.id, skipped)
            return {"automation": checked.name, "trigger": {}, "steps": {}, "ran": False, "skipped": skipped}
        run = {"job": job.to_dict(), "lease": lease, "polls": 0, "records": 0, "ran": False}
        # Every task the run becomes inherits this errback (Task.replace carries it over): whichever fails gives
        # the lock back at once. A worker that dies outright runs no errback; the lock's expiry covers that.
        release = automation_release.s(job=job.to_dict(), lease=lease)
        return self.replace(automation_poll.si(run, document, connection).on_error(release))
    if _nothing_to_run(checked, trigger):
        return {"automation": automation["name"], "trigger": dict(trigger or {}), "steps": {}, "ran": False}
    return self.replace(automation_signature(automation, connection, trigger))


def automation_signature(automation: Any, connection: Any, trigger: Any = None) -> Signature[Any]:
    """The chain that runs an automation's steps, one task per step, checked before anything is sent: the file
    against the manifest, the connection as a name, the trigger's output as an object. A poll automation needs the
    records its trigger handed out here; `run_automation` without them polls first."""
    document, checked = _checked_run(automation, connection, trigger)
    if trigger is None and checked.trigger_kind == "poll":
        violation = Violation(
            "trigger",
            "",
            "a poll automation's steps run on the records its trigger handed out ({records: [...]}); to poll "
            "the trigger, send zoho.run_automation without a trigger",
        )
        raise InputValidationError(checked.name, [violation])
    context = {"automation": checked.name, "trigger": dict(trigger or {}), "steps": {}, "ran": True}
    return _steps_signature(document, checked, context, connection, None)


def _steps_signature(
    document: Mapping[str, Any],
    automation: Automation,
    context: dict[str, Any],
    connection: str,
    window: int | None,
) -> Signature[Any]:
    options = {} if window is None else {"window": window}
    first = automation_step.s(context, document, 0, connection, **options)
    rest = [automation_step.s(document, index, connection, **options) for index in range(1, len(automation.steps))]
    return chain(first, *rest) if rest else first


def _checked_run(automation: Any, connection: Any, trigger: Any) -> tuple[dict[str, Any], Automation]:
    """What a run needs, checked before it is sent: the file against the manifest, the connection as a name, the
    trigger's output as an object, or none for a schedule or a poll (which then polls)."""
    document = _checked_automation(automation)
    _check_connection_name(connection)
    checked = _load(document)
    if trigger is not None and not isinstance(trigger, Mapping):
        violation = Violation("trigger", "", "expected what the trigger handed out, an object such as {records: [...]}")
        raise InputValidationError(checked.name, [violation])
    if trigger is None and checked.trigger_kind == "webhook":
        raise InputValidationError(
            checked.name,
            [
                Violation(
                    "trigger",
                    "",
                    "the automation starts from a webhook trigger: pass what it handed out ({records: [...]}), "
                    "e.g. zoho-connector celery run FILE --trigger @records.json",
                )
            ],
        )
    return document, checked


def _nothing_to_run(automation: Automation, trigger: Mapping[str, Any] | None) -> bool:
    """As the local runner: a poll or webhook that handed out no records runs no step."""
    return automation.trigger_kind != "schedule" and trigger is not None and not trigger.get("records")


@app.task(name="zoho.automation_step", bind=True)
def automation_step(
    self: Task[Any, Any],
    context: dict[str, Any],
    automation: Mapping[str, Any],
    index: int,
    connection: str,
    window: int | None = None,
) -> dict[str, Any]:
    """Step `index`: its calls (one, or one per element of for_each) become `zoho.run_action` tasks, a chord for
    for_each, and the next task adds their results to the context handed to the next step. `window` numbers a
    poll run's windows: their action tasks need ids of their own (the write guard keys on them)."""
    step = _load(automation).steps[index]
    calls = [
        run_action.s({"action": step.action, "inputs": inputs, "connection": connection})
        for inputs in step_calls(step, context)
    ]
    root = self.request.root_id or self.request.id or ""
    if window is not None:
        root = f"{root}:window:{window}"
    merge = automation_merge.s(context, step.name, step.action)
    if step.for_each is None:
        return self.replace(calls[0].set(task_id=_step_id(root, step.name, None)) | merge)
    if not calls:
        return _merged(context, step.name, [])
    return self.replace(chord([c.set(task_id=_step_id(root, step.name, i)) for i, c in enumerate(calls)], merge))


@app.task(name="zoho.automation_merge")
def automation_merge(result: Any, context: dict[str, Any], name: str, action: str | None = None) -> dict[str, Any]:
    """The context with a step's result: the action's answer, or for for_each the list of answers, in order. A
    batch answer where any item was refused or is in doubt fails the step, as the local runner: its other items
    are written, but the run (and a poll's state) must not move past records that were not."""
    answers = result if isinstance(result, list) else [result]
    for call, answer in enumerate(answers):
        failures = item_failures(answer)
        if failures:
            cause = items_error(failures, len(answer["data"]))
            where = f"step {name!r}" + (f" ({action})" if action else "")
            if isinstance(result, list):
                where += f", call {call}"
            error = {
                **cause.to_dict()["error"],
                "message": f"automation {context.get('automation')!r}: {where} failed: {cause}",
                "step": name,
                **({"call": call} if isinstance(result, list) else {}),
            }
            raise ZohoTaskError(error)
    return _merged(context, name, result)


def _merged(context: Mapping[str, Any], name: str, result: Any) -> dict[str, Any]:
    return {**context, "steps": {**context["steps"], name: result}}


# --- poll automations: windows, their state and the run's lock (engines/_polling.py) -------------------------------

POLL_RETRIES = 4  # a poll that fails retryably (the trigger's API throttled or down) is tried again this often
POLL_BACKOFF = Schedule(base_seconds=2.0, exponential=True, cap_seconds=60.0)


@app.task(name="zoho.automation_poll", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=POLL_RETRIES)
def automation_poll(
    self: Task[Any, Any], run: dict[str, Any], automation: Mapping[str, Any], connection: str
) -> dict[str, Any]:
    """One window of a poll run: poll from the stored state, then replace this task with the window's steps
    followed by `automation_commit` (which saves the window's state and goes on to the next window). A window
    with no records runs no step. `run` is `{"job", "lease", "polls", "records", "ran"}`: plain JSON, no secret."""
    job = _polling.PollJob.from_dict(run["job"])
    try:
        window = _polling.poll_window(engine_connector(), job, run["lease"])
    except ConnectorError as exc:
        error = ZohoTaskError({**exc.to_dict()["error"], "trigger": job.trigger})
        if not exc.retryable or self.request.retries >= POLL_RETRIES:
            raise error from None
        delay = exc.retry_after if exc.retry_after is not None else backoff(self.request.retries, POLL_BACKOFF)
        log.info("zoho.automation_poll[%s] %s: retrying in %.1f s", self.request.id, exc.kind, delay)
        raise self.retry(countdown=delay, exc=error) from None
    records = window["records"]
    polls = run["polls"] + 1
    run = {**run, "polls": polls, "records": run["records"] + len(records), "ran": run["ran"] or bool(records)}
    context = {"automation": job.automation, "trigger": {"records": records}, "steps": {}, "ran": bool(records)}
    after = (run, automation, connection, window["state"], window["more"])
    if not records:
        return self.replace(automation_commit.si(context, *after))
    steps = _steps_signature(automation, _load(automation), context, connection, polls)
    return self.replace(steps | automation_commit.s(*after))


@app.task(name="zoho.automation_commit", bind=True, acks_late=True, reject_on_worker_lost=True)
def automation_commit(
    self: Task[Any, Any],
    context: dict[str, Any],
    run: dict[str, Any],
    automation: Mapping[str, Any],
    connection: str,
    state: Any,
    more: bool,
) -> dict[str, Any]:
    """After a window's steps succeeded: save its state, then poll the next window when the trigger said `more`,
    or give the lock back and end the run. Saving twice (a redelivered message) saves the same state."""
    job = _polling.PollJob.from_dict(run["job"])
    connector = engine_connector()
    try:
        _polling.commit(connector, job, run["lease"], state)
    except ConnectorError as exc:  # LostLock, or the token store failing
        raise ZohoTaskError({**exc.to_dict()["error"], "automation": job.automation}) from None
    if more:
        return self.replace(automation_poll.si(run, automation, connection))
    _polling.finish(connector, job, run["lease"])
    return {
        "automation": job.automation,
        "trigger": context["trigger"],
        "steps": context["steps"],
        "ran": run["ran"],
        "polls": run["polls"],
        "records": run["records"],
        "state": state,
    }


@app.task(name="zoho.automation_release")
def automation_release(request: Any, exc: Any, traceback: Any, *, job: dict[str, Any], lease: str) -> None:
    """The errback of a poll run: a task of it failed, so the run ends here and gives its lock back (its state
    stays that of the last window whose steps succeeded). Called by the failing task's worker, in process."""
    polled = _polling.PollJob.from_dict(job)
    try:
        _polling.finish(engine_connector(), polled, lease)
    except Exception as error:  # the lock then expires on its own; never hide the run's own failure
        log.warning(
            "zoho.automation_release %s: %s; the lock expires on its own", polled.automation, type(error).__name__
        )
        return
    log.info("zoho.automation_release %s: the failed run gave its lock back", polled.automation)


def _checked_automation(automation: Any) -> dict[str, Any]:
    if not isinstance(automation, Mapping):
        violation = Violation("(automation)", "", "expected an automation file's content as an object")
        raise InputValidationError("automation", [violation])
    return dict(automation)


def _check_connection_name(connection: Any) -> None:
    checked_payload({"action": "(automation)", "connection": connection})


_loaded: dict[str, Automation] = {}


def _load(document: Mapping[str, Any]) -> Automation:
    """The automation, checked against the manifest once per process and content."""
    key = json.dumps(document, sort_keys=True, default=str)
    if key not in _loaded:
        if len(_loaded) >= 256:
            _loaded.clear()
        _loaded[key] = load_automation(document, bundled_manifest())
    return _loaded[key]


def automation_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An automation file's content, checked against the manifest (errors name the file): what travels in a
    message."""
    load_automation(path, bundled_manifest())
    document: dict[str, Any] = parse(Path(path).read_text(encoding="utf-8"), str(path))
    return document


# --- beat ------------------------------------------------------------------------------------------------------


def beat_schedule(paths: Iterable[str | os.PathLike[str]], connection: str) -> dict[str, dict[str, Any]]:
    """Celery beat entries for the scheduled automations among `paths` (files, or folders of *.yaml, *.yml and
    *.json): each sends `zoho.run_automation` with the file's content and the connection NAME on its cron, in UTC.
    A poll automation with a `cron` is an entry too (sent without a trigger, it polls); one without a cron, and a
    webhook's, are left out. Every file is checked first."""
    _check_connection_name(connection)
    entries: dict[str, dict[str, Any]] = {}
    for file in _automation_files(paths):
        document = automation_document(file)
        automation = _load(document)
        schedule = automation.trigger.get("schedule") or automation.trigger.get("poll") or {}
        if not schedule.get("cron"):
            continue
        name = f"zoho:{automation.name}"
        if name in entries:
            raise InputValidationError(
                str(file), [Violation("name", "/name", f"another scheduled automation is named {automation.name!r}")]
            )
        entries[name] = {
            "task": "zoho.run_automation",
            "schedule": cron_schedule(schedule["cron"]),
            "args": (document, connection),
        }
    return entries


def cron_schedule(expression: str) -> crontab:
    """A five-field cron expression as Celery's crontab. Celery counts Sunday as 0 only; cron also takes 7."""
    fields = expression.split()
    if len(fields) == 5 and re.search(r"(?<![0-9])7(?![0-9])", fields[4]):
        fields[4] = ",".join(str(day) for day in sorted(_days_of_week(fields[4])))
    return crontab.from_string(" ".join(fields))


_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _days_of_week(field: str) -> set[int]:
    days: set[int] = set()
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            first, last = 0, 6
        else:
            low, _, high = base.partition("-")
            first = _day(low)
            last = _day(high) if high else (7 if step else first)
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    return days


def _day(text: str) -> int:
    return _DAYS.index(text.upper()) if text.upper() in _DAYS else int(text)


def _automation_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in (".yaml", ".yml", ".json")))
        else:
            files.append(path)
    return files


def _beat_from_environment() -> dict[str, dict[str, Any]]:
    paths = [p for p in os.environ.get("ZOHO_CELERY_AUTOMATIONS", "").split(os.pathsep) if p]
    if not paths:
        return {}
    return beat_schedule(paths, os.environ.get("ZOHO_CONNECTION", ""))


app.conf.beat_schedule = _beat_from_environment()
