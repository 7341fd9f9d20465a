"""The Zoho Finance suite, generically: Books v3, Inventory v1, Invoice v3, Expense v1 and Billing v1.

The five apps share one shape (zoho-api.md §4-5): `{"code": 0, "message", "<entity>": …}` envelopes,
`page_context`, 200 records a page, numbered documents with computed totals. They differ in their base path and
where the organization id travels, which the `PRODUCTS` table below says. Every app has hundreds of endpoints of one
shape, so the sandbox stores every kind alike (per organization id; an organization several apps share shares its
records, as Books and Inventory do) and only the naming (envelope keys, id fields, messages) varies, driven by the
small table below. Every answer carries Books' `X-Rate-Limit-Limit/-Remaining/-Reset` headers.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox import finance_docs
from connector.sandbox._http import json_response, now_of, state_of
from connector.sandbox.clock import books_time
from connector.sandbox.state import BOOKS_ORG_ID, JSON, SandboxState


@dataclass(frozen=True)
class FinanceProduct:
    key: str  # as in manifest.yaml
    label: str
    service: str  # the scope prefix, e.g. ZohoBooks
    bases: tuple[str, ...]  # the first is current; Billing still answers on Subscriptions' old base
    query: str | None  # the query parameter that may carry the organization id
    header: str | None  # the header that may carry it


# Where each app takes the organization id (zoho-api.md §5). A request with the id elsewhere is refused as a
# request without one. Expense's docs name both the query parameter and the header (UNCERTAIN), so either works.
INVOICE_HEADER = "X-com-zoho-invoice-organizationid"
EXPENSE_HEADER = "X-com-zoho-expense-organizationid"
BILLING_HEADER = "X-com-zoho-subscriptions-organizationid"
PRODUCTS: dict[str, FinanceProduct] = {
    p.key: p
    for p in (
        FinanceProduct("books", "Zoho Books", "ZohoBooks", ("/books/v3",), "organization_id", None),
        FinanceProduct("inventory", "Zoho Inventory", "ZohoInventory", ("/inventory/v1",), "organization_id", None),
        FinanceProduct("invoice", "Zoho Invoice", "ZohoInvoice", ("/invoice/v3",), None, INVOICE_HEADER),
        FinanceProduct("expense", "Zoho Expense", "ZohoExpense", ("/expense/v1",), "organization_id", EXPENSE_HEADER),
        FinanceProduct(
            "billing", "Zoho Billing", "ZohoSubscriptions", ("/billing/v1", "/subscriptions/v1"), None, BILLING_HEADER
        ),
    )
}
# The organization each app's account starts with; distinct, so a client that mixes them up is caught.
DEFAULT_ORG_IDS = {
    "books": BOOKS_ORG_ID,
    "inventory": "20234695",
    "invoice": "30234695",
    "expense": "40234695",
    "billing": "50234695",
}
# Books' per-day allowance by plan (zoho-api.md §4 "Limits": Premium and up); what the three headers report.
DAILY_LIMIT = 10_000

# kind -> (singular envelope key, plural envelope key, id field) where Books departs from "<kind minus s>_id"
NAMES: dict[str, tuple[str, str, str]] = {
    "invoices": ("invoice", "invoices", "invoice_id"),
    "contacts": ("contact", "contacts", "contact_id"),
    "contactpersons": ("contact_person", "contact_persons", "contact_person_id"),
    "bills": ("bill", "bills", "bill_id"),
    "items": ("item", "items", "item_id"),
    "salesorders": ("salesorder", "salesorders", "salesorder_id"),
    "purchaseorders": ("purchaseorder", "purchaseorders", "purchaseorder_id"),
    "estimates": ("estimate", "estimates", "estimate_id"),
    "creditnotes": ("creditnote", "creditnotes", "creditnote_id"),
    "projects": ("project", "projects", "project_id"),
    "tasks": ("task", "tasks", "task_id"),
    "expenses": ("expense", "expenses", "expense_id"),
    "taxes": ("tax", "taxes", "tax_id"),
    "rules": ("rule", "rules", "rule_id"),
    "customerpayments": ("payment", "customerpayments", "payment_id"),
    "vendorpayments": ("vendorpayment", "vendorpayments", "payment_id"),
    "payments": ("payment", "payments", "payment_id"),
    "vendorcredits": ("vendor_credit", "vendor_credits", "vendor_credit_id"),
    "recurringinvoices": ("recurring_invoice", "recurring_invoices", "recurring_invoice_id"),
    "recurringexpenses": ("recurring_expense", "recurring_expenses", "recurring_expense_id"),
    "journals": ("journal", "journals", "journal_id"),
    "chartofaccounts": ("chart_of_account", "chartofaccounts", "account_id"),
    "bankaccounts": ("bankaccount", "bankaccounts", "account_id"),
    "banktransactions": ("banktransaction", "banktransactions", "transaction_id"),
    "timeentries": ("time_entry", "time_entries", "time_entry_id"),
    "taxgroups": ("tax_group", "tax_groups", "tax_group_id"),
    "currencies": ("currency", "currencies", "currency_id"),
    "users": ("user", "users", "user_id"),
    "comments": ("comment", "comments", "comment_id"),
    "address": ("address_info", "addresses", "address_id"),  # /contacts/{id}/address (Books names it singular)
    "retainerinvoices": ("retainerinvoice", "retainerinvoices", "retainerinvoice_id"),
    "expensereports": ("expense_report", "expense_reports", "report_id"),
    "subscriptions": ("subscription", "subscriptions", "subscription_id"),
    "customers": ("customer", "customers", "customer_id"),
    "plans": ("plan", "plans", "plan_code"),
}
CREATED = {
    "invoices",
    "estimates",
    "bills",
    "salesorders",
    "purchaseorders",
    "creditnotes",
    "expenses",
    "journals",
    "retainerinvoices",
}
NUMBERED = {
    "invoices": "INV",
    "estimates": "EST",
    "salesorders": "SO",
    "purchaseorders": "PO",
    "creditnotes": "CN",
    "retainerinvoices": "RET",
}
# POST /{kind}/{id}/status/{status}: the statuses Books offers per kind; any other pair is an unknown URL.
STATUSES: dict[str, tuple[str, ...]] = {
    "invoices": ("sent", "draft", "void"),
    "estimates": ("sent", "accepted", "declined"),
    "salesorders": ("open", "void"),
    "purchaseorders": ("open", "billed", "cancelled"),
    "bills": ("open", "void"),
    "creditnotes": ("open", "draft", "void"),
    "retainerinvoices": ("sent", "draft", "void"),
    "vendorcredits": ("open", "void"),
}
# Kinds with POST /{kind}/{id}/email and GET /{kind}/{id}?accept=pdf.
DOCUMENTS = {"invoices", "estimates", "salesorders", "purchaseorders", "creditnotes", "retainerinvoices", "bills"}
RESERVED = {
    "organization_id",
    "page",
    "per_page",
    "sort_column",
    "sort_order",
    "filter_by",
    "search_text",
    "accept",
    "JSONString",
    "response_option",
    "print",
}
MAX_PER_PAGE = 200


def names(kind: str) -> tuple[str, str, str]:
    """(singular, plural, id field) for the last segment of a kind, falling back to stripping the trailing 's'."""
    last = kind.rsplit("/", 1)[-1]
    if last in NAMES:
        return NAMES[last]
    singular = last[:-3] + "y" if last.endswith("ies") else last.removesuffix("s")
    return singular, last, f"{singular}_id"


def label(kind: str) -> str:
    return names(kind)[0].replace("_", " ")


def books_error(code: int, message: str, status: int) -> JSONResponse:
    return json_response({"code": code, "message": message}, status)


def not_found(kind: str) -> JSONResponse:
    return books_error(1002, f"{label(kind).capitalize()} does not exist.", 404)


@dataclass
class Target:
    parents: list[tuple[str, str]]  # (kind, id) from outermost in
    kind: str
    id: str | None
    action: str | None = None  # "status/<value>", "active", "inactive", "email"


def parse_path(path: str) -> Target | None:
    """Digits are ids; a name after an id is a child kind; a name after a name extends it (settings/taxes)."""
    chain: list[list[str | None]] = []
    for seg in (s for s in path.strip("/").split("/") if s):
        if seg.isdigit():
            if not chain or chain[-1][1] is not None:
                return None
            chain[-1][1] = seg
        elif chain and chain[-1][1] is None:
            chain[-1][0] = f"{chain[-1][0]}/{seg}"
        else:
            chain.append([seg, None])
    if not chain or any(pid is None for _, pid in chain[:-1]):
        return None
    kind, rid = str(chain[-1][0]), chain[-1][1]
    parents = [(str(k), str(p)) for k, p in chain[:-1]]
    if parents and rid is None and (kind.startswith("status/") or kind in {"active", "inactive", "email"}):
        pkind, pid = parents.pop()
        return Target(parents, pkind, pid, action=kind)
    return Target(parents, kind, rid)


def _collection(state: SandboxState, org: str, kind: str) -> dict[str, JSON]:
    return state.books[org].setdefault(kind.rsplit("/", 1)[-1], {})


async def _body(request: Request) -> JSON | JSONResponse:
    """Raw JSON, or the legacy form field (or query parameter) JSONString."""
    ctype = request.headers.get("content-type", "")
    raw: str | bytes | None
    if "form" in ctype:
        value = (await request.form()).get("JSONString")
        raw = value if isinstance(value, str) else None
    else:
        raw = await request.body()
    if not raw:
        raw = request.query_params.get("JSONString") or "{}"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return books_error(4, "Invalid value passed for JSONString", 400)
    if not isinstance(data, dict):
        return books_error(4, "Invalid value passed for JSONString", 400)
    return data


def _matches(entity: JSON, key: str, want: str) -> bool:
    if key == "search_text":
        return any(isinstance(v, str) and want.lower() in v.lower() for v in entity.values())
    for suffix, test in (
        ("_contains", lambda have, w: w in have),
        ("_startswith", lambda have, w: have.startswith(w)),
    ):
        if key.endswith(suffix):
            have = entity.get(key.removesuffix(suffix))
            return have is not None and test(str(have).lower(), want.lower())
    return str(entity.get(key, "")).lower() == want.lower()


def product_of(path: str) -> FinanceProduct | None:
    return next((p for p in PRODUCTS.values() if any(path.startswith(b + "/") for b in p.bases)), None)


def _organization_id(product: FinanceProduct, request: Request) -> str | None:
    """The id where this app reads it; Expense reads either place and refuses two different ids."""
    from_query = request.query_params.get(product.query) if product.query else None
    from_header = request.headers.get(product.header) if product.header else None
    if from_query and from_header and from_query != from_header:
        return None
    return from_query or from_header


def _product(request: Request) -> FinanceProduct:
    found = product_of(request.url.path)
    assert found is not None  # routed here by one of its bases
    return found


async def organizations(request: Request) -> Response:
    state = state_of(request)
    orgs = state.finance_orgs.get(_product(request).key, {})
    rid = request.path_params.get("org_id")
    if rid is None:
        return json_response({"code": 0, "message": "success", "organizations": list(orgs.values())})
    org = orgs.get(rid)
    if org is None:
        return not_found("organizations")
    return json_response({"code": 0, "message": "success", "organization": org})


async def dispatch(request: Request) -> Response:
    """Every path of an app other than /organizations."""
    state, now = state_of(request), now_of(request)
    product = _product(request)
    org = _organization_id(product, request)
    if not org or org not in state.finance_orgs.get(product.key, {}):
        return books_error(6041, f"This user is not associated with the CompanyID/CompanyName:{org or ''}.", 400)
    target = parse_path(request.path_params["path"])
    if target is None:
        return books_error(5, "Invalid URL Passed", 404)
    for pkind, pid in target.parents:
        if pid not in _collection(state, org, pkind):
            return not_found(pkind)
    store = _collection(state, org, target.kind)
    singular, plural, id_field = names(target.kind)
    links = {f"{names(pk)[0]}_id": pid for pk, pid in target.parents}
    method = request.method
    if target.id is None:
        if method == "GET":
            return _list(request, store, links, plural)
        if method == "POST":
            body = await _body(request)
            if isinstance(body, JSONResponse):
                return body
            new: JSON = {**body, **links}
            problem = _check_document(state, org, target.kind, new, creating=True)
            if problem is not None:
                return problem
            new[id_field] = state.new_books_id()
            prefix = NUMBERED.get(target.kind)
            if prefix and not new.get(f"{singular}_number"):
                new[f"{singular}_number"] = f"{prefix}-{len(store) + 1:05d}"
            new.setdefault("status", "draft" if target.kind in CREATED else "active")
            new["created_time"] = new["last_modified_time"] = books_time(now)
            store[new[id_field]] = new
            verb = "created" if target.kind in CREATED else "added"
            return json_response(
                {"code": 0, "message": f"The {label(target.kind)} has been {verb}.", singular: new}, 201
            )
        return _not_allowed(method)
    found = store.get(target.id)
    if found is None or any(found.get(k) not in (None, v) for k, v in links.items()):
        return not_found(target.kind)
    entity: JSON = found
    if target.action is not None:
        if method != "POST":
            return _not_allowed(method)
        if target.action == "email":
            return await _email(request, target.kind, entity, now)
        status = target.action.removeprefix("status/")
        if target.action.startswith("status/") and status not in STATUSES.get(target.kind, ()):
            return books_error(5, "Invalid URL Passed", 404)
        entity["status"] = status
        entity["last_modified_time"] = books_time(now)
        msg = f"{label(target.kind).capitalize()} status has been changed to {entity['status']}."
        return json_response({"code": 0, "message": msg})
    if method == "GET":
        wants_pdf = request.query_params.get("accept") == "pdf" or "application/pdf" in request.headers.get(
            "accept", ""
        )
        if wants_pdf:
            if target.kind not in DOCUMENTS:
                return books_error(5, "Invalid URL Passed", 404)
            return _pdf(target.kind, entity)
        return json_response({"code": 0, "message": "success", singular: entity})
    if method == "PUT":
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        changed = copy.deepcopy({**entity, **{k: v for k, v in body.items() if k != id_field}})
        problem = _check_document(state, org, target.kind, changed, creating=False, given=body)
        if problem is not None:
            return problem
        entity.update(changed)
        entity["last_modified_time"] = books_time(now)
        msg = f"{label(target.kind).capitalize()} information has been updated."
        return json_response({"code": 0, "message": msg, singular: entity})
    if method == "DELETE":
        del store[target.id]
        return json_response({"code": 0, "message": f"The {label(target.kind)} has been deleted."})
    return _not_allowed(method)


async def _email(request: Request, kind: str, entity: JSON, now: float) -> Response:
    """POST /{kind}/{id}/email: to_mail_ids is required (Books API v3 "Email an invoice"); a draft becomes sent."""
    if kind not in DOCUMENTS:
        return books_error(5, "Invalid URL Passed", 404)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    to = body.get("to_mail_ids")
    if not isinstance(to, list) or not to or not all(isinstance(m, str) and "@" in m for m in to):
        return books_error(4, "Required field to_mail_ids is missing.", 400)
    cc = body.get("cc_mail_ids", [])
    if not isinstance(cc, list) or not all(isinstance(m, str) and "@" in m for m in cc):
        return books_error(4, "Invalid value passed for cc_mail_ids", 400)
    outbox: list[JSON] = request.app.state.finance_outbox
    outbox.append({"kind": kind, "to": to, "cc": cc, "subject": body.get("subject"), "body": body.get("body")})
    entity["is_emailed"] = True
    if entity.get("status") == "draft":
        entity["status"] = "sent"
    entity["last_modified_time"] = books_time(now)
    return json_response({"code": 0, "message": f"Your {label(kind)} has been sent."})


def _pdf(kind: str, entity: JSON) -> Response:
    """A small but well-formed one-page PDF naming the document, as `accept=pdf` answers."""
    singular = names(kind)[0]
    number = str(entity.get(f"{singular}_number") or entity.get(names(kind)[2]))
    text = f"{label(kind).title()} {number} total {entity.get('total', 0)}".replace("(", "[").replace(")", "]")
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return Response(
        bytes(out),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )


def _check_document(
    state: SandboxState, org: str, kind: str, doc: JSON, *, creating: bool, given: JSON | None = None
) -> JSONResponse | None:
    """Zoho's required fields and customer reference, then the derived amounts (filled into `doc`)."""
    last = kind.rsplit("/", 1)[-1]
    try:
        finance_docs.check_required(last, doc if creating else (given or {}), creating=creating)
        checks_customer = last in finance_docs.CUSTOMER_KINDS and (creating or "customer_id" in (given or {}))
        if checks_customer and str(doc.get("customer_id")) not in _collection(state, org, "contacts"):
            raise finance_docs.DocumentError("Invalid value passed for customer_id")
        finance_docs.compute_totals(last, doc)
    except finance_docs.DocumentError as exc:
        return books_error(4, exc.message, 400)
    return None


def _not_allowed(method: str) -> JSONResponse:
    return books_error(37, f"The HTTP method {method} is not allowed for the requested resource", 405)


def _list(request: Request, store: dict[str, JSON], links: dict[str, str], plural: str) -> Response:
    q = request.query_params
    try:
        page = max(1, int(q.get("page") or 1))
        per_page = min(MAX_PER_PAGE, max(1, int(q.get("per_page") or MAX_PER_PAGE)))
    except ValueError:
        return books_error(2, "Invalid value passed for page or per_page", 400)
    rows: list[JSON] = [
        e
        for e in store.values()
        if all(e.get(k) == v for k, v in links.items())
        and all(_matches(e, k, v) for k, v in q.items() if k not in RESERVED or k == "search_text")
    ]
    sort_column = q.get("sort_column")
    if sort_column:
        rows.sort(key=lambda e: str(e.get(sort_column) or ""), reverse=(q.get("sort_order") or "A").upper() == "D")
    chunk = rows[(page - 1) * per_page : page * per_page]
    context: dict[str, Any] = {
        "page": page,
        "per_page": per_page,
        "has_more_page": len(rows) > page * per_page,
        "report_name": plural.replace("_", " ").title(),
        "applied_filter": q.get("filter_by") or "Status.All",
        "sort_column": sort_column or "created_time",
        "sort_order": q.get("sort_order") or "D",
    }
    return json_response({"code": 0, "message": "success", plural: chunk, "page_context": context})


def _with_allowance(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Books' X-Rate-Limit-* headers on every answer: the day's allowance per organization (per user for calls
    without one), what is left of it and the seconds until it resets at midnight UTC. Their exact semantics are
    UNCERTAIN (zoho-api.md §4); clients in use crash without them, so they are always sent."""

    async def wrapped(request: Request) -> Response:
        product = _product(request)
        org = _organization_id(product, request) or f"user:{request.scope.get('sandbox.user_id', '')}"
        now = now_of(request)
        day = int(now // 86_400)
        usage: dict[tuple[str, int], int] = request.app.state.finance_usage
        usage[(org, day)] = used = usage.get((org, day), 0) + 1
        if used > DAILY_LIMIT:
            response: Response = books_error(45, "You have reached the maximum number of API calls per day.", 429)
        else:
            response = await endpoint(request)
        response.headers["X-Rate-Limit-Limit"] = str(DAILY_LIMIT)
        response.headers["X-Rate-Limit-Remaining"] = str(max(0, DAILY_LIMIT - used))
        response.headers["X-Rate-Limit-Reset"] = str(int((day + 1) * 86_400 - now))
        return response

    return wrapped


def seed_organizations(state: SandboxState, now: float, contact_name: str, email: str) -> None:
    """One organization per app, the default of its account, with no records yet."""
    for key, org_id in DEFAULT_ORG_IDS.items():
        add_organization(state, key, org_id, name=f"Sandbox {PRODUCTS[key].label.removeprefix('Zoho ')}", now=now)
        state.finance_orgs[key][org_id].update(contact_name=contact_name, email=email)


def add_organization(
    state: SandboxState, product: str, org_id: str, *, name: str, now: float | None = None, default: bool = True
) -> JSON:
    """Make `org_id` an organization of `product` (and the account's default there unless `default` is false)."""
    orgs = state.finance_orgs.setdefault(product, {})
    if default:
        for other in orgs.values():
            other["is_default_org"] = False
    org: JSON = {
        "organization_id": org_id,
        "name": name,
        "is_default_org": default,
        "plan_type": 0,
        "version": "global",
        "currency_id": "460000000000097",
        "currency_code": "USD",
        "currency_symbol": "$",
        "time_zone": "Etc/UTC",
        "language_code": "en",
        "date_format": "yyyy-MM-dd",
        "account_created_date": books_time(now if now is not None else time.time())[:10],
        "is_org_active": True,
    }
    orgs[org_id] = org
    state.books.setdefault(org_id, {})
    return org


routes = [
    route
    for product in PRODUCTS.values()
    for base in product.bases
    for route in (
        Route(f"{base}/organizations", _with_allowance(organizations), methods=["GET"]),
        Route(f"{base}/organizations/{{org_id}}", _with_allowance(organizations), methods=["GET"]),
        Route(f"{base}/{{path:path}}", _with_allowance(dispatch), methods=["GET", "POST", "PUT", "DELETE"]),
    )
]
