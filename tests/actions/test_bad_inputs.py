"""Bad inputs for every action: every violation named, with what was expected, and nothing sent to Zoho."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError
from connector.manifest import bundled_manifest

ACTIONS = sorted(bundled_manifest().actions)
# Actions that cannot run without some input (crmGetOrganization, crmListModules, a Partner Store list… need none).
NEEDY = [
    k
    for k in ACTIONS
    if bundled_manifest().action(k).input_schema.get("required") or "anyOf" in bundled_manifest().action(k).input_schema
]


def violations_of(connector: Connector, key: str, inputs: dict[str, Any], connection: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputValidationError) as caught:
        connector.run(key, inputs, connection=connection)
    return {v.input: v.message for v in caught.value.violations}


@pytest.mark.parametrize("key", NEEDY)
def test_missing_required_inputs_are_all_named(
    key: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    schema = connector.actions[key].input_schema
    found = violations_of(connector, key, {}, connection)
    expected = {name: "is required" for name in schema["required"]}
    if "anyOf" in schema:  # one of several inputs: said once, in the schema's own words
        expected["(inputs)"] = schema["x-anyOf-message"]
    assert expected == found
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("key", ACTIONS)
def test_unknown_and_mistyped_inputs(
    key: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    schema = connector.actions[key].input_schema
    inputs: dict[str, Any] = {"recordTyp": "Leads", "debugRequest": "maybe"}
    found = violations_of(connector, key, inputs, connection)
    assert "recordTyp" in found and "unknown input" in found["recordTyp"]
    assert "debugRequest" in found and "boolean" in found["debugRequest"]
    assert set(schema["required"]) <= set(found)
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("key", "inputs", "name", "expected"),
    [
        ("crmGetRecords", {"recordType": "Leads", "fields": [], "per_page": 500}, "per_page", "200"),
        ("crmGetRecords", {"recordType": "Leads", "fields": ["Email"], "sort_order": "up"}, "sort_order", "asc"),
        ("crmGetRecords", {"recordType": "Leads", "fields": "Email"}, "fields", "array"),
        ("crmGetRecord", {"recordType": "Leads; DROP", "recordId": "1"}, "recordType", "match"),
        ("crmCreateRecord", {"recordType": "Leads", "fieldValues": [{"k": "v"}]}, "fieldValues", "key, value"),
        ("crmAddAttachment", {"recordType": "Leads", "recordId": "1", "fileName": "a", "file": 5}, "file", "string"),
        ("booksGetRecords", {"recordType": "invoices", "page": 0}, "page", "minimum"),
        (
            "booksGetRecord",
            {"recordType": "invoices", "recordId": "1", "parentRecordType": "contacts"},
            "parentRecordId",  # the input to add is the one named
            "required together with parentRecordType",
        ),
        ("booksRawRequest", {"url": "organizations"}, "url", "match"),
        ("crmRawRequest", {"url": "/Leads", "method": "TRACE"}, "method", "GET"),
        ("crmRawRequest", {"url": "/Leads", "maxRetries": -1}, "maxRetries", "minimum"),
    ],
)
def test_what_was_expected_is_said(
    key: str,
    inputs: dict[str, Any],
    name: str,
    expected: str,
    connector: Connector,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    found = violations_of(connector, key, inputs, connection)
    assert name in found, found
    assert expected in found[name]
    assert httpx_mock.get_requests() == []


def test_engine_strings_are_coerced(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    """Engines store inputs as text: "2" and "true" work where numbers and booleans are expected."""
    httpx_mock.add_response(json={"data": [], "info": {"more_records": False}})
    connector.run(
        "crmGetRecords",
        {"recordType": "Leads", "fields": ["Email"], "page": "2", "fetchAll": "false", "page_token": ""},
        connection=connection,
    )
    assert httpx_mock.get_requests()[0].url.params["page"] == "2"


def test_a_boolean_is_taken_where_the_choice_is_the_strings_true_and_false(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """crmGetRecords' converted is "true" / "false" / "both" (Zoho's query values): True and False are read as the
    first two; a boolean is still refused where no such string is a choice."""
    httpx_mock.add_response(json={"data": [], "info": {"more_records": False}}, is_reusable=True)
    for given, sent in ((True, "true"), (False, "false"), ("both", "both")):
        inputs = {"recordType": "Leads", "fields": ["Email"], "converted": given}
        connector.run("crmGetRecords", inputs, connection=connection)
        assert httpx_mock.get_requests()[-1].url.params["converted"] == sent
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmGetDeletedRecords", {"recordType": "Leads", "type": True}, connection=connection)
    assert {v.input for v in caught.value.violations} == {"type"}


def test_unknown_action_suggests_a_near_one(connector: Connector, connection: dict[str, Any]) -> None:
    with pytest.raises(InputValidationError, match="crmGetRecord"):
        connector.run("crmGetRecrod", {}, connection=connection)


def test_error_text_never_echoes_a_secret(connector: Connector) -> None:
    secret = "1000.ffffffffffffffffffffffffffffffff.ffffffffffffffffffffffffffffffff"
    with pytest.raises(InputValidationError) as caught:
        connector.run(
            "crmGetRecord",
            {"recordType": "Leads", "recordId": "1"},
            connection={"region": "eu", "access_token": 42, "client_secret": [secret]},
        )
    assert secret not in str(caught.value) and secret not in str(caught.value.to_dict())
    assert {v.input for v in caught.value.violations} == {"access_token", "client_secret"}
