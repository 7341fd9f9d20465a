"""Connections: every data centre by key or alias, CRM environments, overrides, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from connector import connection as connection_module
from connector.connection import resolve_connection, resolve_region
from connector.errors import ConnectionConfigError, InputValidationError, Violation
from connector.manifest import bundled_manifest

ZOHO = bundled_manifest().connections["zohoOAuth"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("us", "us"),
        ("com", "us"),
        ("US", "us"),
        ("zoho.com", "us"),
        ("europe", "eu"),
        ("zoho.eu", "eu"),
        ("https://accounts.zoho.eu", "eu"),
        ("https://accounts.zoho.eu/", "eu"),
        ("https://www.zohoapis.in", "in"),
        ("com.au", "au"),
        ("china", "cn"),
        ("com.cn", "cn"),
        ("jp", "jp"),
        ("canada", "ca"),
        ("https://accounts.zohocloud.ca", "ca"),
        ("sa", "sa"),
        ("uk", "uk"),
        ("ae", "ae"),
    ],
)
def test_region_aliases(typed: str, region: str) -> None:
    assert resolve_region(ZOHO, typed) == region


def test_unknown_region_lists_every_valid_one() -> None:
    with pytest.raises(ConnectionConfigError) as caught:
        resolve_region(ZOHO, "atlantis")
    for key in ("us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk", "ae"):
        assert f"{key} (" in caught.value.message


@pytest.mark.parametrize(
    ("region", "accounts", "api"),
    [
        ("us", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        ("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        ("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        ("au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        ("cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
        ("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        ("ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        ("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
        ("uk", "https://accounts.zoho.uk", "https://www.zohoapis.uk"),
        ("ae", "https://accounts.zoho.ae", "https://www.zohoapis.ae"),
    ],
)
def test_every_data_centre_has_accounts_and_api_hosts(region: str, accounts: str, api: str) -> None:
    connection = resolve_connection(ZOHO, {"region": region, "access_token": "t"})
    assert (connection.accounts_url, connection.api_domain) == (accounts, api)
    assert ZOHO.regions[region]["upload"].startswith("https://")


def test_overrides_for_proxies_and_test_servers() -> None:
    connection = resolve_connection(
        ZOHO, {"access_token": "t", "accounts_url": "http://127.0.0.1:9000/", "api_domain": "https://proxy.example.com"}
    )
    assert (connection.accounts_url, connection.api_domain) == ("http://127.0.0.1:9000", "https://proxy.example.com")


@pytest.mark.parametrize(
    "url", ["http://proxy.example.com", "ftp://127.0.0.1", "127.0.0.1:8000", "https://x.example?a=1"]
)
def test_bad_overrides_are_refused_as_bad_input_naming_the_field(url: str) -> None:
    with pytest.raises(InputValidationError, match="api_domain") as caught:
        resolve_connection(ZOHO, {"access_token": "t", "api_domain": url})
    assert [v.input for v in caught.value.violations] == ["api_domain"] and caught.value.exit_code == 2


def test_policy_knobs_have_pyzohoapi_defaults() -> None:
    policy = resolve_connection(ZOHO, {"access_token": "t"}).policy
    assert (
        policy.intercall_delay,
        policy.max_retries,
        policy.max_retry_after,
        policy.min_calls_remaining,
        policy.retry_backoff_seconds,
    ) == (0, 10, 180, 1, 0.5)
    assert policy.max_concurrency == 20  # Enterprise edition
    assert resolve_connection(ZOHO, {"access_token": "t", "edition": "free"}).policy.max_concurrency == 5
    assert (
        resolve_connection(ZOHO, {"access_token": "t", "edition": "free", "max_concurrency": 2}).policy.max_concurrency
        == 2
    )


def test_a_connection_without_credentials_says_what_to_give() -> None:
    with pytest.raises(InputValidationError, match="give a refresh_token"):
        resolve_connection(ZOHO, {"region": "eu"})


def test_secrets_never_show_in_a_repr() -> None:
    connection = resolve_connection(
        ZOHO, {"refresh_token": "1000.rt-secret", "client_id": "1000.ID", "client_secret": "cs-secret"}
    )
    assert "rt-secret" not in repr(connection) and "cs-secret" not in repr(connection)


@pytest.mark.parametrize(("raw", "kind"), [(["eu"], "a list"), (None, "null"), (3, "a number")])
def test_a_connection_that_is_not_an_object_is_named(raw: Any, kind: str, connector: Connector) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=raw)
    assert caught.value.exit_code == 2
    assert caught.value.violations == [
        Violation("(connection)", "", f"the connection must be a JSON object, not {kind}")
    ]


@pytest.mark.parametrize(
    ("raw", "missing"),
    [
        ({"client_id": "1000.ID", "refresh_token": "1000.rt-secret"}, ["client_secret"]),
        ({"client_secret": "cs-secret", "refresh_token": "1000.rt-secret"}, ["client_id"]),
        ({"refresh_token": "1000.rt-secret", "access_token": "t"}, ["client_id", "client_secret"]),
        ({"client_secret": "cs-secret"}, ["client_id"]),
    ],
)
def test_a_missing_client_field_is_named(raw: dict[str, Any], missing: list[str]) -> None:
    with pytest.raises(InputValidationError) as caught:
        resolve_connection(ZOHO, raw)
    assert [v.input for v in caught.value.violations] == missing
    assert "rt-secret" not in str(caught.value) and "cs-secret" not in str(caught.value)


def test_the_schema_says_a_refresh_token_needs_the_client_too() -> None:
    """Engines that check a connection with the published schema see the same rule."""
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schemas/connections/zoho-oauth.json").read_text())
    assert not Draft202012Validator(schema).is_valid({"client_id": "1000.ID", "refresh_token": "1000.rt"})
    assert Draft202012Validator(schema).is_valid({"client_id": "1000.ID", "client_secret": "s", "refresh_token": "r"})


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        ({"access_token": "t", "intercall_delay": float("nan")}, "/intercall_delay"),
        ({"access_token": "t", "max_retry_after": float("inf")}, "/max_retry_after"),
        ({"access_token": "t\udc80"}, "/access_token"),
    ],
)
def test_values_json_cannot_carry_are_refused(raw: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        resolve_connection(ZOHO, raw)
    assert [v.pointer for v in caught.value.violations] == [pointer]


@pytest.mark.parametrize("token", ["1000.a\r\nX-Injected: 1", "1000.tök", "1000.a b", "1000.a\x00", "名前"])
def test_an_access_token_a_header_cannot_carry_is_refused_named_and_not_echoed(
    token: str, connector: Connector, httpx_mock: HTTPXMock
) -> None:
    """Before: CR/LF was sent, failed in httpx (LocalProtocolError) and was retried as a network failure ending in a
    retryable TransientError; an accent raised a bare UnicodeEncodeError."""
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection={"access_token": token})
    assert [v.input for v in caught.value.violations] == ["access_token"]
    assert token not in str(caught.value) and "X-Injected" not in json.dumps(caught.value.to_dict())
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("org", ["1\r\nX-Injected: 1", "\uff11\uff12\uff13", "1 2"])
def test_an_organization_id_a_header_cannot_carry_is_refused(org: str, connector: Connector) -> None:
    inputs = {"recordType": "invoices", "recordId": "1"}
    with pytest.raises(InputValidationError) as caught:
        connector.run("invoiceGetRecord", inputs, connection={"access_token": "1000.t", "organization_id": org})
    assert [v.input for v in caught.value.violations] == ["organization_id"]


def test_resolved_connections_are_cached_by_digest_not_by_secret() -> None:
    raw = {"region": "eu", "refresh_token": "1000.rt-secret", "client_id": "1000.ID", "client_secret": "cs-secret"}
    first = resolve_connection(ZOHO, raw)
    assert resolve_connection(ZOHO, dict(reversed(raw.items()))) is first  # the same connection, however ordered
    for key in connection_module._resolved:
        assert "rt-secret" not in repr(key) and "cs-secret" not in repr(key)
    assert "rt-secret" not in repr(first.cache_key)
    assert first.cache_key != resolve_connection(ZOHO, {**raw, "refresh_token": "1000.other"}).cache_key


def test_the_cache_of_resolved_connections_is_bounded_and_keeps_the_recent_ones() -> None:
    kept = resolve_connection(ZOHO, {"access_token": "kept"})
    for i in range(connection_module._RESOLVED_MAX + 10):
        resolve_connection(ZOHO, {"access_token": f"t{i}"})
        assert resolve_connection(ZOHO, {"access_token": "kept"}) is kept  # used all along: never evicted
    assert len(connection_module._resolved) == connection_module._RESOLVED_MAX


def test_a_connection_that_is_not_plain_json_is_resolved_each_time() -> None:
    from decimal import Decimal

    raw = {"access_token": "t", "intercall_delay": Decimal("0.5")}
    assert resolve_connection(ZOHO, raw).policy.intercall_delay == 0.5
