"""The runner's own duties: bounded per-connection state, one pooled client, and async runs that never block."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector._state import MAX_STATES
from connector.runner import Stream
from tests.conftest import ACCESS_TOKEN, BOOKS, CRM


def test_many_connections_keep_bounded_state_and_one_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"data": [{"id": "1"}]}, is_reusable=True)
    with Connector.load() as connector:
        for n in range(MAX_STATES + 344):
            connection = {"region": "eu", "access_token": f"{ACCESS_TOKEN}{n}"}
            connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)
        assert len(connector._states) == MAX_STATES
        clients = {id(connector._clients.sync())}
    assert len(clients) == 1
    assert len(httpx_mock.get_requests()) == MAX_STATES + 344


_minted = itertools.count()


def _mint(request: httpx.Request) -> httpx.Response:
    """A token answer with an access token of its own (stores refuse two rows with one access token)."""
    return httpx.Response(200, json={"access_token": f"1000.access{next(_minted)}.x", "expires_in": 3600})


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_connections_naming_one_token_store_share_it_and_descriptors_stay_flat(
    store: str, tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """Many users' refresh-token connections on one store (the default SQLite file, one Redis, …). Before, each
    connection's state opened the store anew: SQLite's database, WAL, shared memory and lease files per
    connection, so about 50 users ran a process with `ulimit -n 256` out of descriptors."""
    httpx_mock.add_callback(_mint, method="POST", url="https://accounts.zoho.eu/oauth/v2/token", is_reusable=True)
    httpx_mock.add_response(method="GET", json={"data": [{"id": "1"}]}, is_reusable=True)
    url = f"sqlite://{tmp_path / 'tokens.db'}" if store == "sqlite" else f"file://{tmp_path / 'tokens.json'}"

    def user(n: int) -> dict[str, Any]:
        return {
            "region": "eu",
            "client_id": "1000.C",
            "client_secret": "s",
            "refresh_token": f"1000.r{n}",
            "token_store": url,
        }

    with Connector.load() as connector:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=user(0))
        before = _open_fds()
        for n in range(1, 120):
            connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=user(n))
        grown = _open_fds() - before
        opened = {id(state.tokens.store) for state in connector._states.values()}
    assert len(opened) == 1, f"{len(opened)} stores opened for one token_store URL"
    assert grown <= 4, f"{grown} more descriptors after 119 more connections"


def test_memory_token_stores_stay_one_per_connection(httpx_mock: HTTPXMock) -> None:
    """memory: is not shared between connections (each keeps its own tokens, as before)."""
    httpx_mock.add_callback(_mint, method="POST", is_reusable=True)
    httpx_mock.add_response(method="GET", json={"data": [{"id": "1"}]}, is_reusable=True)
    with Connector.load() as connector:
        for n in range(2):
            connection = {
                "client_id": "1000.C",
                "client_secret": "s",
                "refresh_token": f"1000.r{n}",
                "token_store": "memory:",
            }
            connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)
        opened = {id(state.tokens.store) for state in connector._states.values()}
    assert len(opened) == 2


class _NoBlockingIO(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"blocking I/O from async code: {request.method} {request.url}")


@pytest.mark.anyio
async def test_arun_discovers_the_organization_without_blocking_io() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/organizations"):
            return httpx.Response(200, json={"code": 0, "organizations": [{"organization_id": "42"}]})
        assert request.url.params["organization_id"] == "42"
        return httpx.Response(200, json={"code": 0, "invoice": {"invoice_id": "1"}})

    connector = Connector.load(transport=_NoBlockingIO(), async_transport=httpx.MockTransport(answer))
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    result = await connector.arun("booksGetRecord", {"recordType": "invoices", "recordId": "1"}, connection=connection)
    assert result == {"data": {"code": 0, "invoice": {"invoice_id": "1"}}}
    await connector.aclose()


@pytest.mark.anyio
async def test_arun_refreshes_discovers_and_waits_without_blocking() -> None:
    """The whole first call of a new connection through the async client and the async sleep only: the token
    refresh, the organization lookup, and the wait before retrying a 503. Any sync path fails the test."""
    sent: list[str] = []
    failures = [503]  # the first invoice call fails once

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "1000.fresh", "expires_in": 3600})
        assert request.headers["Authorization"] == "Zoho-oauthtoken 1000.fresh"
        if request.url.path.endswith("/organizations"):
            return httpx.Response(200, json={"code": 0, "organizations": [{"organization_id": "42"}]})
        if failures:
            return httpx.Response(failures.pop(), json={"code": 1000, "message": "Internal error"})
        return httpx.Response(200, json={"code": 0, "invoice": {"invoice_id": "1"}})

    def blocking_sleep(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) from async code")

    waits: list[float] = []

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)

    connector = Connector.load(
        transport=_NoBlockingIO(),
        async_transport=httpx.MockTransport(answer),
        sleep=blocking_sleep,
        async_sleep=async_sleep,
    )
    connection = {"region": "eu", "client_id": "1000.C", "client_secret": "s", "refresh_token": "1000.r"}
    result = await connector.arun("booksGetRecord", {"recordType": "invoices", "recordId": "1"}, connection=connection)
    await connector.aclose()
    assert result["data"]["invoice"] == {"invoice_id": "1"}
    assert sent == [
        "POST /oauth/v2/token",
        "GET /books/v3/organizations",
        "GET /books/v3/invoices/1",
        "GET /books/v3/invoices/1",
    ]
    assert len(waits) == 1 and waits[0] > 0


@pytest.mark.anyio
async def test_aiter_pages_walks_every_page(connector: Connector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{CRM}/Leads?fields=Email&page=1&per_page=200",
        json={"data": [{"id": "1"}], "info": {"more_records": True, "next_page_token": "t2"}},
    )
    httpx_mock.add_response(
        url=f"{CRM}/Leads?fields=Email&per_page=200&page_token=t2",
        json={"data": [{"id": "2"}], "info": {"more_records": False}},
    )
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    inputs = {"recordType": "Leads", "fields": ["Email"]}
    pages: list[Any] = [page async for page in connector.aiter_pages("crmGetRecords", inputs, connection=connection)]
    assert [p["data"][0]["id"] for p in pages] == ["1", "2"]


def test_a_connection_changed_in_place_uses_its_new_settings(httpx_mock: HTTPXMock) -> None:
    """Two connections with one identity share a token, yet each call uses its own connection's settings."""
    httpx_mock.add_response(json={"code": 0, "invoice": {}}, is_reusable=True)
    base = {"region": "eu", "access_token": ACCESS_TOKEN}
    with Connector.load() as connector:
        for org in ("1", "2"):
            connector.run(
                "booksGetRecord",
                {"recordType": "invoices", "recordId": "9"},
                connection={**base, "organization_id": org},
            )
    assert [r.url.params["organization_id"] for r in httpx_mock.get_requests()] == ["1", "2"]
    assert str(httpx_mock.get_requests()[0].url).startswith(BOOKS)


def test_a_stream_hands_out_pages_and_where_the_walk_would_go_on(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """An engine's checkpoint: the records page by page, and between pages the query that continues the walk."""
    httpx_mock.add_response(json={"data": [{"id": "1"}, {"id": "2"}], "info": _more("t2")})
    httpx_mock.add_response(json={"data": [{"id": "3"}], "info": {"more_records": False}})
    stream = connector.stream("crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 2},
                              connection=connection)  # fmt: skip
    assert isinstance(stream, Stream)
    pages = stream.pages()
    assert [r["id"] for r in next(pages)] == ["1", "2"]
    assert stream.resume() == {"page_token": "t2"}
    assert [r["id"] for r in next(pages)] == ["3"]
    assert next(pages, None) is None
    assert stream.count == 3 and stream.summary()["info"]["count"] == 3
    assert [r.url.params.get("page_token") for r in httpx_mock.get_requests()] == [None, "t2"]


def _more(token: str) -> dict[str, Any]:
    return {"more_records": True, "next_page_token": token, "count": 2}


@pytest.mark.anyio
async def test_a_spent_answer_is_freed_without_the_cycle_collector(connector: Connector, httpx_mock: HTTPXMock) -> None:
    """Once a page's records are handed out, its answer (body included) is gone by reference counting alone: a
    Fetch All holds one page, not however many the garbage collector has yet to reach."""
    import gc
    import weakref

    answers: list[weakref.ref[httpx.Response]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        response = httpx.Response(200, json={"data": [{"id": "1"}], "info": {"more_records": False}})
        answers.append(weakref.ref(response))
        return response

    httpx_mock.add_callback(answer, is_reusable=True)
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    inputs = {"recordType": "Leads", "recordId": "1"}
    gc.disable()
    try:
        connector.run("crmGetRecord", inputs, connection=connection)
        await connector.arun("crmGetRecord", inputs, connection=connection)
        assert len(answers) == 2 and [alive() for alive in answers] == [None, None]
    finally:
        gc.enable()
