"""COQL: the grammar (and/or/parentheses, every operator, order by, limit/offset forms) and Zoho's errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.sandbox import SandboxState

pytestmark = pytest.mark.anyio


@pytest.fixture
async def people(api: httpx.AsyncClient) -> dict[str, str]:
    acct = (await api.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "Acme"}]})).json()["data"][0]["details"][
        "id"
    ]
    rows: list[dict[str, Any]] = [
        {"Last_Name": "Ames", "First_Name": "Al", "Email": "al@acme.com", "No_of_Employees": 10, "Annual_Revenue": 1.5},
        {"Last_Name": "Baker", "First_Name": "Bo", "Email": "bo@corp.com", "No_of_Employees": 20},
        {"Last_Name": "Cole", "No_of_Employees": 30, "Email_Opt_Out": True},
        {"Last_Name": "O'Dell", "First_Name": "Di", "No_of_Employees": 40},
    ]
    ids = [r["details"]["id"] for r in (await api.post("/crm/v8/Leads", json={"data": rows})).json()["data"]]
    contact = {"Last_Name": "Kay", "Account_Name": {"id": acct}}
    await api.post("/crm/v8/Contacts", json={"data": [contact]})
    return {"account": acct, **{str(r["Last_Name"]): i for r, i in zip(rows, ids, strict=True)}}


async def _q(api: httpx.AsyncClient, query: str) -> httpx.Response:
    return await api.post("/crm/v8/coql", json={"select_query": query})


async def _names(api: httpx.AsyncClient, where: str, extra: str = "") -> list[str]:
    response = await _q(api, f"select Last_Name from Leads where {where} {extra}")
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    return [r["Last_Name"] for r in response.json()["data"]]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("No_of_Employees = 20", ["Baker"]),
        ("No_of_Employees != 20", ["Ames", "Cole", "O'Dell"]),
        ("No_of_Employees < 20", ["Ames"]),
        ("No_of_Employees <= 20", ["Ames", "Baker"]),
        ("No_of_Employees > 30", ["O'Dell"]),
        ("No_of_Employees >= 30", ["Cole", "O'Dell"]),
        ("Last_Name like 'b%'", ["Baker"]),
        ("Email like '%acme%'", ["Ames"]),
        ("Last_Name not like '%e%'", []),
        ("Last_Name in ('Ames', 'Cole')", ["Ames", "Cole"]),
        ("Last_Name not in ('Ames', 'Cole')", ["Baker", "O'Dell"]),
        ("First_Name is null", ["Cole"]),
        ("First_Name is not null", ["Ames", "Baker", "O'Dell"]),
        ("No_of_Employees between 15 and 35", ["Baker", "Cole"]),
        ("No_of_Employees not between 15 and 35", ["Ames", "O'Dell"]),
        ("Last_Name = 'o''dell'", ["O'Dell"]),
        ("Email_Opt_Out = true", ["Cole"]),
        ("(No_of_Employees < 15 or No_of_Employees > 35) and First_Name is not null", ["Ames", "O'Dell"]),
        ("No_of_Employees < 15 or (No_of_Employees > 35 and First_Name = 'x')", ["Ames"]),
        ("((No_of_Employees > 15 and No_of_Employees < 35) and First_Name is not null)", ["Baker"]),
        ("((Last_Name = 'Ames'))", ["Ames"]),
        ("Created_Time >= '2020-01-01T00:00:00+00:00'", ["Ames", "Baker", "Cole", "O'Dell"]),
    ],
)
async def test_where_operators(api: httpx.AsyncClient, people: dict[str, str], where: str, expected: list[str]) -> None:
    assert sorted(await _names(api, where)) == expected


async def test_order_limit_offset_and_info(api: httpx.AsyncClient, people: dict[str, str], state: SandboxState) -> None:
    response = await _q(
        api,
        "SELECT Last_Name, No_of_Employees FROM Leads WHERE No_of_Employees > 0 ORDER BY No_of_Employees DESC LIMIT 2",
    )
    body = response.json()
    assert [r["Last_Name"] for r in body["data"]] == ["O'Dell", "Cole"]
    assert body["info"] == {"count": 2, "more_records": True}
    assert set(body["data"][0]) == {"Last_Name", "No_of_Employees", "id"}
    assert await _names(api, "No_of_Employees > 0", "order by Last_Name asc limit 2 offset 1") == ["Baker", "Cole"]
    assert await _names(api, "No_of_Employees > 0", "order by Last_Name limit 1, 2") == ["Baker", "Cole"]
    state.options.coql_limit_comma = "limit_first"
    assert await _names(api, "No_of_Employees > 0", "order by Last_Name limit 1, 2") == ["Cole"]
    tail = (await _q(api, "select Last_Name from Leads where No_of_Employees > 0 limit 10")).json()
    assert tail["info"] == {"count": 4, "more_records": False}


async def test_lookups(api: httpx.AsyncClient, people: dict[str, str]) -> None:
    everyone = (await _q(api, "select Last_Name from Leads where id is not null")).json()
    assert everyone["info"]["count"] == 4
    contact = (
        await _q(
            api,
            "select Last_Name, Account_Name, Account_Name.Account_Name, Owner.first_name from Contacts "
            "where id is not null",
        )
    ).json()
    row = contact["data"][0]
    assert row["Account_Name"] == {"id": people["account"]}
    assert row["Account_Name.Account_Name"] == "Acme"
    assert row["Owner.first_name"] == "Sandbox"
    by_lookup = await _q(api, f"select Last_Name from Contacts where Account_Name = '{people['account']}'")
    assert by_lookup.json()["info"]["count"] == 1
    by_join = await _q(api, "select Last_Name from Contacts where Account_Name.Account_Name = 'acme'")
    assert by_join.json()["info"]["count"] == 1
    by_id = await _q(api, f"select Last_Name from Leads where id = {people['Cole']}")
    assert by_id.json()["data"][0]["Last_Name"] == "Cole"


async def test_no_rows_is_204(api: httpx.AsyncClient, people: dict[str, str]) -> None:
    response = await _q(api, "select Last_Name from Leads where Last_Name = 'Nobody'")
    assert (response.status_code, response.content) == (204, b"")


@pytest.mark.parametrize(
    ("query", "code", "details"),
    [
        ("select from Leads", "SYNTAX_ERROR", {"line": 1, "column": 8, "near": "from"}),
        ("select Last_Name Leads", "SYNTAX_ERROR", {"clause": "from"}),
        ("select Last_Name from Leads where", "SYNTAX_ERROR", {"line": 1, "column": 34, "near": "<end of query>"}),
        ("select Last_Name from Leads where Last_Name = 'x' limit", "SYNTAX_ERROR", None),
        ("select Last_Name from Leads where Last_Name ~ 'x'", "SYNTAX_ERROR", None),
        ("select Last_Name from Leads where (Last_Name = 'x'", "SYNTAX_ERROR", None),
        ("select Last_Name from Leads where Last_Name = 'x' garbage", "SYNTAX_ERROR", None),
        ("select Nope from Leads where id is not null", "INVALID_QUERY", {"column_name": "Nope", "clause": "select"}),
        ("select Last_Name from Leads where Nope = 1", "INVALID_QUERY", {"column_name": "Nope", "clause": "where"}),
        ("select Last_Name from Leads where No_of_Employees = 'ten'", "INVALID_QUERY", None),
        ("select Last_Name from Leads where Last_Name = 5", "INVALID_QUERY", None),
        ("select Last_Name from Nowhere where id is not null", "INVALID_QUERY", None),
        ("select * from Leads", "INVALID_QUERY", None),
        ("select count(id) from Leads", "INVALID_QUERY", None),
        ("select Last_Name from Leads where id > 0 limit 2001", "LIMIT_EXCEEDED", {"by": "limit", "limit": 2000}),
        (
            "select Last_Name from Leads where id > 0 limit 2000 offset 98001",
            "LIMIT_EXCEEDED",
            {"by": "offset", "limit": 100000},
        ),
        # Zoho's own rules (Kaizen #171): WHERE is mandatory, and three conditions need pairwise brackets.
        ("select Last_Name from Leads", "SYNTAX_ERROR", {"clause": "where"}),
        ("select Last_Name from Leads order by id", "SYNTAX_ERROR", {"clause": "where"}),
        (
            "select id from Leads where id > 0 and Last_Name is not null and Email is not null",
            "SYNTAX_ERROR",
            {"line": 1, "column": 61, "near": "and"},
        ),
        ("select id from Leads where id > 0 or Last_Name = 'x' and Email is null", "SYNTAX_ERROR", None),
        ("select id from Leads where (id > 0 and id < 5 and id != 3)", "SYNTAX_ERROR", None),
        (
            "select id from Leads where id > 0 limit 0",
            "LIMIT_EXCEEDED",
            {"by": "limit", "limit": 2000, "reason": "LIMIT must be 1 to 2000"},
        ),
    ],
)
async def test_errors(api: httpx.AsyncClient, query: str, code: str, details: dict[str, Any] | None) -> None:
    response = await _q(api, query)
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"]) == (code, "error")
    assert isinstance(body["message"], str)
    if details is not None:
        assert body["details"] == details


async def test_missing_select_query(api: httpx.AsyncClient) -> None:
    response = await api.post("/crm/v8/coql", json={"query": "x"})
    assert response.json()["code"] == "MANDATORY_NOT_FOUND"
