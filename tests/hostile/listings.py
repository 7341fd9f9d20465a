"""Fake list endpoints of CRM and Books, whose pages can be broken on demand.

Records are numbered from 0 so a test can check that a walk delivered each one exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.hostile.server import Reply, Request, Wire

__all__ = ["BROKEN", "BooksListing", "CrmListing", "ids"]

# 2xx answers that are not the JSON Zoho documents, and one plain server error, to put where a page should be.
BROKEN: dict[str, Reply] = {
    "html": Reply("<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
    "html-as-json": Reply("<html><body>Service Unavailable</body></html>"),
    "truncated-json": Reply('{"data": [{"id": "r1", "Last_Name": "Do'),
    "http-500": Reply({"code": "INTERNAL_ERROR", "message": "unexpected failure"}, status=500),
}


@dataclass
class CrmListing:
    """GET /crm/v8/{module}: `page`/`per_page`, and `page_token` when `tokens` (tokens are "tok-<page>")."""

    total: int
    tokens: bool = False
    broken: dict[int, Reply] = field(default_factory=dict)  # page → the reply sent instead, once

    def __call__(self, request: Request, wire: Wire) -> Reply:
        per_page = int(request.query.get("per_page", 200))
        token = request.query.get("page_token")
        page = int(token.removeprefix("tok-")) if token else int(request.query.get("page", 1))
        if page in self.broken:
            return self.broken.pop(page)
        start = (page - 1) * per_page
        records = [{"id": f"r{n}", "Last_Name": f"Doe {n}"} for n in range(start, min(start + per_page, self.total))]
        more = start + per_page < self.total
        info = {
            "per_page": per_page,
            "count": len(records),
            "page": page,
            "more_records": more,
            "next_page_token": f"tok-{page + 1}" if more and self.tokens else None,
        }
        return Reply({"data": records, "info": info})


@dataclass
class BooksListing:
    """GET /books/v3/contacts with `page`/`per_page` and `page_context.has_more_page`."""

    total: int
    broken: dict[int, Reply] = field(default_factory=dict)

    def __call__(self, request: Request, wire: Wire) -> Reply:
        per_page = int(request.query.get("per_page", 200))
        page = int(request.query.get("page", 1))
        if page in self.broken:
            return self.broken.pop(page)
        start = (page - 1) * per_page
        contacts = [
            {"contact_id": f"c{n}", "contact_name": f"Zylker {n}"}
            for n in range(start, min(start + per_page, self.total))
        ]
        context = {"page": page, "per_page": per_page, "has_more_page": start + per_page < self.total}
        return Reply({"code": 0, "message": "success", "contacts": contacts, "page_context": context})


def ids(records: list[Any], key: str = "id") -> list[str]:
    return [str(r[key]) for r in records]
