"""Host rules: the API domain a product's calls go to.

api              the account's API domain: the one Zoho named with the token, else the region's, unless the
                 connection overrides it (Books and the Finance apps: a Books sandbox is an organization on the
                 normal host)
crm_environment  the same, moved to the connection's CRM environment: www.zohoapis.eu becomes
                 sandbox.zohoapis.eu or developer.zohoapis.eu (only CRM has such hosts)
store            the region's own `store` root (https://store.zoho.eu/api/v1/partner: the Partner Store is not
                 served from the API domain), unless the connection's override for it (`store_url`) says otherwise

A rule for a product with its own per-region host is `region_host(key)`: the connection's override of that key,
else the region table's entry, else a ConnectionConfigError naming the override to set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from connector.errors import ConnectionConfigError

__all__ = ["HOSTS", "HostContext", "HostRule", "region_host"]

_NONE: Mapping[str, str] = MappingProxyType({})


class HostContext(NamedTuple):
    region_api: str  # the region's production API domain, or the connection's override
    overridden: bool  # the connection set api_domain itself: it wins over everything
    from_token: str | None  # the api_domain Zoho returned with the token
    environment: str  # production | sandbox | developer
    environment_labels: Mapping[str, str]  # environment → first host label ("www", "sandbox", …)
    region: str = ""  # the region's key, for messages
    region_hosts: Mapping[str, str] = _NONE  # the region's table: host key → base URL (accounts, api, store, …)
    overrides: Mapping[str, str] = _NONE  # host key → the connection's override of it (a full root, path included)
    override_inputs: Mapping[str, str] = _NONE  # host key → the connection input that overrides it


HostRule = Callable[[HostContext], str]


def account_api(context: HostContext) -> str:
    if context.overridden or not context.from_token:
        return context.region_api
    return context.from_token


def crm_environment(context: HostContext) -> str:
    domain = account_api(context)
    if context.overridden:
        return domain
    production = context.environment_labels.get("production", "www")
    label = context.environment_labels.get(context.environment, production)
    prefix = f"https://{production}."
    return domain.replace(prefix, f"https://{label}.", 1) if domain.startswith(prefix) else domain


def region_host(key: str) -> HostRule:
    """A product served from its own host per region (the table's `key` entry), not from the API domain. The
    base URL may carry a path; the product's base_path is relative to it."""

    def rule(context: HostContext) -> str:
        override = context.overrides.get(key)
        if override:
            return override
        found = context.region_hosts.get(key)
        if found:
            return found
        served = context.override_inputs.get(key, key)
        raise ConnectionConfigError(
            f"no {key} host is known for region {context.region or '?'}; set the connection's {served} to its URL"
        )

    return rule


HOSTS: dict[str, HostRule] = {
    "api": account_api,
    "crm_environment": crm_environment,
    # The Partner Store: store.zoho.{com,eu,in,com.au}/api/v1/partner (zoho-api.md §6; the other regions unknown).
    "store": region_host("store"),
}
