"""A caller's page_token runs on the sandbox, which refuses page with page_token as Zoho does."""

from __future__ import annotations

from connector import Connector
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_access_token


def test_a_callers_page_token_continues_the_walk() -> None:
    with serve_in_thread(SandboxState()) as sandbox, Connector.load() as connector:
        connection = with_access_token(sandbox)
        for name in ("Ann", "Bob", "Cy"):
            connector.run(
                "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": name}}, connection=connection
            )
        listing = {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 1, "sort_by": "id"}
        first = connector.run("crmGetRecords", listing, connection=connection)["data"]
        cursor = first["info"]["next_page_token"]
        second = connector.run("crmGetRecords", {**listing, "page_token": cursor}, connection=connection)["data"]
    assert first["data"][0]["id"] != second["data"][0]["id"]
    assert second["info"]["more_records"] is True
