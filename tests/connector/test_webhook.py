"""Webhook subscriptions: what is sent to open, renew and close a channel, and how callbacks are verified."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from connector import _webhook
from connector.errors import InputValidationError, NotFoundError, WebhookRejected, ZohoAPIError
from connector.models import Trigger
from tests.conftest import FakeClock

TRIGGER = Trigger(
    key="crmRecordEvents",
    label="CRM - Record Events",
    description="test",
    kind="webhook",
    product="crm",
    connection="zohoOAuth",
    inputs="schemas/triggers/crm/record-events.json",
    webhook={
        "channel": "crm_notifications",
        "subscribe": "crmEnableNotification",
        "renew": "crmUpdateNotification",
        "unsubscribe": "crmDisableNotification",
        "fetch": "crmGetRecord",
        "lifetime_seconds": 86400,
        "renew_before_seconds": 3600,
    },
    example_output={},
    input_schema={},
    file="triggers/crm/record-events.yaml",
)


class Zoho:
    """Records the actions run and answers them as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, Exception] = {}
        self.records: dict[str, dict[str, Any]] = {}

    def __call__(self, action: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((action, dict(inputs)))
        if action in self.failures:
            raise self.failures.pop(action)
        if action == "crmGetRecord":
            if inputs["recordId"] not in self.records:
                raise NotFoundError(status=204, code=None, message=None)
            return {"data": {"data": [self.records[inputs["recordId"]]]}}
        return {"data": {"watch": [{"code": "SUCCESS", "status": "success"}]}}


@pytest.fixture
def zoho() -> Zoho:
    return Zoho()


def subscribed(zoho: Zoho, clock: FakeClock, **inputs: Any) -> dict[str, Any]:
    return _webhook.subscribe(TRIGGER, {"recordType": "Leads", **inputs}, "https://hooks.example.com/zoho", zoho, clock)


def callback(subscription: Mapping[str, Any], clock: FakeClock, **overrides: Any) -> bytes:
    body = {
        "server_time": int(clock() * 1000),
        "query_params": {},
        "module": "Leads",
        "resource_uri": "https://www.zohoapis.eu/crm/v8/Leads",
        "ids": ["1", "2"],
        "affected_fields": [{"1": ["Email"]}, {"2": ["Email", "Phone"]}],
        "operation": "update",
        "channel_id": subscription["channel_id"],
        "token": subscription["token"],
        **overrides,
    }
    return json.dumps(body).encode()


def test_subscribing_opens_a_channel_for_the_modules_events(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock, operations=["edit", "create"], fields=["Email"])
    [(action, sent)] = zoho.calls
    assert action == "crmEnableNotification"
    assert sent["events"] == ["Leads.create", "Leads.edit"]
    assert sent["notifyUrl"] == "https://hooks.example.com/zoho"
    assert sent["channelId"] == subscription["channel_id"] and sent["channelId"].isdigit()
    assert sent["token"] == subscription["token"] and 16 <= len(sent["token"]) <= 50
    assert sent["notificationCondition"][0]["field_selection"]["group"] == [{"field": {"api_name": "Email"}}]
    assert sent["channelExpiry"] == subscription["expires_at"] == _webhook._iso(clock() + 86400)
    assert _webhook._epoch(subscription["renew_after"]) == int(clock()) + 86400 - 3600
    assert json.loads(json.dumps(subscription)) == subscription


def test_every_subscription_has_its_own_channel_and_token(zoho: Zoho, clock: FakeClock) -> None:
    first, second = subscribed(zoho, clock), subscribed(zoho, clock)
    assert first["channel_id"] != second["channel_id"] and first["token"] != second["token"]
    assert zoho.calls[0][1]["events"] == ["Leads.all"]


def test_a_genuine_callback_gives_one_event_per_record(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    events = _webhook.handle(TRIGGER, subscription, callback(subscription, clock), zoho, clock)
    assert events == [
        {"operation": "edit", "module": "Leads", "id": "1", "affected_fields": ["Email"]},
        {"operation": "edit", "module": "Leads", "id": "2", "affected_fields": ["Email", "Phone"]},
    ]


@pytest.mark.parametrize(("zoho_word", "ours"), [("insert", "create"), ("update", "edit"), ("delete", "delete")])
def test_zohos_operations_become_the_triggers_words(zoho: Zoho, clock: FakeClock, zoho_word: str, ours: str) -> None:
    subscription = subscribed(zoho, clock)
    body = callback(subscription, clock, operation=zoho_word, ids=["7"], affected_fields=None)
    assert _webhook.handle(TRIGGER, subscription, body, zoho, clock) == [
        {"operation": ours, "module": "Leads", "id": "7", "affected_fields": []}
    ]


def test_only_the_operations_asked_for_are_handed_out(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock, operations=["create"])
    body = callback(subscription, clock, operation="delete")
    assert _webhook.handle(TRIGGER, subscription, body, zoho, clock) == []


def test_a_module_named_in_another_case_still_gets_its_events(zoho: Zoho, clock: FakeClock) -> None:
    """Zoho matches module names whatever their case and calls back with the API name (Leads): a trigger asked for
    `leads` must not drop every callback as another module's."""
    subscription = subscribed(zoho, clock, recordType="leads", fetchRecords=True)
    zoho.records["1"] = {"id": "1"}
    events = _webhook.handle(TRIGGER, subscription, callback(subscription, clock, ids=["1"]), zoho, clock)
    assert [(e["module"], e["id"], e["record"]) for e in events] == [("Leads", "1", {"id": "1"})]
    other = callback(subscription, clock, module="Contacts")
    assert _webhook.handle(TRIGGER, subscription, other, zoho, clock) == []


def test_whatever_the_trigger_accepts_makes_a_valid_channel_request(clock: FakeClock) -> None:
    """The trigger's inputs are checked against what Zoho takes before any request: at most 10 watched fields
    (Zoho's limit for a notification condition); up to that, the enable request the channel builds is valid."""
    from connector._inputs import checked_inputs
    from connector.manifest import bundled_manifest
    from connector.strategies.channels import CHANNELS, ChannelRequest

    manifest = bundled_manifest()
    trigger, enable = manifest.trigger("crmRecordEvents"), manifest.actions["crmEnableNotification"]
    request = ChannelRequest("1000000000000001", "t" * 32, "https://hooks.example.com/zoho", _webhook._iso(clock()))
    for operations in (["all"], ["create"], ["edit", "delete"], ["create", "edit", "delete", "all"]):
        inputs = {"recordType": "Leads", "operations": operations, "fields": [f"Field_{n}" for n in range(10)]}
        values = checked_inputs(trigger.key, trigger.input_schema, inputs)
        checked_inputs(enable.key, enable.input_schema, CHANNELS["crm_notifications"].subscribe_inputs(values, request))
    eleven = {"recordType": "Leads", "fields": [f"F{n}" for n in range(11)]}
    with pytest.raises(InputValidationError) as caught:
        checked_inputs(trigger.key, trigger.input_schema, eleven)
    assert [v.input for v in caught.value.violations] == ["fields"]


@pytest.mark.parametrize(
    "tampered",
    [{"token": "x" * 32}, {"token": ""}, {"channel_id": "1000000000000001"}],
    ids=["wrong token", "empty token", "other channel"],
)
def test_a_forged_callback_is_rejected(zoho: Zoho, clock: FakeClock, tampered: dict[str, Any]) -> None:
    subscription = subscribed(zoho, clock)
    with pytest.raises(WebhookRejected) as caught:
        _webhook.handle(TRIGGER, subscription, callback(subscription, clock, **tampered), zoho, clock)
    assert caught.value.reason == "forged"
    assert subscription["token"] not in str(caught.value) and "x" * 32 not in json.dumps(caught.value.to_dict())


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"operation": "insert"}', b'{"ids": "1"}'])
def test_a_body_that_is_not_a_notification_is_malformed(zoho: Zoho, clock: FakeClock, body: bytes) -> None:
    subscription = subscribed(zoho, clock)
    with pytest.raises(WebhookRejected) as caught:
        _webhook.handle(TRIGGER, subscription, body, zoho, clock)
    assert caught.value.reason == "malformed"


def test_a_callback_after_the_channel_expired_is_stale(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    clock.now += 86400 + _webhook.SKEW + 1
    with pytest.raises(WebhookRejected) as caught:
        _webhook.handle(TRIGGER, subscription, callback(subscription, clock), zoho, clock)
    assert caught.value.reason == "stale"


def test_a_replayed_callback_from_before_the_subscription_is_stale(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    old = callback(subscription, clock, server_time=int((clock() - 2 * _webhook.SKEW) * 1000))
    with pytest.raises(WebhookRejected, match="outside the channel's life"):
        _webhook.handle(TRIGGER, subscription, old, zoho, clock)


def test_fetch_records_adds_each_records_data(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock, fetchRecords=True)
    zoho.records["1"] = {"id": "1", "Email": "a@example.com"}  # record 2 was deleted since
    events = _webhook.handle(TRIGGER, subscription, callback(subscription, clock), zoho, clock)
    assert [e["record"] for e in events] == [{"id": "1", "Email": "a@example.com"}, None]
    deleted = callback(subscription, clock, operation="delete", ids=["3"])
    assert _webhook.handle(TRIGGER, subscription, deleted, zoho, clock)[0]["record"] is None
    assert [c for c in zoho.calls if c[0] == "crmGetRecord"] == [
        ("crmGetRecord", {"recordType": "Leads", "recordId": "1"}),
        ("crmGetRecord", {"recordType": "Leads", "recordId": "2"}),
    ]


def test_renewing_keeps_channel_and_token_and_moves_the_expiry(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    assert not _webhook.renew_due(subscription, clock)
    clock.now += 86400 - 3600
    assert _webhook.renew_due(subscription, clock)
    before = callback(subscription, clock)  # sent before the renewal, delivered after it
    renewed = _webhook.renew(TRIGGER, subscription, zoho, clock)
    assert zoho.calls[-1][0] == "crmUpdateNotification"
    assert {k: renewed[k] for k in ("channel_id", "token")} == {k: subscription[k] for k in ("channel_id", "token")}
    assert renewed["expires_at"] == _webhook._iso(clock() + 86400) and not _webhook.renew_due(renewed, clock)
    assert len(_webhook.handle(TRIGGER, renewed, before, zoho, clock)) == 2


def test_a_shorter_life_granted_by_zoho_is_the_one_renewed_by(zoho: Zoho, clock: FakeClock) -> None:
    """Zoho may keep a channel its default hour whatever was asked: the subscription expires and is due for renewal
    by what Zoho's answer says (details.events[].channel_expiry), not by the day asked for."""
    granted = _webhook._iso(clock() + 3600)
    answer = {"watch": [{"code": "SUCCESS", "details": {"events": [{"channel_expiry": granted}]}}]}
    subscription = _webhook.subscribe(
        TRIGGER,
        {"recordType": "Leads"},
        "https://hooks.example.com/zoho",
        lambda action, inputs: {"data": answer},
        clock,
    )
    assert subscription["expires_at"] == granted
    assert _webhook._epoch(subscription["renew_after"]) == int(clock()) + 1800  # half its life: well before it ends
    clock.now += 1800
    assert _webhook.renew_due(subscription, clock)


def test_a_channel_zoho_forgot_is_opened_again_under_the_same_id(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    zoho.failures["crmUpdateNotification"] = ZohoAPIError(status=400, code="NOT_SUBSCRIBED", message="not subscribed")
    renewed = _webhook.renew(TRIGGER, subscription, zoho, clock)
    assert [c[0] for c in zoho.calls] == ["crmEnableNotification", "crmUpdateNotification", "crmEnableNotification"]
    assert zoho.calls[-1][1]["channelId"] == subscription["channel_id"] == renewed["channel_id"]


def test_renewing_fails_for_any_other_error(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    zoho.failures["crmUpdateNotification"] = ZohoAPIError(status=400, code="INVALID_DATA", message="invalid data")
    with pytest.raises(ZohoAPIError, match="INVALID_DATA"):
        _webhook.renew(TRIGGER, subscription, zoho, clock)


def test_unsubscribing_closes_the_channel_once_and_twice(zoho: Zoho, clock: FakeClock) -> None:
    subscription = subscribed(zoho, clock)
    _webhook.unsubscribe(TRIGGER, subscription, zoho)
    zoho.failures["crmDisableNotification"] = ZohoAPIError(status=400, code="NOT_SUBSCRIBED", message="not subscribed")
    _webhook.unsubscribe(TRIGGER, subscription, zoho)
    assert [c for c in zoho.calls if c[0] == "crmDisableNotification"] == [
        ("crmDisableNotification", {"channelIds": [subscription["channel_id"]]})
    ] * 2


@pytest.mark.parametrize(
    ("broken", "pointer"),
    [({"token": None}, "/token"), ({"trigger": "crmNewRecords"}, "/trigger"), ({"version": 9}, "/version")],
)
def test_a_broken_subscription_is_an_input_error(
    zoho: Zoho, clock: FakeClock, broken: dict[str, Any], pointer: str
) -> None:
    subscription = {**subscribed(zoho, clock), **broken}
    subscription = {k: v for k, v in subscription.items() if v is not None}
    with pytest.raises(InputValidationError) as caught:
        _webhook.renew(TRIGGER, subscription, zoho, clock)
    assert caught.value.violations[0].pointer == pointer
