"""Poll automations on an engine: the poll's state and the run's lock live in the connection's token store.

A poll automation (`trigger: {poll: {trigger, inputs, cron}}`) runs on an engine as windows, each one an engine
task or activity, in this order and never two runs of one automation at once:

    lease = begin(connector, job)                 # None: a run of this automation is still going; skip this one
    while True:
        window = poll_window(connector, job, lease)   # {"records", "state", "more"}, from the stored state
        ... the automation's steps on window["records"] (none when empty) ...
        commit(connector, job, lease, window["state"])  # only once every step succeeded
        if not window["more"]: break
    finish(connector, job, lease)

An engine whose history keeps every task's input and output (Temporal) uses the staged pair instead of the last
two calls, so a window's state, which can be large, never enters its history: `poll_window_staged` keeps the
window's state aside in the store and returns its digest in place of the state (`{"records", "staged", "more"}`),
and `commit_staged(connector, job, lease, digest)` makes that staged state the poll's.

The state is kept under the job's name in the connection's token store (base.LeaseStore values), the one store
every worker of that connection shares, so the next run, on any worker or machine, starts where this one ended. A
window whose steps fail leaves the state where it was: the next run hands out the same records again (the shipped
automations upsert, so a window written twice leaves each record once). The lock is a lease of one slot that
expires `lock_seconds` after it was last renewed (each window renews it), so a run whose worker died blocks the
automation no longer than that; a run that finds its lease gone (it ran past it, and another run may have started)
stops before saving anything.

Every function here is blocking and does I/O: engines call them from an activity or a task, never from workflow
code. Job and window are plain JSON, so they travel in engine messages and histories (they hold no secret: a
connection NAME, trigger inputs, record ids and timestamps).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.errors import ConnectionConfigError, ConnectorError, InputValidationError, Violation

if TYPE_CHECKING:
    from connector.auth.stores.base import LeaseStore
    from connector.automations import Automation
    from connector.runner import Connector

__all__ = [
    "LOCK_SECONDS",
    "STATE_SECONDS",
    "LostLock",
    "PollJob",
    "begin",
    "commit",
    "commit_staged",
    "finish",
    "poll_window",
    "poll_window_staged",
    "stage",
]

LOCK_SECONDS = 3600.0  # a run's lock outlives a dead worker by at most this long; each window renews it
STATE_SECONDS = 10 * 366 * 86400.0  # store values expire; a poll's state should not (ten years)


class LostLock(ConnectorError):
    """The run's lock expired before it saved its state: another run may have taken over, so this one stops
    without saving (its windows' records will be handed out again, never lost). Not retryable: the next run starts
    from the saved state. Its kind is the base's `error`: it never leaves an engine, so the protocol has no kind for it.
    """


@dataclass(frozen=True)
class PollJob:
    """One poll automation on one connection: what identifies its state and its lock."""

    automation: str
    trigger: str
    connection: str
    inputs: dict[str, Any] = field(default_factory=dict)
    lock_seconds: float = LOCK_SECONDS

    @classmethod
    def of(cls, automation: Automation, connection: str, *, lock_seconds: float = LOCK_SECONDS) -> PollJob:
        poll = automation.trigger.get("poll")
        if not isinstance(poll, Mapping):
            problem = f"expected an automation with a poll trigger; this one's is {automation.trigger_kind}"
            raise InputValidationError(automation.source, [Violation("trigger", "/trigger", problem)])
        return cls(automation.name, poll["trigger"], connection, dict(poll.get("inputs") or {}), lock_seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "automation": self.automation,
            "trigger": self.trigger,
            "connection": self.connection,
            "inputs": self.inputs,
            "lock_seconds": self.lock_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PollJob:
        return cls(
            str(data["automation"]),
            str(data["trigger"]),
            str(data["connection"]),
            dict(data.get("inputs") or {}),
            float(data.get("lock_seconds") or LOCK_SECONDS),
        )

    @property
    def state_name(self) -> str:
        """Where the state is kept: per automation, trigger and connection (a new trigger starts afresh)."""
        return "zoho-poll-state:" + self._digest()

    @property
    def lock_name(self) -> str:
        return "zoho-poll-lock:" + self._digest()

    @property
    def staged_name(self) -> str:
        """A window's state, polled but not yet kept (see `stage`)."""
        return "zoho-poll-staged:" + self._digest()

    @property
    def owner_name(self) -> str:
        """Which run holds the lock, and its lease (see `begin`)."""
        return "zoho-poll-owner:" + self._digest()

    def _digest(self) -> str:
        # Store names are short ASCII (base.LeaseStore); the automation's name may be neither.
        identity = json.dumps([self.automation, self.trigger, self.connection], ensure_ascii=False)
        return hashlib.sha256(identity.encode()).hexdigest()[:40]


def begin(connector: Connector, job: PollJob, owner: str | None = None) -> str | None:
    """Take the automation's lock: a lease id, or None when another run holds it (this run should then end
    without polling).

    `owner` names the run (an engine's task or workflow run id, the same on every attempt). An attempt that follows
    one whose answer was lost (its worker died after taking the lock) then gets that attempt's lease back instead
    of finding the lock taken by nobody alive and skipping the run until the lease expires."""
    store = _store(connector, job)
    if owner is not None:
        text = store.get_value(job.owner_name)
        held = json.loads(text) if text is not None else {}
        earlier = held.get("lease") if isinstance(held, dict) and held.get("owner") == owner else None
        if isinstance(earlier, str) and store.renew_slot(job.lock_name, earlier, job.lock_seconds):
            return earlier
    lease = store.acquire_slot(job.lock_name, 1, job.lock_seconds)
    if lease is not None and owner is not None:
        store.set_value(job.owner_name, json.dumps({"owner": owner, "lease": lease}), job.lock_seconds)
    return lease


def poll_window(connector: Connector, job: PollJob, lease: str) -> dict[str, Any]:
    """The next window of what is new since the stored state: `{"records", "state", "more"}` (the trigger's own
    answer). Renews the lock first; the stored state is not changed (see `commit`)."""
    store = _store(connector, job)
    _renew(store, job, lease)
    text = store.get_value(job.state_name)
    state = None if text is None else json.loads(text)
    answer = connector.poll(job.trigger, job.inputs, state, connection=job.connection)
    return {"records": answer["records"], "state": answer["state"], "more": bool(answer.get("more"))}


def commit(connector: Connector, job: PollJob, lease: str, state: Any) -> None:
    """Keep `state` (a window's, once its steps succeeded) for the next window or run. Refuses, saving nothing,
    when the lock was lost."""
    store = _store(connector, job)
    _renew(store, job, lease)
    store.set_value(job.state_name, _dumps(state), STATE_SECONDS)


def poll_window_staged(connector: Connector, job: PollJob, lease: str) -> dict[str, Any]:
    """`poll_window`, its state staged in the store (`stage`): `{"records", "staged": the state's digest, "more"}`."""
    window = poll_window(connector, job, lease)
    return {
        "records": window["records"],
        "staged": stage(connector, job, lease, window["state"]),
        "more": window["more"],
    }


def stage(connector: Connector, job: PollJob, lease: str, state: Any) -> str:
    """Keep `state` aside for `commit_staged`, replacing what an earlier window staged, and return its digest.
    Refuses when the lock was lost; the poll's state is not changed."""
    store = _store(connector, job)
    _renew(store, job, lease)
    text = _dumps(state)
    digest = _state_digest(text)
    # Outlives the lock, which this window renewed: a run that still holds it finds its staged state.
    store.set_value(job.staged_name, _dumps({"digest": digest, "state": text}), 2 * job.lock_seconds)
    return digest


def commit_staged(connector: Connector, job: PollJob, lease: str, digest: str) -> None:
    """Keep the state staged under `digest` (`stage`) as the poll's. Harmless to repeat: an attempt whose answer
    was lost finds that state kept already. Refuses, saving nothing, when the lock was lost or the staged state is
    gone or another."""
    store = _store(connector, job)
    _renew(store, job, lease)
    text = store.get_value(job.staged_name)
    staged = json.loads(text) if text is not None else None
    if isinstance(staged, dict) and staged.get("digest") == digest and isinstance(staged.get("state"), str):
        store.set_value(job.state_name, staged["state"], STATE_SECONDS)
        return
    current = store.get_value(job.state_name)
    if current is not None and _state_digest(current) == digest:
        return
    raise LostLock(
        f"automation {job.automation!r}: the window's polled state ({digest}) is no longer staged in the token "
        "store (it expired, or another run staged its own); nothing is saved, and the next run hands out the same "
        "records again",
        retryable=False,
    )


def finish(connector: Connector, job: PollJob, lease: str) -> None:
    """Give the lock back (harmless when it already expired)."""
    _store(connector, job).release_slot(job.lock_name, lease)


def stored_state(connector: Connector, job: PollJob) -> Any:
    """The state the last committed window left (None before the first): for operators and tests."""
    text = _store(connector, job).get_value(job.state_name)
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _state_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _renew(store: LeaseStore, job: PollJob, lease: str) -> None:
    if not store.renew_slot(job.lock_name, lease, job.lock_seconds):
        raise LostLock(
            f"automation {job.automation!r}: this run's lock expired (it was not renewed within "
            f"{job.lock_seconds:g} s), so another run may have started; it stops without saving its poll state, "
            "and the next run hands out the same records again",
            retryable=False,
        )


def _store(connector: Connector, job: PollJob) -> LeaseStore:
    store = connector.shared_store(job.trigger, connection=job.connection)
    if store is None:
        raise ConnectionConfigError(
            f"connection {job.connection!r}: a poll automation on an engine keeps its state in the connection's "
            "token store, shared by every worker; this connection's store is one process's (memory:) or cannot "
            "keep values. Use a SQLite file, MySQL/MariaDB, PostgreSQL or Redis store"
        )
    return store
