"""Fetch All: page numbers up to 2,000 CRM rows, page tokens beyond, Books' has_more_page, and loop protection."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector.errors import PaginationError
from tests.conftest import BOOKS, CRM


def crm_pages(total: int, per_page: int = 200) -> Any:
    """A callback answering like Zoho CRM: page numbers for the first 2,000 rows, page tokens after."""

    def respond(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "page_token" in params:
            assert "page" not in params, "page and page_token must not be sent together"
            start = int(params["page_token"].removeprefix("tok-"))
        else:
            page = int(params.get("page", "1"))
            start = (page - 1) * per_page
            assert start < 2000, "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
        rows = [{"id": str(i)} for i in range(start, min(start + per_page, total))]
        more = start + per_page < total
        info: dict[str, Any] = {
            "per_page": per_page,
            "count": len(rows),
            "page": start // per_page + 1,
            "more_records": more,
        }
        if more and start + per_page >= 2000:
            info["next_page_token"] = f"tok-{start + per_page}"
        return httpx.Response(200, json={"data": rows, "info": info})

    return respond


def test_fetch_all_reaches_past_2000_rows_with_page_tokens(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(crm_pages(2450), url=re.compile(rf"{CRM}/Leads.*"), is_reusable=True)
    result = connector.run(
        "crmGetRecords", {"recordType": "Leads", "fields": ["id"], "fetchAll": True}, connection=connection
    )
    ids = [r["id"] for r in result["data"]["data"]]
    assert ids == [str(i) for i in range(2450)]
    assert result["data"]["info"]["more_records"] is False
    assert len(httpx_mock.get_requests()) == 13  # ceil(2450 / 200)


def test_iter_records_streams_every_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(crm_pages(450), url=re.compile(rf"{CRM}/Leads.*"), is_reusable=True)
    records = connector.iter_records("crmGetRecords", {"recordType": "Leads", "fields": ["id"]}, connection=connection)
    assert sum(1 for _ in records) == 450


def test_repeated_page_token_stops_with_an_error(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    page = {"data": [{"id": "1"}], "info": {"more_records": True, "next_page_token": "same"}}
    httpx_mock.add_response(json=page, is_reusable=True)
    with pytest.raises(PaginationError, match="already given"):
        connector.run(
            "crmGetRecords", {"recordType": "Leads", "fields": ["id"], "fetchAll": True}, connection=connection
        )


def test_fetch_all_204_is_empty(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=204)
    result = connector.run(
        "crmGetRecords", {"recordType": "Leads", "fields": ["id"], "fetchAll": True}, connection=connection
    )
    assert result["data"]["data"] == []


def test_books_fetch_all_follows_has_more_page(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    for page in (1, 2, 3):
        httpx_mock.add_response(
            url=f"{BOOKS}/invoices?page={page}&per_page=200&organization_id=10234695",
            json={
                "code": 0,
                "message": "success",
                "invoices": [{"invoice_id": str(page)}],
                "page_context": {"page": page, "per_page": 200, "has_more_page": page < 3},
            },
        )
    result = connector.run("booksGetRecords", {"recordType": "invoices", "fetchAll": True}, connection=connection)
    assert [i["invoice_id"] for i in result["data"]["invoices"]] == ["1", "2", "3"]
    assert result["data"]["page_context"]["has_more_page"] is False


async def test_async_fetch_all_matches_sync(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(crm_pages(2100), url=re.compile(rf"{CRM}/Leads.*"), is_reusable=True)
    result = await connector.arun(
        "crmGetRecords", {"recordType": "Leads", "fields": ["id"], "fetchAll": True}, connection=connection
    )
    assert len(result["data"]["data"]) == 2100
    streamed = [
        r
        async for r in connector.aiter_records(
            "crmGetRecords", {"recordType": "Leads", "fields": ["id"]}, connection=connection
        )
    ]
    assert len(streamed) == 2100
    await connector.aclose()
