"""Organization conventions: how a product's calls name the organization (Books, Inventory, Invoice, …).

    none    the product has no organizations (CRM: one organization per account)
    query   a query parameter, e.g. Books' `organization_id`
    header  a header, e.g. Invoice's `X-com-zoho-invoice-organizationid`

A value the caller already put in the request (a raw request's own query parameter or header) wins: it is the
action's input, the highest precedence. `pick_organization` reads the product's organizations list, whose keys the
manifest names, and picks the default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from connector.errors import BadResponseError

__all__ = ["ORGANIZATIONS", "OrganizationConvention", "pick_organization"]


class OrganizationConvention(Protocol):
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        """Put the organization id into the request unless the caller already did."""


class NoOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        return


class QueryOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        if not any(key == name for key, _ in params):
            params.append((name, value))


class HeaderOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        if name.lower() not in {key.lower() for key in headers}:
            headers[name] = value


ORGANIZATIONS: dict[str, OrganizationConvention] = {
    "none": NoOrganization(),
    "query": QueryOrganization(),
    "header": HeaderOrganization(),
}


def pick_organization(body: Any, discover: Mapping[str, str], product: str) -> str | None:
    """The default organization's id from a discovery answer (`discover` names the list, id and default flag
    members), the first one when none is marked default, None when the account has none."""
    found = body.get(discover["list"]) if isinstance(body, Mapping) else None
    if found is None or found == []:
        return None
    entries = [o for o in found if isinstance(o, Mapping)] if isinstance(found, list) else []
    with_id = [o for o in entries if isinstance(o.get(discover["id"]), str | int) and str(o[discover["id"]])]
    if not with_id:
        raise BadResponseError(
            f"{product}'s organizations answer has no usable {discover['list']!r} list with {discover['id']!r}",
            retryable=False,
        )
    flag = discover.get("default")
    chosen = next((o for o in with_id if flag and o.get(flag) is True), with_id[0])
    return str(chosen[discover["id"]])
