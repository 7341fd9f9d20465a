"""Host rules: a product with its own host per region (the Partner Store) takes it from the region table or the
connection's override, and those hosts count as Zoho's own."""

from __future__ import annotations

import pytest

from connector.connection import host_inputs, resolve_connection, zoho_hosts
from connector.errors import ConnectionConfigError
from connector.manifest import bundled_manifest
from connector.strategies import HOSTS, HostContext
from connector.strategies.hosts import region_host
from tests.conftest import ACCESS_TOKEN

ZOHO = bundled_manifest().connections["zohoOAuth"]


def context(**changes: object) -> HostContext:
    base = HostContext("https://www.zohoapis.eu", False, None, "production", {"production": "www"}, "eu")
    return base._replace(**changes)  # type: ignore[arg-type]


def test_a_region_host_rule_prefers_the_override_then_the_region_table() -> None:
    rule = region_host("widgets")
    table = {"api": "https://www.zohoapis.eu", "widgets": "https://widgets.zoho.eu/v1"}
    assert rule(context(region_hosts=table)) == "https://widgets.zoho.eu/v1"
    assert rule(context(region_hosts=table, overrides={"widgets": "http://127.0.0.1:1/w"})) == "http://127.0.0.1:1/w"


def test_a_region_without_the_host_names_the_override_to_set() -> None:
    with pytest.raises(ConnectionConfigError, match="no widgets host is known for region eu; set the connection's wu"):
        region_host("widgets")(context(override_inputs={"widgets": "wu"}))


def test_the_api_domain_and_the_token_do_not_move_the_store() -> None:
    table = {"store": "https://store.zoho.eu/api/v1/partner"}
    moved = context(region_hosts=table, from_token="https://www.zohoapis.com", overridden=True)
    assert HOSTS["store"](moved) == "https://store.zoho.eu/api/v1/partner"


def test_store_url_is_the_connections_store_override() -> None:
    assert host_inputs(ZOHO.input_schema) == {"store": "store_url"}
    raw = {"region": "eu", "access_token": ACCESS_TOKEN, "store_url": "http://localhost:8400/api/v1/partner/"}
    assert resolve_connection(ZOHO, raw).host_overrides == {"store": "http://localhost:8400/api/v1/partner"}
    assert resolve_connection(ZOHO, {"region": "eu", "access_token": ACCESS_TOKEN}).host_overrides == {}


def test_the_store_hosts_are_zohos_own() -> None:
    hosts = zoho_hosts(ZOHO)
    assert {"store.zoho.com", "store.zoho.eu", "store.zoho.in", "store.zoho.com.au"} <= hosts
    assert {"www.zohoapis.jp", "sandbox.zohoapis.eu"} <= hosts  # regions without a store still count


def test_only_the_four_documented_regions_have_a_store() -> None:
    with_store = {key for key, region in ZOHO.regions.items() if "store" in region}
    assert with_store == {"us", "eu", "in", "au"}
