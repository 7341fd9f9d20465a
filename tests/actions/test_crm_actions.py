"""Every CRM action: the exact request it sends and the result it returns."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, ZohoAPIError
from tests.conftest import ACCESS_TOKEN, CRM

AUTH = {"Authorization": f"Zoho-oauthtoken {ACCESS_TOKEN}"}


def only_request(httpx_mock: HTTPXMock) -> httpx.Request:
    requests = httpx_mock.get_requests()
    assert len(requests) == 1
    return requests[0]


def test_get_record_sends_fields_and_returns_zoho_answer(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    record = {"id": "5394166000000379001", "Last_Name": "Doe"}
    httpx_mock.add_response(
        method="GET",
        url=f"{CRM}/Leads/5394166000000379001?fields=Last_Name%2CEmail",
        match_headers=AUTH,
        json={"data": [record]},
    )
    result = connector.run(
        "crmGetRecord",
        {"recordType": "Leads", "recordId": "5394166000000379001", "fields": ["Last_Name", "Email"]},
        connection=connection,
    )
    assert result == {"data": {"data": [record]}}


def test_get_records_sends_paging_and_sorting(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    body = {"data": [{"id": "1"}], "info": {"page": 2, "per_page": 10, "count": 1, "more_records": True}}
    httpx_mock.add_response(
        url=f"{CRM}/Contacts?fields=Last_Name&page=2&per_page=10&sort_by=Modified_Time&sort_order=desc",
        match_headers=AUTH,
        json=body,
    )
    inputs = {
        "recordType": "Contacts",
        "fields": ["Last_Name"],
        "page": "2",
        "per_page": 10,
        "sort_by": "Modified_Time",
        "sort_order": "desc",
    }
    assert connector.run("crmGetRecords", inputs, connection=connection) == {"data": body}


def test_get_records_page_token_is_sent_without_page(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """Zoho answers AMBIGUITY_DURING_PROCESSING to page with page_token (Kaizen #60; crm-oas getRecords)."""
    httpx_mock.add_response(
        url=f"{CRM}/Leads?fields=Email&per_page=200&page_token=187d2af1e9c50119e", json={"data": [], "info": {}}
    )
    connector.run(
        "crmGetRecords",
        {"recordType": "Leads", "fields": ["Email"], "page_token": "187d2af1e9c50119e"},
        connection=connection,
    )


def test_get_records_204_is_an_empty_list(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=204)
    result = connector.run("crmGetRecords", {"recordType": "Leads", "fields": ["Email"]}, connection=connection)
    assert result == {"data": {"data": [], "info": {"count": 0, "more_records": False}}}


def test_create_record_merges_values_into_one_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    answer = {"data": [{"code": "SUCCESS", "status": "success", "message": "record added", "details": {"id": "7"}}]}
    httpx_mock.add_response(method="POST", url=f"{CRM}/Leads", match_headers=AUTH, status_code=201, json=answer)
    result = connector.run(
        "crmCreateRecord",
        {
            "recordType": "Leads",
            "dynamicValues": {"Company": "Zylker", "Last_Name": "from config"},
            "fieldValues": [{"key": "Last_Name", "value": "Doe"}, {"key": "Email", "value": "d@example.com"}],
        },
        connection=connection,
    )
    sent = json.loads(only_request(httpx_mock).content)
    assert sent == {"data": [{"Company": "Zylker", "Last_Name": "Doe", "Email": "d@example.com"}]}
    assert result == {"data": answer}


def test_update_record_puts_to_the_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="PUT", url=f"{CRM}/Deals/42", json={"data": [{"code": "SUCCESS"}]})
    connector.run(
        "crmUpdateRecord",
        {"recordType": "Deals", "recordId": "42", "fieldValues": {"Stage": "Closed Won"}},
        connection=connection,
    )
    # Zoho's spec (crm-oas record.json updateRecord) requires the id inside data[0] too
    assert json.loads(only_request(httpx_mock).content) == {"data": [{"Stage": "Closed Won", "id": "42"}]}


def test_a_field_value_cannot_redirect_an_update(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="PUT", url=f"{CRM}/Deals/42", json={"data": [{"code": "SUCCESS"}]})
    inputs = {"recordType": "Deals", "recordId": "42", "fieldValues": {"id": "7", "Stage": "Lost"}}
    connector.run("crmUpdateRecord", inputs, connection=connection)
    assert json.loads(only_request(httpx_mock).content)["data"][0]["id"] == "42"


def test_remove_record_deletes_it(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="DELETE", url=f"{CRM}/Leads/42", match_headers=AUTH, json={"data": [{"code": "SUCCESS"}]}
    )
    assert connector.run("crmRemoveRecord", {"recordType": "Leads", "recordId": "42"}, connection=connection)


def test_record_id_is_one_escaped_path_segment(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="DELETE", url=f"{CRM}/Leads/..%2F..%2Fsettings", json={"data": []})
    connector.run("crmRemoveRecord", {"recordType": "Leads", "recordId": "../../settings"}, connection=connection)


def test_add_attachment_uploads_multipart_under_file(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=f"{CRM}/Leads/42/Attachments", match_headers=AUTH, json={"data": []})
    pdf = b"%PDF-1.7 \x00\xff binary"
    connector.run(
        "crmAddAttachment",
        {"recordType": "Leads", "recordId": "42", "file": pdf, "fileName": "proposal.pdf"},
        connection=connection,
    )
    request = only_request(httpx_mock)
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="proposal.pdf"' in request.content
    assert pdf in request.content


def test_add_attachment_accepts_base64_and_text(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"data": []}, is_reusable=True)
    encoded = {"base64": base64.b64encode(b"\x89PNG").decode(), "contentType": "image/png"}
    connector.run(
        "crmAddAttachment",
        {"recordType": "Leads", "recordId": "1", "file": encoded, "fileName": "a.png"},
        connection=connection,
    )
    connector.run(
        "crmAddAttachment",
        {"recordType": "Leads", "recordId": "1", "file": "hello", "fileName": "a.txt"},
        connection=connection,
    )
    png, text = httpx_mock.get_requests()
    assert b"Content-Type: image/png" in png.content and b"\x89PNG" in png.content
    assert b"hello" in text.content


def test_run_query_posts_select_query(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    answer = {"data": [{"Last_Name": "Doe", "id": "1"}], "info": {"count": 1, "more_records": False}}
    httpx_mock.add_response(method="POST", url=f"{CRM}/coql", match_headers=AUTH, json=answer)
    query = "select Last_Name from Contacts where Last_Name is not null"
    assert connector.run("crmRunQuery", {"query": query}, connection=connection) == {"data": answer}
    assert json.loads(only_request(httpx_mock).content) == {"select_query": query}


def test_run_query_204_is_empty(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=204)
    result = connector.run("crmRunQuery", {"query": "select id from Leads where id = 1"}, connection=connection)
    assert result["data"]["data"] == []


def test_raw_request_sends_method_query_headers_and_body(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{CRM}/Leads/1234567890/actions/convert?overwrite=true",
        match_headers={**AUTH, "X-Trace": "abc"},
        json={"data": [{"code": "SUCCESS"}]},
    )
    connector.run(
        "crmRawRequest",
        {
            "url": "/Leads/1234567890/actions/convert",
            "method": "POST",
            "queryParams": [{"key": "overwrite", "value": "true"}],
            "headers": [{"key": "X-Trace", "value": "abc"}],
            "data": {"data": [{"overwrite": True}]},
        },
        connection=connection,
    )
    assert json.loads(only_request(httpx_mock).content) == {"data": [{"overwrite": True}]}


def test_raw_request_binary_response(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        content=b"\x00\x01",
        headers={"content-type": "application/pdf", "content-disposition": 'attachment; filename="a.pdf"'},
    )
    result = connector.run(
        "crmRawRequest", {"url": "/Leads/1/Attachments/2", "responseType": "binary"}, connection=connection
    )
    assert result == {"data": {"base64": "AAE=", "contentType": "application/pdf", "fileName": "a.pdf", "size": 2}}


def test_raw_request_form_and_files(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"data": []})
    connector.run(
        "crmRawRequest",
        {
            "url": "/files",
            "method": "POST",
            "formData": [{"key": "title", "value": "Q3"}],
            "fileData": [{"key": "file", "value": "My File Contents"}],
            "fileDataFileNames": [{"key": "file", "value": "example.txt"}],
        },
        connection=connection,
    )
    content = only_request(httpx_mock).content
    assert b'name="title"' in content and b"Q3" in content
    assert b'name="file"; filename="example.txt"' in content and b"My File Contents" in content


def test_raw_request_refuses_a_path_that_climbs_out(connector: Connector, connection: dict[str, Any]) -> None:
    from connector import InputValidationError

    with pytest.raises(InputValidationError, match=r"\.\."):
        connector.run("crmRawRequest", {"url": "/../../oauth/v2/token"}, connection=connection)


def test_207_mixed_results_are_returned_per_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    answer = {
        "data": [
            {"code": "SUCCESS", "status": "success", "details": {"id": "1"}, "message": "record added"},
            {
                "code": "INVALID_DATA",
                "status": "error",
                "message": "invalid data",
                "details": {"api_name": "Email", "json_path": "$.data[1].Email"},
            },
        ]
    }
    httpx_mock.add_response(method="POST", status_code=207, json=answer)
    result = connector.run(
        "crmRawRequest", {"url": "/Leads", "method": "POST", "data": {"data": [{}, {}]}}, connection=connection
    )
    assert result == {"data": answer}


def test_zoho_error_keeps_code_message_and_details(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        status_code=400,
        headers={"x-request-id": "req-1"},
        json={
            "data": [
                {
                    "code": "MANDATORY_NOT_FOUND",
                    "status": "error",
                    "message": "required field not found",
                    "details": {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"},
                }
            ]
        },
    )
    with pytest.raises(ZohoAPIError) as caught:
        connector.run(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Email": "x@y.z"}}, connection=connection
        )
    error = caught.value
    assert (error.status, error.code, error.zoho_message) == (400, "MANDATORY_NOT_FOUND", "required field not found")
    assert error.details == {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"}
    assert error.request_id == "req-1"
    assert error.to_dict()["error"]["code"] == "MANDATORY_NOT_FOUND"


# --- crmConvertLead: the ids first, Zoho's details kept (result.output, connector/_output.py) ---------------------

CONVERT = f"{CRM}/Leads/5394166000000379001/actions/convert"


def converted(details: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {
                "code": "SUCCESS",
                "status": "success",
                "message": "The record has been converted successfully",
                "details": details,
            }
        ]
    }


def test_convert_lead_returns_the_ids_and_zohos_details(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    details = {
        "Contacts": {"name": "Jo Doe", "id": "11"},
        "Accounts": {"name": "Zylker", "id": "12"},
        "Deals": {"name": "Zylker - Q3", "id": "13"},
    }
    httpx_mock.add_response(method="POST", url=CONVERT, json=converted(details))
    result = connector.run("crmConvertLead", {"recordId": "5394166000000379001"}, connection=connection)
    assert result == {"data": {"contactId": "11", "accountId": "12", "dealId": "13", "details": details}}


@pytest.mark.parametrize(
    "details",
    [
        {"Contacts": {"name": "Jo Doe", "id": "11"}, "Accounts": None, "Deals": None},
        {"Contacts": {"name": "Jo Doe", "id": "11"}},  # members left out rather than null
    ],
    ids=["null", "absent"],
)
def test_convert_lead_gives_null_for_an_account_or_deal_not_made(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, details: dict[str, Any]
) -> None:
    httpx_mock.add_response(method="POST", url=CONVERT, json=converted(details))
    result = connector.run("crmConvertLead", {"recordId": "5394166000000379001"}, connection=connection)
    assert result["data"] == {"contactId": "11", "accountId": None, "dealId": None, "details": details}


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            400,
            {
                "code": "ID_ALREADY_CONVERTED",
                "message": "id already converted",
                "status": "error",
                "details": {"resource_path_index": 1},
            },
            "ID_ALREADY_CONVERTED",
        ),
        # crm-oas (convert_lead.json) documents a 202 carrying the same error, and per-record errors in data[].
        (
            202,
            {
                "code": "ID_ALREADY_CONVERTED",
                "message": "id already converted",
                "status": "error",
                "details": {"resource_path_index": 1},
            },
            "ID_ALREADY_CONVERTED",
        ),
        (
            202,
            {
                "data": [
                    {
                        "code": "MANDATORY_NOT_FOUND",
                        "message": "required field not found",
                        "status": "error",
                        "details": {"api_name": "Stage", "json_path": "$.data[0].Deals.Stage"},
                    }
                ]
            },
            "MANDATORY_NOT_FOUND",
        ),
    ],
    ids=["400", "202-top-level", "202-per-record"],
)
def test_a_refused_conversion_raises_zohos_error(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, status: int, body: Any, code: str
) -> None:
    httpx_mock.add_response(method="POST", url=CONVERT, status_code=status, json=body)
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmConvertLead", {"recordId": "5394166000000379001"}, connection=connection)
    error = caught.value
    row = body["data"][0] if "data" in body else body
    assert (error.status, error.code, error.zoho_message, error.details) == (
        status,
        code,
        row["message"],
        row["details"],
    )
    assert len(httpx_mock.get_requests()) == 1  # a write that reached Zoho is never re-sent


def test_a_conversion_answer_without_the_contact_is_a_bad_response_never_resent(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    from connector.errors import BadResponseError

    httpx_mock.add_response(method="POST", url=CONVERT, json={"data": []})
    with pytest.raises(BadResponseError) as caught:
        connector.run("crmConvertLead", {"recordId": "5394166000000379001"}, connection=connection)
    assert "answer.data has 0 items" in str(caught.value)
    assert caught.value.may_have_acted and not caught.value.retryable
    assert len(httpx_mock.get_requests()) == 1
