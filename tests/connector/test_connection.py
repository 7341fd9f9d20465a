"""Connections: every data centre by key or alias, CRM environments, overrides, and clear errors."""

from __future__ import annotations

import pytest

from connector.connection import resolve_connection, resolve_region
from connector.errors import ConnectionConfigError, InputValidationError
from connector.manifest import bundled_manifest

ZOHO = bundled_manifest().connections["zohoOAuth"]


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


@pytest.mark.parametrize(
    ("environment", "host"), [("production", "www"), ("sandbox", "sandbox"), ("developer", "developer")]
)
def test_crm_environments(environment: str, host: str) -> None:
    connection = resolve_connection(ZOHO, {"region": "eu", "access_token": "t", "environment": environment})
    assert connection.api_domain == f"https://{host}.zohoapis.eu"


def test_overrides_for_proxies_and_test_servers() -> None:
    connection = resolve_connection(
        ZOHO, {"access_token": "t", "accounts_url": "http://127.0.0.1:9000/", "api_domain": "https://proxy.example.com"}
    )
    assert (connection.accounts_url, connection.api_domain) == ("http://127.0.0.1:9000", "https://proxy.example.com")


@pytest.mark.parametrize(
    "url", ["http://proxy.example.com", "ftp://127.0.0.1", "127.0.0.1:8000", "https://x.example?a=1"]
)
def test_bad_overrides_are_refused(url: str) -> None:
    with pytest.raises(ConnectionConfigError, match="api_domain"):
        resolve_connection(ZOHO, {"access_token": "t", "api_domain": url})


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
