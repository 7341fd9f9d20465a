"""Inputs Zoho reads as date-times or URLs are checked before anything is sent: a pattern in the schema (so an
engine validating with any JSON Schema library refuses them too, `format` being only an annotation there), and an
error naming the input. Also: crmListNotes' record inputs go together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.errors import InputValidationError
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_access_token

GET = {"recordType": "Leads", "fields": ["Last_Name"]}
WATCH = {"channelId": "1", "events": ["Leads.all"], "notifyUrl": "https://example.com/notify"}
BULK = {"recordType": "Leads", "fields": ["Last_Name"]}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connection(sandbox: str) -> dict[str, Any]:
    return with_access_token(sandbox)


def sent(sandbox: str) -> int:
    return int(httpx.get(f"{sandbox}/__sandbox/stats").json()["requests_total"])


@pytest.mark.parametrize(
    ("action", "inputs", "name", "message"),
    [
        ("crmGetRecords", {**GET, "modifiedSince": "yesterday"}, "modifiedSince", "ISO 8601"),
        ("crmGetRecords", {**GET, "modifiedSince": "2026-11-20"}, "modifiedSince", "ISO 8601"),
        ("crmGetRecords", {**GET, "modifiedSince": "2026-11-20T10:15:00"}, "modifiedSince", "ISO 8601"),  # no offset
        ("crmGetRecords", {**GET, "modifiedSince": "2026-13-20T10:15:00Z"}, "modifiedSince", "ISO 8601"),
        ("crmGetRecords", {**GET, "modifiedSince": "2026-11-20 10:15:00+05:30"}, "modifiedSince", "ISO 8601"),
        ("crmEnableNotification", {**WATCH, "channelExpiry": "tomorrow"}, "channelExpiry", "ISO 8601"),
        ("crmUpdateNotification", {**WATCH, "channelExpiry": "2026-11-27T25:00:00Z"}, "channelExpiry", "ISO 8601"),
        ("crmEnableNotification", {**WATCH, "notifyUrl": "ftp://example.com"}, "notifyUrl", "http(s) URL"),
        ("crmCreateBulkReadJob", {**BULK, "callbackUrl": "https://"}, "callbackUrl", "http(s) URL"),
        (
            "crmAddAttachmentFromUrl",
            {"recordType": "Leads", "recordId": "1", "attachmentUrl": "https://example.com/a b.pdf"},
            "attachmentUrl",
            "http(s) URL",
        ),
        ("crmListNotes", {"recordId": "1"}, "recordType", "is required together with recordId"),
        ("crmListNotes", {"recordType": "Leads"}, "recordId", "is required together with recordType"),
    ],
)
def test_a_bad_value_names_the_input_and_sends_nothing(
    sandbox: str, connection: dict[str, Any], action: str, inputs: dict[str, Any], name: str, message: str
) -> None:
    before = sent(sandbox)
    with pytest.raises(InputValidationError) as caught:
        Connector.load().run(action, inputs, connection=connection)
    assert [v.input for v in caught.value.violations] == [name]
    assert message in caught.value.violations[0].message and caught.value.violations[0].pointer == f"/{name}"
    assert sent(sandbox) == before


@pytest.mark.parametrize("moment", ["2026-11-20T10:15:00+05:30", "2026-11-20T10:15:00Z", "2026-11-20T10:15:00.5-07:00"])
def test_the_date_times_zoho_takes_are_sent(connection: dict[str, Any], moment: str) -> None:
    result = Connector.load().run("crmGetRecords", {**GET, "modifiedSince": moment}, connection=connection)
    assert isinstance(result["data"]["data"], list)


def test_a_bad_date_time_from_the_command_line(
    sandbox: str, connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = json.dumps({**GET, "modifiedSince": "yesterday"})
    before = sent(sandbox)
    assert main(["run", "crmGetRecords", "--inputs", inputs, "--connection", json.dumps(connection)]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["type"] == "invalid_input" and [v["input"] for v in error["violations"]] == ["modifiedSince"]
    assert sent(sandbox) == before


def _formatted(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("format") in ("date-time", "uri"):
            yield where, node
        for key, value in node.items():
            yield from _formatted(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _formatted(value, f"{where}/{i}")


def test_every_date_time_and_uri_input_carries_a_pattern() -> None:
    """`format` is an annotation to most validators: the pattern is what refuses a bad value everywhere."""
    connector = Connector.load()
    schemas = {**{k: a.input_schema for k, a in connector.actions.items()}}
    schemas.update({k: t.input_schema for k, t in connector.manifest.triggers.items()})
    found = [(key, where, prop) for key, schema in schemas.items() for where, prop in _formatted(schema)]
    assert len(found) >= 6
    missing = [f"{key}{where}" for key, where, prop in found if "pattern" not in prop]
    assert missing == []
