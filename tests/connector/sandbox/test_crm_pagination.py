"""GET /{module}: `fields` required, the 2,000-row discrete limit, page_token beyond it, sorting, 204."""

from __future__ import annotations

import httpx
import pytest

from connector.sandbox import SandboxState
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def _seed(api: httpx.AsyncClient, count: int) -> None:
    response = await api.post("/__sandbox/seed", json={"module": "Leads", "count": count})
    assert response.json()["created"] == count


async def test_fields_is_required(api: httpx.AsyncClient) -> None:
    response = await api.get("/crm/v8/Leads")
    assert response.status_code == 400
    assert response.json() == {
        "code": "REQUIRED_PARAM_MISSING",
        "details": {"param_name": "fields"},
        "message": "One of the expected parameter is missing",
        "status": "error",
    }
    too_many = await api.get("/crm/v8/Leads", params={"fields": ",".join(f"F{i}" for i in range(51))})
    assert too_many.json()["code"] == "LIMIT_EXCEEDED"


async def test_empty_module_is_204_with_no_body(api: httpx.AsyncClient) -> None:
    response = await api.get("/crm/v8/Leads", params={"fields": "Last_Name"})
    assert response.status_code == 204
    assert response.content == b""


async def test_page_info_and_sorting(api: httpx.AsyncClient) -> None:
    await _seed(api, 5)
    desc = (await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 2})).json()
    assert desc["info"]["sort_by"] == "id"
    assert desc["info"]["sort_order"] == "desc"
    assert (desc["info"]["count"], desc["info"]["page"], desc["info"]["more_records"]) == (2, 1, True)
    assert desc["info"]["next_page_token"]
    assert set(desc["data"][0]) == {"id", "Last_Name"}
    asc = (
        await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "sort_order": "asc", "page": 3, "per_page": 2})
    ).json()
    assert asc["info"]["more_records"] is False
    assert asc["info"]["next_page_token"] is None
    assert asc["data"][0]["Last_Name"] == "Last Name 4"
    assert int(desc["data"][0]["id"]) > int(desc["data"][1]["id"])
    bad = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "sort_by": "Last_Name"})
    assert bad.json()["code"] == "INVALID_DATA"
    big = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 201})
    assert big.json()["details"]["param_name"] == "per_page"
    picked = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "ids": desc["data"][1]["id"]})
    assert [r["id"] for r in picked.json()["data"]] == [desc["data"][1]["id"]]


async def test_discrete_limit_then_page_token(api: httpx.AsyncClient, state: SandboxState) -> None:
    await _seed(api, 2450)
    last_discrete = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page": 10, "per_page": 200})
    assert last_discrete.status_code == 200
    info = last_discrete.json()["info"]
    assert info["more_records"] is True
    beyond = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page": 11, "per_page": 200})
    assert beyond.status_code == 400
    assert beyond.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    odd = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page": 21, "per_page": 100})
    assert odd.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    seen = {r["id"] for r in last_discrete.json()["data"]}
    token = info["next_page_token"]
    pages = 0
    while token:
        page = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page_token": token})
        assert page.status_code == 200
        body = page.json()
        assert body["info"]["page_token_expiry"] is not None or not body["info"]["more_records"]
        assert body["info"]["previous_page_token"]
        seen |= {r["id"] for r in body["data"]}
        token = body["info"]["next_page_token"]
        pages += 1
    assert pages == 3
    assert len(seen) == 200 + 450


async def test_page_token_errors(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await _seed(api, 3)
    first = (await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 1})).json()
    token = first["info"]["next_page_token"]
    other_sort = await api.get(
        "/crm/v8/Leads", params={"fields": "Last_Name", "page_token": token, "sort_order": "asc"}
    )
    assert other_sort.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    unknown = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page_token": "nope"})
    assert unknown.json()["code"] == "INVALID_DATA"
    clock.now += 86_401
    refreshed = await api.post("/__sandbox/tokens", json={})
    api.headers["Authorization"] = f"Zoho-oauthtoken {refreshed.json()['access_token']}"
    expired = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page_token": token})
    assert expired.json()["code"] == "EXPIRED_VALUE"


async def test_page_token_walk_stops_at_the_row_cap(api: httpx.AsyncClient, state: SandboxState) -> None:
    state.options.max_page_token_rows = 300
    await _seed(api, 500)
    first = (await api.get("/crm/v8/Leads", params={"fields": "id", "per_page": 200})).json()
    second = (
        await api.get("/crm/v8/Leads", params={"fields": "id", "page_token": first["info"]["next_page_token"]})
    ).json()
    assert second["info"]["more_records"] is True
    assert second["info"]["next_page_token"] is None
