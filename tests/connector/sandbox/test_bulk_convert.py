"""The sandbox's bulk writes and lead conversion: Zoho's limits and refusals, and answers that match Zoho's OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.sandbox import SandboxState, crm_convert
from tests.connector.sandbox.test_oas_conformance import OAS_DIR, _check, _component, _validate

pytestmark = pytest.mark.anyio
needs_oas = pytest.mark.skipif(not OAS_DIR.is_dir(), reason=f"Zoho's CRM OpenAPI files are not at {OAS_DIR}")
REC = ("record.json", "/crm/v8/{module_api_name}")
CONVERT = ("convert_lead.json", "/crm/v8/Leads/{lead_id}/actions/convert")


async def _lead(api: httpx.AsyncClient, **fields: Any) -> str:
    answer = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "Doe", **fields}]})
    assert answer.status_code == 201, answer.text
    lead_id: str = answer.json()["data"][0]["details"]["id"]
    return lead_id


@needs_oas
async def test_a_partial_create_is_207_with_a_row_per_record(api: httpx.AsyncClient) -> None:
    rows = [{"Last_Name": "A"}, {"Email": "no-name@example.com"}, {"Last_Name": "C", "Email": "not an email"}]
    answer = await api.post("/crm/v8/Leads", json={"data": rows, "trigger": ["workflow"]})
    assert answer.status_code == 207
    body = answer.json()
    assert [r["status"] for r in body["data"]] == ["success", "error", "error"]
    assert body["data"][1]["details"]["json_path"] == "$.data[1].Last_Name"
    _validate(body, *REC, "post", 207)


@needs_oas
async def test_upsert_says_insert_or_update_and_deletes_take_wf_trigger(api: httpx.AsyncClient) -> None:
    await _lead(api, Email="up@example.com")
    rows = [{"Last_Name": "U", "Email": "UP@example.com"}, {"Last_Name": "N", "Email": "new@example.com"}]
    body = {"data": rows, "duplicate_check_fields": ["Email"], "trigger": []}
    answer = await api.post("/crm/v8/Leads/upsert", json=body)
    assert [(r["action"], r["duplicate_field"]) for r in answer.json()["data"]] == [
        ("update", "Email"),
        ("insert", None),
    ]
    _validate(answer.json(), "record.json", "/crm/v8/{module_api_name}/upsert", "post", answer.status_code)
    ids = ",".join(r["details"]["id"] for r in answer.json()["data"])
    deleted = await api.delete("/crm/v8/Leads", params={"ids": f"{ids},404", "wf_trigger": "false"})
    assert deleted.status_code == 207
    _validate(deleted.json(), *REC, "delete", 207)


@pytest.mark.parametrize(
    ("request_kw", "code"),
    [
        ({"method": "POST", "url": "/crm/v8/Leads", "json": {"data": [{"Last_Name": "x"}] * 101}}, "LIMIT_EXCEEDED"),
        (
            {"method": "DELETE", "url": "/crm/v8/Leads", "params": {"ids": ",".join(map(str, range(101)))}},
            "LIMIT_EXCEEDED",
        ),
        (
            {"method": "POST", "url": "/crm/v8/Leads", "json": {"data": [{"Last_Name": "x"}], "trigger": ["email"]}},
            "INVALID_DATA",
        ),
        (
            {"method": "PUT", "url": "/crm/v8/Leads", "json": {"data": [{"id": "1"}], "trigger": "workflow"}},
            "INVALID_DATA",
        ),
        ({"method": "DELETE", "url": "/crm/v8/Leads", "params": {"ids": "1", "wf_trigger": "yes"}}, "INVALID_DATA"),
    ],
)
async def test_bulk_refusals(api: httpx.AsyncClient, request_kw: dict[str, Any], code: str) -> None:
    answer = await api.request(**request_kw)
    assert answer.status_code == 400 and answer.json()["code"] == code


@needs_oas
async def test_conversion_makes_contact_account_and_deal(api: httpx.AsyncClient, state: SandboxState) -> None:
    lead = await _lead(api, First_Name="Jo", Email="jo@example.com", Company="Zylker")
    upload = await api.post(f"/crm/v8/Leads/{lead}/Attachments", files={"file": ("a.txt", b"abc", "text/plain")})
    owner = next(u for u in state.users if u != state.current_user_id)
    body = {
        "data": [
            {
                "overwrite": True,
                "notify_lead_owner": False,
                "assign_to": {"id": owner},
                "Deals": {"Deal_Name": "Zylker deal", "Stage": "Qualification", "Closing_Date": "2026-12-31"},
                "move_attachments_to": {"api_name": "Deals"},
                "carry_over_tags": {"Contacts": ["VIP"], "Deals": ["VIP"]},
            }
        ]
    }
    answer = await api.post(f"/crm/v8/Leads/{lead}/actions/convert", json=body)
    assert answer.status_code == 200, answer.text
    _validate(answer.json(), *CONVERT, "post", 200)
    made = answer.json()["data"][0]["details"]
    deal = state.records["Deals"][made["Deals"]["id"]]
    assert deal["Contact_Name"]["id"] == made["Contacts"]["id"] and deal["Account_Name"]["id"] == made["Accounts"]["id"]
    assert deal["Owner"]["id"] == owner and deal["Tag"] == [{"name": "VIP"}]
    contact = state.records["Contacts"][made["Contacts"]["id"]]
    assert (contact["Email"], contact["Account_Name"]["name"]) == ("jo@example.com", "Zylker")
    moved = state.attachments[upload.json()["data"][0]["details"]["id"]]
    assert (moved.module, moved.record_id) == ("Deals", made["Deals"]["id"])
    assert state.records["Leads"][lead]["$converted"] is True

    again = await api.post(f"/crm/v8/Leads/{lead}/actions/convert", json={"data": [{}]})
    assert again.status_code == 400
    _check(again.json(), _component("convert_lead.json", "ID_Already_Converted_API_Exception"))


async def test_conversion_reuses_a_matching_contact_and_account(api: httpx.AsyncClient, state: SandboxState) -> None:
    account = (await api.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "Acme"}]})).json()
    contact = (
        await api.post("/crm/v8/Contacts", json={"data": [{"Last_Name": "Roe", "Email": "roe@example.com"}]})
    ).json()
    lead = await _lead(api, Email="ROE@example.com", Company="acme")
    answer = await api.post(f"/crm/v8/Leads/{lead}/actions/convert", json={"data": [{}]})
    made = answer.json()["data"][0]["details"]
    assert made["Contacts"]["id"] == contact["data"][0]["details"]["id"]
    assert made["Accounts"]["id"] == account["data"][0]["details"]["id"] and made["Deals"] is None
    assert len(state.records["Contacts"]) == 1


@needs_oas
@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({"Deals": {"Stage": "Qualification"}}, "Mandatory_API_Exception"),
        ({"Deals": {"Deal_Name": "D", "Closing_Date": "soon"}}, "Expected_Data_Type_API_Exception"),
        ({"Accounts": {"id": "404"}}, "Expected_Data_Type_API_Exception"),
        ({"assign_to": {"id": "404"}}, "Expected_Data_Type_API_Exception"),
        ({"overwrite": "yes"}, "Expected_Data_Type_API_Exception"),
        ({"carry_over_tags": {"Leads": ["x"]}}, "Invalid_Value_Exception"),
        ({"move_attachments_to": {"api_name": "Deals"}}, "Invalid_Value_Exception"),  # no deal is made
    ],
)
async def test_conversion_refusals_change_nothing(
    api: httpx.AsyncClient, state: SandboxState, options: dict[str, Any], shape: str
) -> None:
    lead = await _lead(api, Company="Nothing Inc")
    before = {m: len(state.records[m]) for m in ("Contacts", "Accounts", "Deals")}
    answer = await api.post(f"/crm/v8/Leads/{lead}/actions/convert", json={"data": [options]})
    assert answer.status_code == 400, answer.text
    _check(answer.json(), _component("convert_lead.json", shape))
    assert {m: len(state.records[m]) for m in before} == before
    assert not state.records["Leads"][lead].get("$converted")


async def test_an_unknown_lead_cannot_be_converted(api: httpx.AsyncClient) -> None:
    answer = await api.post("/crm/v8/Leads/404/actions/convert", json={"data": [{}]})
    assert answer.status_code == 400 and answer.json()["details"] == {"resource_path_index": 1}


def test_every_convert_route_is_exercised_here() -> None:
    assert [(r.path, sorted(r.methods or ())) for r in crm_convert.routes] == [
        ("/crm/v8/Leads/{record_id}/actions/convert", ["POST"])
    ]


async def test_unique_values_stay_right_across_requests(api: httpx.AsyncClient) -> None:
    """Unique-value indexes are kept between requests: every write in between must show in the next check."""
    first = await _lead(api, Email="same@example.com")
    assert (await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "B", "Email": "same@example.com"}]})).json()[
        "data"
    ][0]["code"] == "DUPLICATE_DATA"
    await api.put(f"/crm/v8/Leads/{first}", json={"data": [{"Email": "moved@example.com"}]})
    again = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "C", "Email": "same@example.com"}]})
    assert again.status_code == 201
    await api.delete("/crm/v8/Leads", params={"ids": again.json()["data"][0]["details"]["id"]})
    await api.post("/__sandbox/seed", json={"module": "Leads", "count": 2})
    third = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "D", "Email": "same@example.com"}]})
    assert third.status_code == 201


async def test_converted_leads_are_listed_only_when_asked(api: httpx.AsyncClient, state: SandboxState) -> None:
    """Zoho's `converted` defaults to false: a converted lead leaves the list and the search unless asked for."""
    kept, gone = await _lead(api, Last_Name="Stays"), await _lead(api, Last_Name="Goes", Company="Zylker")
    assert (await api.post(f"/crm/v8/Leads/{gone}/actions/convert", json={"data": [{}]})).status_code == 200

    async def listed(path: str, **params: str) -> list[str]:
        answer = await api.get(f"/crm/v8/Leads{path}", params={"fields": "Last_Name", **params})
        return [] if answer.status_code == 204 else [r["id"] for r in answer.json()["data"]]

    assert await listed("") == [kept]
    assert await listed("", converted="false") == [kept]
    assert await listed("", converted="true") == [gone]
    assert sorted(await listed("", converted="both")) == sorted([kept, gone])
    assert await listed("/search", word="s") == [kept]  # both last names hold an "s"
    assert await listed("/search", criteria="(Last_Name:equals:Goes)") == []
    assert await listed("/search", criteria="(Last_Name:equals:Goes)", converted="true") == [gone]
    bad = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "converted": "yes"})
    assert bad.status_code == 400 and bad.json()["details"]["param_name"] == "converted"


async def test_a_custom_view_keeps_its_rows(api: httpx.AsyncClient, state: SandboxState) -> None:
    """cvid narrows list, search and count by the view's criteria: "All Leads" every lead, "My Leads" the current
    user's (Owner equal to them)."""
    other = next(u for u in state.users if u != state.current_user_id)
    mine = [await _lead(api, Last_Name=f"Mine{n}") for n in range(3)]
    theirs = [await _lead(api, Last_Name=f"Theirs{n}", Owner={"id": other}) for n in range(2)]
    views = (await api.get("/crm/v8/settings/custom_views", params={"module": "Leads"})).json()["custom_views"]
    every, my = (v["id"] for v in views)

    async def count(**params: str) -> int:
        answer = await api.get("/crm/v8/Leads/actions/count", params=params)
        assert answer.status_code == 200, answer.text
        n: int = answer.json()["count"]
        return n

    assert await count() == 5 and await count(cvid=every) == 5 and await count(cvid=my) == 3
    assert await count(cvid=my, criteria="(Last_Name:starts_with:Theirs)") == 0
    listed = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "cvid": my, "sort_order": "asc"})
    assert [r["id"] for r in listed.json()["data"]] == mine
    listed = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "cvid": every, "sort_order": "asc"})
    assert [r["id"] for r in listed.json()["data"]] == mine + theirs
    bad = await api.get("/crm/v8/Leads/actions/count", params={"cvid": "1"})
    assert bad.status_code == 400 and bad.json()["details"]["param_name"] == "cvid"
