"""OAuth scopes: what each CRM and Books endpoint needs, and whether a token's granted scopes cover it.

Zoho checks the scopes a token was issued for on every call, so a client that asks for too few scopes fails there;
the sandbox checks them the same way (zoho-api.md §1 "Scope format", crm-oas `common.json` securitySchemes).
Scope names are matched case-insensitively, as Zoho does (`ZohoCRM.modules.all` works like `ZohoCRM.modules.ALL`).
"""

from __future__ import annotations

from collections.abc import Iterable

# What admin-minted tokens get unless a test asks for less: everything the sandbox serves.
ALL_SCOPES = ",".join(
    (
        "ZohoCRM.modules.ALL",
        "ZohoCRM.settings.ALL",
        "ZohoCRM.users.ALL",
        "ZohoCRM.org.ALL",
        "ZohoCRM.coql.READ",
        "ZohoCRM.bulk.ALL",
        "ZohoCRM.notifications.ALL",
        "ZohoBooks.fullaccess.all",
        "ZohoPayments.subscriptions.READ",
        "ZohoPayments.transactions.READ",
        "ZohoPayments.commissions.READ",
        "ZohoPayments.leads.READ",
        "ZohoInventory.FullAccess.all",
        "ZohoInvoice.fullaccess.all",
        "ZohoExpense.fullaccess.all",
        "ZohoSubscriptions.fullaccess.all",
    )
)

OPERATIONS = {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}

# Books entity kinds whose scope is another entity's (the scope list in zoho-api.md §4 has no scope of their own).
_BOOKS_SCOPE_OF = {
    "contactpersons": "contacts",
    "recurringinvoices": "invoices",
    "recurringexpenses": "expenses",
    "vendorcredits": "debitnotes",
    "timeentries": "projects",
    "tasks": "projects",
    "bankaccounts": "banking",
    "banktransactions": "banking",
    "chartofaccounts": "accountants",
    "journals": "accountants",
    "basecurrencyadjustment": "accountants",
    "organizations": "settings",
    "items": "settings",
    "users": "settings",
    "taxes": "settings",
    "currencies": "settings",
}


def parse(scope: str) -> frozenset[str]:
    """Granted scopes from a comma- (or space-) separated grant, lower-cased for matching."""
    return frozenset(s.strip().lower() for s in scope.replace(" ", ",").split(",") if s.strip())


def covers(granted: frozenset[str], alternatives: Iterable[str]) -> bool:
    """True when any one of the acceptable scopes was granted."""
    return any(a.lower() in granted for a in alternatives)


def _ops(method: str) -> tuple[str, ...]:
    op = OPERATIONS.get(method.upper(), "read")
    return ("all", op)


def crm_needs(method: str, path: str) -> list[list[str]] | None:
    """Scope alternatives for a CRM call: every inner list must be satisfied by one of its entries.

    None means the path is not one the sandbox serves (routing answers it). `path` starts after `/crm/v8/`.
    """
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    head = parts[0]
    ops = _ops(method)
    if head == "coql":
        return [["ZohoCRM.coql.READ", "ZohoCRM.coql.ALL"]]
    if head == "settings":
        sub = parts[1] if len(parts) > 1 else ""
        return [["ZohoCRM.settings.ALL", *(f"ZohoCRM.settings.{sub}.{op}" for op in ops)]]
    if head == "users":
        return [["ZohoCRM.users.ALL", *(f"ZohoCRM.users.{op}" for op in ops)]]
    if head == "org":
        return [["ZohoCRM.org.ALL", *(f"ZohoCRM.org.{op}" for op in ops)]]
    if parts == ["actions", "watch"]:
        # Zoho's notification pages: ALL, the operation's own scope, or WRITE for any change.
        extra = ("write",) if method.upper() != "GET" else ()
        return [[f"ZohoCRM.notifications.{op}" for op in (*ops, *extra)]]
    module_ops = ops
    if len(parts) > 1 and parts[1] == "upsert":
        # An upsert may insert or update, so it needs both (or ALL).
        return [_module_scopes(head, ("all", "create")), _module_scopes(head, ("all", "update"))]
    if len(parts) >= 3 and parts[2] in {"Attachments", "Notes"}:
        kind = parts[2].lower()
        return [[f"ZohoCRM.modules.{kind}.ALL", *_module_scopes(head, module_ops)]]
    if head == "Notes":
        return [["ZohoCRM.modules.notes.ALL", *_module_scopes(head, module_ops)]]
    return [_module_scopes(head, module_ops)]


def crm_bulk_needs(method: str, path: str) -> list[list[str]] | None:
    """Scopes of a bulk API call (`path` after `/crm/bulk/v8/`): the bulk scope; a read job also needs the
    module's read scope, checked by the handler once it knows the module."""
    head = next((p for p in path.split("/") if p), "")
    if head not in ("read", "write"):
        return None
    return [["ZohoCRM.bulk.ALL", f"ZohoCRM.bulk.{head}"]]


def _module_scopes(module: str, ops: Iterable[str]) -> list[str]:
    out: list[str] = []
    for op in ops:
        out += [f"ZohoCRM.modules.{op}", f"ZohoCRM.modules.{module}.{op}"]
    return out


def books_needs(method: str, path: str) -> list[list[str]]:
    """Scope alternatives for a Books call: full access, or the entity's scope. `path` starts after `/books/v3/`."""
    return finance_needs("ZohoBooks", method, path)


def finance_needs(service: str, method: str, path: str) -> list[list[str]]:
    """Scope alternatives for a call to a Finance app whose scopes start with `service` (ZohoBooks, ZohoInventory,
    …): its full access, or the entity's scope. `path` starts after the app's base. The other apps' entity scopes
    are taken to follow Books' naming."""
    first = next((p for p in path.split("/") if p and not p.isdigit()), "settings")
    entity = _BOOKS_SCOPE_OF.get(first, first)
    return [[f"{service}.fullaccess.all", *(f"{service}.{entity}.{op}" for op in _ops(method))]]


def allowed(granted: frozenset[str], needs: list[list[str]]) -> bool:
    return all(covers(granted, alternatives) for alternatives in needs)
