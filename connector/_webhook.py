"""Webhook triggers: a subscription that verifies its callbacks and renews itself before it expires.

A subscription is a small JSON object the caller stores (a database row, an engine's state): the trigger and its
inputs, the channel id, a random verification token the product echoes in every callback, and when the channel
expires and should be renewed. Renewing keeps the channel id and the token and only moves the expiry, so it is
idempotent and a callback in flight across a renewal still verifies. The product's own part (the actions' inputs,
the callback's shape) is the trigger's channel strategy (connector/strategies/channels.py).
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.errors import InputValidationError, NotFoundError, Violation, WebhookRejected, ZohoAPIError
from connector.models import Trigger, Webhook
from connector.strategies.channels import CHANNELS, Channel, ChannelRequest

__all__ = ["VERSION", "handle", "renew", "renew_due", "subscribe", "unsubscribe"]

VERSION = 1
SKEW = 300  # seconds: clocks of the product and of this machine may disagree this much
TOKEN_BYTES = 24  # 32 URL-safe characters: Zoho takes a verification token of at most 50

Run = Callable[[str, Mapping[str, Any]], dict[str, Any]]
Clock = Callable[[], float]


def subscribe(trigger: Trigger, inputs: Mapping[str, Any], notify_url: str, run: Run, clock: Clock) -> dict[str, Any]:
    """Open a channel for the trigger's events and return the subscription to store."""
    channel = _channel(trigger)
    now = clock()
    subscription = {
        "version": VERSION,
        "trigger": trigger.key,
        "inputs": dict(inputs),
        "channel_id": channel.new_channel_id(),
        "token": secrets.token_urlsafe(TOKEN_BYTES),
        "notify_url": notify_url,
        "created_at": _iso(now),
    }
    return _open(trigger, subscription, _spec(trigger)["subscribe"], run, now)


def renew(trigger: Trigger, subscription: Mapping[str, Any], run: Run, clock: Clock) -> dict[str, Any]:
    """Extend the channel's life (same channel, same token). A channel the product no longer knows (it expired
    while nobody renewed it) is opened again under the same id and token, so stored subscriptions stay valid."""
    current = _checked(trigger, subscription)
    now = clock()
    try:
        return _open(trigger, current, _spec(trigger)["renew"], run, now)
    except ZohoAPIError as exc:
        if not _channel(trigger).gone(exc):
            raise
        return _open(trigger, current, _spec(trigger)["subscribe"], run, now)


def renew_due(subscription: Mapping[str, Any], clock: Clock) -> bool:
    """Whether the subscription should be renewed now."""
    return clock() >= _epoch(subscription["renew_after"])


def unsubscribe(trigger: Trigger, subscription: Mapping[str, Any], run: Run) -> None:
    """Close the channel. Closing one that is already gone is not an error."""
    current = _checked(trigger, subscription)
    channel = _channel(trigger)
    try:
        run(_spec(trigger)["unsubscribe"], channel.unsubscribe_inputs(current["channel_id"]))
    except ZohoAPIError as exc:
        if not channel.gone(exc):
            raise


def handle(
    trigger: Trigger, subscription: Mapping[str, Any], body: bytes | str, run: Run, clock: Clock
) -> list[dict[str, Any]]:
    """The events of one callback, or WebhookRejected. The token is compared in constant time; the body's own
    claims are believed only after it matches."""
    current = _checked(trigger, subscription)
    channel = _channel(trigger)
    try:
        callback = channel.read(json.loads(body))
    except ValueError:  # json.JSONDecodeError included; neither message quotes the body
        raise WebhookRejected("the callback's body is not a notification of this channel", reason="malformed") from None
    genuine = hmac.compare_digest(callback.token.encode(), current["token"].encode())
    if not genuine or callback.channel_id != current["channel_id"]:
        raise WebhookRejected("the callback's token or channel does not match the subscription", reason="forged")
    now = clock()
    starts, ends = _epoch(current["created_at"]) - SKEW, _epoch(current["expires_at"]) + SKEW
    sent = callback.sent_at if callback.sent_at is not None else now
    if not starts <= sent <= ends or now > ends:
        raise WebhookRejected("the callback falls outside the channel's life; renew or subscribe again", reason="stale")
    inputs = current["inputs"]
    events = [event for event in callback.events if channel.wanted(inputs, event)]
    if inputs.get("fetchRecords") and "fetch" in _spec(trigger):
        for event in events:
            event["record"] = _fetched(_spec(trigger)["fetch"], channel, channel.fetch_inputs(inputs, event), run)
    return events


# --- helpers ---------------------------------------------------------------------------------------------------


def _open(trigger: Trigger, subscription: dict[str, Any], action: str, run: Run, now: float) -> dict[str, Any]:
    spec = _spec(trigger)
    expires = now + spec["lifetime_seconds"]
    request = ChannelRequest(
        subscription["channel_id"], subscription["token"], subscription["notify_url"], _iso(expires)
    )
    channel = _channel(trigger)
    answer = run(action, channel.subscribe_inputs(subscription["inputs"], request))
    granted = channel.expiry(answer.get("data"))
    if granted is not None:  # the product may grant less than asked: renew by what it granted
        expires = min(expires, _epoch(granted))
    renew_before = min(spec["renew_before_seconds"], (expires - now) / 2)
    return {**subscription, "expires_at": _iso(expires), "renew_after": _iso(expires - renew_before)}


def _fetched(action: str, channel: Channel, inputs: dict[str, Any] | None, run: Run) -> Any:
    if inputs is None:
        return None
    try:
        return channel.record(run(action, inputs)["data"])
    except NotFoundError:  # deleted since the callback was sent
        return None


_FIELDS = ("version", "trigger", "inputs", "channel_id", "token", "notify_url", "created_at", "expires_at")


def _checked(trigger: Trigger, subscription: Mapping[str, Any]) -> dict[str, Any]:
    """A stored subscription of this trigger, or InputValidationError naming what is wrong (never its token)."""
    problems = []
    if not isinstance(subscription, Mapping):
        problems.append(Violation("(subscription)", "", "must be the object subscribe returned"))
    else:
        problems += [Violation("(subscription)", f"/{k}", "is required") for k in _FIELDS if k not in subscription]
        if not problems and subscription["trigger"] != trigger.key:
            problems.append(Violation("(subscription)", "/trigger", "is a subscription of another trigger"))
        if not problems and subscription["version"] != VERSION:
            problems.append(Violation("(subscription)", "/version", f"must be {VERSION}"))
    if problems:
        raise InputValidationError(trigger.key, problems)
    return dict(subscription)


def _spec(trigger: Trigger) -> Webhook:
    if trigger.webhook is None:
        raise InputValidationError(trigger.key, [Violation("(trigger)", "", "is not a webhook trigger")])
    return trigger.webhook


def _channel(trigger: Trigger) -> Channel:
    return CHANNELS[_spec(trigger)["channel"]]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
