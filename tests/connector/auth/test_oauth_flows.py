"""Every OAuth flow with pytest-httpx: authorize URL, code and self-client exchange, refresh, 401, revoke, errors."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector.auth.account import Account, wait_for_redirect
from connector.connection import resolve_connection
from connector.errors import AuthenticationError
from connector.manifest import bundled_manifest
from tests.conftest import FakeClock

ZOHO = bundled_manifest().connections["zohoOAuth"]
CLIENT_ID = "1000.CLIENTIDCLIENTIDCLIENTID"
CLIENT_SECRET = "client-secret-value-0123456789"
REFRESH = "1000.1111aaaa2222bbbb3333cccc4444dddd.5555eeee6666ffff7777aaaa8888bbbb"
NEW_ACCESS = "1000.9999aaaa9999aaaa9999aaaa9999aaaa.9999bbbb9999bbbb9999bbbb9999bbbb"
TOKEN_URL = "https://accounts.zoho.eu/oauth/v2/token"
SECRETS = (CLIENT_SECRET, REFRESH, NEW_ACCESS, "grant-code-xyz")


@pytest.fixture
def refreshing() -> dict[str, Any]:
    return {"region": "eu", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}


def token_answer(access: str = NEW_ACCESS, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": access,
        "api_domain": "https://www.zohoapis.eu",
        "token_type": "Bearer",
        "expires_in": 3600,
        **extra,
    }


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_authorize_url_asks_for_offline_access_with_consent_and_state() -> None:
    account = Account(resolve_connection(ZOHO, {"region": "in", "client_id": CLIENT_ID, "client_secret": "s"}), ZOHO)
    url = urlsplit(account.authorize_url(redirect_uri="http://127.0.0.1:8765/callback", state="st4te"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://accounts.zoho.in/oauth/v2/auth"
    assert query == {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "scope": "ZohoCRM.coql.READ,ZohoCRM.notifications.ALL,ZohoCRM.users.ALL,ZohoCRM.org.ALL,ZohoCRM.settings.ALL,"
        "ZohoCRM.modules.ALL,ZohoCRM.bulk.ALL,ZohoBooks.fullaccess.all,ZohoInventory.FullAccess.all,"
        "ZohoInvoice.fullaccess.all,ZohoExpense.fullaccess.all,ZohoSubscriptions.fullaccess.all",
        "access_type": "offline",
        "prompt": "consent",
        "state": "st4te",
    }


def test_code_exchange_goes_to_the_redirects_accounts_server_with_params_in_the_body(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url="https://accounts.zoho.com.au/oauth/v2/token",
        json=token_answer(refresh_token=REFRESH, api_domain="https://www.zohoapis.com.au"),
    )
    account = Account(
        resolve_connection(ZOHO, {"region": "us", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), ZOHO
    )
    token = account.exchange_code(
        "grant-code-xyz", redirect_uri="http://127.0.0.1:8765/callback", accounts_server="https://accounts.zoho.com.au"
    )
    request = httpx_mock.get_requests()[0]
    assert request.url.query == b""
    assert form(request) == {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": "grant-code-xyz",
        "redirect_uri": "http://127.0.0.1:8765/callback",
    }
    assert (token.refresh_token, token.api_domain, token.accounts_url) == (
        REFRESH,
        "https://www.zohoapis.com.au",
        "https://accounts.zoho.com.au",
    )
    assert account.stored() == token


def test_code_exchange_follows_the_redirects_location(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url="https://accounts.zohocloud.ca/oauth/v2/token",
        json=token_answer(refresh_token=REFRESH, api_domain="https://www.zohoapis.ca"),
    )
    account = Account(
        resolve_connection(ZOHO, {"region": "us", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), ZOHO
    )
    token = account.exchange_code("grant-code-xyz", redirect_uri="http://127.0.0.1:8765/callback", location="ca")
    assert token.accounts_url == "https://accounts.zohocloud.ca"


def test_self_client_exchange_sends_no_redirect_uri(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://accounts.zoho.eu/oauth/v2/token", json=token_answer(refresh_token=REFRESH))
    account = Account(
        resolve_connection(ZOHO, {"region": "eu", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), ZOHO
    )
    account.exchange_code("grant-code-xyz", redirect_uri=None)
    assert "redirect_uri" not in form(httpx_mock.get_requests()[0])


def test_a_forged_accounts_server_never_gets_the_secret(httpx_mock: HTTPXMock) -> None:
    account = Account(
        resolve_connection(ZOHO, {"region": "eu", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), ZOHO
    )
    with pytest.raises(AuthenticationError, match="not Zoho's") as caught:
        account.exchange_code("c", redirect_uri=None, accounts_server="https://accounts.zoho.eu.evil.example")
    assert caught.value.reason == "untrusted_accounts_server"
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("status", "body", "grant", "reason", "retryable"),
    [
        (400, {"error": "invalid_code"}, "refresh_token", "refresh_token_revoked", False),
        (200, {"error": "invalid_code"}, "authorization_code", "grant_code_invalid", False),
        (
            200,
            {
                "error": "Access Denied",
                "error_description": "Token creation throttle limit reached. Please reuse "
                "the valid tokens you currently have.",
            },
            "refresh_token",
            "token_throttled",
            True,
        ),
        (
            400,
            {
                "error_description": "You have made too many requests continuously. Please try again after some time.",
                "error": "Access Denied",
                "status": "failure",
            },
            "refresh_token",
            "token_throttled",
            True,
        ),
        (200, {"error": "invalid_client"}, "refresh_token", "invalid_client", False),
        (400, {"error": "invalid_redirect_uri"}, "authorization_code", "invalid_redirect_uri", False),
    ],
    ids=[
        "revoked-refresh-token",
        "expired-grant-code",
        "throttle-http-200",
        "throttle-crm-wording",
        "invalid-client",
        "invalid-redirect",
    ],
)
def test_token_errors_are_distinct_and_say_what_to_do(
    status: int, body: dict[str, Any], grant: str, reason: str, retryable: bool, httpx_mock: HTTPXMock
) -> None:
    from connector.auth.oauth import parse_token_response
    from connector.auth.tokens import Token

    response = httpx.Response(status, json=body)
    with pytest.raises(AuthenticationError) as caught:
        parse_token_response(response, grant=grant, now=0, base=Token())
    assert caught.value.reason == reason and caught.value.retryable is retryable
    assert len(caught.value.message) > 60  # a sentence that says what to do, not a bare code


def test_refresh_grant_then_calls_on_the_api_domain_zoho_names(
    refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer(api_domain="https://www.zohoapis.com"))
    httpx_mock.add_response(
        url="https://www.zohoapis.com/crm/v8/Leads/1",
        json={"data": []},
        match_headers={"Authorization": f"Zoho-oauthtoken {NEW_ACCESS}"},
        is_reusable=True,
    )
    with Connector.load(clock=clock, sleep=clock.sleep) as connector:
        for _ in range(3):
            connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    token_call = httpx_mock.get_requests()[0]
    assert form(token_call) == {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
    }
    assert token_call.url.query == b"" and len(httpx_mock.get_requests()) == 4  # one refresh, three calls


def test_tokens_are_reused_across_processes_through_the_store(
    refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer())
    httpx_mock.add_response(url="https://www.zohoapis.eu/crm/v8/Leads/1", json={"data": []}, is_reusable=True)
    for _ in range(2):  # two Connectors stand for two short-lived CLI processes sharing the default store
        with Connector.load(clock=clock, sleep=clock.sleep) as connector:
            connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    assert [r.method for r in httpx_mock.get_requests()] == ["POST", "GET", "GET"]


def test_refresh_happens_before_expiry(refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.first"))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.second"))
    httpx_mock.add_response(url="https://www.zohoapis.eu/crm/v8/Leads/1", json={"data": []}, is_reusable=True)
    with Connector.load(clock=clock, sleep=clock.sleep) as connector:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
        clock.now += 3600 - 299  # within five minutes of expiry
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    calls = [r.headers.get("authorization") for r in httpx_mock.get_requests() if r.method == "GET"]
    assert calls == ["Zoho-oauthtoken 1000.first", "Zoho-oauthtoken 1000.second"]


@pytest.mark.parametrize("code", ["INVALID_TOKEN", "AUTHENTICATION_FAILURE"])
def test_401_refreshes_once_and_replays_once(
    code: str, refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.first"))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.second"))
    httpx_mock.add_response(status_code=401, json={"code": code, "message": "invalid oauth token", "status": "error"})
    httpx_mock.add_response(json={"data": [{"id": "1"}]})
    with Connector.load(clock=clock, sleep=clock.sleep) as connector:
        result = connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    assert result == {"data": {"data": [{"id": "1"}]}}
    gets = [r.headers["authorization"] for r in httpx_mock.get_requests() if r.method == "GET"]
    assert gets == ["Zoho-oauthtoken 1000.first", "Zoho-oauthtoken 1000.second"]


def test_a_second_401_is_an_error_not_a_loop(
    refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.first"))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer("1000.second"))
    httpx_mock.add_response(method="GET", status_code=401, json={"code": "INVALID_TOKEN"}, is_reusable=True)
    with Connector.load(clock=clock, sleep=clock.sleep) as connector, pytest.raises(AuthenticationError) as caught:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    assert caught.value.reason == "token_rejected"
    assert [r.method for r in httpx_mock.get_requests()] == ["POST", "GET", "POST", "GET"]


def test_revoked_refresh_token_surfaces_as_reconnect(
    refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, status_code=400, json={"error": "invalid_code"})
    with Connector.load(clock=clock, sleep=clock.sleep) as connector, pytest.raises(AuthenticationError) as caught:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=refreshing)
    assert caught.value.reason == "refresh_token_revoked" and "auth login" in caught.value.message


def test_revoke_posts_the_refresh_token_in_the_body_and_forgets_it(
    refreshing: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer())
    httpx_mock.add_response(
        method="POST", url="https://accounts.zoho.eu/oauth/v2/token/revoke", json={"status": "success"}
    )
    account = Account(resolve_connection(ZOHO, refreshing), ZOHO)
    account.refresh()
    assert account.stored() is not None
    account.revoke()
    revoke = httpx_mock.get_requests()[-1]
    assert form(revoke) == {"token": REFRESH} and revoke.url.query == b""
    assert account.stored() is None


def test_no_secret_in_logs_or_error_text(
    refreshing: dict[str, Any], clock: FakeClock, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_answer())
    httpx_mock.add_response(status_code=400, json={"code": "INVALID_DATA", "message": "bad", "details": {}})
    with Connector.load(clock=clock, sleep=clock.sleep) as connector, pytest.raises(Exception) as caught:
        connector.run(
            "crmGetRecord", {"recordType": "Leads", "recordId": "1", "debugRequest": True}, connection=refreshing
        )
    text = caplog.text + str(caught.value) + repr(caught.value.__dict__)
    for secret in SECRETS:
        assert secret not in text


def test_login_listener_takes_one_redirect_and_checks_state() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    query = "code=grant-code-xyz&location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu&state=right"

    def browser() -> None:
        for _ in range(200):
            try:
                httpx.get(f"{redirect_uri}?{query}", timeout=2)
                return
            except httpx.ConnectError:
                threading.Event().wait(0.01)

    thread = threading.Thread(target=browser)
    thread.start()
    redirect = wait_for_redirect(redirect_uri, "right", timeout=10)
    thread.join()
    assert (redirect.code, redirect.accounts_server, redirect.location) == (
        "grant-code-xyz",
        "https://accounts.zoho.eu",
        "eu",
    )
