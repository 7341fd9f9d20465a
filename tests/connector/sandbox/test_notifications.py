"""CRM notification channels on the sandbox: /actions/watch as Zoho answers it, and Zoho's notification POSTs to a
real loopback listener on every record create, edit and delete, until the channel expires or is disabled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.sandbox import SandboxState
from connector.sandbox.clock import crm_time
from tests.conftest import FakeClock
from tests.webhooks import Listener, listening

pytestmark = pytest.mark.anyio

WATCH = "/crm/v8/actions/watch"
CID = "1000000068001"
TOKEN = "TOKEN_FOR_VERIFICATION_OF_1000000068001"
HOUR, WEEK = 3600, 7 * 86_400


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening() as endpoint:
        yield endpoint


def item(url: str, *events: str, cid: str = CID, **extra: Any) -> dict[str, Any]:
    return {"channel_id": cid, "events": list(events or ["Leads.all"]), "notify_url": url, **extra}


async def watch(api: httpx.AsyncClient, method: str, *items: dict[str, Any], status: int = 201) -> Any:
    response = await api.request(method, WATCH, json={"watch": list(items)})
    assert response.status_code == status, response.text
    return response.json()


async def delivered(client: httpx.AsyncClient, since: int = 0, **params: Any) -> list[dict[str, Any]]:
    """The delivery log from `since`, once every notification so far has been sent."""
    response = await client.get("/__sandbox/notifications/deliveries", params={"since": since, "wait": 10, **params})
    body = response.json()
    assert response.status_code == 200 and body["idle"] and body["pending"] == 0, body
    log: list[dict[str, Any]] = body["deliveries"]
    return log


async def create(api: httpx.AsyncClient, module: str, *rows: dict[str, Any]) -> list[str]:
    response = await api.post(f"/crm/v8/{module}", json={"data": list(rows)})
    assert response.status_code == 201, response.text
    return [r["details"]["id"] for r in response.json()["data"]]


# subscribing ---------------------------------------------------------------------------------------------------------


async def test_enable_answers_one_event_entry_per_module_and_get_lists_them(
    api: httpx.AsyncClient, state: SandboxState, clock: FakeClock, listener: Listener
) -> None:
    expiry = crm_time(clock.now + 2 * HOUR)
    answer = await watch(
        api,
        "POST",
        item(listener.url, "Leads.all", "Deals.create", token=TOKEN, channel_expiry=expiry),
    )
    (result,) = answer["watch"]
    leads, deals = state.modules["Leads"], state.modules["Deals"]
    assert result == {
        "code": "SUCCESS",
        "details": {
            "events": [
                {
                    "channel_expiry": expiry,
                    "resource_uri": "http://sandbox.test/crm/v8/Leads",
                    "resource_id": leads.id,
                    "resource_name": "Leads",
                    "channel_id": CID,
                },
                {
                    "channel_expiry": expiry,
                    "resource_uri": "http://sandbox.test/crm/v8/Deals",
                    "resource_id": deals.id,
                    "resource_name": "Deals",
                    "channel_id": CID,
                },
            ]
        },
        "message": "Successfully subscribed for actions-watch of the given module",
        "status": "success",
    }
    listed = (await api.get(WATCH)).json()
    assert listed["info"] == {"per_page": 200, "count": 2, "page": 1, "more_records": False}
    first = listed["watch"][0]
    assert first == {
        "notify_on_related_action": True,
        "channel_expiry": expiry,
        "return_affected_field_values": False,
        "resource_uri": "http://sandbox.test/crm/v8/Leads",
        "resource_id": leads.id,
        "notify_url": listener.url,
        "resource_name": "Leads",
        "fields": None,
        "notification_condition": None,
        "channel_id": CID,
        "events": ["Leads.edit", "Leads.create", "Leads.delete"],  # "all", as Zoho lists it
        "token": TOKEN,
    }
    assert listed["watch"][1]["events"] == ["Deals.create"]
    by_module = (await api.get(WATCH, params={"module": "deals"})).json()["watch"]
    assert [w["resource_name"] for w in by_module] == ["Deals"]
    assert (await api.get(WATCH, params={"channel_id": "42"})).status_code == 204
    bad_id = await api.get(WATCH, params={"channel_id": "4x"})
    assert (bad_id.status_code, bad_id.json()["code"]) == (400, "INVALID_DATA")
    bad_module = await api.get(WATCH, params={"module": "Widgets"})
    assert (bad_module.status_code, bad_module.json()["code"]) == (400, "INVALID_MODULE")
    page = (await api.get(WATCH, params={"per_page": 1, "page": 2})).json()
    assert page["info"] == {"per_page": 1, "count": 1, "page": 2, "more_records": False}


@pytest.mark.parametrize(
    ("given", "lasts"),
    [
        (None, HOUR),  # Zoho's default
        (WEEK, WEEK),  # the longest Zoho allows since API v4
        (WEEK + 1, HOUR),  # "set for more than a week, the default expiry time is for one hour"
        (5 * 86_400, 5 * 86_400),
    ],
)
async def test_channel_expiry_is_at_most_a_week_and_one_hour_otherwise(
    api: httpx.AsyncClient, clock: FakeClock, given: int | None, lasts: int
) -> None:
    extra = {} if given is None else {"channel_expiry": crm_time(clock.now + given)}
    answer = await watch(api, "POST", item("https://example.com/hook", **extra))
    assert answer["watch"][0]["details"]["events"][0]["channel_expiry"] == crm_time(clock.now + lasts)


@pytest.mark.parametrize(
    ("change", "code", "details"),
    [
        ({"channel_id": None}, "MANDATORY_NOT_FOUND", {"api_name": "channel_id", "json_path": "$.watch[0].channel_id"}),
        ({"notify_url": None}, "MANDATORY_NOT_FOUND", {"api_name": "notify_url", "json_path": "$.watch[0].notify_url"}),
        ({"events": None}, "MANDATORY_NOT_FOUND", {"api_name": "events", "json_path": "$.watch[0].events"}),
        ({"channel_id": "abc"}, "INVALID_DATA", {"api_name": "channel_id", "json_path": "$.watch[0].channel_id"}),
        ({"channel_id": 2**63}, "INVALID_DATA", {"api_name": "channel_id", "json_path": "$.watch[0].channel_id"}),
        ({"notify_url": "ftp://example.com/x"}, "INVALID_DATA", {"api_name": "notify_url"}),
        ({"notify_url": "example.com/hook"}, "INVALID_DATA", {"api_name": "notify_url"}),
        ({"notify_url": "https://"}, "INVALID_DATA", {"api_name": "notify_url"}),
        ({"notify_url": "https://example.com/a\nb"}, "INVALID_DATA", {"api_name": "notify_url"}),
        ({"notify_url": "https://example.com:http/"}, "INVALID_DATA", {"api_name": "notify_url"}),
        ({"notify_url": "https://example.com/" + "x" * 240}, "INVALID_DATA", {"maximum_length": 255}),
        ({"events": ["Widgets.create"]}, "INVALID_DATA", {"api_name": "events", "json_path": "$.watch[0].events[0]"}),
        ({"events": ["Leads.create", "Leads.merge"]}, "INVALID_DATA", {"json_path": "$.watch[0].events[1]"}),
        ({"events": "Leads.all"}, "INVALID_DATA", {"api_name": "events", "expected_data_type": "jsonarray"}),
        ({"events": []}, "INVALID_DATA", {"api_name": "events", "expected_data_type": "jsonarray"}),
        ({"events": ["Leads.create"] * 51}, "INVALID_DATA", {"api_name": "events", "maximum_length": 50}),
        ({"token": "t" * 51}, "INVALID_DATA", {"api_name": "token", "maximum_length": 50}),
        ({"token": 7}, "INVALID_DATA", {"api_name": "token", "expected_data_type": "string"}),
        ({"channel_expiry": "tomorrow"}, "INVALID_DATA", {"expected_data_type": "datetime"}),
        ({"channel_expiry": "2027-01-15T10:00:00"}, "INVALID_DATA", {"expected_data_type": "datetime"}),  # no offset
        ({"channel_expiry": "2020-01-01T00:00:00+00:00"}, "INVALID_DATA", {"api_name": "channel_expiry"}),  # past
        ({"return_affected_field_values": "yes"}, "INVALID_DATA", {"expected_data_type": "boolean"}),
        ({"notify_on_related_action": 1}, "INVALID_DATA", {"api_name": "notify_on_related_action"}),
    ],
)
async def test_a_bad_item_is_refused_with_zohos_code_and_path(
    api: httpx.AsyncClient, change: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    bad = {k: v for k, v in {**item("https://example.com/hook"), **change}.items() if v is not None}
    answer = await watch(api, "POST", bad, status=400)
    (row,) = answer["watch"]
    assert (row["code"], row["status"]) == (code, "error")
    assert details.items() <= row["details"].items(), row
    assert (await api.get(WATCH)).status_code == 204  # nothing was subscribed


async def test_a_mixed_request_is_207_and_subscribes_the_good_items(api: httpx.AsyncClient) -> None:
    answer = await watch(
        api, "POST", item("https://example.com/a"), {"events": ["Leads.all"]}, item("https://x/", cid="7"), status=207
    )
    ok, missing, other = answer["watch"]
    assert ok["status"] == other["status"] == "success"
    assert missing == {
        "code": "MANDATORY_NOT_FOUND",
        "details": {"api_name": "channel_id", "json_path": "$.watch[1].channel_id"},
        "message": "required field not found",
        "status": "error",
    }
    assert {w["channel_id"] for w in (await api.get(WATCH)).json()["watch"]} == {CID, "7"}


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        (b"", "INVALID_DATA", None),
        (b"{", "INVALID_DATA", None),
        (b'{"data": []}', "MANDATORY_NOT_FOUND", {"api_name": "watch", "json_path": "$.watch"}),
        (
            b'{"watch": {}}',
            "INVALID_DATA",
            {"api_name": "watch", "json_path": "$.watch", "expected_data_type": "jsonarray"},
        ),
        (
            b'{"watch": []}',
            "INVALID_DATA",
            {"api_name": "watch", "json_path": "$.watch", "expected_data_type": "jsonarray"},
        ),
    ],
)
async def test_a_body_that_is_no_watch_array_is_one_top_level_error(
    api: httpx.AsyncClient, body: bytes, code: str, details: dict[str, Any] | None
) -> None:
    for method in ("POST", "PUT", "PATCH"):
        response = await api.request(method, WATCH, content=body)
        assert response.status_code == 400
        answer = response.json()
        assert (answer["code"], answer["status"]) == (code, "error")
        if details is not None:
            assert answer["details"] == details


async def test_at_most_50_channels_a_request(api: httpx.AsyncClient) -> None:
    items = [item("https://example.com/h", cid=str(n)) for n in range(1, 52)]
    response = await api.post(WATCH, json={"watch": items})
    assert response.status_code == 400
    assert response.json()["details"] == {"api_name": "watch", "json_path": "$.watch", "maximum_length": 50}
    assert (await api.post(WATCH, json={"watch": items[:50]})).status_code == 201


async def test_a_channel_watches_a_module_once_until_it_expires(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await watch(api, "POST", item("https://example.com/a", "Leads.create", channel_expiry=crm_time(clock.now + 600)))
    again = await watch(api, "POST", item("https://example.com/b", "Deals.create", "Leads.edit"), status=400)
    assert again["watch"][0]["code"] == "DUPLICATE_DATA"
    await watch(api, "POST", item("https://example.com/b", "Deals.create"))  # another module: fine
    clock.now += 600
    assert [w["resource_name"] for w in (await api.get(WATCH)).json()["watch"]] == ["Deals"]  # Leads expired
    await watch(api, "POST", item("https://example.com/c", "Leads.create"))


async def test_put_replaces_the_channel_and_renews_it(
    api: httpx.AsyncClient, clock: FakeClock, state: SandboxState
) -> None:
    missing = await watch(api, "PUT", item("https://example.com/a"), status=400)
    assert missing["watch"][0]["code"] == "NOT_SUBSCRIBED"
    await watch(api, "POST", item("https://example.com/a", "Leads.all", "Deals.all", token="old"))
    clock.now += HOUR - 1
    answer = await watch(api, "PUT", item("https://example.com/b", "Contacts.create"), status=200)
    assert answer["watch"][0]["message"] == "Successfully subscribed for actions-watch of the given module"
    (listed,) = (await api.get(WATCH)).json()["watch"]
    assert (listed["resource_name"], listed["notify_url"], listed["token"]) == (
        "Contacts",
        "https://example.com/b",
        None,
    )
    assert listed["channel_expiry"] == crm_time(clock.now + HOUR)  # renewed: an hour from now
    assert set(state.watch[CID]) == {"Contacts"}


async def test_patch_updates_only_what_it_gives(api: httpx.AsyncClient, clock: FakeClock) -> None:
    expiry = crm_time(clock.now + 3 * HOUR)
    await watch(
        api, "POST", item("https://example.com/a", "Leads.create", "Deals.all", token=TOKEN, channel_expiry=expiry)
    )
    answer = await watch(
        api, "PATCH", item("https://example.com/b", "Leads.edit", return_affected_field_values=True), status=200
    )
    assert answer["watch"][0]["message"] == "Successfully updated the subscribe details"
    listed = {w["resource_name"]: w for w in (await api.get(WATCH)).json()["watch"]}
    assert listed["Leads"]["events"] == ["Leads.edit"]
    assert listed["Deals"]["events"] == ["Deals.edit", "Deals.create", "Deals.delete"]  # untouched
    for w in listed.values():  # the channel's URL and flag changed everywhere; token and expiry kept
        assert (w["notify_url"], w["return_affected_field_values"]) == ("https://example.com/b", True)
        assert (w["token"], w["channel_expiry"]) == (TOKEN, expiry)
    unknown = await watch(api, "PATCH", item("https://example.com/b", cid="99"), status=400)
    assert unknown["watch"][0]["code"] == "NOT_SUBSCRIBED"


async def test_patch_with_delete_events_removes_only_those(api: httpx.AsyncClient) -> None:
    await watch(api, "POST", item("https://example.com/a", "Leads.all", "Deals.create"))
    answer = await watch(
        api, "PATCH", {"channel_id": CID, "events": ["Leads.edit", "Deals.all"], "_delete_events": True}, status=200
    )
    (row,) = answer["watch"]
    assert row["message"] == "Successfully removed the subscribe details"
    assert [e["resource_name"] for e in row["details"]["events"]] == ["Leads", "Deals"]
    assert "channel_expiry" not in row["details"]["events"][0]  # as Zoho's sample answers it
    (leads,) = (await api.get(WATCH)).json()["watch"]
    assert leads["events"] == ["Leads.create", "Leads.delete"]  # Deals had nothing left: no longer watched
    never = await watch(
        api, "PATCH", {"channel_id": CID, "events": ["Contacts.all"], "_delete_events": True}, status=400
    )
    assert never["watch"][0]["details"] == {"api_name": "events", "json_path": "$.watch[0].events"}
    typed = await watch(api, "PATCH", {"channel_id": CID, "events": ["Leads.all"], "_delete_events": "yes"}, status=400)
    assert typed["watch"][0]["details"]["expected_data_type"] == "boolean"


async def test_delete_disables_every_module_of_each_channel(api: httpx.AsyncClient, state: SandboxState) -> None:
    await watch(api, "POST", item("https://example.com/a", "Leads.all", "Contacts.all"), item("https://x/", cid="2"))
    response = await api.delete(WATCH, params={"channel_ids": f"{CID},2,404,x"})
    assert response.status_code == 207
    rows = response.json()["watch"]
    assert [(r["code"], r["details"].get("resource_uri", "").rsplit("/", 1)[-1]) for r in rows] == [
        ("SUCCESS", "Leads"),
        ("SUCCESS", "Contacts"),
        ("SUCCESS", "Leads"),
        ("NOT_SUBSCRIBED", ""),
        ("INVALID_DATA", ""),
    ]
    assert rows[0] == {
        "code": "SUCCESS",
        "details": {
            "resource_uri": "http://sandbox.test/crm/v8/Leads",
            "resource_id": state.modules["Leads"].id,
            "channel_id": CID,
        },
        "message": "Successfully un-subscribed from actions-watch",
        "status": "success",
    }
    assert state.watch == {}
    again = await api.delete(WATCH, params={"channel_ids": CID})
    assert again.status_code == 400 and again.json()["watch"][0]["code"] == "NOT_SUBSCRIBED"
    none = await api.delete(WATCH)
    assert none.status_code == 400
    assert none.json() == {
        "code": "REQUIRED_PARAM_MISSING",
        "details": {"param_name": "channel_ids"},
        "message": "One of the expected parameter is missing",
        "status": "error",
    }


async def test_scopes(client: httpx.AsyncClient) -> None:
    async def token(scope: str) -> dict[str, str]:
        minted = (await client.post("/__sandbox/tokens", json={"scope": scope})).json()
        return {"Authorization": f"Zoho-oauthtoken {minted['access_token']}"}

    body = {"watch": [item("https://example.com/a")]}
    modules_only = await token("ZohoCRM.modules.ALL")
    refused = await client.post(WATCH, json=body, headers=modules_only)
    assert refused.status_code == 401 and refused.json()["code"] == "OAUTH_SCOPE_MISMATCH"
    reader = await token("ZohoCRM.notifications.READ")
    assert (await client.get(WATCH, headers=reader)).status_code == 204
    assert (await client.post(WATCH, json=body, headers=reader)).status_code == 401
    creator = await token("ZohoCRM.notifications.CREATE")
    assert (await client.post(WATCH, json=body, headers=creator)).status_code == 201
    assert (await client.delete(WATCH, params={"channel_ids": CID}, headers=creator)).status_code == 401
    writer = await token("ZohoCRM.notifications.WRITE")
    assert (await client.delete(WATCH, params={"channel_ids": CID}, headers=writer)).status_code == 200


# notification_condition ----------------------------------------------------------------------------------------------


def condition(*group: dict[str, Any], operator: str = "or", module: Any = None) -> dict[str, Any]:
    return {
        "type": "field_selection",
        "module": module if module is not None else {"api_name": "Deals"},
        "field_selection": {"group_operator": operator, "group": list(group)},
    }


def field(name: str) -> dict[str, Any]:
    return {"field": {"api_name": name}}


async def test_conditions_are_normalized_as_zoho_lists_them(api: httpx.AsyncClient, state: SandboxState) -> None:
    nested = {"group_operator": "and", "group": [field("Account_Name"), {"api_name": "Lead_Source"}]}
    cond = condition(field("Stage"), nested)
    await watch(api, "POST", item("https://example.com/a", "Deals.all", notification_condition=[cond]))
    (listed,) = (await api.get(WATCH)).json()["watch"]
    (normal,) = listed["notification_condition"]
    deals = state.modules["Deals"]
    assert normal["module"] == {"api_name": "Deals", "id": deals.id} and normal["type"] == "field_selection"
    stage, group = normal["field_selection"]["group"]
    assert stage["field"]["api_name"] == "Stage" and stage["field"]["id"].isdigit()
    assert (stage["group_operator"], stage["group"]) == (None, None)
    assert group["group_operator"] == "and"
    assert [g["field"]["api_name"] for g in group["group"]] == ["Account_Name", "Lead_Source"]


def _path(suffix: str) -> str:
    return "$.watch[0].notification_condition[0]" + suffix


@pytest.mark.parametrize(
    ("cond", "code", "details"),
    [
        (
            {"module": {"api_name": "Deals"}, "field_selection": {"group_operator": "or", "group": [field("Stage")]}},
            "DEPENDENT_FIELD_MISSING",
            {
                "api_name": "field_selection",
                "json_path": _path(".field_selection"),
                "dependee": {"api_name": "type", "json_path": _path(".type")},
            },
        ),
        ({"module": {"api_name": "Deals"}}, "MANDATORY_NOT_FOUND", {"api_name": "type", "json_path": _path(".type")}),
        (
            {**condition(field("Stage")), "type": "criteria"},
            "INVALID_DATA",
            {"api_name": "type", "json_path": _path(".type"), "supported_values": ["field_selection"]},
        ),
        (
            condition(field("Stage"), module={}),
            "EXPECTED_FIELD_MISSING",
            {
                "expected_fields": [
                    {"api_name": "api_name", "json_path": _path(".module.api_name")},
                    {"api_name": "id", "json_path": _path(".module.id")},
                ]
            },
        ),
        (
            condition(field("Stage"), module={"api_name": "Deals", "id": "1"}),
            "INVALID_DATA",
            {"api_name": "module", "json_path": _path(".module")},
        ),
        (
            condition(field("Stage"), module={"api_name": "Leads"}),  # not a module the events name
            "INVALID_DATA",
            {"api_name": "module", "json_path": _path(".module")},
        ),
        (
            condition(field("Stage"), module="Deals"),
            "INVALID_DATA",
            {"api_name": "module", "json_path": _path(".module"), "expected_data_type": "jsonobject"},
        ),
        (
            condition(field("Stage"), operator="xor"),
            "INVALID_DATA",
            {
                "api_name": "group_operator",
                "json_path": _path(".field_selection.group_operator"),
                "supported_values": ["or", "and"],
            },
        ),
        (
            condition(field("Nope")),
            "INVALID_DATA",
            {"api_name": "api_name", "json_path": _path(".field_selection.group[0].field.api_name")},
        ),
        (
            condition(*[field("Stage")] * 11),
            "INVALID_DATA",
            {"api_name": "field_selection", "json_path": _path(".field_selection"), "maximum_length": 10},
        ),
        (
            {**condition(), "field_selection": {"group": [field("Stage")]}},
            "MANDATORY_NOT_FOUND",
            {"api_name": "group_operator", "json_path": _path(".field_selection.group_operator")},
        ),
    ],
)
async def test_a_bad_condition_is_refused_as_zoho_documents(
    api: httpx.AsyncClient, cond: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    answer = await watch(
        api, "POST", item("https://example.com/a", "Deals.all", notification_condition=[cond]), status=400
    )
    row = answer["watch"][0]
    assert (row["code"], row["details"]) == (code, details)


async def test_module_ids_that_disagree_are_ambiguous(api: httpx.AsyncClient, state: SandboxState) -> None:
    leads = state.modules["Leads"].id
    cond = condition(field("Stage"), module={"api_name": "Deals", "id": leads})
    answer = await watch(
        api, "POST", item("https://example.com/a", "Deals.all", notification_condition=[cond]), status=400
    )
    assert answer["watch"][0]["code"] == "AMBIGUITY_DURING_PROCESSING"


# deliveries ----------------------------------------------------------------------------------------------------------


async def test_create_edit_and_delete_are_posted_as_zoho_sends_them(
    api: httpx.AsyncClient, client: httpx.AsyncClient, clock: FakeClock, listener: Listener
) -> None:
    url = f"{listener.url}/zoho?tenant=acme&x="
    await watch(api, "POST", item(url, "Leads.all", token=TOKEN))
    a, b, c = await create(api, "Leads", {"Last_Name": "A"}, {"Last_Name": "B"}, {"Last_Name": "C"})
    clock.now += 60
    await api.put(
        "/crm/v8/Leads",
        json={"data": [{"id": a, "Company": "Zylker", "Last_Name": "A"}, {"id": b, "Email": "b@example.com"}]},
    )
    await api.delete("/crm/v8/Leads", params={"ids": f"{c},{a}"})
    log = await delivered(client)
    received = listener.wait_for(3)
    assert [r.json() for r in received] == [d["payload"] for d in log]
    assert [r.path for r in received] == ["/zoho?tenant=acme&x="] * 3
    assert all(r.headers["Content-Type"] == "application/json" for r in received)
    insert, update, delete = (r.json() for r in received)
    common = {
        "query_params": {"tenant": "acme", "x": ""},
        "module": "Leads",
        "resource_uri": "http://sandbox.test/crm/v8/Leads",
        "channel_id": CID,
        "token": TOKEN,
    }
    assert insert == {
        "server_time": 1_800_000_000_000,
        **common,
        "ids": [a, b, c],  # one notification for the whole bulk create
        "affected_fields": [],
        "operation": "insert",
    }
    assert update == {
        "server_time": 1_800_000_060_000,
        **common,
        "ids": [a, b],
        "affected_fields": [{a: ["Company"]}, {b: ["Email"]}],  # Last_Name was given but did not change
        "operation": "update",
    }
    assert delete == {
        "server_time": 1_800_000_060_000,
        **common,
        "ids": [c, a],
        "affected_fields": [],
        "operation": "delete",
    }
    assert list(insert) == [
        "server_time",
        "query_params",
        "module",
        "resource_uri",
        "ids",
        "affected_fields",
        "operation",
        "channel_id",
        "token",
    ]
    assert [(d["index"], d["operation"], d["delivered"], d["status"], d["error"]) for d in log] == [
        (0, "insert", True, 200, None),
        (1, "update", True, 200, None),
        (2, "delete", True, 200, None),
    ]


async def test_affected_values_come_with_edits_when_asked(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    (lead,) = await create(api, "Leads", {"Last_Name": "A"})
    await watch(api, "POST", item(listener.url, "Leads.edit", return_affected_field_values=True))
    await api.put(f"/crm/v8/Leads/{lead}", json={"data": [{"Mobile": "123456789", "Lead_Status": "Contacted"}]})
    (d,) = await delivered(client)
    assert d["payload"]["affected_values"] == [
        {"record_id": lead, "values": {"Mobile": "123456789", "Lead_Status": "Contacted"}}
    ]
    assert d["payload"]["affected_fields"] == [{lead: ["Mobile", "Lead_Status"]}]
    assert list(d["payload"])[:2] == ["server_time", "affected_values"]


async def test_each_operation_and_module_is_its_own_notification(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    """An upsert that inserts and updates is two notifications; a conversion is an insert per module it writes
    (the new contact's link to the new account is part of its creation, not an edit)."""
    (old,) = await create(api, "Leads", {"Last_Name": "Old", "Email": "old@example.com", "Company": "Zylker"})
    await watch(api, "POST", item(listener.url, "Leads.all", "Contacts.all", "Accounts.all", "Deals.all"))
    upsert = {
        "data": [
            {"Last_Name": "New", "Email": "new@example.com"},
            {"Last_Name": "Old", "Email": "old@example.com", "City": "Pune"},
        ]
    }
    await api.post("/crm/v8/Leads/upsert", json=upsert)
    convert = await api.post(
        f"/crm/v8/Leads/{old}/actions/convert", json={"data": [{"Deals": {"Deal_Name": "D", "Stage": "Qualification"}}]}
    )
    made = convert.json()["data"][0]["details"]
    log = await delivered(client)
    assert [(d["module"], d["operation"], d["payload"]["ids"]) for d in log] == [
        ("Leads", "insert", [log[0]["payload"]["ids"][0]]),
        ("Leads", "update", [old]),
        ("Accounts", "insert", [made["Accounts"]["id"]]),
        ("Contacts", "insert", [made["Contacts"]["id"]]),
        ("Deals", "insert", [made["Deals"]["id"]]),
    ]
    assert log[1]["payload"]["affected_fields"] == [{old: ["City"]}]


async def test_linking_a_related_record_is_an_edit_of_it(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    (account,) = await create(api, "Accounts", {"Account_Name": "Zylker"})
    (contact,) = await create(api, "Contacts", {"Last_Name": "Roe"})
    await watch(api, "POST", item(listener.url, "Contacts.edit"))
    await api.put(f"/crm/v8/Accounts/{account}/Contacts/{contact}", json={"data": [{}]})
    await api.delete(f"/crm/v8/Accounts/{account}/Contacts/{contact}")
    log = await delivered(client)
    assert [d["payload"]["affected_fields"] for d in log] == [[{contact: ["Account_Name"]}]] * 2


async def test_only_subscribed_operations_and_conditions_are_notified(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    stage_or_amount = condition(field("Stage"), field("Amount"))
    both = condition(field("Stage"), field("Amount"), operator="and")
    await watch(
        api,
        "POST",
        item(listener.url, "Deals.edit", notification_condition=[stage_or_amount]),
        item(listener.url, "Deals.edit", cid="2", notification_condition=[both]),
        item(listener.url, "Deals.create", cid="3"),
    )
    d1, d2 = await create(
        api, "Deals", {"Deal_Name": "1", "Stage": "Qualification"}, {"Deal_Name": "2", "Stage": "Qualification"}
    )
    edits = {"data": [{"id": d1, "Stage": "Closed Won"}, {"id": d2, "Description": "note"}]}
    await api.put("/crm/v8/Deals", json=edits)
    await api.put(f"/crm/v8/Deals/{d2}", json={"data": [{"Stage": "Closed Lost", "Amount": 10}]})
    log = await delivered(client)
    assert [(d["channel_id"], d["operation"], d["payload"]["ids"]) for d in log] == [
        ("3", "insert", [d1, d2]),
        (CID, "update", [d1]),  # d2's edit touched neither Stage nor Amount
        (CID, "update", [d2]),
        ("2", "update", [d2]),  # Stage and Amount changed together
    ]


async def test_no_delivery_after_expiry_or_disable_and_disabled_events_stop_alone(
    api: httpx.AsyncClient, client: httpx.AsyncClient, clock: FakeClock, listener: Listener
) -> None:
    await watch(
        api,
        "POST",
        item(listener.url, "Leads.create", "Leads.edit", channel_expiry=crm_time(clock.now + 1800)),
        item(listener.url, "Leads.create", cid="2"),
    )
    (lead,) = await create(api, "Leads", {"Last_Name": "A"})
    assert [d["channel_id"] for d in await delivered(client)] == [CID, "2"]
    await watch(api, "PATCH", {"channel_id": CID, "events": ["Leads.edit"], "_delete_events": True}, status=200)
    await api.put(f"/crm/v8/Leads/{lead}", json={"data": [{"Company": "X"}]})  # edits no longer watched
    await api.delete(WATCH, params={"channel_ids": "2"})
    await create(api, "Leads", {"Last_Name": "B"})  # only CID still watches creates
    assert [(d["channel_id"], d["operation"]) for d in await delivered(client, since=2)] == [(CID, "insert")]
    clock.now += 1800  # CID expires (the access token, an hour long, does not)
    await create(api, "Leads", {"Last_Name": "C"})
    assert await delivered(client, since=3) == []
    assert len(listener.received) == 3


async def test_admin_can_expire_a_channel_early(
    api: httpx.AsyncClient, client: httpx.AsyncClient, clock: FakeClock, listener: Listener
) -> None:
    await watch(api, "POST", item(listener.url, "Leads.create", "Deals.create"))
    soon = await client.post("/__sandbox/notifications/expire", json={"channel_id": CID, "in_seconds": 60})
    assert [c["channel_expiry"] for c in soon.json()["channels"]] == [crm_time(clock.now + 60)] * 2
    expired = await client.post("/__sandbox/notifications/expire", json={"channel_id": CID, "module": "Leads"})
    assert [c["resource_name"] for c in expired.json()["channels"]] == ["Leads"]
    await create(api, "Leads", {"Last_Name": "A"})
    await create(api, "Deals", {"Deal_Name": "D"})
    assert [d["module"] for d in await delivered(client)] == ["Deals"]
    listed = (await client.get("/__sandbox/notifications/channels")).json()
    assert listed["server_time"] == int(clock.now * 1000)
    channels = listed["channels"]
    assert [(c["resource_name"], c["expired"], c["deliverable"]) for c in channels] == [
        ("Leads", True, True),
        ("Deals", False, True),
    ]
    assert [w["resource_name"] for w in (await api.get(WATCH)).json()["watch"]] == ["Deals"]
    unknown = await client.post("/__sandbox/notifications/expire", json={"channel_id": "404"})
    assert unknown.status_code == 404
    negative = await client.post("/__sandbox/notifications/expire", json={"channel_id": CID, "in_seconds": -1})
    assert negative.status_code == 400


async def test_other_hosts_are_accepted_but_never_called(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    await watch(
        api, "POST", item("https://example.com/zoho", "Leads.create"), item(listener.url, "Leads.create", cid="2")
    )
    await create(api, "Leads", {"Last_Name": "A"})
    elsewhere, here = await delivered(client)
    assert (elsewhere["delivered"], elsewhere["status"]) == (False, None)
    assert "loopback" in elsewhere["error"]
    assert here["delivered"] and len(listener.received) == 1
    channels = (await client.get("/__sandbox/notifications/channels")).json()["channels"]
    assert [c["deliverable"] for c in channels] == [False, True]
    only = (await client.get("/__sandbox/notifications/deliveries", params={"channel_id": "2"})).json()
    assert [d["channel_id"] for d in only["deliveries"]] == ["2"] and only["next"] == 2


async def test_failures_are_logged_and_later_deliveries_go_on(
    api: httpx.AsyncClient, client: httpx.AsyncClient, state: SandboxState, listener: Listener
) -> None:
    with listening() as down:
        closed = down.url
    await watch(api, "POST", item(f"{closed}/gone", "Leads.create"), item(listener.url, "Leads.create", cid="2"))
    listener.status = 500
    await create(api, "Leads", {"Last_Name": "A"})
    refused, answered = await delivered(client)
    assert refused["delivered"] is False and refused["error"].startswith("ConnectError")
    assert (answered["delivered"], answered["status"], answered["error"]) == (True, 500, None)


async def test_the_write_does_not_wait_for_a_slow_endpoint(
    api: httpx.AsyncClient, client: httpx.AsyncClient, state: SandboxState, listener: Listener
) -> None:
    """The create is answered while its notification is still out. That shows only if the create and the look at
    the outbox both came before the notification timed out: a busy machine that made them later proves nothing
    either way, so the round is made again with a longer timeout (a create that waited is late every time)."""
    listener.hang.set()
    await watch(api, "POST", item(listener.url, "Leads.create"))
    for since, timeout in enumerate((0.3, 1.2, 4.8)):
        state.options.notify_timeout = timeout
        started = time.monotonic()
        await create(api, "Leads", {"Last_Name": "A"})  # answered while the notification is still out
        busy = (await client.get("/__sandbox/notifications/deliveries", params={"since": since})).json()
        on_time = time.monotonic() - started < timeout
        (timed_out,) = await delivered(client, since=since)
        assert timed_out["delivered"] is False and timed_out["error"] == f"no answer within {timeout:g} s"
        listener.wait_for(since + 1)
        assert len(listener.received) == since + 1
        if on_time:
            assert (busy["pending"], busy["idle"], busy["deliveries"]) == (1, False, [])
            return
    raise AssertionError("the create and the look at the outbox came after the notification timed out every time")


async def test_deliveries_keep_the_order_of_the_changes(
    api: httpx.AsyncClient, client: httpx.AsyncClient, listener: Listener
) -> None:
    await watch(api, "POST", item(listener.url, "Leads.create"))
    ids = [(await create(api, "Leads", {"Last_Name": str(n)}))[0] for n in range(20)]
    log = await delivered(client)
    assert [d["payload"]["ids"] for d in log] == [[i] for i in ids]
    assert [r.json()["ids"] for r in listener.wait_for(20)] == [[i] for i in ids]
    assert [d["index"] for d in log] == list(range(20))
    assert [d["index"] for d in await delivered(client, since=18)] == [18, 19]


async def test_deliveries_admin_refuses_bad_parameters(client: httpx.AsyncClient) -> None:
    for params in ({"since": "x"}, {"wait": "soon"}, {"since": -1}, {"wait": 61}):
        assert (await client.get("/__sandbox/notifications/deliveries", params=params)).status_code == 400


async def test_channels_persist_and_reset_clears_them(
    api: httpx.AsyncClient, client: httpx.AsyncClient, state: SandboxState, listener: Listener
) -> None:
    cond = condition(field("Stage"))
    await watch(api, "POST", item(listener.url, "Leads.all", "Deals.edit", token=TOKEN, notification_condition=[cond]))
    copy = SandboxState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert copy.watch == state.watch and set(copy.watch[CID]) == {"Leads", "Deals"}
    await create(api, "Leads", {"Last_Name": "A"})
    assert len(await delivered(client)) == 1
    await client.post("/__sandbox/reset")
    assert state.watch == {}
    assert (await client.get("/__sandbox/notifications/deliveries")).json()["deliveries"] == []
