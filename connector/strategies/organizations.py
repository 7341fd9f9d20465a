"""Organization conventions: how a product's calls name the organization (Books, Inventory, Invoice, …).

    none              the product has no organizations (CRM: one organization per account)
    query             a query parameter, e.g. Books' `organization_id`
    header            a header, e.g. Invoice's `X-com-zoho-invoice-organizationid`
    query_and_header  both at once; `name` is "<query parameter> <header>", e.g. Expense's
                      "organization_id X-com-zoho-expense-organizationid"

Expense's documentation disagrees with itself (the introduction says query `organization_id`, the errors page a
header `X-com-zoho-expense-organizationid`; zoho-api.md §5, UNCERTAIN), so `query_and_header` sends the same id
in both places and works under either reading.

A value the caller already put in the request (a raw request's own query parameter or header) wins: it is the
action's input, the highest precedence; `given` finds it so that no organization is looked up for such a call.
`pick_organization` reads the product's organizations list, whose keys the manifest names, and picks the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from connector.errors import BadResponseError

__all__ = ["ORGANIZATIONS", "OrganizationConvention", "pick_organization"]


class OrganizationConvention(Protocol):
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        """Put the organization id into the request unless the caller already did."""

    def given(self, name: str, params: Sequence[tuple[str, Any]], headers: Mapping[str, str]) -> str | None:
        """The organization id the caller already put in the request, if any."""


def _query(name: str, params: Sequence[tuple[str, Any]]) -> str | None:
    return next((str(v) for k, v in params if k == name and v is not None), None)


def _header(name: str, headers: Mapping[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


class NoOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        return

    def given(self, name: str, params: Sequence[tuple[str, Any]], headers: Mapping[str, str]) -> str | None:
        return None


class QueryOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        if _query(name, params) is None:
            params.append((name, value))

    def given(self, name: str, params: Sequence[tuple[str, Any]], headers: Mapping[str, str]) -> str | None:
        return _query(name, params)


class HeaderOrganization:
    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        if _header(name, headers) is None:
            headers[name] = value

    def given(self, name: str, params: Sequence[tuple[str, Any]], headers: Mapping[str, str]) -> str | None:
        return _header(name, headers)


class QueryAndHeaderOrganization:
    """The id in a query parameter and a header; `name` is "<parameter> <header>". When the caller set one of
    them, that value fills the other too, so the two never name different organizations."""

    @staticmethod
    def _names(name: str) -> tuple[str, str]:
        query, _, header = name.partition(" ")
        return query, header.strip() or query

    def place(self, name: str, value: str, params: list[tuple[str, Any]], headers: dict[str, str]) -> None:
        query, header = self._names(name)
        value = self.given(name, params, headers) or value
        if _query(query, params) is None:
            params.append((query, value))
        if _header(header, headers) is None:
            headers[header] = value

    def given(self, name: str, params: Sequence[tuple[str, Any]], headers: Mapping[str, str]) -> str | None:
        query, header = self._names(name)
        return _query(query, params) or _header(header, headers)


ORGANIZATIONS: dict[str, OrganizationConvention] = {
    "none": NoOrganization(),
    "query": QueryOrganization(),
    "header": HeaderOrganization(),
    "query_and_header": QueryAndHeaderOrganization(),
}


def pick_organization(body: Any, discover: Mapping[str, str], product: str) -> str | None:
    """The default organization's id from a discovery answer (`discover` names the list, id and default flag
    members), the first one when none is marked default, None when the account has none."""
    found = body.get(discover["list"]) if isinstance(body, Mapping) else None
    if found is None or found == []:
        return None
    entries = [o for o in found if isinstance(o, Mapping)] if isinstance(found, list) else []
    with_id = [o for o in entries if _usable_id(o.get(discover["id"]))]
    if not with_id:
        raise BadResponseError(
            f"{product}'s organizations answer has no usable {discover['list']!r} list with {discover['id']!r}",
            retryable=False,
        )
    flag = discover.get("default")
    chosen = next((o for o in with_id if flag and o.get(flag) is True), with_id[0])
    return str(chosen[discover["id"]])


def _usable_id(value: Any) -> bool:
    """An organization id the runtime can send: a number, or letters, digits, '-' and '_' (it travels in a query
    parameter or a header, where a line break or an accent would split or break the request)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return re.fullmatch(r"[0-9A-Za-z_-]+", str(value)) is not None
