"""Fetch All whose 2nd or 3rd page is broken: it raises (never returns fewer records quietly), says how far it got
and how to resume, and resuming there delivers every record exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector import Connector
from connector.errors import BadResponseError, ConnectorError, TransientError
from tests.hostile.conftest import raised, within
from tests.hostile.listings import BROKEN, BooksListing, CrmListing, ids
from tests.hostile.server import HostileServer

CRM_LIST = "/crm/v8/Leads"
BOOKS_LIST = "/books/v3/contacts"
CRM_INPUTS = {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 2, "fetchAll": True, "maxRetries": 0}
BOOKS_INPUTS = {"recordType": "contacts", "per_page": 2, "fetchAll": True, "maxRetries": 0}
TOTAL = 10  # five pages of two


def _all_ids(style: str) -> list[str]:
    return [f"{'c' if style == 'books' else 'r'}{n}" for n in range(TOTAL)]


def _expected_type(kind: str) -> type[ConnectorError]:
    return TransientError if kind == "http-500" else BadResponseError


def _resume(style: str, page: int) -> dict[str, Any]:
    return {"page_token": f"tok-{page}"} if style == "crm-token" else {"page": page}


def _serve(server: HostileServer, style: str, broken_page: int, kind: str) -> tuple[str, dict[str, Any], str]:
    """Route the listing of `style` with one broken page; the action, its inputs and the records' id key."""
    broken = {broken_page: BROKEN[kind]}
    if style == "books":
        server.on("GET", BOOKS_LIST, BooksListing(TOTAL, broken=broken))
        return "booksGetRecords", BOOKS_INPUTS, "contact_id"
    server.on("GET", CRM_LIST, CrmListing(TOTAL, tokens=style == "crm-token", broken=broken))
    return "crmGetRecords", CRM_INPUTS, "id"


@pytest.mark.parametrize("kind", list(BROKEN))
@pytest.mark.parametrize("broken_page", [2, 3])
@pytest.mark.parametrize("style", ["crm-page", "crm-token", "books"])
def test_fetch_all_with_a_broken_page_raises_with_its_progress(
    style: str, broken_page: int, kind: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    """Streamed (iter_records, the CLI's Fetch All): the records handed out, and the page that failed."""
    action, inputs, _ = _serve(server, style, broken_page, kind)
    outcome = within(10, lambda: list(connector.iter_records(action, inputs, connection=connection)))
    error = raised(outcome, _expected_type(kind))
    progress = {"delivered": 2 * (broken_page - 1), "resume": _resume(style, broken_page)}
    assert error.progress == progress
    assert error.to_dict()["error"]["progress"] == progress
    json.dumps(error.to_dict(), allow_nan=False)  # the CLI prints it


@pytest.mark.parametrize("style", ["crm-page", "crm-token", "books"])
def test_run_with_fetch_all_delivers_all_or_nothing(
    style: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    """`run` returns every record or raises: nothing was delivered, and the walk resumes from its start."""
    action, inputs, _ = _serve(server, style, 3, "truncated-json")
    outcome = within(10, lambda: connector.run(action, inputs, connection=connection))
    error = raised(outcome, BadResponseError)
    assert error.progress == {"delivered": 0, "resume": {}}


@pytest.mark.parametrize("style", ["crm-page", "crm-token", "books"])
def test_resuming_where_fetch_all_failed_delivers_every_record_exactly_once(
    style: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    action, inputs, key = _serve(server, style, 3, "truncated-json")  # broken once: the resumed walk gets it
    first: list[Any] = []

    def walk(given: dict[str, Any], into: list[Any]) -> None:
        for record in connector.iter_records(action, given, connection=connection):
            into.append(record)

    outcome = within(10, lambda: walk(inputs, first))
    error = raised(outcome, BadResponseError)
    assert error.progress is not None, "no progress: the caller cannot tell where to resume"
    assert error.progress["delivered"] == len(first) == 4
    rest: list[Any] = []
    resumed = within(10, lambda: walk({**inputs, **error.progress["resume"]}, rest))  # type: ignore[index]
    assert resumed.error is None, repr(resumed.error)
    delivered = ids(first, key) + ids(rest, key)
    assert sorted(delivered) == sorted(_all_ids(style))
    assert len(delivered) == len(set(delivered)) == TOTAL


@pytest.mark.parametrize("style", ["crm-page", "crm-token", "books"])
def test_a_healthy_fetch_all_returns_every_record(
    style: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    """The control: the same listings, unbroken, are walked to the end (so the failures above are the runtime's)."""
    action, inputs, key = _serve(server, style, 99, "html")  # page 99 does not exist: nothing is broken
    data = connector.run(action, inputs, connection=connection)["data"]
    records = data["contacts" if style == "books" else "data"]
    assert ids(records, key) == _all_ids(style)
    assert server.count() == TOTAL // 2
