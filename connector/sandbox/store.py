"""The Zoho Partner Store API: GET-only lists of subscriptions, transactions, commissions and leads.

What the notes establish (zoho-api.md §6): the root `/api/v1/partner`, GET only, bare JSON arrays, 200 items a page
by default, the `ZohoPayments.<kind>.READ` scopes, and that `/subscriptions/status/active` answers 400. What they do
not, and how the emulator reads it (each UNCERTAIN, chosen so a client that works here survives the other reading):

- the pagination header's name: `X-Has-More-Page` and `X-Total-Count` by default; `page_headers: "none"` (through
  `POST /__sandbox/store`) sends no header at all, so clients must also stop on a short or empty page;
- the page parameters: `page` and `per_page`, refused outside 1… and 1…200 rather than silently clamped;
- subscriptions carry both `subscription_type` and `pricing_type` (the source names both for one value);
- transaction, commission and lead fields were never obtained: the ones here follow the sync FAQ (a transaction is
  any action on a subscription; one commission per commission-earning transaction, open, requested or completed);
- error bodies: `{"code", "message"}` with the HTTP status telling the kind.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, state_of
from connector.sandbox.state import JSON, SandboxState

PREFIX = "/api/v1/partner"
KINDS = ("subscriptions", "transactions", "commissions", "leads")
MAX_PER_PAGE = 200
STORE_ID_BASE = 7_000_000_000_000
PageHeaders = Literal["more", "none"]
PAGE_HEADERS: tuple[PageHeaders, ...] = ("more", "none")

_PLANS = (
    ("ZohoCRM", "Zoho CRM", "CRM Enterprise", 480.0),
    ("ZohoBooks", "Zoho Books", "Books Professional", 240.0),
    ("ZohoOne", "Zoho One", "Zoho One All Employee", 1080.0),
)
_FREQUENCIES = ("monthly", "quarterly", "half_yearly", "yearly")
_TRANSACTION_TYPES = ("new", "renewal", "upgrade", "addon", "downgrade", "cancellation")
_COMMISSION_STATUSES = ("open", "requested", "completed")
_LEAD_STATUSES = ("new", "contacted", "converted")


def records(state: SandboxState, kind: str) -> list[JSON]:
    return state.store.setdefault(kind, [])


def _new_id(state: SandboxState) -> str:
    state.counter += 1
    return str(STORE_ID_BASE + state.counter)


def _day(n: int) -> str:
    return f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}"


def _company(n: int) -> tuple[str, str]:
    return f"Customer {n}", f"owner{n}@customer{n}.example.com"


def make(state: SandboxState, kind: str) -> JSON:
    """One new record of `kind`, linked to the records it belongs to (a transaction to a subscription, …)."""
    n = len(records(state, kind)) + 1
    rid = _new_id(state)
    company, email = _company(n)
    if kind == "subscriptions":
        service_id, service, plan, amount = _PLANS[n % len(_PLANS)]
        pricing = "partner_price" if n % 2 else "list_price"
        return {
            "id": rid,
            "subscription_id": rid,
            "subscription_type": pricing,
            "pricing_type": pricing,
            "status": "active" if n % 5 else "inactive",
            "subscription_start_date": _day(n),
            "next_recurring_date": _day(n + 3),
            "next_recurring_amount": amount,
            "next_recurring_amount_usd": amount,
            "billing_frequency": _FREQUENCIES[n % len(_FREQUENCIES)],
            "email_id": email,
            "customer_company_name": company,
            "org_id": str(60_000_000 + n),
            "plan_id": f"{service_id}-{plan.split()[-1].lower()}",
            "plan_name": plan,
            "profile_id": str(80_000_000 + n),
            "service_id": service_id,
            "service_name": service,
        }
    if kind == "transactions":
        subscription = _parent(state, "subscriptions", n)
        amount = float(subscription["next_recurring_amount"])
        return {
            "id": rid,
            "transaction_id": rid,
            "subscription_id": subscription["subscription_id"],
            "transaction_type": _TRANSACTION_TYPES[n % len(_TRANSACTION_TYPES)],
            "transaction_date": _day(n),
            "amount": amount,
            "amount_usd": amount,
            "currency_code": "USD",
            "customer_company_name": subscription["customer_company_name"],
            "email_id": subscription["email_id"],
            "plan_name": subscription["plan_name"],
            "service_name": subscription["service_name"],
            "org_id": subscription["org_id"],
        }
    if kind == "commissions":
        transaction = _parent(state, "transactions", n)
        amount = round(float(transaction["amount"]) * 0.2, 2)
        return {
            "id": rid,
            "commission_id": rid,
            "transaction_id": transaction["transaction_id"],
            "subscription_id": transaction["subscription_id"],
            "commission_percentage": 20,
            "commission_amount": amount,
            "commission_amount_usd": amount,
            "status": _COMMISSION_STATUSES[n % len(_COMMISSION_STATUSES)],
            "created_date": transaction["transaction_date"],
            "customer_company_name": transaction["customer_company_name"],
            "service_name": transaction["service_name"],
        }
    service_id, service, _, _ = _PLANS[n % len(_PLANS)]
    return {
        "id": rid,
        "lead_id": rid,
        "company_name": company,
        "contact_name": f"Contact {n}",
        "email_id": email,
        "phone": f"+1-555-{n:07d}",
        "service_id": service_id,
        "service_name": service,
        "status": _LEAD_STATUSES[n % len(_LEAD_STATUSES)],
        "created_date": _day(n),
    }


def _parent(state: SandboxState, kind: str, n: int) -> JSON:
    """The n-th existing record of `kind` (cycling), making one when there is none."""
    found = records(state, kind)
    if not found:
        found.append(make(state, kind))
    return found[(n - 1) % len(found)]


def seed(state: SandboxState, kind: str, count: int) -> int:
    """Add `count` records of `kind`; returns how many the kind now holds."""
    if kind not in KINDS:
        raise ValueError(f"unknown store kind {kind!r}: use one of {', '.join(KINDS)}")
    found = records(state, kind)
    for _ in range(count):
        found.append(make(state, kind))
    return len(found)


def seed_defaults(state: SandboxState) -> None:
    """A small partner's world: a few of each kind, commissions one per transaction."""
    for kind, count in (("subscriptions", 3), ("transactions", 3), ("commissions", 3), ("leads", 2)):
        seed(state, kind, count)


def _error(code: str, message: str, status: int) -> Response:
    return json_response({"code": code, "message": message}, status)


def _positive(request: Request, name: str, default: int, most: int | None) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isdigit() else 0
    if value < 1 or (most is not None and value > most):
        bound = f"between 1 and {most}" if most is not None else "a positive integer"
        return _error("INVALID_PARAMETER", f"{name} must be {bound}", 400)
    return value


async def list_kind(request: Request) -> Response:
    state = state_of(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        return _error("INVALID_URL", "Invalid URL", 404)
    page = _positive(request, "page", 1, None)
    if isinstance(page, Response):
        return page
    per_page = _positive(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    if isinstance(per_page, Response):
        return per_page
    found = records(state, kind)
    start = (page - 1) * per_page
    body: list[Any] = found[start : start + per_page]
    headers: dict[str, str] = {}
    if state.store_page_headers == "more":
        headers = {"X-Has-More-Page": str(start + per_page < len(found)).lower(), "X-Total-Count": str(len(found))}
    return json_response(body, headers=headers)


async def sub_path(request: Request) -> Response:
    """Path filters such as /subscriptions/status/active: Zoho answers 400 (zoho-api.md §6)."""
    if request.path_params["kind"] not in KINDS:
        return _error("INVALID_URL", "Invalid URL", 404)
    return _error("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", 400)


async def admin(request: Request) -> Response:
    """GET shows, POST sets the emulator's knobs: {"page_headers": "more" | "none"}."""
    state = state_of(request)
    if request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            body = None
        headers = body.get("page_headers") if isinstance(body, dict) else None
        if headers not in PAGE_HEADERS:
            return json_response({"status": "error", "message": "page_headers must be 'more' or 'none'"}, 400)
        state.store_page_headers = headers
    counts = {kind: len(records(state, kind)) for kind in KINDS}
    return json_response({"page_headers": state.store_page_headers, "records": counts})


def error_for(status: int) -> Response:
    """Routing misses under the Store's root, in its words (405: the API is GET only)."""
    if status == 405:
        return _error("METHOD_NOT_ALLOWED", "Only GET is supported by the Partner API", 405)
    return _error("INVALID_URL", "Invalid URL", 404)


def needs(method: str, path: str) -> list[list[str]] | None:
    """Scope alternatives for a Store call (`path` after the root); None for a path the Store does not serve."""
    kind = next((p for p in path.split("/") if p), "")
    if kind not in KINDS:
        return None
    return [[f"ZohoPayments.{kind}.READ", f"ZohoPayments.{kind}.ALL"]]


routes = [
    Route(PREFIX + "/{kind}", list_kind, methods=["GET"]),
    Route(PREFIX + "/{kind}/{rest:path}", sub_path, methods=["GET"]),
    Route("/__sandbox/store", admin, methods=["GET", "POST"]),
]
