"""Every Books action: organization_id on every call, parent paths, envelopes, and non-zero codes as errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, ZohoAPIError
from tests.conftest import ACCESS_TOKEN, BOOKS, ORG

AUTH = {"Authorization": f"Zoho-oauthtoken {ACCESS_TOKEN}"}


def test_get_record(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    answer = {"code": 0, "message": "success", "invoice": {"invoice_id": "9"}}
    httpx_mock.add_response(
        method="GET", url=f"{BOOKS}/invoices/9?organization_id={ORG}", match_headers=AUTH, json=answer
    )
    assert connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "9"}, connection=connection) == {
        "data": answer
    }


def test_get_record_under_a_parent(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BOOKS}/contacts/5/contactpersons/7?organization_id={ORG}", json={"code": 0})
    connector.run(
        "booksGetRecord",
        {"recordType": "contactpersons", "recordId": "7", "parentRecordType": "contacts", "parentRecordId": "5"},
        connection=connection,
    )


def test_nested_record_type_keeps_its_slash(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=f"{BOOKS}/settings/taxes?page=1&per_page=200&organization_id={ORG}",
        json={"code": 0, "taxes": [], "page_context": {"has_more_page": False}},
    )
    connector.run("booksGetRecords", {"recordType": "settings/taxes"}, connection=connection)


def test_get_records_with_search_fields(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    answer = {
        "code": 0,
        "message": "success",
        "contacts": [{"contact_id": "1"}],
        "page_context": {"page": 1, "per_page": 25, "has_more_page": True},
    }
    httpx_mock.add_response(
        url=f"{BOOKS}/contacts?contact_name=A%26B%3DC+%231&page=1&per_page=25&organization_id={ORG}", json=answer
    )
    result = connector.run(
        "booksGetRecords",
        {"recordType": "contacts", "per_page": 25, "searchFields": [{"key": "contact_name", "value": "A&B=C #1"}]},
        connection=connection,
    )
    assert result == {"data": answer}


def test_create_record_under_a_parent(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    answer = {"code": 0, "message": "The task has been added.", "task": {"task_id": "3"}}
    httpx_mock.add_response(
        method="POST", url=f"{BOOKS}/projects/8/tasks?organization_id={ORG}", status_code=201, json=answer
    )
    result = connector.run(
        "booksCreateRecord",
        {
            "recordType": "tasks",
            "parentRecordType": "projects",
            "parentRecordId": "8",
            "fieldValues": [{"key": "task_name", "value": "Design"}],
            "dynamicValues": {"rate": 120},
        },
        connection=connection,
    )
    assert json.loads(httpx_mock.get_requests()[0].content) == {"rate": 120, "task_name": "Design"}
    assert result == {"data": answer}


def test_update_record(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="PUT", url=f"{BOOKS}/invoices/9?organization_id={ORG}", json={"code": 0})
    connector.run(
        "booksUpdateRecord",
        {"recordType": "invoices", "recordId": "9", "fieldValues": {"reference_number": "PO-1"}},
        connection=connection,
    )
    assert json.loads(httpx_mock.get_requests()[0].content) == {"reference_number": "PO-1"}


def test_remove_record(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="DELETE", url=f"{BOOKS}/invoices/9?organization_id={ORG}", json={"code": 0, "message": "deleted"}
    )
    assert connector.run("booksRemoveRecord", {"recordType": "invoices", "recordId": "9"}, connection=connection)


def test_raw_request_adds_organization(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{BOOKS}/invoices/9/status/sent?organization_id={ORG}", json={"code": 0}
    )
    connector.run("booksRawRequest", {"url": "/invoices/9/status/sent", "method": "POST"}, connection=connection)


def test_non_zero_code_is_an_error_even_with_http_200(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=200, json={"code": 1002, "message": "Invoice does not exist."})
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "1"}, connection=connection)
    assert (caught.value.code, caught.value.zoho_message) == ("1002", "Invoice does not exist.")


def test_organization_is_discovered_once_when_not_configured(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    del connection["organization_id"]
    orgs = {
        "code": 0,
        "organizations": [
            {"organization_id": "1", "is_default_org": False},
            {"organization_id": "2", "is_default_org": True},
        ],
    }
    httpx_mock.add_response(url=f"{BOOKS}/organizations", json=orgs)
    httpx_mock.add_response(url=f"{BOOKS}/invoices/9?organization_id=2", json={"code": 0}, is_reusable=True)
    for _ in range(2):
        connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "9"}, connection=connection)
    assert len(httpx_mock.get_requests()) == 3


# Kinds that exist only under a parent record (shared/notes/zoho-api.md §4 "Resources"; Zoho Books API v3):
# /contacts/{id}/contactpersons (created at /contacts/contactpersons), /projects/{id}/tasks, /invoices/{id}/comments,
# /invoices/{id}/payments, /invoices/{id}/creditsapplied, /invoices/{id}/address/billing,
# /creditnotes/{id}/refunds and /emailhistory, /settings/currencies/{id}/exchangerates, /bills/{id}/credits.
CHILD_ONLY = {
    "contactpersons",
    "tasks",
    "comments",
    "payments",
    "creditsapplied",
    "address",
    "addresses",
    "refunds",
    "emailhistory",
    "exchangerates",
    "credits",
    "timeentries",
}


@pytest.mark.parametrize("definition", ["booksRecordType", "inventoryRecordType", "invoiceRecordType"])
def test_record_type_suggestions_are_top_level_kinds(definition: str) -> None:
    """A suggested recordType must work without a parent: /books/v3/tasks or /contactpersons does not exist."""
    from connector.manifest import data_root

    defs = json.loads((data_root() / "schemas/common.json").read_text())["$defs"]
    suggested = defs[definition]["x-suggestions"]
    assert sorted(set(suggested) & CHILD_ONLY) == []
    # ... and the child kinds are offered once their parent is given, and told, in words, with it.
    if definition == "booksRecordType":
        words = defs[definition]["description"] + defs["booksParentRecordType"]["description"]
        assert "contactpersons under contacts" in words and "tasks under projects" in words
        assert {"contacts", "projects", "invoices"} <= set(defs["booksParentRecordType"]["x-suggestions"])
        under = defs[definition]["x-suggestions-by"]["values"]
        assert "contactpersons" in under["contacts"] and "tasks" in under["projects"]
        assert {"payments", "comments"} <= set(under["invoices"])
