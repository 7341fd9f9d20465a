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
- error bodies: `{"code", "message"}` with the HTTP status telling the kind;
- query filters, which no source names: any other query parameter that names a field of the kind's records keeps
  the records whose field, as text, equals its value (`?status=active`); other names are ignored, as a server
  ignores parameters it does not know;
- the list order, which the notes do not give either: oldest first by default, newest first with
  `{"order": "newest_first"}` (through `POST /__sandbox/store`), so a client can be tried against both.

Records added while the sandbox runs (`POST /__sandbox/store {"add": …}` or `/__sandbox/seed`) carry the sandbox
clock's date (`transaction_date`, `created_date`), and a new transaction changes the subscription it acts on (a
renewal moves `next_recurring_date`, a cancellation makes it inactive, …): the FAQ's "the information on a
Subscription only changes as a result of a Transaction". `{"update": {"kind", "id", "fields"}}` changes a record
in place, as Zoho does when a commission moves from open to requested to completed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, now_of, state_of
from connector.sandbox.state import JSON, SandboxState

PREFIX = "/api/v1/partner"
KINDS = ("subscriptions", "transactions", "commissions", "leads")
MAX_PER_PAGE = 200
STORE_ID_BASE = 7_000_000_000_000
PageHeaders = Literal["more", "none"]
PAGE_HEADERS: tuple[PageHeaders, ...] = ("more", "none")
Order = Literal["oldest_first", "newest_first"]
ORDERS: tuple[Order, ...] = ("oldest_first", "newest_first")
_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}

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


def _today(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).date().isoformat()


def _months_later(day: str, months: int) -> str:
    start = date.fromisoformat(day)
    index = start.month - 1 + months
    return start.replace(year=start.year + index // 12, month=index % 12 + 1, day=min(start.day, 28)).isoformat()


def _company(n: int) -> tuple[str, str]:
    return f"Customer {n}", f"owner{n}@customer{n}.example.com"


def make(state: SandboxState, kind: str, now: float | None = None) -> JSON:
    """One new record of `kind`, linked to the records it belongs to (a transaction to a subscription, …). With
    `now` (the sandbox clock), it is dated that day and a transaction acts on its subscription."""
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
            "subscription_start_date": _day(n) if now is None else _today(now),
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
        transaction = {
            "id": rid,
            "transaction_id": rid,
            "subscription_id": subscription["subscription_id"],
            "transaction_type": _TRANSACTION_TYPES[n % len(_TRANSACTION_TYPES)],
            "transaction_date": _day(n) if now is None else _today(now),
            "amount": amount,
            "amount_usd": amount,
            "currency_code": "USD",
            "customer_company_name": subscription["customer_company_name"],
            "email_id": subscription["email_id"],
            "plan_name": subscription["plan_name"],
            "service_name": subscription["service_name"],
            "org_id": subscription["org_id"],
        }
        if now is not None:
            _act_on(subscription, transaction)
        return transaction
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
            "created_date": transaction["transaction_date"] if now is None else _today(now),
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
        "created_date": _day(n) if now is None else _today(now),
    }


def _act_on(subscription: JSON, transaction: JSON) -> None:
    """What a new transaction does to its subscription."""
    kind = transaction["transaction_type"]
    if kind in ("new", "renewal"):
        subscription["status"] = "active"
        months = _MONTHS.get(str(subscription["billing_frequency"]), 12)
        subscription["next_recurring_date"] = _months_later(str(subscription["next_recurring_date"]), months)
    elif kind == "cancellation":
        subscription["status"] = "inactive"
    else:  # upgrade, addon, downgrade: the next charge changes
        factor = 0.9 if kind == "downgrade" else 1.1
        amount = round(float(subscription["next_recurring_amount"]) * factor, 2)
        subscription["next_recurring_amount"] = subscription["next_recurring_amount_usd"] = amount


def _parent(state: SandboxState, kind: str, n: int) -> JSON:
    """The n-th existing record of `kind` (cycling), making one when there is none."""
    found = records(state, kind)
    if not found:
        found.append(make(state, kind))
    return found[(n - 1) % len(found)]


def seed(state: SandboxState, kind: str, count: int, now: float | None = None) -> int:
    """Add `count` records of `kind` (dated `now` when given); returns how many the kind now holds."""
    add(state, kind, count, now)
    return len(records(state, kind))


def add(state: SandboxState, kind: str, count: int, now: float | None = None) -> list[JSON]:
    """Add `count` records of `kind` and return them."""
    if kind not in KINDS:
        raise ValueError(f"unknown store kind {kind!r}: use one of {', '.join(KINDS)}")
    found = records(state, kind)
    made = []
    for _ in range(count):
        made.append(make(state, kind, now))
        found.append(made[-1])
    return made


def update(state: SandboxState, kind: str, rid: str, changes: Any) -> JSON:
    """Change a record in place (its ids stay); raises LookupError when there is none, ValueError for bad input."""
    if kind not in KINDS:
        raise ValueError(f"unknown store kind {kind!r}: use one of {', '.join(KINDS)}")
    if not isinstance(changes, dict) or {"id", f"{kind[:-1]}_id"} & set(changes):
        raise ValueError("fields must be an object that does not change the record's ids")
    for record in records(state, kind):
        if record["id"] == rid:
            record.update(changes)
            return record
    raise LookupError(f"no {kind} record {rid!r}")


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


def _filtered(found: list[JSON], request: Request) -> list[JSON]:
    """The records every query filter keeps (a parameter naming a field of the records; see the module's notes)."""
    fields = set().union(*(r.keys() for r in found)) if found else set()
    filters = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page") and k in fields]
    return [r for r in found if all(_text(r.get(k)) == v for k, v in filters)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


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
    found = _filtered(records(state, kind), request)
    if state.store_order == "newest_first":
        found = found[::-1]
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
    """GET shows the emulator's knobs and record counts; POST sets knobs and changes records, any of:
    {"page_headers": "more" | "none", "order": "oldest_first" | "newest_first",
     "add": {"kind": "transactions", "count": 5}, "update": {"kind": "commissions", "id": "…", "fields": {…}}}.
    Added records carry the sandbox clock's date; the answer lists them under "added" (and "updated")."""
    state = state_of(request)
    out: JSON = {}
    if request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _bad("the body must be a JSON object")
        unknown = set(body) - {"page_headers", "order", "add", "update"}
        if unknown:
            return _bad(f"unknown keys {sorted(unknown)}: use page_headers, order, add, update")
        if "page_headers" in body and body["page_headers"] not in PAGE_HEADERS:
            return _bad("page_headers must be 'more' or 'none'")
        if "order" in body and body["order"] not in ORDERS:
            return _bad("order must be 'oldest_first' or 'newest_first'")
        state.store_page_headers = body.get("page_headers", state.store_page_headers)
        state.store_order = body.get("order", state.store_order)
        try:
            if "update" in body:
                change = body["update"] if isinstance(body["update"], dict) else {}
                out["updated"] = update(state, str(change.get("kind")), str(change.get("id")), change.get("fields"))
            if "add" in body:
                wanted = body["add"] if isinstance(body["add"], dict) else {}
                count = wanted.get("count", 1)
                if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100_000:
                    return _bad("add.count must be an integer between 0 and 100,000")
                out["added"] = add(state, str(wanted.get("kind")), count, now_of(request))
        except LookupError as exc:
            return json_response({"status": "error", "message": str(exc)}, 404)
        except ValueError as exc:
            return _bad(str(exc))
    counts = {kind: len(records(state, kind)) for kind in KINDS}
    return json_response(
        {"page_headers": state.store_page_headers, "order": state.store_order, "records": counts, **out}
    )


def _bad(message: str) -> Response:
    return json_response({"status": "error", "message": message}, 400)


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
