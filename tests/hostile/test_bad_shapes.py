"""HTTP 200 with JSON of the wrong shape where the runtime itself reads the answer (pagination, organization
discovery, the token endpoint): each is a typed ConnectorError, never a traceback, and never fewer records quietly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector import Connector
from connector.auth.stores import open_store
from connector.auth.tokens import Token
from connector.errors import AuthenticationError, ConnectorError, TransientError
from tests.conftest import FakeClock
from tests.hostile.conftest import raised, within
from tests.hostile.server import HostileServer, Reply

LEADS = [{"id": "r1", "Last_Name": "Doe"}]
CONTACTS = [{"contact_id": "c1", "contact_name": "Zylker"}]

CRM_PAGES: dict[str, Any] = {
    "info-a-string": {"data": LEADS, "info": "x"},
    "info-page-abc": {"data": LEADS, "info": {"more_records": True, "page": "abc", "per_page": 1}},
    "token-a-list": {"data": LEADS, "info": {"more_records": True, "next_page_token": ["tok-2"]}},
    "token-an-object": {"data": LEADS, "info": {"more_records": True, "next_page_token": {"t": 2}}},
    "data-a-string": {"data": "abc", "info": {"more_records": False}},
    "page-a-list": [LEADS],
}


@pytest.mark.parametrize("shape", list(CRM_PAGES))
def test_crm_fetch_all_of_a_page_with_the_wrong_shape_is_a_typed_error(
    shape: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", "/crm/v8/Leads", Reply(CRM_PAGES[shape]))
    inputs = {"recordType": "Leads", "fields": ["Last_Name"], "fetchAll": True, "maxRetries": 0}
    raised(within(10, lambda: connector.run("crmGetRecords", inputs, connection=connection)), ConnectorError)


BOOKS_PAGES: dict[str, Any] = {
    "page-context-a-string": {"code": 0, "contacts": CONTACTS, "page_context": "x"},
    "page-context-a-list": {"code": 0, "contacts": CONTACTS, "page_context": ["x"]},
    "page-abc": {"code": 0, "contacts": CONTACTS, "page_context": {"has_more_page": True, "page": "abc"}},
    "page-a-list": [CONTACTS],
}


@pytest.mark.parametrize("shape", list(BOOKS_PAGES))
def test_books_fetch_all_of_a_page_with_the_wrong_shape_is_a_typed_error(
    shape: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", "/books/v3/contacts", Reply(BOOKS_PAGES[shape]))
    inputs = {"recordType": "contacts", "fetchAll": True, "maxRetries": 0}
    raised(within(10, lambda: connector.run("booksGetRecords", inputs, connection=connection)), ConnectorError)


ORGANIZATIONS: dict[str, Any] = {
    "a-string": "abc",
    "a-list-of-numbers": [1],
    "an-object": {"organization_id": "1"},
    "entries-without-an-id": [{"name": "Zylker", "is_default_org": True}],
    "a-null-id": [{"organization_id": None, "is_default_org": True}],
    "an-object-id": [{"organization_id": {"id": "1"}, "is_default_org": True}],
    "an-id-with-a-line-break": [{"organization_id": "1\r\nX-Injected: 1", "is_default_org": True}],
    "an-id-with-accents": [{"organization_id": "\uff11\uff12\uff13", "is_default_org": True}],
    "a-boolean-id": [{"organization_id": True, "is_default_org": True}],
}


@pytest.mark.parametrize("shape", list(ORGANIZATIONS))
def test_books_organization_discovery_of_the_wrong_shape_is_a_typed_error(
    shape: str, server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", "/books/v3/organizations", Reply({"code": 0, "organizations": ORGANIZATIONS[shape]}))
    server.on("GET", "/books/v3/contacts/c1", Reply({"code": 0, "contact": CONTACTS[0]}))
    without_org = {k: v for k, v in connection.items() if k != "organization_id"}
    outcome = within(
        10,
        lambda: connector.run("booksGetRecord", {"recordType": "contacts", "recordId": "c1"}, connection=without_org),
    )
    raised(outcome, ConnectorError)
    assert server.count("GET", "/books/v3/contacts/c1") == 0  # never sent with a made-up organization id


TOKEN_ANSWERS: dict[str, Any] = {
    "access-token-null": {"access_token": None, "expires_in": 3600},
    "access-token-an-object": {"access_token": {"t": "1000.fresh"}, "expires_in": 3600},
    # a header cannot carry these: CR/LF split it (httpx refuses: LocalProtocolError, once retried as a network
    # failure), accents cannot be encoded (a bare UnicodeEncodeError)
    "access-token-with-a-line-break": {"access_token": "1000.fresh\r\nX-Injected: 1", "expires_in": 3600},
    "access-token-with-accents": {"access_token": "1000.frésh", "expires_in": 3600},
    "access-token-with-a-space": {"access_token": "1000.fresh token", "expires_in": 3600},
}


def _refreshing(server: HostileServer, shape: str) -> dict[str, Any]:
    return {
        "client_id": "1000.CLIENT",
        "client_secret": "client-secret-value",
        "refresh_token": f"1000.refresh.{shape}",
        "accounts_url": server.url,
        "api_domain": server.url,
        "token_store": "memory:",
    }


LIFETIMES: dict[str, Any] = {"abc": "abc", "a-list": [3600], "an-object": {"s": 3600}, "negative": -5}


@pytest.mark.parametrize("shape", list(LIFETIMES))
def test_a_token_with_a_garbled_lifetime_is_used_for_the_default_hour(
    shape: str, server: HostileServer, connector: Connector
) -> None:
    """Zoho's access tokens live an hour; an unreadable expires_in falls back to that (a 401 would refresh)."""
    answer = {"access_token": "1000.fresh", "expires_in": LIFETIMES[shape], "token_type": "Bearer"}
    server.on("POST", "/oauth/v2/token", Reply(answer))
    server.on("GET", "/crm/v8/Leads/5001", Reply({"data": [{"id": "5001"}]}))
    get = {"recordType": "Leads", "recordId": "5001"}
    outcome = within(10, lambda: connector.run("crmGetRecord", get, connection=_refreshing(server, shape)))
    assert outcome.error is None, repr(outcome.error)
    assert server.count("GET", "/crm/v8/Leads/5001") == 1


@pytest.mark.parametrize("shape", list(TOKEN_ANSWERS))
def test_a_token_endpoint_answer_of_the_wrong_shape_is_a_typed_error(
    shape: str, server: HostileServer, connector: Connector
) -> None:
    server.on("POST", "/oauth/v2/token", Reply({**TOKEN_ANSWERS[shape], "token_type": "Bearer"}))
    server.on("GET", "/crm/v8/Leads/5001", Reply({"data": [{"id": "5001"}]}))
    connection = {
        "client_id": "1000.CLIENT",
        "client_secret": "client-secret-value",
        "refresh_token": f"1000.refresh.{shape}",
        "accounts_url": server.url,
        "api_domain": server.url,
        "token_store": "memory:",
    }
    outcome = within(
        10, lambda: connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "5001"}, connection=connection)
    )
    error = raised(outcome, ConnectorError)
    assert not isinstance(error, TransientError), "a garbled token is no network failure to retry"
    assert "client-secret-value" not in str(error) and "1000.refresh" not in str(error)
    assert server.count("GET", "/crm/v8/Leads/5001") == 0  # no call with a token made of garbage


@pytest.mark.parametrize("token", ["1000.stored\r\nX-Injected: 1", "1000.störed", "1000.stored token"])
def test_a_stored_access_token_a_header_cannot_carry_is_a_typed_error_and_never_sent(
    token: str, server: HostileServer, connector: Connector, clock: FakeClock, tmp_path: Path
) -> None:
    """A token row written by another process (or by hand) is not trusted to fit in a header either."""
    store_url = f"file://{tmp_path / 'tokens.json'}"
    connection = {**_refreshing(server, "stored"), "token_store": store_url}
    open_store(store_url).save_token(
        Token(
            client_id=connection["client_id"],
            client_secret=connection["client_secret"],
            refresh_token=connection["refresh_token"],
            access_token=token,
            expires_at=clock.now + 3600,
        )
    )
    server.on("GET", "/crm/v8/Leads/5001", Reply({"data": [{"id": "5001"}]}))
    get = {"recordType": "Leads", "recordId": "5001"}
    error = raised(within(10, lambda: connector.run("crmGetRecord", get, connection=connection)), AuthenticationError)
    assert error.reason == "bad_token" and token not in str(error)
    assert server.count() == 0


def test_a_token_endpoint_error_that_echoes_secrets_is_scrubbed_and_short(
    server: HostileServer, connector: Connector
) -> None:
    """The accounts server's `error` went into the message and `reason` as it was, secrets and all."""
    echo = "invalid_client client_secret=client-secret-value refresh_token=1000.refresh.echo " + "x" * 5000
    server.on("POST", "/oauth/v2/token", Reply({"error": echo}, status=400))
    outcome = within(
        10,
        lambda: connector.run(
            "crmGetRecord", {"recordType": "Leads", "recordId": "5001"}, connection=_refreshing(server, "echo")
        ),
    )
    error = raised(outcome, AuthenticationError)
    shown = str(error) + json.dumps(error.to_dict())
    assert "client-secret-value" not in shown and "1000.refresh" not in shown
    assert len(error.message) < 600 and len(error.reason) <= 100
