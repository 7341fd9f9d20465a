"""Host rules: the API domain a product's calls go to.

api              the account's API domain: the one Zoho named with the token, else the region's, unless the
                 connection overrides it (Books and the Finance apps: a Books sandbox is an organization on the
                 normal host)
crm_environment  the same, moved to the connection's CRM environment: www.zohoapis.eu becomes
                 sandbox.zohoapis.eu or developer.zohoapis.eu (only CRM has such hosts)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

__all__ = ["HOSTS", "HostContext", "HostRule"]


class HostContext(NamedTuple):
    region_api: str  # the region's production API domain, or the connection's override
    overridden: bool  # the connection set api_domain itself: it wins over everything
    from_token: str | None  # the api_domain Zoho returned with the token
    environment: str  # production | sandbox | developer
    environment_labels: Mapping[str, str]  # environment → first host label ("www", "sandbox", …)


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


HOSTS: dict[str, HostRule] = {"api": account_api, "crm_environment": crm_environment}
