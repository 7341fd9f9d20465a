"""What Zoho refuses, the sandbox refuses: scopes, the auth scheme, concurrency caps, ambiguous paging, bad ids."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from connector.sandbox import BOOKS_ORG_ID, FaultConfig, Options, SandboxState, create_app, serve_in_thread
from tests.conftest import FakeClock
from tests.connector.sandbox.conftest import BASE

pytestmark = pytest.mark.anyio
ORG = {"organization_id": BOOKS_ORG_ID}
SCOPE_MISMATCH = {
    "code": "OAUTH_SCOPE_MISMATCH",
    "details": {},
    "message": "invalid oauth scope to access this URL",
    "status": "error",
}
BOOKS_DENIED = {"code": 57, "message": "You are not authorized to perform this operation"}


async def _scoped(client: httpx.AsyncClient, scope: str) -> dict[str, str]:
    token = (await client.post("/__sandbox/tokens", json={"scope": scope})).json()["access_token"]
    return {"Authorization": f"Zoho-oauthtoken {token}"}


async def _lead(api: httpx.AsyncClient) -> str:
    made = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "Doe"}]})
    rid: str = made.json()["data"][0]["details"]["id"]
    return rid


# scopes --------------------------------------------------------------------------------------------------------------


async def test_admin_tokens_default_to_every_scope(api: httpx.AsyncClient) -> None:
    rid = await _lead(api)
    assert (await api.get("/crm/v8/settings/modules")).status_code == 200
    assert (await api.get("/crm/v8/org")).status_code == 200
    coql = await api.post("/crm/v8/coql", json={"select_query": "select id from Leads where id is not null"})
    assert coql.status_code == 200
    assert (await api.get(f"/crm/v8/Leads/{rid}/Attachments", params={"fields": "File_Name"})).status_code == 204
    assert (await api.get("/books/v3/invoices", params=ORG)).status_code == 200


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("ZohoCRM.modules.ALL", "POST", "/crm/v8/coql", False),
        ("ZohoCRM.coql.READ", "POST", "/crm/v8/coql", False),  # COQL also needs the module's read scope
        ("ZohoCRM.coql.READ,ZohoCRM.modules.Leads.READ", "POST", "/crm/v8/coql", True),
        ("ZohoCRM.coql.READ,ZohoCRM.modules.Contacts.READ", "POST", "/crm/v8/coql", False),
        ("ZohoCRM.modules.ALL", "GET", "/crm/v8/settings/modules", False),
        ("ZohoCRM.settings.modules.READ", "GET", "/crm/v8/settings/modules", True),
        ("ZohoCRM.settings.fields.READ", "GET", "/crm/v8/settings/modules", False),
        ("ZohoCRM.settings.ALL", "GET", "/crm/v8/settings/fields?module=Leads", True),
        ("ZohoCRM.settings.ALL", "GET", "/crm/v8/Leads?fields=Last_Name", False),
        ("ZohoCRM.modules.READ", "GET", "/crm/v8/Leads?fields=Last_Name", True),
        ("zohocrm.modules.leads.read", "GET", "/crm/v8/Leads?fields=Last_Name", True),  # case does not matter
        ("ZohoCRM.modules.Contacts.ALL", "GET", "/crm/v8/Leads?fields=Last_Name", False),
        ("ZohoCRM.modules.READ", "POST", "/crm/v8/Leads", False),
        ("ZohoCRM.modules.Leads.CREATE", "POST", "/crm/v8/Leads", True),
        ("ZohoCRM.modules.Leads.CREATE", "POST", "/crm/v8/Leads/upsert", False),
        ("ZohoCRM.modules.Leads.CREATE,ZohoCRM.modules.Leads.UPDATE", "POST", "/crm/v8/Leads/upsert", True),
        ("ZohoCRM.modules.Leads.READ", "DELETE", "/crm/v8/Leads?ids=1", False),
        ("ZohoCRM.modules.READ", "GET", "/crm/v8/Leads/{rid}/Attachments?fields=File_Name", True),
        ("ZohoCRM.modules.attachments.ALL", "GET", "/crm/v8/Leads/{rid}/Attachments?fields=File_Name", True),
        ("ZohoCRM.modules.notes.ALL", "GET", "/crm/v8/Leads/{rid}/Attachments?fields=File_Name", False),
        ("ZohoCRM.modules.notes.ALL", "GET", "/crm/v8/Notes?fields=Note_Title", True),
        ("ZohoCRM.modules.ALL", "GET", "/crm/v8/users", False),
        ("ZohoCRM.users.READ", "GET", "/crm/v8/users", True),
        ("ZohoCRM.modules.ALL", "GET", "/crm/v8/org", False),
        ("ZohoCRM.org.READ", "GET", "/crm/v8/org", True),
    ],
)
async def test_crm_scopes(
    api: httpx.AsyncClient, client: httpx.AsyncClient, scope: str, method: str, path: str, allowed: bool
) -> None:
    url = path.replace("{rid}", await _lead(api))
    body: dict[str, Any] | None = None
    if url.endswith("/coql"):
        body = {"select_query": "select id from Leads where id is not null"}
    elif method == "POST":
        body = {"data": [{"Last_Name": "Scoped", "Email": "s@example.com"}]}
    response = await client.request(method, url, json=body, headers=await _scoped(client, scope))
    if allowed:
        assert response.status_code < 300, response.text
    else:
        assert (response.status_code, response.json()) == (401, SCOPE_MISMATCH)


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("ZohoCRM.modules.ALL", "GET", "/books/v3/invoices", False),
        ("ZohoBooks.fullaccess.all", "GET", "/books/v3/invoices", True),
        ("ZohoBooks.invoices.READ", "GET", "/books/v3/invoices", True),
        ("ZohoBooks.invoices.READ", "POST", "/books/v3/invoices", False),
        ("ZohoBooks.invoices.CREATE", "GET", "/books/v3/invoices", False),
        ("ZohoBooks.contacts.READ", "GET", "/books/v3/invoices", False),
        ("ZohoBooks.contacts.ALL", "POST", "/books/v3/contacts", True),
        ("ZohoBooks.contacts.READ", "GET", "/books/v3/contacts/1/contactpersons", True),  # a parent's scope
        ("ZohoBooks.invoices.READ", "GET", "/books/v3/organizations", False),
        ("ZohoBooks.settings.READ", "GET", "/books/v3/organizations", True),
    ],
)
async def test_books_scopes(client: httpx.AsyncClient, scope: str, method: str, path: str, allowed: bool) -> None:
    body = {"contact_name": "Scoped"} if method == "POST" else None
    response = await client.request(method, path, params=ORG, json=body, headers=await _scoped(client, scope))
    if allowed:
        assert response.status_code != 401, response.text
    else:
        assert (response.status_code, response.json()) == (401, BOOKS_DENIED)


async def test_scopes_come_from_the_oauth_grant(client: httpx.AsyncClient) -> None:
    params = {"client_id": "1000.SANDBOXCLIENT", "redirect_uri": "https://app.example/cb", "scope": "ZohoCRM.org.READ"}
    location = (await client.get("/oauth/v2/auth", params=params)).headers["location"]
    code = httpx.URL(location).params["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/cb",
        "client_id": "1000.SANDBOXCLIENT",
        "client_secret": "sandbox-secret",
    }
    tokens = (await client.post("/oauth/v2/token", data=form)).json()
    refresh = {**form, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = (await client.post("/oauth/v2/token", data=refresh)).json()
    for token in (tokens["access_token"], refreshed["access_token"]):
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        assert (await client.get("/crm/v8/org", headers=headers)).status_code == 200
        denied = await client.get("/crm/v8/Leads", params={"fields": "Last_Name"}, headers=headers)
        assert denied.json()["code"] == "OAUTH_SCOPE_MISMATCH"


# the Authorization scheme --------------------------------------------------------------------------------------------


async def test_bearer_scheme_is_an_invalid_token(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    crm = await client.get("/crm/v8/org", headers=bearer)
    assert (crm.status_code, crm.json()) == (
        401,
        {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"},
    )
    books = await client.get("/books/v3/invoices", params=ORG, headers=bearer)
    assert (books.status_code, books.json()["code"]) == (401, 57)
    right = await client.get("/crm/v8/org", headers={"Authorization": f"Zoho-oauthtoken {tokens['access_token']}"})
    assert right.status_code == 200


# paging --------------------------------------------------------------------------------------------------------------


async def test_page_with_page_token_is_ambiguous(api: httpx.AsyncClient) -> None:
    await api.post("/__sandbox/seed", json={"module": "Leads", "count": 3})
    first = (await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 1})).json()
    token = first["info"]["next_page_token"]
    both = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page_token": token, "page": 1})
    assert (both.status_code, both.json()) == (
        400,
        {
            "code": "AMBIGUITY_DURING_PROCESSING",
            "details": {"ambiguity_due_to": [{"param_name": "page"}, {"param_name": "page_token"}]},
            "message": "Please use either page or page_token. Combination of both the params is not allowed",
            "status": "error",
        },
    )
    alone = await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "page_token": token})
    assert alone.status_code == 200


# invalid and missing ids ---------------------------------------------------------------------------------------------


async def test_put_and_delete_of_an_unknown_id(api: httpx.AsyncClient) -> None:
    # An id in the URL that does not exist is one top-level error, not a row of `data`.
    invalid = {
        "code": "INVALID_DATA",
        "details": {"id": "404"},
        "message": "the id given seems to be invalid",
        "status": "error",
    }
    put = await api.put("/crm/v8/Leads/404", json={"data": [{"Company": "X"}]})
    assert (put.status_code, put.json()) == (400, invalid)
    delete = await api.delete("/crm/v8/Leads/404")
    assert (delete.status_code, delete.json()) == (400, invalid)
    assert (await api.delete("/crm/v8/Leads/404", params={"wf_trigger": "false"})).json() == invalid
    in_body = await api.put("/crm/v8/Leads", json={"data": [{"id": "404", "Company": "X"}]})
    assert in_body.json()["data"][0]["details"] == {"api_name": "id", "json_path": "$.data[0].id"}
    assert (await api.get("/crm/v8/Leads/404")).status_code == 204


async def test_unknown_note_and_attachment_ids_in_the_url_are_top_level_errors(api: httpx.AsyncClient) -> None:
    rid = await _lead(api)
    for method, url, body in [
        ("PUT", "/crm/v8/Notes/404", {"data": [{"Note_Content": "x"}]}),
        ("DELETE", "/crm/v8/Notes/404", None),
        ("DELETE", f"/crm/v8/Leads/{rid}/Attachments/404", None),
    ]:
        answer = await api.request(method, url, json=body)
        assert (answer.status_code, answer.json()) == (
            400,
            {
                "code": "INVALID_DATA",
                "details": {"id": "404"},
                "message": "the id given seems to be invalid",
                "status": "error",
            },
        ), f"{method} {url}"
    listed = await api.delete("/crm/v8/Notes", params={"ids": "404"})  # ids in a list: one row per id, as before
    assert listed.json()["data"][0]["details"] == {"id": "404"}


# concurrency ---------------------------------------------------------------------------------------------------------


class Gate:
    """A sleep that holds every delayed call until released, so calls pile up in flight without real waiting."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.waiting = 0

    async def __call__(self, seconds: float) -> None:
        self.waiting += 1
        await self.release.wait()


async def _pile_up(
    edition: str | None, calls: int, path: str, method: str = "GET", body: Any = None, **options: Any
) -> list[int]:
    """Send `calls` requests that stay in flight, then one more; returns the statuses, the extra one last."""
    opts = Options(**options) if edition is None else Options(edition=edition, **options)
    gate = Gate()
    app: Starlette = create_app(
        SandboxState(options=opts), faults=FaultConfig(slow_ms=1), clock=FakeClock(), sleep=gate
    )
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        token = (await c.post("/__sandbox/tokens", json={})).json()["access_token"]
        c.headers["Authorization"] = f"Zoho-oauthtoken {token}"

        async def one() -> None:
            statuses.append((await c.request(method, path, json=body)).status_code)

        extra: list[httpx.Response] = []

        async def last() -> None:
            extra.append(await c.request(method, path, json=body))

        async with anyio.create_task_group() as tg:
            for _ in range(calls):
                tg.start_soon(one)
            while gate.waiting < calls:
                await anyio.sleep(0)
            tg.start_soon(last)
            while not extra and gate.waiting == calls:  # until it is refused, or it too is held in flight
                await anyio.sleep(0)
            gate.release.set()
        statuses.append(extra[0].status_code)
        if extra[0].status_code == 429:
            assert extra[0].json()["code"] == "TOO_MANY_REQUESTS"
            assert "retry-after" not in extra[0].headers
            stats = (await c.get("/__sandbox/stats")).json()
            assert stats["throttled"] == {"concurrency": 1}
    return statuses


@pytest.mark.parametrize(
    ("edition", "cap"), [("free", 5), ("standard", 10), ("professional", 15), (None, 20), ("ultimate", 25)]
)
async def test_calls_over_the_edition_cap_get_429(edition: str | None, cap: int) -> None:
    under = await _pile_up(edition, cap - 1, "/crm/v8/org")
    assert under == [200] * cap
    over = await _pile_up(edition, cap, "/crm/v8/org")
    assert over[:-1] == [200] * cap
    assert over[-1] == 429


async def test_the_cap_is_configurable_per_sandbox() -> None:
    assert (await _pile_up(None, 2, "/crm/v8/org", max_concurrent=2))[-1] == 429
    with pytest.raises(ValueError, match="edition"):
        Options(edition="platinum")


async def test_more_than_ten_concurrent_coql_calls_get_429() -> None:
    query = {"select_query": "select id from Leads where id is not null"}
    assert (await _pile_up(None, 9, "/crm/v8/coql", "POST", query))[-1] == 204
    statuses = await _pile_up(None, 10, "/crm/v8/coql", "POST", query)
    assert statuses[-1] == 429
    assert statuses[:-1] == [204] * 10


# api_domain ----------------------------------------------------------------------------------------------------------


async def test_api_domain_ignores_a_spoofed_host_header(client: httpx.AsyncClient) -> None:
    minted = (await client.post("/__sandbox/tokens", json={}, headers={"Host": "evil.example"})).json()
    assert minted["api_domain"] == BASE
    code = (await client.post("/__sandbox/grant-code", json={})).json()["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "1000.SANDBOXCLIENT",
        "client_secret": "sandbox-secret",
    }
    exchanged = await client.post("/oauth/v2/token", data=form, headers={"Host": "evil.example:8443"})
    assert exchanged.json()["api_domain"] == BASE


def test_api_domain_over_loopback_is_the_bound_address() -> None:
    with serve_in_thread(SandboxState()) as base:
        spoofed = httpx.post(f"{base}/__sandbox/tokens", json={}, headers={"Host": "evil.example"})
        assert spoofed.json()["api_domain"] == base
