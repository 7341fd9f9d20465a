"""Zoho Accounts: consent redirect, code and refresh grants, single-use codes, limits, revocation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState
from tests.conftest import FakeClock
from tests.connector.sandbox.conftest import BASE

pytestmark = pytest.mark.anyio

CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


async def _code(client: httpx.AsyncClient, **extra: str) -> str:
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": "https://app.example/cb",
        "scope": "ZohoCRM.modules.ALL,ZohoCRM.org.READ",
        "access_type": "offline",
        "prompt": "consent",
        "state": "xyz",
        **extra,
    }
    response = await client.get("/oauth/v2/auth", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["code"][0]


async def _exchange(client: httpx.AsyncClient, code: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example/cb", **CLIENT}
    return await client.post("/oauth/v2/token", data=data)


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT}
    return await client.post("/oauth/v2/token", data=data)


async def test_consent_redirects_back_with_code_location_and_server(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/oauth/v2/auth",
        params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code", "redirect_uri": "https://a.example/cb?x=1"},
    )
    target = urlsplit(response.headers["location"])
    query = parse_qs(target.query)
    assert (target.netloc, target.path) == ("a.example", "/cb")
    assert query["x"] == ["1"]
    assert query["location"] == ["us"]
    assert query["accounts-server"] == [BASE]
    assert "state" not in query


async def test_code_grant_then_refresh(client: httpx.AsyncClient) -> None:
    first = await _exchange(client, await _code(client))
    body = first.json()
    assert first.status_code == 200
    assert set(body) == {"access_token", "refresh_token", "api_domain", "token_type", "expires_in"}
    assert (body["api_domain"], body["token_type"], body["expires_in"]) == (BASE, "Bearer", 3600)
    refreshed = await _refresh(client, body["refresh_token"])
    assert refreshed.status_code == 200
    assert "refresh_token" not in refreshed.json()
    assert refreshed.json()["access_token"] != body["access_token"]
    stats = (await client.get("/__sandbox/stats")).json()
    assert stats["token_grants"] == {"authorization_code": 1, "refresh_token": 1}


async def test_codes_are_single_use_and_expire(client: httpx.AsyncClient, clock: FakeClock) -> None:
    code = await _code(client)
    assert (await _exchange(client, code)).status_code == 200
    again = await _exchange(client, code)
    # Zoho answers token errors with HTTP 200 and an `error` key.
    assert (again.status_code, again.json()) == (200, {"error": "invalid_code"})
    stale = await _code(client)
    clock.now += 121
    assert (await _exchange(client, stale)).json() == {"error": "invalid_code"}


async def test_online_access_gets_no_refresh_token(client: httpx.AsyncClient) -> None:
    body = (await _exchange(client, await _code(client, access_type="online"))).json()
    assert "access_token" in body
    assert "refresh_token" not in body


async def test_wrong_secret_unknown_client_and_redirect(client: httpx.AsyncClient) -> None:
    code = await _code(client)
    bad = {"grant_type": "authorization_code", "code": code, "client_id": DEFAULT_CLIENT_ID, "client_secret": "nope"}
    assert (await client.post("/oauth/v2/token", data=bad)).json() == {"error": "invalid_client"}
    unknown = {**bad, "client_id": "1000.NOPE", "client_secret": DEFAULT_CLIENT_SECRET}
    assert (await client.post("/oauth/v2/token", data=unknown)).json() == {"error": "invalid_client"}
    wrong_uri = {**bad, "client_secret": DEFAULT_CLIENT_SECRET, "redirect_uri": "https://evil.example"}
    assert (await client.post("/oauth/v2/token", data=wrong_uri)).json() == {"error": "invalid_redirect_uri"}
    auth = await client.get("/oauth/v2/auth", params={"client_id": "1000.NOPE", "redirect_uri": "https://a/cb"})
    assert auth.json() == {"error": "invalid_client"}
    odd = await client.post("/oauth/v2/token", data={"grant_type": "password", **CLIENT})
    assert odd.json() == {"error": "unsupported_grant_type"}


async def test_self_client_code_needs_no_redirect_uri_and_lives_three_minutes(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    minted = (await client.post("/__sandbox/grant-code", json={"scope": "ZohoCRM.modules.ALL"})).json()
    assert minted["expires_in"] == 180
    clock.now += 150
    data = {"grant_type": "authorization_code", "code": minted["code"], **CLIENT}
    assert "refresh_token" in (await client.post("/oauth/v2/token", data=data)).json()


async def test_query_string_parameters_are_accepted(client: httpx.AsyncClient) -> None:
    minted = (await client.post("/__sandbox/grant-code", json={})).json()
    params = {"grant_type": "authorization_code", "code": minted["code"], **CLIENT}
    assert (await client.post("/oauth/v2/token", params=params)).status_code == 200


async def test_throttle_after_ten_tokens_in_ten_minutes(client: httpx.AsyncClient, clock: FakeClock) -> None:
    rt = (await _exchange(client, await _code(client))).json()["refresh_token"]
    for _ in range(9):  # the code grant minted the first of ten
        assert (await _refresh(client, rt)).status_code == 200
    throttled = await _refresh(client, rt)
    assert throttled.status_code == 200
    assert throttled.json() == {
        "error": "Access Denied",
        "error_description": "Token creation throttle limit reached. Please reuse the valid tokens you currently have.",
    }
    clock.now += 601
    assert (await _refresh(client, rt)).status_code == 200


async def test_throttle_status_is_configurable(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.options.token_error_status = 400
    state.options.token_requests_per_window = 1
    rt = (await _exchange(client, await _code(client))).json()["refresh_token"]
    answer = await _refresh(client, rt)
    assert answer.status_code == 400
    assert answer.json()["error"] == "Access Denied"


async def test_at_most_fifteen_live_access_tokens(
    client: httpx.AsyncClient, state: SandboxState, clock: FakeClock
) -> None:
    state.options.token_requests_per_window = 100
    rt = (await _exchange(client, await _code(client))).json()
    first = rt["access_token"]
    for _ in range(15):
        clock.now += 1
        await _refresh(client, rt["refresh_token"])
    denied = await client.get("/crm/v8/org", headers={"Authorization": f"Zoho-oauthtoken {first}"})
    assert denied.status_code == 401
    live = [t for t in state.access_tokens.values() if not t.revoked]
    assert len(live) == 15


async def test_twenty_first_refresh_token_revokes_the_oldest(client: httpx.AsyncClient, clock: FakeClock) -> None:
    tokens = []
    for _ in range(21):
        clock.now += 1
        tokens.append((await _exchange(client, await _code(client))).json()["refresh_token"])
    assert (await _refresh(client, tokens[0])).json() == {"error": "invalid_code"}
    assert (await _refresh(client, tokens[1])).status_code == 200


async def test_revoke_refresh_token_kills_its_access_tokens(client: httpx.AsyncClient) -> None:
    body = (await _exchange(client, await _code(client))).json()
    headers = {"Authorization": f"Zoho-oauthtoken {body['access_token']}"}
    assert (await client.get("/crm/v8/org", headers=headers)).status_code == 200
    revoked = await client.post("/oauth/v2/token/revoke", params={"token": body["refresh_token"]})
    assert revoked.json() == {"status": "success"}
    assert (await client.get("/crm/v8/org", headers=headers)).status_code == 401
    assert (await _refresh(client, body["refresh_token"])).json() == {"error": "invalid_code"}
    again = await client.post("/oauth/v2/token/revoke", params={"token": body["refresh_token"]})
    assert again.status_code == 400


async def test_access_tokens_expire_after_an_hour(api: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await api.get("/crm/v8/org")).status_code == 200
    clock.now += 3600
    expired = await api.get("/crm/v8/org")
    assert expired.status_code == 401
    assert expired.json() == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }


async def test_missing_or_malformed_authorization(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    assert (await client.get("/crm/v8/org")).status_code == 401
    bad = await client.get("/crm/v8/org", headers={"Authorization": "Zoho-oauthtoken 1000.nope"})
    assert bad.json()["code"] == "INVALID_TOKEN"
    books = await client.get("/books/v3/organizations")
    assert (books.status_code, books.json()["code"]) == (401, 57)
