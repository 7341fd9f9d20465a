"""TokenSource and the OAuth answers: stored hosts are not trusted blindly, the connection's overrides win, throttle
and odd lifetimes are typed, async refresh never uses sync HTTP, organization ids live with the token, and the
login listener survives a forged request."""

from __future__ import annotations

import json
import math
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector.auth import oauth
from connector.auth.account import wait_for_redirect
from connector.auth.session import TokenSource
from connector.auth.stores.memory import MemoryStore
from connector.auth.tokens import Token
from connector.connection import check_base_url, resolve_connection, zoho_hosts
from connector.errors import AuthenticationError, ConnectionConfigError
from connector.manifest import bundled_manifest

ZOHO = bundled_manifest().connections["zohoOAuth"]
NOW = 1_000_000.0
CLIENT = {"client_id": "1000.CID", "client_secret": "client-secret-xyz"}


def clock() -> float:
    return NOW


def source(store_url: str = "memory:", **connection: Any) -> TokenSource:
    raw = {"region": "eu", **CLIENT, "user_name": "alice", "token_store": store_url, **connection}
    return TokenSource(resolve_connection(ZOHO, raw), token_path="/oauth/v2/token", clock=clock)


def stale(**changes: Any) -> Token:
    return Token(
        user_name="alice",
        refresh_token="1000.refresh",
        access_token="old",
        expires_at=NOW - 1,
        accounts_url="https://accounts.zoho.eu",
        api_domain="https://www.zohoapis.eu",
        client_id=CLIENT["client_id"],
        client_secret=CLIENT["client_secret"],
    ).replace(**changes)


def answer(**extra: Any) -> dict[str, Any]:
    return {"access_token": "1000.new", "api_domain": "https://www.zohoapis.eu", "expires_in": 3600, **extra}


def seeded(tokens: TokenSource, token: Token) -> TokenSource:
    store = MemoryStore()
    store.save_token(token)
    tokens._store = store
    return tokens


# -- 3. stored hosts are not trusted blindly ------------------------------------------------------------------


def test_zoho_hosts_cover_every_region_and_crm_environment() -> None:
    hosts = zoho_hosts(ZOHO)
    assert {"accounts.zoho.eu", "www.zohoapis.eu", "sandbox.zohoapis.com", "developer.zohoapis.jp"} <= hosts
    assert {"accounts.zohocloud.ca", "www.zohoapis.ca", "content.zohoapis.eu"} <= hosts
    assert "evil.example.com" not in hosts


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://evil.example.com", "not one of Zoho's hosts"),
        ("http://www.zohoapis.eu", "plain http only for a loopback"),
        ("https://www.zohoapis.eu?x=1", "query or fragment"),
        ("ftp://www.zohoapis.eu", "full base URL"),
        ("https://[::1", "full base URL"),
    ],
)
def test_the_base_url_rule_names_the_field(url: str, problem: str) -> None:
    with pytest.raises(ConnectionConfigError, match=problem) as err:
        check_base_url("api_domain", url, trusted_hosts=zoho_hosts(ZOHO))
    assert err.value.message.startswith("api_domain")


def test_a_stored_accounts_url_that_is_not_zohos_never_gets_the_refresh(httpx_mock: HTTPXMock) -> None:
    # A writer of the (unencrypted) store points accounts_url at its own listener.
    httpx_mock.add_response(url="https://accounts.zoho.eu/oauth/v2/token", json=answer())
    tokens = seeded(source(), stale(accounts_url="https://evil.example.com"))
    assert tokens.get() == "1000.new"
    assert [r.url.host for r in httpx_mock.get_requests()] == ["accounts.zoho.eu"]


@pytest.mark.parametrize(
    "api_domain", ["https://evil.example.com", "http://www.zohoapis.eu", "https://x.zohoapis.eu.evil.io"]
)
def test_an_api_domain_that_is_not_zohos_is_not_used(api_domain: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=answer(api_domain=api_domain))
    tokens = seeded(source(), stale(api_domain=api_domain))
    assert tokens.api_domain is None  # nothing loaded yet
    tokens.get()
    assert tokens.api_domain is None  # the answer's api_domain was dropped: the runner uses the region's
    assert (tokens.store.find_token(tokens.probe()) or Token()).api_domain is None


def test_zohos_own_and_the_connections_hosts_are_trusted(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=answer(api_domain="https://sandbox.zohoapis.eu"))
    tokens = seeded(source(), stale())
    tokens.get()
    assert tokens.api_domain == "https://sandbox.zohoapis.eu"
    local = "http://127.0.0.1:8400"
    httpx_mock.add_response(url=f"{local}/oauth/v2/token", json=answer(api_domain=local))
    sandboxed = seeded(source(accounts_url=local, api_domain=local), stale(accounts_url=local))
    sandboxed.get()
    assert sandboxed.api_domain == local


# -- 4. the connection's accounts URL wins --------------------------------------------------------------------


def test_an_override_wins_over_the_accounts_url_saved_with_the_token(httpx_mock: HTTPXMock) -> None:
    local = "http://127.0.0.1:8400"
    httpx_mock.add_response(url=f"{local}/oauth/v2/token", json=answer(api_domain=local))
    tokens = seeded(source(accounts_url=local, api_domain=local), stale(accounts_url="https://accounts.zoho.eu"))
    tokens.get()
    assert [str(r.url) for r in httpx_mock.get_requests()] == [f"{local}/oauth/v2/token"]
    assert (tokens.store.find_token(tokens.probe()) or Token()).accounts_url == local


def test_a_changed_region_wins_over_the_saved_accounts_url(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://accounts.zoho.in/oauth/v2/token", json=answer(api_domain="https://www.zohoapis.in")
    )
    tokens = seeded(source(region="in"), stale(accounts_url="https://accounts.zoho.eu"))
    assert tokens.get() == "1000.new"
    assert tokens.api_domain == "https://www.zohoapis.in"


def test_a_stale_data_centre_api_domain_is_not_used_after_a_region_change() -> None:
    tokens = source(region="in")
    tokens._token = stale(expires_at=NOW + 3600)  # fresh, but from the EU data centre
    assert tokens.api_domain is None


def test_a_multi_dc_login_from_the_entry_point_refreshes_at_its_data_centre(httpx_mock: HTTPXMock) -> None:
    # Login started at accounts.zoho.com (region us), Zoho sent the user to the EU data centre.
    httpx_mock.add_response(url="https://accounts.zoho.eu/oauth/v2/token", json=answer())
    tokens = seeded(source(region="us"), stale(accounts_url="https://accounts.zoho.eu"))
    tokens.get()
    assert tokens.api_domain == "https://www.zohoapis.eu"


def test_the_multi_dc_entry_point_comes_from_the_region_table(httpx_mock: HTTPXMock) -> None:
    # A table that makes the EU accounts server the entry point: an EU login issued in India refreshes in India,
    # and the US server (no longer an entry point) keeps its own tokens.
    eu, india, us = "https://accounts.zoho.eu", "https://accounts.zoho.in", "https://accounts.zoho.com"
    httpx_mock.add_response(url=f"{india}/oauth/v2/token", json=answer())
    httpx_mock.add_response(url=f"{us}/oauth/v2/token", json=answer())

    def table_source(region: str) -> TokenSource:
        raw = {"region": region, **CLIENT, "user_name": "alice", "token_store": "memory:"}
        connection = resolve_connection(ZOHO, raw)
        hosts = {"accounts.zoho.eu", "accounts.zoho.in", "accounts.zoho.com", "www.zohoapis.in", "www.zohoapis.com"}
        return TokenSource(
            connection,
            token_path="/oauth/v2/token",
            clock=clock,
            zoho_accounts={eu, india, us},
            zoho_hosts=hosts,
            entry_accounts={eu},
        )

    seeded(table_source("eu"), stale(accounts_url=india)).get()
    seeded(table_source("us"), stale(accounts_url=india)).get()
    assert [str(r.url.host) for r in httpx_mock.get_requests()] == ["accounts.zoho.in", "accounts.zoho.com"]


def test_the_bundled_region_table_marks_one_entry_point() -> None:
    from connector.connection import entry_accounts

    assert entry_accounts(ZOHO) == {"https://accounts.zoho.com"}


def test_a_failed_refresh_names_the_host_and_a_config_problem_is_not_retryable(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=404, text="<html>not found</html>")
    tokens = seeded(source(), stale())
    with pytest.raises(AuthenticationError) as err:
        tokens.get()
    assert "accounts.zoho.eu" in err.value.message and not err.value.retryable
    httpx_mock.add_response(status_code=400, json={"error": "invalid_client"})
    with pytest.raises(AuthenticationError) as err:
        tokens.get()
    assert "accounts.zoho.eu" in err.value.message and not err.value.retryable
    httpx_mock.add_response(status_code=503, text="busy")
    with pytest.raises(AuthenticationError) as err:
        tokens.get()
    assert "accounts.zoho.eu" in err.value.message and err.value.retryable


def test_an_unreachable_accounts_server_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AuthenticationError, match=r"accounts\.zoho\.eu") as err:
        oauth.send(
            oauth.refresh_request(
                "https://accounts.zoho.eu", "/t", client_id="c", client_secret="s", refresh_token="r"
            ),
            httpx.MockTransport(refuse),
        )
    assert err.value.reason == "accounts_unreachable"


# -- 5 and 8. throttle, odd lifetimes ---------------------------------------------------------------------------


def _response(status: int, body: Any) -> httpx.Response:
    content = json.dumps(body).encode()  # NaN as Python's json writes and reads it
    return httpx.Response(
        status, content=content, request=httpx.Request("POST", "https://accounts.zoho.eu/oauth/v2/token")
    )


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize("error", ["access_denied", "Access Denied", "ACCESS_DENIED"])
def test_access_denied_is_the_token_throttle(status: int, error: str) -> None:
    for grant in ("refresh_token", "authorization_code"):
        with pytest.raises(AuthenticationError) as err:
            oauth.parse_token_response(_response(status, {"error": error}), grant=grant, now=NOW, base=Token())
        assert err.value.reason == "token_throttled"
        assert err.value.retryable and err.value.retry_after == oauth.THROTTLE_RETRY_AFTER


@pytest.mark.parametrize(
    ("expires", "lifetime"),
    [
        ({"expires_in": "abc"}, 3600.0),
        ({"expires_in": -5}, 3600.0),
        ({"expires_in": math.nan}, 3600.0),
        ({"expires_in": "nan"}, 3600.0),
        ({"expires_in": "inf"}, 3600.0),
        ({"expires_in": 1e308}, 86_400.0),
        ({"expires_in": None}, 3600.0),
        ({"expires_in": True}, 3600.0),
        ({"expires_in": [1]}, 3600.0),
        ({"expires_in": 3600}, 3600.0),
        ({"expires_in": "1800"}, 1800.0),
        ({"expires_in": 3_600_000}, 3600.0),  # legacy milliseconds
        ({"expires_in_sec": 3600, "expires_in": 3_600_000}, 3600.0),
        ({"expires_in_sec": "x"}, 3600.0),
    ],
)
def test_odd_lifetimes_get_a_sane_expiry(expires: dict[str, Any], lifetime: float) -> None:
    body = {"access_token": "a", **expires}
    token = oauth.parse_token_response(_response(200, body), grant="refresh_token", now=NOW, base=Token())
    assert token.expires_at == NOW + lifetime


# -- 11. async refresh ------------------------------------------------------------------------------------------


class NoSyncTransport(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("a sync HTTP call from async code blocks the event loop")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_async_refresh_uses_only_the_async_transport(anyio_backend: str) -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer())

    raw = {"region": "eu", **CLIENT, "user_name": "alice", "token_store": "memory:"}
    tokens = TokenSource(
        resolve_connection(ZOHO, raw),
        token_path="/oauth/v2/token",
        clock=clock,
        transport=NoSyncTransport(),
        async_transport=httpx.MockTransport(handler),
    )
    seeded(tokens, stale())
    assert await tokens.aget() == "1000.new"
    assert [r.url.host for r in seen] == ["accounts.zoho.eu"]
    assert await tokens.aget() == "1000.new"  # cached: no second call
    assert len(seen) == 1
    assert await tokens.aget(failed="1000.new") == "1000.new" and len(seen) == 2  # a 401 refreshes, async too


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_concurrent_first_async_calls_refresh_once(anyio_backend: str, tmp_path: Path) -> None:
    """Many tasks' first call on a connection that brings its refresh token: one seeds the store, one refreshes,
    and no late seed overwrites the fresh token (which would refresh a second time)."""
    import asyncio

    for round_ in range(10):
        refreshes: list[httpx.Request] = []

        async def handler(request: httpx.Request, refreshes: list[httpx.Request] = refreshes) -> httpx.Response:
            refreshes.append(request)
            await asyncio.sleep(0.01)  # a real round trip: the other tasks get to run meanwhile
            return httpx.Response(200, json=answer())

        raw = {
            **CLIENT,
            "region": "eu",
            "refresh_token": "1000.refresh",
            "token_store": f"sqlite:///{tmp_path}/{round_}.db",
        }
        tokens = TokenSource(
            resolve_connection(ZOHO, raw),
            token_path="/oauth/v2/token",
            clock=clock,
            transport=NoSyncTransport(),
            async_transport=httpx.MockTransport(handler),
        )
        got = await asyncio.gather(*(tokens.aget() for _ in range(8)))
        assert got == ["1000.new"] * 8
        assert len(refreshes) == 1, f"round {round_}: {len(refreshes)} refreshes"


# -- 10. organization ids ---------------------------------------------------------------------------------------


def test_organization_ids_are_saved_with_the_token_and_survive_a_refresh(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/t.db"
    first = seeded(source(url), stale())
    first._store = None  # the real SQLite store at `url`
    first.store.save_token(stale())
    assert first.organization_id("books") is None
    first.remember_organization_id("books", "123")
    first.remember_organization_id("inventory", "456")
    # Another process (a new TokenSource on the same store) refreshes, then reads them without asking Zoho.
    httpx_mock.add_response(json=answer())
    second = source(url)
    assert second.get() == "1000.new"
    assert second.organization_id("books") == "123" and second.organization_id("inventory") == "456"
    assert source(url).organization_id("crm") is None
    stored = second.store.find_token(second.probe()) or Token()
    assert stored.access_token == "1000.new" and stored.organization_ids == {"books": "123", "inventory": "456"}


def test_remembering_an_organization_keeps_a_concurrent_refresh(tmp_path: Path) -> None:
    from connector.auth.refresh import flight_key, token_lock

    tokens = source(f"sqlite://{tmp_path}/t.db")
    store = tokens.store
    saved = store.save_token(stale())
    held = threading.Event()
    done = threading.Event()

    def refresher() -> None:  # another worker holds the token's lock while refreshing
        with token_lock(store, flight_key(saved), 10):
            held.set()
            done.wait(0.2)
            store.save_token(saved.replace(access_token="refreshed", expires_at=NOW + 3600))

    worker = threading.Thread(target=refresher)
    worker.start()
    assert held.wait(10)
    tokens.remember_organization_id("books", "123")  # waits for the refresh, then saves over the new token
    worker.join()
    final = store.find_token_by_id(saved.id or "") or Token()
    assert final.access_token == "refreshed" and final.organization_ids == {"books": "123"}


def test_a_connection_with_only_an_access_token_keeps_organization_ids_in_memory() -> None:
    tokens = TokenSource(
        resolve_connection(ZOHO, {"region": "eu", "access_token": "1000.static"}), token_path="/t", clock=clock
    )
    tokens.remember_organization_id("books", "9")
    assert tokens.organization_id("books") == "9"
    assert tokens._store is None  # nothing was opened


# -- 9. the login listener ----------------------------------------------------------------------------------------


def test_a_forged_redirect_does_not_abort_the_login() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    answers: list[tuple[int, str]] = []

    def browser() -> None:
        for query in ("code=evil&state=forged", "code=evil", "code=grant-code&state=right&location=eu"):
            for _ in range(500):
                try:
                    r = httpx.get(f"{redirect_uri}?{query}", timeout=5)
                    answers.append((r.status_code, r.text))
                    break
                except httpx.ConnectError:
                    threading.Event().wait(0.01)

    thread = threading.Thread(target=browser)
    thread.start()
    redirect = wait_for_redirect(redirect_uri, "right", timeout=20)
    thread.join()
    assert redirect.code == "grant-code" and redirect.location == "eu"
    assert [status for status, _ in answers] == [400, 400, 200]
    assert "ignored" in answers[0][1]


def test_the_listener_times_out_when_only_forged_requests_come() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/callback"

    def browser() -> None:
        for _ in range(500):
            try:
                httpx.get(f"{redirect_uri}?code=evil&state=forged", timeout=5)
                return
            except httpx.ConnectError:
                threading.Event().wait(0.01)

    thread = threading.Thread(target=browser)
    thread.start()
    with pytest.raises(AuthenticationError) as err:
        wait_for_redirect(redirect_uri, "right", timeout=1.0)
    thread.join()
    assert err.value.reason == "login_timeout"


def _stalled_client(port: int, opened: threading.Event, stop: threading.Event) -> None:
    """Connects to the listener, sends half a request line and then nothing, until told to stop."""
    for _ in range(500):
        try:
            idle = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            threading.Event().wait(0.01)
    else:
        return
    with idle:
        idle.sendall(b"GET /callback?code=evil")
        opened.set()
        stop.wait(30)


def test_a_stalled_connection_does_not_hold_up_the_real_redirect() -> None:
    """Before, the listener served one connection at a time: a client that connected and sent nothing held the real
    redirect back, and even the timeout's shutdown waited on it, so the login hung for good."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    opened, stop = threading.Event(), threading.Event()
    answers: list[int] = []

    def browser() -> None:
        opened.wait(10)
        answers.append(httpx.get(f"{redirect_uri}?code=grant-code&state=right", timeout=5).status_code)

    threads = [threading.Thread(target=_stalled_client, args=(port, opened, stop)), threading.Thread(target=browser)]
    for thread in threads:
        thread.start()
    try:
        redirect = wait_for_redirect(redirect_uri, "right", timeout=10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert redirect.code == "grant-code" and answers == [200]


def test_a_stalled_connection_does_not_stop_the_listener_timing_out() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opened, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_stalled_client, args=(port, opened, stop))
    thread.start()
    outcome: list[BaseException] = []

    def login() -> None:
        try:
            wait_for_redirect(f"http://127.0.0.1:{port}/callback", "right", timeout=1.0)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    waiting = threading.Thread(target=login, daemon=True)
    waiting.start()
    waiting.join(8)
    stop.set()
    thread.join(10)
    assert not waiting.is_alive(), "the listener never gave up: its shutdown waited on the stalled connection"
    assert isinstance(outcome[0], AuthenticationError) and outcome[0].reason == "login_timeout"
