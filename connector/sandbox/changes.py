"""CRM record changes and the notifications Zoho sends about them.

`records.Batch` is the one place CRM records are written, and it calls `record` after each insert, update and
delete. While a CRM request is served, `collecting` gathers those changes (a context variable, so concurrent
requests never mix); `batches` groups them into Zoho's operation batches (one per module and operation, the ids of
a bulk write together) and `notifications` turns each batch into the payload every matching, unexpired
subscription is sent. Outside a request (seeding, a test driving Batch directly) nothing is gathered.

The payload follows Zoho's samples of what arrives at the notify URL (enable.html and update-info.html):
{"server_time", ["affected_values",] "query_params", "module", "resource_uri", "ids", "affected_fields",
"operation", "channel_id", "token"}. `query_params` holds the notify URL's own query parameters ("the parameters if
any were specified in the notification URL"); `affected_fields` is [] for an insert or a delete and one
{id: [changed fields]} per record for an update; `affected_values` ([{"record_id", "values"}]) comes with updates
when the channel asked for return_affected_field_values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from connector.sandbox.state import JSON, SandboxState, Subscription
from connector.sandbox.watch import condition_met

Operation = Literal["insert", "update", "delete"]
EVENT_OF: dict[str, str] = {"insert": "create", "update": "edit", "delete": "delete"}


@dataclass
class Change:
    module: str
    operation: Operation
    record_id: str
    fields: JSON = field(default_factory=dict)  # an update's changed fields and their new values


@dataclass
class OperationBatch:
    module: str
    operation: Operation
    ids: list[str] = field(default_factory=list)
    fields: dict[str, JSON] = field(default_factory=dict)  # id -> changed field -> new value (updates)


_pending: ContextVar[list[Change] | None] = ContextVar("sandbox_crm_changes", default=None)


def record(module: str, operation: Operation, record_id: str, fields: JSON | None = None) -> None:
    """Note one record's change for the request being served (nothing when no request is collecting)."""
    pending = _pending.get()
    if pending is not None:
        pending.append(Change(module, operation, record_id, dict(fields or {})))


@contextmanager
def collecting() -> Iterator[list[Change]]:
    """The changes recorded inside the block, in order."""
    changes: list[Change] = []
    token = _pending.set(changes)
    try:
        yield changes
    finally:
        _pending.reset(token)


def batches(changes: list[Change]) -> list[OperationBatch]:
    """One batch per (module, operation), in order of first appearance. A record created and then edited in the
    same request (a lead conversion links the new contact to the new account) is one insert, as Zoho reports it."""
    inserted = {(c.module, c.record_id) for c in changes if c.operation == "insert"}
    groups: dict[tuple[str, str], OperationBatch] = {}
    for change in changes:
        if change.operation == "update" and (change.module, change.record_id) in inserted:
            continue
        batch = groups.setdefault((change.module, change.operation), OperationBatch(change.module, change.operation))
        if change.record_id not in batch.fields:
            batch.ids.append(change.record_id)
            batch.fields[change.record_id] = {}
        batch.fields[change.record_id].update(change.fields)
    return list(groups.values())


def notifications(state: SandboxState, changes: list[Change], now: float) -> list[tuple[Subscription, JSON]]:
    """(subscription, payload) for each batch and each live subscription watching its module and operation."""
    out: list[tuple[Subscription, JSON]] = []
    if not any(state.watch.values()):  # nobody watching: a bulk write need not group its changes
        return out
    for batch in batches(changes):
        for subscriptions in state.watch.values():
            sub = subscriptions.get(batch.module)
            if sub is None or sub.expires_at <= now or EVENT_OF[batch.operation] not in sub.operations:
                continue
            ids = batch.ids
            if batch.operation == "update" and sub.notification_condition:
                ids = [i for i in ids if condition_met(sub.notification_condition, set(batch.fields[i]))]
            if ids:
                out.append((sub, payload(sub, batch, ids, now)))
    return out


def payload(sub: Subscription, batch: OperationBatch, ids: list[str], now: float) -> JSON:
    body: JSON = {"server_time": int(now * 1000)}
    update = batch.operation == "update"
    if update and sub.return_affected_field_values:
        body["affected_values"] = [{"record_id": i, "values": batch.fields[i]} for i in ids]
    body["query_params"] = _query(sub.notify_url)
    body["module"] = sub.module
    body["resource_uri"] = sub.resource_uri
    body["ids"] = list(ids)
    body["affected_fields"] = [{i: list(batch.fields[i])} for i in ids] if update else []
    body["operation"] = batch.operation
    body["channel_id"] = sub.channel_id
    body["token"] = sub.token
    return body


def _query(url: str) -> dict[str, Any]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
