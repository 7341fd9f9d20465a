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
