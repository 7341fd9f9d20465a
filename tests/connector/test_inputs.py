"""Inputs JSON cannot carry are refused when they are checked, before anything is built or sent."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError
from connector._inputs import MAX_DEPTH, unsafe_values
from connector.errors import Violation


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("action", "inputs", "pointer"),
    [
        ("crmGetRecord", {"recordType": "Leads", "recordId": "53\ud83d"}, "/recordId"),
        ("crmRunQuery", {"query": "select Email from Leads where Last_Name = '\udfff'"}, "/query"),
        (
            "crmCreateRecord",
            {"recordType": "Leads", "fieldValues": [{"key": "Last_Name", "value": "\ud800"}]},
            "/fieldValues/0/value",
        ),
    ],
    ids=["id", "query", "data"],
)
def test_a_lone_surrogate_is_an_input_error(
    action: str,
    inputs: dict[str, Any],
    pointer: str,
    connector: Connector,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run(action, inputs, connection=connection)
    assert [v.pointer for v in caught.value.violations] == [pointer]
    assert "lone surrogate" in caught.value.violations[0].message
    assert httpx_mock.get_requests() == []


def test_a_key_with_a_lone_surrogate_is_shown_escaped() -> None:
    assert unsafe_values({"fieldValues": {"Last\ud800": "Doe"}}) == [
        Violation("fieldValues", "/fieldValues", "a key contains a lone surrogate, not valid Unicode")
    ]
    found = unsafe_values({"fieldValues": {"Last\ud800": {"x": "\udc00"}}})
    assert [v.pointer for v in found] == ["/fieldValues", "/fieldValues/Last\\ud800/x"]
    found[1].pointer.encode("utf-8")  # printable as it is


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_input_errors(
    number: float, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Amount": number}}, connection=connection
        )
    assert [v.pointer for v in caught.value.violations] == ["/fieldValues/Amount"]
    assert httpx_mock.get_requests() == []


def test_nesting_deeper_than_the_limit_is_an_input_error_not_a_recursion_error(
    connector: Connector, connection: dict[str, Any]
) -> None:
    inputs = {"recordType": "Leads", "fieldValues": {"a": _nested(5000), "b": _nested(5000)}}
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmCreateRecord", inputs, connection=connection)
    assert caught.value.violations == [
        Violation("fieldValues", "/fieldValues", f"nested more than {MAX_DEPTH} levels deep")
    ]


def test_ordinary_values_pass() -> None:
    assert unsafe_values({"a": [1, 2.5, "é ✓ 😀", {"b": None, "c": True}], "d": _nested(MAX_DEPTH - 1)}) == []


@pytest.mark.parametrize(
    ("depth", "too_deep"),
    [(MAX_DEPTH - 1, False), (MAX_DEPTH, True), (MAX_DEPTH + 1, True)],
)
def test_the_depth_limit_counts_a_plain_leaf_too(depth: int, too_deep: bool) -> None:
    """Leaves are checked where they sit rather than walked to (connector/_inputs.py), and the limit is unchanged:
    the leaf of MAX_DEPTH lists sits MAX_DEPTH + 1 levels below the inputs."""
    found = unsafe_values({"a": _nested(depth)})
    assert found == ([Violation("a", "/a", f"nested more than {MAX_DEPTH} levels deep")] if too_deep else [])


def test_unsafe_values_deep_inside_a_bulk_list_are_found_where_they_are() -> None:
    records: list[Any] = [{"Last_Name": f"Doe {i}", "Score": 1.5} for i in range(10_000)]
    records[4321] = {"Last_Name": "Doe \udc00", "Score": float("nan"), "Tags": ("ok", "\ud800"), "\ud801": 1}
    found = unsafe_values({"records": records})
    assert [(v.pointer, v.message.split(" (")[0]) for v in found] == [
        ("/records/4321", "a key contains a lone surrogate, not valid Unicode"),
        ("/records/4321/Last_Name", "contains a lone surrogate"),
        ("/records/4321/Score", "nan is not a JSON number"),
        ("/records/4321/Tags/1", "contains a lone surrogate"),
    ]


def test_a_bulk_list_is_checked_item_by_item_however_it_is_validated(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """A bulk list is taken as valid without jsonschema (connector/_fastschema.py) only when every item is an object
    and the rest of the schema holds; otherwise the violations are the full validator's."""
    from connector import _schema

    schema = connector.actions["crmCreateRecords"].input_schema
    records: list[Any] = [{"Last_Name": "Doe"}] * 300
    assert _schema.violations(schema, {"recordType": "Leads", "records": records}) == []
    records[217] = "Doe"
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmCreateRecords", {"recordType": "Leads", "records": records}, connection=connection)
    assert [(v.pointer, v.message) for v in caught.value.violations] == [
        ("/records/217", "'Doe' is not of type 'object'")
    ]
    assert httpx_mock.get_requests() == []
    bounded = {
        "type": "object",
        "properties": {"rows": {"type": "array", "maxItems": 2, "items": {"type": "object", "title": "Row"}}},
    }
    assert _schema.violations(bounded, {"rows": [{}, {}, {}]}) == [
        Violation("rows", "/rows", "[{}, {}, {}] is too long")
    ]
    assert _schema.violations(bounded, {"rows": [{}, 1]}) == [Violation("rows", "/rows/1", "1 is not of type 'object'")]
    assert _schema.violations(bounded, {"rows": [{}, {}]}) == []
