"""CRM records: create/get/update/upsert/delete, per-row errors worded like Zoho, 201/207/400, search and count."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.sandbox import SandboxState

pytestmark = pytest.mark.anyio


async def _create(api: httpx.AsyncClient, module: str, *rows: dict[str, Any]) -> list[str]:
    response = await api.post(f"/crm/v8/{module}", json={"data": list(rows)})
    assert response.status_code == 201, response.text
    return [r["details"]["id"] for r in response.json()["data"]]


async def test_create_then_get(api: httpx.AsyncClient) -> None:
    response = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "Doe", "First_Name": "Jo"}]})
    assert response.status_code == 201
    row = response.json()["data"][0]
    assert (row["code"], row["message"], row["status"]) == ("SUCCESS", "record added", "success")
    rid = row["details"]["id"]
    assert len(rid) == 19 and rid.isdigit()
    assert row["details"]["Created_Time"].endswith("+00:00")
    got = (await api.get(f"/crm/v8/Leads/{rid}")).json()["data"][0]
    assert (got["Last_Name"], got["Full_Name"], got["Email"]) == ("Doe", "Jo Doe", None)
    assert got["Owner"]["name"] == "Sandbox Admin"
    assert set(got["Created_By"]) == {"name", "id", "email"}
    only = (await api.get(f"/crm/v8/Leads/{rid}", params={"fields": "Last_Name"})).json()["data"][0]
    assert only == {"id": rid, "Last_Name": "Doe"}
    assert (await api.get("/crm/v8/Leads/1234567890123456789")).status_code == 204


async def test_mixed_batch_is_207_with_rows_in_order(api: httpx.AsyncClient) -> None:
    body = {
        "data": [
            {"Last_Name": "Ok", "Email": "ok@example.com"},
            {"First_Name": "No last name"},
            {"Last_Name": "Bad", "No_of_Employees": "many"},
            {"Last_Name": "Dup", "Email": "OK@example.com"},
        ]
    }
    response = await api.post("/crm/v8/Leads", json=body)
    assert response.status_code == 207
    ok, missing, invalid, dup = response.json()["data"]
    assert ok["status"] == "success"
    assert missing == {
        "code": "MANDATORY_NOT_FOUND",
        "details": {"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"},
        "message": "required field not found",
        "status": "error",
    }
    assert invalid == {
        "code": "INVALID_DATA",
        "details": {
            "expected_data_type": "integer",
            "api_name": "No_of_Employees",
            "json_path": "$.data[2].No_of_Employees",
        },
        "message": "invalid data",
        "status": "error",
    }
    assert dup["code"] == "DUPLICATE_DATA"
    assert dup["message"] == "duplicate data"
    assert dup["details"]["api_name"] == "Email"
    assert dup["details"]["json_path"] == "$.data[3].Email"
    assert dup["details"]["duplicate_record"]["id"] == ok["details"]["id"]
    assert dup["details"]["duplicate_record"]["module"]["api_name"] == "Leads"


async def test_all_rows_failing_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/crm/v8/Accounts", json={"data": [{"Phone": "1"}]})
    assert response.status_code == 400
    assert response.json()["data"][0]["details"]["api_name"] == "Account_Name"
    deal = await api.post("/crm/v8/Deals", json={"data": [{"Amount": 5}]})
    assert deal.json()["data"][0]["details"]["api_name"] == "Deal_Name"


@pytest.mark.parametrize(
    ("field", "value", "extra"),
    [
        ("Email", "not-an-email", {}),
        ("Annual_Revenue", "12", {}),
        ("Email_Opt_Out", "yes", {}),
        ("Last_Name", "x" * 81, {"maximum_length": 80}),
        (
            "Lead_Status",
            "Nope",
            {"supported_values": ["Not Contacted", "Attempted to Contact", "Contacted", "Junk Lead", "Qualified"]},
        ),
    ],
)
async def test_invalid_values(api: httpx.AsyncClient, field: str, value: Any, extra: dict[str, Any]) -> None:
    row = {"Last_Name": "Doe", field: value}
    answer = (await api.post("/crm/v8/Leads", json={"data": [row]})).json()["data"][0]
    assert answer["code"] == "INVALID_DATA"
    assert answer["details"]["api_name"] == field
    assert answer["details"]["json_path"] == f"$.data[0].{field}"
    for key, want in extra.items():
        assert answer["details"][key] == want


async def test_lookups_and_dates(api: httpx.AsyncClient) -> None:
    (acct,) = await _create(api, "Accounts", {"Account_Name": "Acme"})
    (cid,) = await _create(
        api, "Contacts", {"Last_Name": "Roe", "Account_Name": {"id": acct}, "Date_of_Birth": "1990-02-03"}
    )
    got = (await api.get(f"/crm/v8/Contacts/{cid}")).json()["data"][0]
    assert got["Account_Name"] == {"name": "Acme", "id": acct}
    bad = await api.post("/crm/v8/Contacts", json={"data": [{"Last_Name": "X", "Account_Name": {"id": "1"}}]})
    assert bad.json()["data"][0]["details"]["api_name"] == "Account_Name"
    date = await api.post("/crm/v8/Contacts", json={"data": [{"Last_Name": "X", "Date_of_Birth": "02/03/1990"}]})
    assert date.json()["data"][0]["details"]["expected_data_type"] == "date"


async def test_body_level_errors(api: httpx.AsyncClient) -> None:
    nobody = await api.post("/crm/v8/Leads", content=b"{not json")
    assert (nobody.status_code, nobody.json()["code"]) == (400, "INVALID_DATA")
    nodata = await api.post("/crm/v8/Leads", json={"rows": []})
    assert nodata.json()["code"] == "MANDATORY_NOT_FOUND"
    too_many = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": str(i)} for i in range(101)]})
    assert (too_many.status_code, too_many.json()["code"]) == (400, "LIMIT_EXCEEDED")
    module = await api.get("/crm/v8/Nope", params={"fields": "id"})
    assert module.json() == {
        "code": "INVALID_MODULE",
        "details": {"resource_path_index": 0},
        "message": "the module name given seems to be invalid",
        "status": "error",
    }


async def test_update_bulk_and_single(api: httpx.AsyncClient) -> None:
    a, b = await _create(api, "Leads", {"Last_Name": "A"}, {"Last_Name": "B"})
    bulk = await api.put(
        "/crm/v8/Leads", json={"data": [{"id": a, "Company": "X"}, {"id": "999", "Company": "Y"}, {"Company": "Z"}]}
    )
    assert bulk.status_code == 207
    ok, unknown, no_id = bulk.json()["data"]
    assert ok["message"] == "record updated"
    assert unknown["code"] == "INVALID_DATA"
    assert no_id["code"] == "MANDATORY_NOT_FOUND"
    single = await api.put(f"/crm/v8/Leads/{b}", json={"data": [{"Last_Name": ""}]})
    assert (single.status_code, single.json()["data"][0]["code"]) == (400, "MANDATORY_NOT_FOUND")
    fine = await api.put(f"/crm/v8/Leads/{b}", json={"data": [{"First_Name": "Bo"}]})
    assert fine.status_code == 200
    assert (await api.get(f"/crm/v8/Leads/{b}")).json()["data"][0]["Full_Name"] == "Bo B"


async def test_upsert_insert_then_update(api: httpx.AsyncClient) -> None:
    first = await api.post("/crm/v8/Leads/upsert", json={"data": [{"Last_Name": "U", "Email": "u@example.com"}]})
    row = first.json()["data"][0]
    assert (row["action"], row["duplicate_field"], row["message"]) == ("insert", None, "record added")
    second = await api.post(
        "/crm/v8/Leads/upsert",
        json={"data": [{"Last_Name": "U2", "Email": "U@example.com"}], "duplicate_check_fields": ["Email"]},
    )
    again = second.json()["data"][0]
    assert (again["action"], again["duplicate_field"], again["details"]["id"]) == (
        "update",
        "Email",
        row["details"]["id"],
    )
    bad = await api.post(
        "/crm/v8/Leads/upsert", json={"data": [{"Last_Name": "Q"}], "duplicate_check_fields": ["Nope"]}
    )
    assert bad.json()["code"] == "INVALID_DATA"


async def test_delete_by_ids_and_by_path(api: httpx.AsyncClient) -> None:
    a, b, c = await _create(api, "Deals", {"Deal_Name": "a"}, {"Deal_Name": "b"}, {"Deal_Name": "c"})
    many = await api.delete("/crm/v8/Deals", params={"ids": f"{a},{b},42"})
    assert many.status_code == 207
    assert [r["status"] for r in many.json()["data"]] == ["success", "success", "error"]
    assert many.json()["data"][0] == {
        "code": "SUCCESS",
        "details": {"id": a},
        "message": "record deleted",
        "status": "success",
    }
    one = await api.delete(f"/crm/v8/Deals/{c}")
    assert one.status_code == 200
    assert (await api.delete("/crm/v8/Deals")).json()["code"] == "REQUIRED_PARAM_MISSING"
    assert (await api.get("/crm/v8/Deals", params={"fields": "Deal_Name"})).status_code == 204


async def test_search_by_criteria_email_phone_word(api: httpx.AsyncClient) -> None:
    await _create(
        api,
        "Leads",
        {
            "Last_Name": "Smith",
            "Email": "s@x.com",
            "Phone": "+1 555 0101",
            "No_of_Employees": 10,
            "Company": "A (B), C",
        },
        {"Last_Name": "Smythe", "Email": "t@x.com", "No_of_Employees": 50},
        {"Last_Name": "Jones", "No_of_Employees": 5},
    )

    async def names(**params: str) -> list[str]:
        response = await api.get("/crm/v8/Leads/search", params=params)
        if response.status_code == 204:
            return []
        return sorted(r["Last_Name"] for r in response.json()["data"])

    assert await names(criteria="(Last_Name:starts_with:sm)") == ["Smith", "Smythe"]
    assert await names(criteria="((Last_Name:starts_with:sm)and(No_of_Employees:greater_than:20))") == ["Smythe"]
    assert await names(criteria="((Last_Name:equals:Jones)or(No_of_Employees:between:9,11))") == ["Jones", "Smith"]
    assert await names(criteria="(Last_Name:in:Jones,Smith)") == ["Jones", "Smith"]
    assert await names(criteria="(Company:equals:A \\(B\\)\\, C)") == ["Smith"]
    assert await names(email="T@X.com") == ["Smythe"]
    assert await names(phone="5550101") == ["Smith"]
    assert await names(word="jon") == ["Jones"]
    assert await names(criteria="(Last_Name:equals:Nobody)") == []
    bad = await api.get("/crm/v8/Leads/search", params={"criteria": "(Nope:equals:1)"})
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_QUERY")
    syntax = await api.get("/crm/v8/Leads/search", params={"criteria": "Last_Name:equals:x"})
    assert syntax.json()["code"] == "INVALID_QUERY"
    op = await api.get("/crm/v8/Leads/search", params={"criteria": "(Last_Name:like:x)"})
    assert op.json()["details"]["operator"] == "like"
    none = await api.get("/crm/v8/Leads/search")
    assert none.json()["code"] == "REQUIRED_PARAM_MISSING"
    deep = await api.get("/crm/v8/Leads/search", params={"word": "a", "page": "11"})
    assert deep.json()["code"] == "LIMIT_REACHED"


async def test_count(api: httpx.AsyncClient, state: SandboxState) -> None:
    await _create(api, "Leads", {"Last_Name": "A"}, {"Last_Name": "B"})
    assert (await api.get("/crm/v8/Leads/actions/count")).json() == {"count": 2}
    assert (await api.get("/crm/v8/Leads/actions/count", params={"criteria": "(Last_Name:equals:a)"})).json() == {
        "count": 1
    }


async def test_custom_module(api: httpx.AsyncClient, state: SandboxState) -> None:
    state.add_module("Projects_X")
    created = await api.post("/crm/v8/projects_x", json={"data": [{"Name": "P1"}, {"Email": "p@x.com"}]})
    assert created.status_code == 207
    assert created.json()["data"][1]["details"]["api_name"] == "Name"
    made = await api.post(
        "/__sandbox/modules",
        json={"api_name": "Widgets", "fields": [{"api_name": "Code", "data_type": "integer", "mandatory": True}]},
    )
    assert made.status_code == 200
    assert (await api.post("/crm/v8/Widgets", json={"data": [{"Code": 7}]})).status_code == 201


async def test_unknown_paths_and_methods(api: httpx.AsyncClient) -> None:
    missing = await api.get("/crm/v8/Leads/1/Nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "INVALID_URL_PATTERN",
        "details": {},
        "message": "Please check if the URL trying to access is a correct one",
        "status": "error",
    }
    method = await api.patch("/crm/v8/Leads")
    assert (method.status_code, method.json()["code"]) == (400, "INVALID_REQUEST_METHOD")
