"""Pagers: where a page's records are, what asks for the next page, and when a walk must stop.

    crm      `info.more_records`; the next page by `page_token` when Zoho gives `info.next_page_token` (the only way
             past the first 2,000 rows), else by `page` + 1. Zoho serves at most 100,000 rows through page tokens.
             A caller's `page_token` is never sent with `page` (Zoho answers AMBIGUITY_DURING_PROCESSING).
    finance  `page_context.has_more_page`, then `page` + 1 (Books and the other Finance apps), up to `max_pages`.
    header   `page` + 1 while response headers say more pages exist, or, without such headers, until a short or
             empty page (APIs that answer bare JSON arrays: the Partner Store).
    coql     LIMIT/OFFSET rewritten in the POSTed `select_query` (CRM's COQL): 2,000 rows a call, from the query's
             own OFFSET, at most its own LIMIT rows in all, up to the 100,000-row OFFSET limit.

Overrides are query parameters, except the member BODY, whose members replace the JSON body's (a pager whose
paging lives in the body). `max_records` (the action's pagination) caps a walk: reaching it while more records
remain is a PaginationError, not a silently short answer.

Every pager ends: a page token or a page seen twice, a "more" page with no records, or a page count past the
limits is a PaginationError, never an endless walk. A pager also knows where a failed walk resumes (`resume()`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from connector.errors import BadResponseError, PaginationError

__all__ = ["BODY", "PAGERS", "CoqlPager", "CrmPager", "FinancePager", "HeaderPager", "PageLimits", "PageStart", "Pager"]

Overrides = dict[str, Any]  # query parameters for the next request; None removes one
BODY = "$body"  # the override holding members of the JSON body to replace (no query parameter starts with `$`)


class PageStart(NamedTuple):
    """Where the caller asked the walk to start (the inputs with the page roles)."""

    page: int | None = None
    per_page: int | None = None
    page_token: str | None = None


class PageLimits(NamedTuple):
    max_pages: int = 10_000  # for APIs that document no limit of their own
    max_records: int | None = None  # the most records the endpoint serves to one walk


class Pager:
    """The shared mechanics: records, repeated-page detection and the resume point. Subclasses read the answer."""

    name: ClassVar[str] = ""
    accepts_bare_lists: ClassVar[bool] = False  # an answer that is the list of records itself

    def __init__(
        self, start: PageStart, records_key: str | None = None, limits: PageLimits | None = None, *, body: Any = None
    ) -> None:
        self.start = start
        self.records_key = records_key
        self.limits = limits or PageLimits()
        self.body = body  # the request's JSON body as rendered, for pagers that page inside it
        self.page = start.page or 1
        self.per_page = start.per_page
        self.pages = 0
        self.rows = 0
        self._position: Overrides | None = None
        self._seen_pages: set[bytes] = set()
        # Request member → the input it is taken from (`{$input: name}`), so that a resume point reads as inputs.
        self.input_names: Mapping[str, str] = {}

    @property
    def position(self) -> Overrides:
        """The request not yet answered: where a failed walk resumes (the first request until one is answered)."""
        if self._position is None:
            self._position = self.first()
        return self._position

    @position.setter
    def position(self, value: Overrides) -> None:
        self._position = value

    # --- what subclasses provide --------------------------------------------------------------------------------

    def first(self) -> Overrides:
        """Overrides for the first request of a walk."""
        return {}

    def single(self) -> Overrides:
        """Overrides for a call that fetches one page only (not a walk)."""
        return self.first()

    def _next(self, body: Any, headers: Mapping[str, str], records: list[Any]) -> Overrides | None:
        raise NotImplementedError

    def _mark_last(self, page: dict[str, Any], count: int) -> None:
        """Make a page read as the last one, holding `count` records."""

    # --- the walk -----------------------------------------------------------------------------------------------

    def records(self, body: Any) -> list[Any]:
        if isinstance(body, list) and self.records_key is None:
            return body
        if not isinstance(body, Mapping):
            return []
        found = body.get(self.records_member(body))
        return found if isinstance(found, list) else []

    def _checked_records(self, body: Any) -> list[Any]:
        """The page's records, refusing a page whose shape would silently lose them."""
        if isinstance(body, list):
            if self.accepts_bare_lists:
                return body
            raise self._bad("the answer is a bare list, not the expected object")
        if not isinstance(body, Mapping):
            raise self._bad(f"the answer is {type(body).__name__}, not an object")
        found = body.get(self.records_member(body))
        if found is not None and not isinstance(found, list):
            raise self._bad(f"`{self.records_member(body)}` is not a list of records")
        return found or []

    def records_member(self, body: Any) -> str:
        """The member holding the records: the declared one, else the page's only list ("invoices", …)."""
        if self.records_key:
            return self.records_key
        if isinstance(body, Mapping):
            lists = [k for k, v in body.items() if isinstance(v, list)]
            if len(lists) == 1:
                return str(lists[0])
        return "data"

    def advance(self, body: Any, headers: Mapping[str, str]) -> Overrides | None:
        """Overrides for the next page, or None when this page was the last. Raises PaginationError for a walk
        that would not end, BadResponseError for a page of the wrong shape."""
        records = self._checked_records(body)
        self.pages += 1
        self.rows += len(records)
        try:
            following = self._next(body, headers, records)
        except PaginationError:
            if self._capped():  # the cap explains the failure better than the pager's own limit
                raise self._cap_error() from None
            raise
        if following is None:
            return None
        if self._capped():
            raise self._cap_error()
        if not records:
            raise PaginationError(
                f"page {self.pages} says more records follow but holds none; stopping instead of looping",
                code="EMPTY_PAGE",
            )
        fingerprint = hashlib.blake2b(json.dumps(records, sort_keys=True, default=str).encode(), digest_size=16)
        if fingerprint.digest() in self._seen_pages:
            raise PaginationError(
                f"page {self.pages} repeats an earlier page's records; stopping instead of looping",
                code="REPEATED_PAGE",
            )
        self._seen_pages.add(fingerprint.digest())
        if self.pages >= self.limits.max_pages:
            raise PaginationError(
                f"more than {self.limits.max_pages} pages; stopping (raise max_pages if this is expected)",
                code="MAX_PAGES",
            )
        self.position = following
        return following

    def _capped(self) -> bool:
        return self.limits.max_records is not None and self.rows >= self.limits.max_records

    def _cap_error(self) -> PaginationError:
        return PaginationError(
            f"this endpoint serves at most {self.limits.max_records:,} records and more remain; "
            "narrow the query (criteria, a custom view) or use a bulk read",
            code="MAX_RECORDS",
        )

    def resume(self) -> Overrides:
        """Where a failed walk continues, as the action's inputs (a member the request takes straight from an input
        is named as that input): run the action again with them, and Fetch All, to get the rest."""
        return {self.input_names.get(k, k): v for k, v in self._resume().items()}

    def _resume(self) -> Overrides:
        """The request members of the next page not yet delivered: its query parameters."""
        return {k: v for k, v in self.position.items() if v is not None}

    def combine(self, first: Any, records: list[Any], *, count: int | None = None) -> Any:
        """One answer shaped like a single last page holding every record (Fetch All's result)."""
        if isinstance(first, list):
            return records
        out = dict(first) if isinstance(first, Mapping) else {}
        out[self.records_member(first)] = records
        self._mark_last(out, len(records) if count is None else count)
        return out

    def _more(self, body: Any, member: str, flag: str) -> Mapping[str, Any] | None:
        """The answer's paging member when its `flag` says more records follow; None when this page was the last.
        A paging member that is not an object is a bad answer, not a last page."""
        found = body.get(member) if isinstance(body, Mapping) else None
        if found is not None and not isinstance(found, Mapping):
            raise self._bad(f"`{member}` is not an object")
        return found if found is not None and found.get(flag) is True else None

    def _bad(self, what: str) -> BadResponseError:
        return BadResponseError(f"page {self.pages}: {what}", retryable=False)


class CrmPager(Pager):
    name = "crm"
    DISCRETE_LIMIT = 2_000  # rows reachable with page/per_page
    TOKEN_LIMIT = 100_000  # rows reachable at all through page tokens

    def __init__(
        self, start: PageStart, records_key: str | None = None, limits: PageLimits | None = None, *, body: Any = None
    ) -> None:
        super().__init__(start, records_key or "data", limits, body=body)
        self._seen_tokens: set[str] = set()

    def first(self) -> Overrides:
        return {"page_token": self.start.page_token, "page": None} if self.start.page_token else {}

    def _next(self, body: Any, headers: Mapping[str, str], records: list[Any]) -> Overrides | None:
        info = self._more(body, "info", "more_records")
        if info is None:
            return None
        if self.rows >= self.TOKEN_LIMIT:
            raise PaginationError(
                f"Zoho serves at most {self.TOKEN_LIMIT:,} records through page tokens and more remain; narrow the "
                "query (criteria, a custom view, modified since) or use a bulk read",
                code="PAGINATION_LIMIT_EXCEEDED",
            )
        token = info.get("next_page_token")
        if token is not None:
            if not isinstance(token, str) or not token:
                raise self._bad("`info.next_page_token` is not a string")
            if token in self._seen_tokens:
                raise PaginationError(
                    f"Zoho returned a page token it had already given (after {len(self._seen_tokens)} token pages); "
                    "stopping instead of looping",
                    code="REPEATED_PAGE_TOKEN",
                )
            self._seen_tokens.add(token)
            return {"page_token": token, "page": None}
        if self.start.page_token or self._seen_tokens:
            raise self._bad("more records but no next_page_token on a page-token walk")
        self.page += 1
        per_page = self.per_page or len(records) or 200
        if (self.page - 1) * per_page >= self.DISCRETE_LIMIT:
            raise PaginationError(
                f"more records exist past {self.DISCRETE_LIMIT:,} but Zoho gave no next_page_token to reach them",
                code="DISCRETE_PAGINATION_LIMIT_EXCEEDED",
            )
        return {"page": self.page}

    def _mark_last(self, page: dict[str, Any], count: int) -> None:
        info = page.get("info")
        page["info"] = {
            **(info if isinstance(info, Mapping) else {}),
            "count": count,
            "more_records": False,
            "next_page_token": None,
        }


class FinancePager(Pager):
    name = "finance"

    def _next(self, body: Any, headers: Mapping[str, str], records: list[Any]) -> Overrides | None:
        if self._more(body, "page_context", "has_more_page") is None:
            return None
        self.page += 1
        return {"page": self.page}

    def records_member(self, body: Any) -> str:
        if not self.records_key and isinstance(body, Mapping):
            lists = [k for k, v in body.items() if isinstance(v, list) and k != "page_context"]
            if len(lists) == 1:
                return str(lists[0])
        return super().records_member(body)

    def _mark_last(self, page: dict[str, Any], count: int) -> None:
        context = page.get("page_context")
        page["page_context"] = {**(context if isinstance(context, Mapping) else {}), "has_more_page": False}


class HeaderPager(Pager):
    """Page numbers, with the answer's headers saying whether more pages exist. Header names vary and some APIs
    send none (the Partner Store says only that "pagination information" is in a header, zoho-api.md §6,
    UNCERTAIN), so every common spelling is read and a short or empty page ends the walk whatever they say:

        more         X-Has-More-Page / X-Has-More / X-More-Records: true|false
        total pages  X-Total-Pages / X-Page-Count / X-Pages
        total rows   X-Total-Count / X-Total-Records / X-Total / X-Count
        next page    X-Next-Page (empty: none), or a Link header with rel="next"

    A page is short against the larger of the requested page size and the largest page seen, so an API that
    ignores `per_page` and serves its own size still ends on its own short page, not after its first one."""

    name = "header"
    accepts_bare_lists = True
    MORE = ("x-has-more-page", "x-has-more", "x-more-records")
    TOTAL_PAGES = ("x-total-pages", "x-page-count", "x-pages")
    TOTAL_ROWS = ("x-total-count", "x-total-records", "x-total", "x-count")
    NEXT_PAGE = ("x-next-page",)
    NO = ("false", "0", "no")

    def __init__(
        self, start: PageStart, records_key: str | None = None, limits: PageLimits | None = None, *, body: Any = None
    ) -> None:
        self._largest_page = 0
        super().__init__(start, records_key, limits, body=body)

    def first(self) -> Overrides:
        return {"page": self.page, "per_page": self.per_page} if self.per_page else {"page": self.page}

    def _next(self, body: Any, headers: Mapping[str, str], records: list[Any]) -> Overrides | None:
        size = max(self.per_page or 0, self._largest(len(records)))
        if not records or (size and len(records) < size):
            return None
        more = _header(headers, self.MORE)
        if more is not None and more.strip().lower() in self.NO:
            return None
        total = _number(_header(headers, self.TOTAL_PAGES))
        if total is not None and self.page >= total:
            return None
        rows = _number(_header(headers, self.TOTAL_ROWS))
        if rows is not None and self.rows + self._skipped() >= rows:
            return None
        following = _header(headers, self.NEXT_PAGE)
        if following is not None and following.strip().lower() in ("", *self.NO, "null", "none"):
            return None
        link = headers.get("link", "")
        told = more is not None or total is not None or rows is not None or following is not None
        if not told and 'rel="next"' not in link and not self.per_page:
            return None  # nothing says more exist and no page size to tell a full page: one page
        self.page += 1
        return {"page": self.page}

    def _largest(self, count: int) -> int:
        self._largest_page = max(self._largest_page, count)
        return self._largest_page

    def _skipped(self) -> int:
        """Rows before the walk's first page (a walk started at page 3 has not seen pages 1 and 2)."""
        return ((self.start.page or 1) - 1) * (self.per_page or 0)


def _number(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((headers[n] for n in names if n in headers), None)


# A query's trailing LIMIT clause: `limit N`, `limit N offset M` or `limit A, B` (whose order COQL leaves unclear).
_LIMIT = re.compile(
    r"\s+(?:limit\s+(?P<limit>\d+)(?:\s+offset\s+(?P<offset>\d+)|\s*,\s*(?P<comma>\d+))?|offset\s+(?P<start>\d+))"
    r"\s*;?\s*$",
    re.IGNORECASE,
)


class CoqlPager(Pager):
    """CRM's COQL: one POST per page, the page chosen by LIMIT/OFFSET inside `select_query`. A single call sends the
    query untouched; a walk starts at the query's OFFSET and returns at most its LIMIT rows (all rows without one),
    2,000 a call, up to the 100,000-row OFFSET limit."""

    name = "coql"
    PAGE = 2_000  # rows per call (COQL's LIMIT maximum)
    OFFSET_LIMIT = 100_000  # OFFSET + LIMIT may not pass this

    def __init__(
        self, start: PageStart, records_key: str | None = None, limits: PageLimits | None = None, *, body: Any = None
    ) -> None:
        super().__init__(start, records_key or "data", limits, body=body)

    def _query(self) -> tuple[str, int, int | None]:
        """The query without its LIMIT clause, its OFFSET and its LIMIT (None: every row)."""
        query = self.body.get("select_query") if isinstance(self.body, Mapping) else None
        if not isinstance(query, str):
            raise PaginationError("a COQL walk needs a select_query in the request body", code="NO_QUERY")
        found = _LIMIT.search(query)
        if found is None:
            return query.rstrip().rstrip(";").rstrip(), 0, None
        if found["comma"] is not None:
            raise PaginationError(
                "write the query's limit as `LIMIT n OFFSET m` for Fetch All (`LIMIT a, b` is ambiguous)",
                code="AMBIGUOUS_LIMIT",
            )
        if found["start"] is not None:  # OFFSET alone: a resumed walk's every row from there (see _resume)
            return query[: found.start()], int(found["start"]), None
        return query[: found.start()], int(found["offset"] or 0), int(found["limit"])

    def _at(self, delivered: int) -> Overrides | None:
        base, offset, limit = self._query()
        offset += delivered
        size = min(self.PAGE, self.OFFSET_LIMIT - offset)
        if limit is not None:
            size = min(size, limit - delivered)
        if size <= 0:
            return None
        return {BODY: {"select_query": f"{base} limit {size} offset {offset}"}}

    def first(self) -> Overrides:
        return self._at(0) or {}

    def single(self) -> Overrides:
        return {}

    def _next(self, body: Any, headers: Mapping[str, str], records: list[Any]) -> Overrides | None:
        info = self._more(body, "info", "more_records")
        if info is None:
            return None
        following = self._at(self.rows)
        if following is None:
            _, _, limit = self._query()
            if limit is not None and self.rows >= limit:
                return None  # the query's own LIMIT is reached: that is the whole answer asked for
            raise PaginationError(
                f"COQL reaches at most {self.OFFSET_LIMIT:,} rows through OFFSET and more remain; narrow the WHERE "
                "clause or use a bulk read",
                code="PAGINATION_LIMIT_EXCEEDED",
            )
        return following

    def _resume(self) -> Overrides:
        """The query that continues the walk with Fetch All: the rest of what the original asked for, from the row
        not yet delivered. `... offset N` without a LIMIT (every row from N, for a query that had no LIMIT) is
        understood by this pager only; a single call would send it to Zoho untouched."""
        position = self.position.get(BODY)
        members: dict[str, Any] = dict(position) if isinstance(position, Mapping) else {}
        query = members.get("select_query")
        found = _LIMIT.search(query) if isinstance(query, str) else None
        if found is None or found["offset"] is None:
            return members
        base, first, limit = self._query()
        offset = int(found["offset"])
        if offset == first:  # nothing delivered: the query as it was given
            return {**members, "select_query": self.body["select_query"]}
        rest = f"offset {offset}" if limit is None else f"limit {limit - (offset - first)} offset {offset}"
        return {**members, "select_query": f"{base} {rest}"}

    def _mark_last(self, page: dict[str, Any], count: int) -> None:
        info = page.get("info")
        page["info"] = {**(info if isinstance(info, Mapping) else {}), "count": count, "more_records": False}


PAGERS: dict[str, type[Pager]] = {"crm": CrmPager, "finance": FinancePager, "header": HeaderPager, "coql": CoqlPager}
