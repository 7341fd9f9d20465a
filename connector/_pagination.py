"""Pagination strategies: given one page, where are its records and what asks for the next page.

crm:   `info.more_records` says whether more exist. The next page is asked by `page_token` when Zoho gives an
       `info.next_page_token` (the only way past the first 2,000 rows), else by `page` + 1.
books: `page_context.has_more_page`, then `page` + 1 (Books, Invoice, Inventory and the other Finance apps).

A page token seen twice means the walk would loop forever: that is an error, not a silent stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ZohoAPIError

__all__ = ["Pager", "combine", "records_key_of"]

CRM_DISCRETE_LIMIT = 2000  # rows reachable with page/per_page; page_token reaches the rest


@dataclass
class Pager:
    style: str
    records_key: str | None = None
    page: int = 1
    per_page: int = 200
    seen_tokens: set[str] = field(default_factory=set)

    def records(self, body: Any) -> list[Any]:
        if not isinstance(body, Mapping):
            return []
        found = body.get(records_key_of(body, self.records_key))
        return found if isinstance(found, list) else []

    def next_page(self, body: Any) -> dict[str, Any] | None:
        """Query overrides for the next page (None removes a parameter), or None when this was the last."""
        if not isinstance(body, Mapping):
            return None
        if self.style == "crm":
            return self._next_crm(body.get("info") or {})
        context = body.get("page_context") or {}
        if not context.get("has_more_page"):
            return None
        self.page = int(context.get("page", self.page)) + 1
        return {"page": self.page}

    def _next_crm(self, info: Mapping[str, Any]) -> dict[str, Any] | None:
        if not info.get("more_records"):
            return None
        token = info.get("next_page_token")
        if token:
            if token in self.seen_tokens:
                raise ZohoAPIError(
                    status=200,
                    code="REPEATED_PAGE_TOKEN",
                    message=f"Zoho returned a page token it had already given (after {len(self.seen_tokens)} "
                    "token pages); stopping instead of looping",
                )
            self.seen_tokens.add(token)
            return {"page_token": token, "page": None}
        self.page = int(info.get("page", self.page)) + 1
        if (self.page - 1) * self.per_page >= CRM_DISCRETE_LIMIT:
            raise ZohoAPIError(
                status=200,
                code="DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                message="more records exist past 2,000 but Zoho gave no next_page_token to reach them",
            )
        return {"page": self.page}


def combine(style: str, first: Any, records_key: str | None, records: list[Any]) -> Any:
    """One answer that looks like a single, last page holding every record (the shape of `run` with Fetch All)."""
    if not isinstance(first, Mapping):
        return {"data": records}
    out = dict(first)
    out[records_key_of(first, records_key)] = records
    if style == "crm":
        out["info"] = {
            **(first.get("info") or {}),
            "count": len(records),
            "more_records": False,
            "next_page_token": None,
        }
    else:
        out["page_context"] = {**(first.get("page_context") or {}), "has_more_page": False}
    return out


def records_key_of(page: Any, declared: str | None) -> str:
    """The member holding the records: the declared one, else the page's only list (Books: "invoices", …)."""
    if declared:
        return declared
    if isinstance(page, Mapping):
        lists = [k for k, v in page.items() if isinstance(v, list) and k != "page_context"]
        if len(lists) == 1:
            return str(lists[0])
    return "data"
