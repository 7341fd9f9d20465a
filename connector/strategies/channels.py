"""Webhook channels: how a product is asked to call back on changes, and how its callbacks read.

A webhook trigger names its channel in its data (`webhook: {channel: NAME}`); the generic runtime
(connector/_webhook.py) keeps the subscription, the verification token and the renewals, and asks the channel only
what is the product's own: the inputs of the actions that open, renew and close a channel, what a callback's body
says, and how to fetch a changed record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connector.errors import ZohoAPIError

__all__ = ["CHANNELS", "Callback", "Channel", "ChannelRequest", "CrmNotifications"]


@dataclass(frozen=True)
class ChannelRequest:
    """What the runtime decided about a channel; the channel turns it into its actions' inputs."""

    channel_id: str
    token: str
    notify_url: str
    expires_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class Callback:
    """A callback's body as the runtime needs it: who it claims to be from, when, and one event per record."""

    channel_id: str
    token: str
    sent_at: float | None  # epoch seconds, when the body says
    events: list[dict[str, Any]]  # {"operation", "module", "id", "affected_fields"}


class Channel(Protocol):
    def new_channel_id(self) -> str: ...

    def subscribe_inputs(self, inputs: Mapping[str, Any], request: ChannelRequest) -> dict[str, Any]:
        """The inputs of the subscribe and renew actions."""
        ...

    def unsubscribe_inputs(self, channel_id: str) -> dict[str, Any]: ...

    def expiry(self, answer: Any) -> str | None:
        """When the channel expires, as the subscribe or renew action's answer says (ISO 8601), if it says."""
        ...

    def gone(self, error: ZohoAPIError) -> bool:
        """Whether an error means the product no longer knows the channel (expired or closed)."""
        ...

    def read(self, body: Any) -> Callback:
        """The callback's body, parsed as JSON; ValueError when it is not a callback of this channel."""
        ...

    def wanted(self, inputs: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
        """Whether the trigger's inputs ask for this event (the channel may deliver more than asked)."""
        ...

    def fetch_inputs(self, inputs: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The fetch action's inputs for the event's record, or None when there is nothing to fetch (a delete)."""
        ...

    def record(self, answer: Any) -> Any:
        """The record in the fetch action's answer."""
        ...


class CrmNotifications:
    """Zoho CRM's notification channels (`/actions/watch`).

    Zoho calls the notify URL with `{"server_time", "module", "resource_uri", "ids", "affected_fields",
    "operation": "insert"|"update"|"delete", "channel_id", "token", "query_params"}`; one callback may carry many ids
    (a bulk change). The trigger speaks of create / edit / delete, Zoho's event names of the same words
    (`Leads.create`), and its callbacks of insert / update / delete."""

    OPERATIONS = {"insert": "create", "update": "edit", "delete": "delete"}

    def new_channel_id(self) -> str:
        import secrets

        # Zoho's channel ids are long integers in its examples and strings in its OpenAPI: digits fit both.
        return str(10**15 + secrets.randbelow(9 * 10**15))

    def subscribe_inputs(self, inputs: Mapping[str, Any], request: ChannelRequest) -> dict[str, Any]:
        module = inputs["recordType"]
        operations = inputs.get("operations") or ["all"]
        values: dict[str, Any] = {
            "channelId": request.channel_id,
            "events": [f"{module}.{op}" for op in (["all"] if "all" in operations else sorted(set(operations)))],
            "notifyUrl": request.notify_url,
            "token": request.token,
            "channelExpiry": request.expires_at,
            "returnAffectedFieldValues": True,
        }
        fields = inputs.get("fields")
        if fields:  # only changes to these fields (edits); creates and deletes are always reported
            values["notificationCondition"] = [
                {
                    "type": "field_selection",
                    "module": {"api_name": module},
                    "field_selection": {"group_operator": "or", "group": [{"field": {"api_name": f}} for f in fields]},
                }
            ]
        return values

    def unsubscribe_inputs(self, channel_id: str) -> dict[str, Any]:
        return {"channelIds": [channel_id]}

    def expiry(self, answer: Any) -> str | None:
        """Zoho may grant less than asked (one hour for more than a week): `watch[].details.events[].channel_expiry`,
        the earliest of them."""
        from datetime import datetime

        found = []
        for item in answer.get("watch", []) if isinstance(answer, Mapping) else []:
            details = item.get("details") if isinstance(item, Mapping) else None
            for event in details.get("events", []) if isinstance(details, Mapping) else []:
                stamp = event.get("channel_expiry") if isinstance(event, Mapping) else None
                if isinstance(stamp, str):
                    with contextlib.suppress(ValueError):
                        found.append(datetime.fromisoformat(stamp))
        return min(found).isoformat() if found else None

    def gone(self, error: ZohoAPIError) -> bool:
        # PUT, PATCH or DELETE of a channel Zoho does not have (it expired, or was disabled) answers NOT_SUBSCRIBED.
        return error.code == "NOT_SUBSCRIBED" or error.status == 404

    def read(self, body: Any) -> Callback:
        if not isinstance(body, Mapping):
            raise ValueError("the body is not a JSON object")
        operation = self.OPERATIONS.get(body.get("operation"))  # type: ignore[arg-type]
        ids, module = body.get("ids"), body.get("module")
        channel_id, token = body.get("channel_id"), body.get("token")
        if operation is None or not isinstance(module, str) or not isinstance(ids, list):
            raise ValueError("the body lacks operation, module or ids")
        if not isinstance(channel_id, str | int) or not isinstance(token, str):
            raise ValueError("the body lacks channel_id or token")
        affected = _affected_fields(body.get("affected_fields"))
        server_time = body.get("server_time")
        sent_at = server_time / 1000 if isinstance(server_time, int | float) else None
        events = [
            {"operation": operation, "module": module, "id": str(rid), "affected_fields": affected.get(str(rid), [])}
            for rid in ids
        ]
        return Callback(str(channel_id), token, sent_at, events)

    def wanted(self, inputs: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
        # Zoho takes a module name in any case and calls back with its API name: `leads` watches Leads.
        operations = inputs.get("operations") or ["all"]
        same_module = str(event["module"]).casefold() == str(inputs["recordType"]).casefold()
        return same_module and ("all" in operations or event["operation"] in operations)

    def fetch_inputs(self, inputs: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any] | None:
        if event["operation"] == "delete":
            return None
        return {"recordType": event["module"], "recordId": event["id"]}

    def record(self, answer: Any) -> Any:
        found = answer.get("data") if isinstance(answer, Mapping) else None  # {"data": [record]}
        return found[0] if isinstance(found, list) and found else None


def _affected_fields(value: Any) -> dict[str, list[str]]:
    """Zoho's affected_fields: a list of `{record id: [field, …]}` (or, with field values, `{record id: {field:
    value}}`); the changed field names by record id."""
    found: dict[str, list[str]] = {}
    for entry in value if isinstance(value, list) else [value] if isinstance(value, Mapping) else []:
        if not isinstance(entry, Mapping):
            continue
        for rid, fields in entry.items():
            if isinstance(fields, Mapping):
                found[str(rid)] = [str(f) for f in fields]
            elif isinstance(fields, list):
                found[str(rid)] = [str(f) for f in fields if isinstance(f, str)]
    return found


CHANNELS: dict[str, Channel] = {"crm_notifications": CrmNotifications()}
