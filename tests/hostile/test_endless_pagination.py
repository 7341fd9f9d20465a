"""Listings that never end: a walk must stop with a PaginationError after a bound, never run on.

CRM documents 2,000 rows by page number and 100,000 by page_token; Books documents no limit, so its walk is bounded by
the connection's page maximum. Every listing here also has a runaway cap: past it the server answers 400, so a
runtime without the bound fails fast with a ZohoAPIError instead of hanging the suite.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from connector import Connector
from connector.errors import PaginationError
from tests.hostile.conftest import raised, within
from tests.hostile.server import HostileServer, Reply, Request, Wire

CRM_LIST = "/crm/v8/Leads"
BOOKS_LIST = "/books/v3/contacts"
CRM_INPUTS = {"recordType": "Leads", "fields": ["Last_Name"], "fetchAll": True}
BOOKS_INPUTS = {"recordType": "contacts", "fetchAll": True}
RUNAWAY = 1200  # requests; far past every bound below
MAX_PAGES = "max_pages"  # the connection setting bounding a Books walk (CRM has Zoho's documented limits)


def _crm(*, token: Callable[[int], str | None], page: Callable[[int], int], fresh: bool) -> Any:
    """A CRM listing that always has more records. `token(n)`/`page(n)` say what the n-th answer (from 1) claims;
    `fresh` gives new records on every page, else the same 200 again."""
    calls = itertools.count(1)
    ids = itertools.count()

    def handler(request: Request, wire: Wire) -> Reply:
        n = next(calls)
        if n > RUNAWAY:
            return Reply({"code": "RUNAWAY", "message": f"still paging after {RUNAWAY} requests"}, status=400)
        per_page = int(request.query.get("per_page", 200))
        first = next(ids) if fresh else 0
        if fresh:
            for _ in range(per_page - 1):
                next(ids)
        records = [{"id": f"r{first + i}", "Last_Name": "Doe"} for i in range(per_page)]
        info = {"per_page": per_page, "count": per_page, "page": page(n), "more_records": True}
        return Reply({"data": records, "info": {**info, "next_page_token": token(n)}})

    return handler


def _books(*, page: Callable[[int], int], fresh: bool) -> Any:
    calls = itertools.count(1)

    def handler(request: Request, wire: Wire) -> Reply:
        n = next(calls)
        if n > RUNAWAY:
            return Reply({"code": 1, "message": f"still paging after {RUNAWAY} requests"}, status=400)
        per_page = int(request.query.get("per_page", 200))
        base = n * per_page if fresh else 0
        contacts = [{"contact_id": f"c{base + i}", "contact_name": "Zylker"} for i in range(per_page)]
        context = {"page": page(n), "per_page": per_page, "has_more_page": True}
        return Reply({"code": 0, "message": "success", "contacts": contacts, "page_context": context})

    return handler


def _fetch_all(connector: Connector, action: str, inputs: dict[str, Any], connection: dict[str, Any]) -> Any:
    return connector.run(action, inputs, connection=connection)


def _iterate(connector: Connector, action: str, inputs: dict[str, Any], connection: dict[str, Any]) -> int:
    return sum(1 for _ in connector.iter_records(action, inputs, connection=connection))


WAYS = {"run-fetch-all": _fetch_all, "iter-records": _iterate}


@pytest.mark.parametrize("way", list(WAYS))
def test_crm_a_new_page_token_forever_stops_at_100000_rows(
    way: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", CRM_LIST, _crm(token=lambda n: f"tok-{n + 1}", page=lambda n: n, fresh=True))
    outcome = within(60, lambda: WAYS[way](connector, "crmGetRecords", CRM_INPUTS, connection))
    raised(outcome, PaginationError)
    assert 500 <= server.count("GET", CRM_LIST) <= 501  # 100,000 rows at 200 a page, then the refusal


def test_crm_more_records_forever_by_page_number_stops_at_2000_rows(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", CRM_LIST, _crm(token=lambda n: None, page=lambda n: n, fresh=True))
    outcome = within(20, lambda: _fetch_all(connector, "crmGetRecords", CRM_INPUTS, connection))
    raised(outcome, PaginationError)
    assert 10 <= server.count("GET", CRM_LIST) <= 11


def test_crm_a_page_number_that_does_not_advance_is_stopped(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", CRM_LIST, _crm(token=lambda n: None, page=lambda n: 1, fresh=True))
    outcome = within(20, lambda: _fetch_all(connector, "crmGetRecords", CRM_INPUTS, connection))
    raised(outcome, PaginationError)
    assert server.count("GET", CRM_LIST) <= 11


def test_crm_a_repeated_page_token_is_stopped(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", CRM_LIST, _crm(token=lambda n: "tok-again", page=lambda n: n, fresh=True))
    outcome = within(20, lambda: _fetch_all(connector, "crmGetRecords", CRM_INPUTS, connection))
    raised(outcome, PaginationError)
    assert server.count("GET", CRM_LIST) <= 3


@pytest.mark.parametrize("by", ["page_token", "page"])
def test_crm_pages_repeating_the_same_records_are_stopped_at_the_first_repeat(
    by: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    token: Callable[[int], str | None] = (lambda n: f"tok-{n + 1}") if by == "page_token" else (lambda n: None)
    server.on("GET", CRM_LIST, _crm(token=token, page=lambda n: n, fresh=False))
    outcome = within(20, lambda: _fetch_all(connector, "crmGetRecords", CRM_INPUTS, connection))
    raised(outcome, PaginationError)
    assert server.count("GET", CRM_LIST) <= 3


@pytest.mark.parametrize("way", list(WAYS))
def test_books_has_more_page_forever_stops_at_the_configured_maximum(
    way: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", BOOKS_LIST, _books(page=lambda n: n, fresh=True))
    bounded = {**connection, MAX_PAGES: 5}
    outcome = within(20, lambda: WAYS[way](connector, "booksGetRecords", BOOKS_INPUTS, bounded))
    raised(outcome, PaginationError)
    assert 5 <= server.count("GET", BOOKS_LIST) <= 6


def test_books_a_page_number_that_does_not_advance_is_stopped(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", BOOKS_LIST, _books(page=lambda n: 1, fresh=True))
    outcome = within(20, lambda: _fetch_all(connector, "booksGetRecords", BOOKS_INPUTS, {**connection, MAX_PAGES: 50}))
    raised(outcome, PaginationError)
    assert server.count("GET", BOOKS_LIST) <= 51


def test_books_pages_repeating_the_same_records_are_stopped_at_the_first_repeat(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", BOOKS_LIST, _books(page=lambda n: n, fresh=False))
    outcome = within(20, lambda: _fetch_all(connector, "booksGetRecords", BOOKS_INPUTS, {**connection, MAX_PAGES: 50}))
    raised(outcome, PaginationError)
    assert server.count("GET", BOOKS_LIST) <= 3


def _empty_crm(request: Request, wire: Wire) -> Reply:
    page = int(request.query.get("page", 1))
    info = {"per_page": 200, "count": 0, "page": page, "more_records": True, "next_page_token": f"tok-{page + 1}"}
    return Reply({"data": [], "info": info})


def _empty_books(request: Request, wire: Wire) -> Reply:
    context = {"page": int(request.query.get("page", 1)), "per_page": 200, "has_more_page": True}
    return Reply({"code": 0, "message": "success", "contacts": [], "page_context": context})


@pytest.mark.parametrize("style", ["crm", "books"])
def test_a_page_without_records_that_claims_more_is_stopped_at_once(
    style: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    """Issue 8.3's 'a page that returns no new record': an empty page that still says more follow."""
    if style == "crm":
        server.on("GET", CRM_LIST, _empty_crm)
        call = lambda: _fetch_all(connector, "crmGetRecords", CRM_INPUTS, connection)  # noqa: E731
    else:
        server.on("GET", BOOKS_LIST, _empty_books)
        call = lambda: _fetch_all(connector, "booksGetRecords", BOOKS_INPUTS, connection)  # noqa: E731
    error = raised(within(20, call), PaginationError)
    assert error.code == "EMPTY_PAGE"
    assert server.count() == 1
