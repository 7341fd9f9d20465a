"""The Partner Store actions at the transport: hosts per region and store_url, bare arrays, header pagination with
and without headers, and bad inputs named."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector.errors import ConnectionConfigError, InputValidationError, PaginationError
from tests.conftest import ACCESS_TOKEN

KINDS = {
    "storeListSubscriptions": "subscriptions",
    "storeListTransactions": "transactions",
    "storeListCommissions": "commissions",
    "storeListLeads": "leads",
}
EU_STORE = "https://store.zoho.eu/api/v1/partner"


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": str(n)} for n in range(start, start + count)]


@pytest.fixture
def store_connection() -> dict[str, Any]:
    return {"region": "eu", "access_token": ACCESS_TOKEN}


@pytest.mark.parametrize(("action", "kind"), KINDS.items())
def test_each_action_lists_its_kind_on_the_regions_store(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any], action: str, kind: str
) -> None:
    httpx_mock.add_response(url=f"{EU_STORE}/{kind}?page=1&per_page=200", json=rows(1, 2))
    result = connector.run(action, {}, connection=store_connection)
    assert result == {"data": rows(1, 2)}
    request = httpx_mock.get_requests()[0]
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Zoho-oauthtoken {ACCESS_TOKEN}"


@pytest.mark.parametrize(
    ("region", "root"),
    [
        ("us", "https://store.zoho.com/api/v1/partner"),
        ("eu", EU_STORE),
        ("in", "https://store.zoho.in/api/v1/partner"),
        ("au", "https://store.zoho.com.au/api/v1/partner"),
    ],
)
def test_the_store_host_follows_the_region_not_the_api_domain(
    connector: Connector, httpx_mock: HTTPXMock, region: str, root: str
) -> None:
    httpx_mock.add_response(url=f"{root}/leads?page=1&per_page=200", json=[])
    # api_domain moves CRM and Books calls; it must not move the Store's.
    connection = {"region": region, "access_token": ACCESS_TOKEN, "api_domain": "https://proxy.example.com"}
    assert connector.run("storeListLeads", {}, connection=connection) == {"data": []}


def test_store_url_overrides_the_store_root_with_its_path(connector: Connector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://127.0.0.1:9/stand-in/partner/leads?page=2&per_page=5", json=[])
    connection = {"region": "cn", "access_token": ACCESS_TOKEN, "store_url": "http://127.0.0.1:9/stand-in/partner/"}
    assert connector.run("storeListLeads", {"page": 2, "per_page": 5}, connection=connection) == {"data": []}


def test_a_region_without_a_known_store_asks_for_store_url(connector: Connector, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ConnectionConfigError, match="region jp; set the connection's store_url"):
        connector.run("storeListLeads", {}, connection={"region": "jp", "access_token": ACCESS_TOKEN})
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("store_url", "why"),
    [
        ("http://store.example.com/api/v1/partner", "may use plain http only for a loopback host"),
        ("https://store.zoho.eu/api/v1/partner?x=1", "must not carry a query"),
        ("store.zoho.eu/api/v1/partner", "must be a full base URL"),
    ],
)
def test_a_bad_store_url_is_refused_by_name(
    connector: Connector, httpx_mock: HTTPXMock, store_url: str, why: str
) -> None:
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "store_url": store_url}
    with pytest.raises(InputValidationError, match=f"store_url {why}") as caught:
        connector.run("storeListLeads", {}, connection=connection)
    assert [v.input for v in caught.value.violations] == ["store_url"]
    assert httpx_mock.get_requests() == []


# --- pagination ---------------------------------------------------------------------------------------------------


def test_fetch_all_follows_the_more_header_and_stops_when_it_says_no(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any]
) -> None:
    url = f"{EU_STORE}/transactions"
    httpx_mock.add_response(url=f"{url}?page=1&per_page=2", json=rows(1, 2), headers={"X-Has-More-Page": "true"})
    httpx_mock.add_response(url=f"{url}?page=2&per_page=2", json=rows(3, 2), headers={"X-Has-More-Page": "false"})
    result = connector.run("storeListTransactions", {"per_page": 2, "fetchAll": True}, connection=store_connection)
    assert result == {"data": rows(1, 4)}
    assert len(httpx_mock.get_requests()) == 2  # a full last page, yet no third request: the header said so


@pytest.mark.parametrize(
    "headers",
    [{"X-Total-Count": "4"}, {"X-Total-Pages": "2"}, {"X-Next-Page": ""}],
    ids=["total-count", "total-pages", "next-page"],
)
def test_other_header_spellings_end_the_walk_too(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any], headers: dict[str, str]
) -> None:
    url = f"{EU_STORE}/leads"
    first = {k: ("2" if k == "X-Next-Page" else v) for k, v in headers.items()}
    httpx_mock.add_response(url=f"{url}?page=1&per_page=2", json=rows(1, 2), headers=first)
    httpx_mock.add_response(url=f"{url}?page=2&per_page=2", json=rows(3, 2), headers=headers)
    result = connector.run("storeListLeads", {"per_page": 2, "fetchAll": True}, connection=store_connection)
    assert len(result["data"]) == 4 and len(httpx_mock.get_requests()) == 2


def test_without_any_header_a_short_page_ends_the_walk(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any]
) -> None:
    url = f"{EU_STORE}/commissions"
    httpx_mock.add_response(url=f"{url}?page=1&per_page=3", json=rows(1, 3))
    httpx_mock.add_response(url=f"{url}?page=2&per_page=3", json=rows(4, 3))
    httpx_mock.add_response(url=f"{url}?page=3&per_page=3", json=rows(7, 1))
    result = connector.run("storeListCommissions", {"per_page": 3, "fetchAll": True}, connection=store_connection)
    assert result == {"data": rows(1, 7)}
    assert len(httpx_mock.get_requests()) == 3


def test_without_any_header_a_full_last_page_ends_on_the_empty_page(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any]
) -> None:
    url = f"{EU_STORE}/commissions"
    httpx_mock.add_response(url=f"{url}?page=1&per_page=3", json=rows(1, 3))
    httpx_mock.add_response(url=f"{url}?page=2&per_page=3", json=[])
    result = connector.run("storeListCommissions", {"per_page": 3, "fetchAll": True}, connection=store_connection)
    assert result == {"data": rows(1, 3)}


def test_a_store_that_ignores_per_page_still_ends_on_its_own_short_page(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any]
) -> None:
    """per_page is undocumented: if the Store serves its own 200 a page, 200 records are not a short page of 50."""
    url = f"{EU_STORE}/subscriptions"
    httpx_mock.add_response(url=f"{url}?page=1&per_page=50", json=rows(1, 200))
    httpx_mock.add_response(url=f"{url}?page=2&per_page=50", json=rows(201, 200))
    httpx_mock.add_response(url=f"{url}?page=3&per_page=50", json=rows(401, 60))
    result = connector.run("storeListSubscriptions", {"per_page": 50, "fetchAll": True}, connection=store_connection)
    assert len(result["data"]) == 460 and len(httpx_mock.get_requests()) == 3


def test_a_more_header_on_an_empty_page_does_not_loop(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any]
) -> None:
    url = f"{EU_STORE}/leads"
    httpx_mock.add_response(url=f"{url}?page=1&per_page=2", json=rows(1, 2), headers={"X-Has-More-Page": "true"})
    httpx_mock.add_response(url=f"{url}?page=2&per_page=2", json=rows(1, 2), headers={"X-Has-More-Page": "true"})
    with pytest.raises(PaginationError, match="repeats an earlier page"):
        connector.run("storeListLeads", {"per_page": 2, "fetchAll": True}, connection=store_connection)


@pytest.mark.parametrize("with_header", [True, False], ids=["more-header", "no-header"])
def test_fetch_all_of_5000_takes_one_request_per_page(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any], with_header: bool
) -> None:
    total, per_page = 5_000, 200
    requests: list[int] = []

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        requests.append(page)
        start = (page - 1) * per_page
        body = rows(start, max(0, min(per_page, total - start)))
        headers = {"X-Has-More-Page": str(start + per_page < total).lower()} if with_header else {}
        return httpx.Response(200, json=body, headers=headers)

    httpx_mock.add_callback(serve, is_reusable=True)
    count = sum(1 for _ in connector.iter_records("storeListTransactions", {}, connection=store_connection))
    assert count == total
    pages = math.ceil(total / per_page)
    # Without a header, 5,000 is a whole number of pages: only the empty page after the last can tell it ended.
    assert requests == list(range(1, pages + 1 + (0 if with_header else 1)))


# --- filters --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", KINDS)
def test_filters_go_as_written_with_every_page_and_never_move_the_walk(
    connector: Connector, httpx_mock: HTTPXMock, store_connection: dict[str, Any], action: str
) -> None:
    """The Store documents no filters: `filters` sends the caller's own parameters, as written, on each page; a
    filter named page or per_page loses to the page inputs (the walk's own)."""
    url = f"{EU_STORE}/{KINDS[action]}"
    httpx_mock.add_response(url=f"{url}?status=active&page=1&per_page=2&from=2025-01-01", json=rows(1, 2))
    httpx_mock.add_response(url=f"{url}?status=active&page=2&per_page=2&from=2025-01-01", json=rows(3, 1))
    filters = [
        {"key": "status", "value": "active"},
        {"key": "page", "value": 9},
        {"key": "per_page", "value": 7},
        {"key": "from", "value": "2025-01-01"},
    ]
    result = connector.run(action, {"per_page": 2, "fetchAll": True, "filters": filters}, connection=store_connection)
    assert result == {"data": rows(1, 3)}
    sent = [sorted(r.url.params.multi_items()) for r in httpx_mock.get_requests()]
    assert sent == [
        sorted([("status", "active"), ("page", str(n)), ("per_page", "2"), ("from", "2025-01-01")]) for n in (1, 2)
    ]


# --- bad inputs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"per_page": 500}, "per_page"),
        ({"per_page": 0}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
        ({"fetchAll": "maybe"}, "fetchAll"),
        ({"status": "active"}, "status"),  # a filter goes in `filters`, not as an input of its own
        ({"filters": "status=active"}, "filters"),
    ],
)
@pytest.mark.parametrize("action", KINDS)
def test_bad_inputs_name_the_input_and_send_nothing(
    connector: Connector,
    httpx_mock: HTTPXMock,
    store_connection: dict[str, Any],
    action: str,
    inputs: dict[str, Any],
    named: str,
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run(action, inputs, connection=store_connection)
    assert [v.input for v in caught.value.violations] == [named]
    assert httpx_mock.get_requests() == []
