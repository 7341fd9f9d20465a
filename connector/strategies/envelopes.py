"""Envelopes: how a product wraps its answers, and so how an answer becomes data or an error.

    crm      {"data": […], "info": {…}}; errors {"code", "message", "details", "status": "error"}, at the top level
             or per record in data[] (per channel in watch[] for notifications); HTTP 400 "Access Denied" is
             throttling; 401 INVALID_TOKEN asks for a refresh.
    finance  {"code": 0, "message": "success", "<entity>": …}: a non-zero code is an error even with HTTP 200
             (Books, Inventory, Invoice, Expense, Billing).
    bare     the data itself (a JSON array or object) with errors told by the HTTP status alone.

`classify` says what an answer means when the product's wording decides it; None leaves it to the generic HTTP
rules in `_retry`. `error` gives the code, message and details the product puts in an answer: the runtime reads
no member of an answer itself. An envelope may name `request_id_headers`, the response headers that carry the
product's request id, most telling first (without it: X-Request-Id and X-Correlation-Id), and `remaining_headers`,
the product's own headers for the calls left in the allowance (besides X-RateLimit-Remaining and
X-Rate-Limit-Remaining, which are always read). An envelope may also
offer `results(body, member)`: a write answer split into one result per item for actions that send many items at
once (`batch:`); without it, the items at `member` are taken as they are.
Sources: ../shared/notes/zoho-api.md §3-4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol

__all__ = ["ENVELOPES", "Envelope", "ErrorFields", "ItemResults", "Verdict"]

Verdict = Literal["ok", "auth", "throttled", "transient", "error"]


class ErrorFields(NamedTuple):
    code: str | None = None
    message: str | None = None
    details: Any = None


# The headers Zoho's APIs put their request id in, in the order they are looked for.
ZOHO_REQUEST_ID_HEADERS = ("x-request-id", "x-zoho-request-id", "x-correlation-id")
# Calls left, as a third-party source says Zoho reports its API credits (zoho-api.md §3, UNCERTAIN).
ZOHO_REMAINING_HEADERS = ("x-api-credits-remaining",)


class Envelope(Protocol):
    def classify(self, status: int, body: Any) -> Verdict | None:
        """The meaning of this answer when the product's own wording decides it, else None."""

    def error(self, body: Any) -> ErrorFields:
        """Zoho's code, message and details from an answer (an error, or a successful answer's first item)."""


class ItemResults(Protocol):
    def results(self, body: Any, member: str | None) -> list[dict[str, Any]] | None:
        """One result per item of a many-items write, in order, each with the product's `code`, `status`,
        `message`, `details` and the item's `id` when known; None when the answer holds no such list."""


def _str(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _top_level(body: Any) -> ErrorFields:
    if not isinstance(body, Mapping):
        return ErrorFields()
    if "code" in body:
        return ErrorFields(_str(body["code"]), _str(body.get("message")), body.get("details"))
    if "error" in body:  # Zoho Accounts' {error, error_description}
        return ErrorFields(_str(body["error"]), _str(body.get("error_description")), body.get("details"))
    return ErrorFields(details=body.get("details"))


class CrmEnvelope:
    request_id_headers = ZOHO_REQUEST_ID_HEADERS
    remaining_headers = ZOHO_REMAINING_HEADERS
    # Codes for an access token Zoho no longer accepts: refresh once and replay.
    AUTH_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE", "INVALID_OAUTHTOKEN"})
    # How CRM words throttling when it answers HTTP 400 or 403 instead of 429.
    THROTTLE_CODES = frozenset({"ACCESS DENIED", "ACCESS_DENIED", "TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED"})
    THROTTLE_PHRASES = ("too many requests", "throttle")

    def classify(self, status: int, body: Any) -> Verdict | None:
        code, message, _ = self.error(body)
        upper = (code or "").upper()
        text = f"{code or ''} {message or ''}".lower()
        if status in (400, 403) and (upper in self.THROTTLE_CODES or any(p in text for p in self.THROTTLE_PHRASES)):
            return "throttled"
        if status == 401:
            # OAUTH_SCOPE_MISMATCH and the like are not cured by a new token: report them as they are.
            return "auth" if code is None or upper in self.AUTH_CODES else "error"
        return None

    def error(self, body: Any) -> ErrorFields:
        fields = _top_level(body)
        if fields.code is None and isinstance(body, Mapping):
            # Per-item results: records in `data`, notification channels (/actions/watch) in `watch`.
            for member in ("data", "watch"):
                rows = body.get(member)
                if isinstance(rows, list) and rows and isinstance(rows[0], Mapping) and "code" in rows[0]:
                    first = rows[0]
                    details = first.get("details")
                    return ErrorFields(
                        _str(first["code"]),
                        _str(first.get("message")),
                        body.get("details") if details is None else details,
                    )
        return fields

    # Members of a per-record row that are not the result's own (code, status, message, details): upserts add
    # `action` (insert | update) and `duplicate_field`, and they are kept as Zoho sends them.
    _ROW_KEYS = frozenset({"code", "status", "message", "details"})

    def results(self, body: Any, member: str | None) -> list[dict[str, Any]] | None:
        rows = body.get(member or "data") if isinstance(body, Mapping) else None
        # `dict | Mapping`: the plain-dict check first, as a bulk write reads 100 rows an answer and an ABC check
        # per row costs more than the rest of the row's reading.
        if not isinstance(rows, list) or not all(isinstance(row, dict | Mapping) for row in rows):
            return None
        out = []
        for row in rows:
            details = row.get("details")
            # A success names the record in details.id; a failed delete names the id it could not find there too.
            found = details.get("id") if isinstance(details, dict | Mapping) else None
            entry = {
                "code": _str(row.get("code")),
                "status": _str(row.get("status")),
                "message": _str(row.get("message")),
                "details": details,
                "id": found if isinstance(found, str) else None,
            }
            if len(row) > len(self._ROW_KEYS) or not self._ROW_KEYS.issuperset(row):
                entry.update((k, v) for k, v in row.items() if k not in self._ROW_KEYS)
            out.append(entry)
        return out


class FinanceEnvelope:
    request_id_headers = ZOHO_REQUEST_ID_HEADERS
    remaining_headers = ZOHO_REMAINING_HEADERS

    def classify(self, status: int, body: Any) -> Verdict | None:
        if status == 401:
            return "auth"
        code = self.error(body).code
        if 200 <= status < 300 and code not in (None, "0"):
            return "error"
        return None

    def error(self, body: Any) -> ErrorFields:
        return _top_level(body)


class BareEnvelope:
    request_id_headers = ZOHO_REQUEST_ID_HEADERS
    remaining_headers = ZOHO_REMAINING_HEADERS

    def classify(self, status: int, body: Any) -> Verdict | None:
        return None

    def error(self, body: Any) -> ErrorFields:
        return _top_level(body)


ENVELOPES: dict[str, Envelope] = {"crm": CrmEnvelope(), "finance": FinanceEnvelope(), "bare": BareEnvelope()}
