"""Books v3, generically: any entity kind, nested under parents, with Books' envelopes and pagination.

Books has hundreds of endpoints of one shape, so the sandbox stores every kind alike and only the naming
(envelope keys, id fields, messages) varies, driven by the small table below.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox import books_docs
from connector.sandbox._http import json_response, now_of, state_of
from connector.sandbox.clock import books_time
from connector.sandbox.state import JSON, SandboxState

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
    "addresses": ("address", "addresses", "address_id"),
}
CREATED = {"invoices", "estimates", "bills", "salesorders", "purchaseorders", "creditnotes", "expenses", "journals"}
NUMBERED = {"invoices": "INV", "estimates": "EST", "salesorders": "SO", "purchaseorders": "PO", "creditnotes": "CN"}
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
    action: str | None = None  # "status/<value>", "active", "inactive"


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
    if parents and rid is None and (kind.startswith("status/") or kind in {"active", "inactive"}):
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


async def organizations(request: Request) -> Response:
    state = state_of(request)
    rid = request.path_params.get("org_id")
    if rid is None:
        return json_response({"code": 0, "message": "success", "organizations": list(state.books_orgs.values())})
    org = state.books_orgs.get(rid)
    if org is None:
        return not_found("organizations")
    return json_response({"code": 0, "message": "success", "organization": org})


async def dispatch(request: Request) -> Response:
    """Every Books path other than /organizations."""
    state, now = state_of(request), now_of(request)
    org = request.query_params.get("organization_id")
    if not org or org not in state.books_orgs:
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
        entity["status"] = target.action.removeprefix("status/")
        entity["last_modified_time"] = books_time(now)
        msg = f"{label(target.kind).capitalize()} status has been changed to {entity['status']}."
        return json_response({"code": 0, "message": msg})
    if method == "GET":
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


def _check_document(
    state: SandboxState, org: str, kind: str, doc: JSON, *, creating: bool, given: JSON | None = None
) -> JSONResponse | None:
    """Zoho's required fields and customer reference, then the derived amounts (filled into `doc`)."""
    last = kind.rsplit("/", 1)[-1]
    try:
        books_docs.check_required(last, doc if creating else (given or {}), creating=creating)
        checks_customer = last in books_docs.CUSTOMER_KINDS and (creating or "customer_id" in (given or {}))
        if checks_customer and str(doc.get("customer_id")) not in _collection(state, org, "contacts"):
            raise books_docs.DocumentError("Invalid value passed for customer_id")
        books_docs.compute_totals(last, doc)
    except books_docs.DocumentError as exc:
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


routes = [
    Route("/books/v3/organizations", organizations, methods=["GET"]),
    Route("/books/v3/organizations/{org_id}", organizations, methods=["GET"]),
    Route("/books/v3/{path:path}", dispatch, methods=["GET", "POST", "PUT", "DELETE"]),
]
