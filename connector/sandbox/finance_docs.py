"""Finance documents: the fields Zoho requires on create, and the amounts Zoho computes from line items.

Zoho ignores amounts a client sends (`sub_total`, `total`, `balance`) and derives them from the line items, so the
sandbox does too: a client that trusts its own arithmetic would pass here and disagree with Zoho otherwise.
Books' numeric code for a missing or invalid field is not documented (zoho-api.md §4 lists no official codes);
the sandbox answers code 4, the code third-party reports give for "Invalid value passed for …", with HTTP 400.
"""

from __future__ import annotations

from typing import Any

from connector.sandbox.state import JSON

# kind -> fields Zoho's create call requires (Books API v3 "Create a contact", "Create an invoice", …).
REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("contact_name",),
    "invoices": ("customer_id", "line_items"),
    "estimates": ("customer_id", "line_items"),
    "salesorders": ("customer_id", "line_items"),
    "creditnotes": ("customer_id", "line_items"),
    "items": ("name",),  # Books and Inventory "Create an item"
    "customers": ("display_name",),  # Billing "Create a customer"
}
# Kinds whose customer_id must name an existing contact.
CUSTOMER_KINDS = {"invoices", "estimates", "salesorders", "creditnotes"}
# Kinds whose amounts come from line items; invoices (and bills) also carry a balance still to be paid.
WITH_TOTALS = {"invoices", "estimates", "salesorders", "purchaseorders", "creditnotes", "bills"}
WITH_BALANCE = {"invoices", "bills", "creditnotes"}


class DocumentError(Exception):
    """A document Books would refuse; answered as {"code": 4, "message": …} with HTTP 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def check_required(kind: str, body: JSON, *, creating: bool) -> None:
    """On create every required field must be there; on update a given one must not be blanked."""
    for name in REQUIRED.get(kind, ()):
        if (creating and _blank(body.get(name))) or (name in body and _blank(body[name])):
            raise DocumentError(f"Required field {name} is missing.")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise DocumentError(f"Invalid value passed for {name}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise DocumentError(f"Invalid value passed for {name}")


def _discount(value: Any, base: float, name: str) -> float:
    """A discount is an amount, or a percentage of `base` written like "10%"."""
    if _blank(value):
        return 0.0
    if isinstance(value, str) and value.strip().endswith("%"):
        return base * _number(value.strip()[:-1], name) / 100
    return _number(value, name)


def _money(value: float) -> float:
    return round(value + 0.0, 2)


def compute_totals(kind: str, doc: JSON) -> None:
    """Fill line item totals, sub_total, tax_total, total (and balance) in place, as Books does."""
    if kind not in WITH_TOTALS:
        return
    items = doc.get("line_items")
    if items is None:
        return
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DocumentError("Invalid value passed for line_items")
    sub_total = tax_total = 0.0
    for n, item in enumerate(items):
        where = f"line_items[{n}]"
        rate = _number(item.get("rate", 0), f"{where}.rate")
        quantity = _number(item.get("quantity", 1), f"{where}.quantity")
        gross = rate * quantity
        line = gross - _discount(item.get("discount"), gross, f"{where}.discount")
        item.update(rate=rate, quantity=quantity, item_total=_money(line))
        sub_total += line
        if not _blank(item.get("tax_percentage")):
            tax_total += line * _number(item["tax_percentage"], f"{where}.tax_percentage") / 100
    discount = _discount(doc.get("discount"), sub_total, "discount")
    extras = sum(_number(doc.get(k) or 0, k) for k in ("shipping_charge", "adjustment"))
    total = sub_total - discount + tax_total + extras
    doc.update(
        sub_total=_money(sub_total),
        discount_total=_money(discount),
        tax_total=_money(tax_total),
        total=_money(total),
    )
    if kind in WITH_BALANCE:
        doc["balance"] = _money(total)  # the sandbox records no payments, so nothing has been paid yet
