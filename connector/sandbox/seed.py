"""The sandbox's starting world (client, users, standard modules, orgs) and fast bulk seeding for benchmarks."""

from __future__ import annotations

from typing import Any

from connector.sandbox.clock import crm_time
from connector.sandbox.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FieldDef,
    SandboxState,
)

_LEAD_SOURCES = ("Advertisement", "Cold Call", "Employee Referral", "Online Store", "Partner", "Web Download")
_LEAD_STATUSES = ("Not Contacted", "Attempted to Contact", "Contacted", "Junk Lead", "Qualified")
_STAGES = ("Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
_INDUSTRIES = ("Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education")


def _t(name: str, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "text", label or name.replace("_", " "), length=255, **kw)


def standard_modules() -> list[tuple[str, str, str, list[FieldDef], tuple[str, ...]]]:
    """(api_name, singular, display field, fields, upsert duplicate-check fields) of the seeded standard modules."""
    person = [
        FieldDef("First_Name", "text", "First Name", length=40),
        FieldDef("Last_Name", "text", "Last Name", mandatory=True, length=80),
        FieldDef("Full_Name", "text", "Full Name", read_only=True),
        FieldDef("Email", "email", "Email", unique=True, length=100),
        FieldDef("Phone", "phone", "Phone", length=30),
        FieldDef("Mobile", "phone", "Mobile", length=30),
        FieldDef("Lead_Source", "picklist", "Lead Source", pick_list=_LEAD_SOURCES),
        FieldDef("Description", "textarea", "Description", length=32_000),
    ]
    leads = [
        *person,
        _t("Company"),
        FieldDef("Lead_Status", "picklist", "Lead Status", pick_list=_LEAD_STATUSES),
        FieldDef("Industry", "picklist", "Industry", pick_list=_INDUSTRIES),
        FieldDef("Annual_Revenue", "currency", "Annual Revenue"),
        FieldDef("No_of_Employees", "integer", "No. of Employees"),
        FieldDef("Website", "website", "Website", length=255),
        _t("City"),
        _t("Country"),
        FieldDef("Email_Opt_Out", "boolean", "Email Opt Out"),
    ]
    contacts = [
        *person,
        FieldDef("Account_Name", "lookup", "Account Name", lookup="Accounts"),
        _t("Title"),
        _t("Department"),
        _t("Mailing_City", "Mailing City"),
        FieldDef("Date_of_Birth", "date", "Date of Birth"),
        FieldDef("Email_Opt_Out", "boolean", "Email Opt Out"),
    ]
    accounts = [
        FieldDef("Account_Name", "text", "Account Name", mandatory=True, length=200),
        FieldDef("Phone", "phone", "Phone", length=30),
        FieldDef("Website", "website", "Website", length=255),
        FieldDef("Industry", "picklist", "Industry", pick_list=_INDUSTRIES),
        FieldDef("Annual_Revenue", "currency", "Annual Revenue"),
        FieldDef("Employees", "integer", "Employees"),
        _t("Billing_City", "Billing City"),
        _t("Billing_Country", "Billing Country"),
        FieldDef("Account_Type", "picklist", "Account Type", pick_list=("Customer", "Partner", "Prospect", "Vendor")),
        FieldDef("Description", "textarea", "Description", length=32_000),
    ]
    deals = [
        FieldDef("Deal_Name", "text", "Deal Name", mandatory=True, length=120),
        FieldDef("Amount", "currency", "Amount"),
        FieldDef("Stage", "picklist", "Stage", pick_list=_STAGES),
        FieldDef("Closing_Date", "date", "Closing Date"),
        FieldDef("Account_Name", "lookup", "Account Name", lookup="Accounts"),
        FieldDef("Contact_Name", "lookup", "Contact Name", lookup="Contacts"),
        FieldDef("Probability", "integer", "Probability (%)"),
        FieldDef("Lead_Source", "picklist", "Lead Source", pick_list=_LEAD_SOURCES),
        FieldDef("Description", "textarea", "Description", length=32_000),
    ]
    return [
        ("Leads", "Lead", "Full_Name", leads, ("Email",)),
        ("Contacts", "Contact", "Full_Name", contacts, ("Email",)),
        ("Accounts", "Account", "Account_Name", accounts, ("Account_Name",)),
        ("Deals", "Deal", "Deal_Name", deals, ("Deal_Name",)),
    ]


def seed_defaults(state: SandboxState, now: float = 1_767_225_600.0) -> None:
    """Fill an empty state with the pre-registered client, two users, the standard modules and the orgs."""
    state.add_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    created = crm_time(now)
    for first, last, email, role, profile in (
        ("Sandbox", "Admin", "admin@sandbox.test", "CEO", "Administrator"),
        ("Sam", "Seller", "sam@sandbox.test", "Manager", "Standard"),
    ):
        uid = state.new_crm_id()
        state.users[uid] = {
            "id": uid,
            "zuid": str(70_000_000 + len(state.users) + 1),
            "first_name": first,
            "last_name": last,
            "full_name": f"{first} {last}",
            "name": f"{first} {last}",
            "email": email,
            "status": "active",
            "confirm": True,
            "role": {"name": role, "id": state.new_crm_id()},
            "profile": {"name": profile, "id": state.new_crm_id()},
            "language": "en_US",
            "locale": "en_US",
            "country_locale": "en_US",
            "created_time": created,
            "Modified_Time": created,
            "category": "regular_user",
            "Isonline": False,
            "microsoft": False,
            "sandboxDeveloper": False,
            "personal_account": False,
        }
    state.current_user_id = next(iter(state.users))
    for api_name, singular, display, defs, dup in standard_modules():
        state.add_module(
            api_name,
            defs,
            singular_label=singular,
            display_field=display,
            duplicate_check_fields=dup,
            custom=False,
        )
    admin = state.users[state.current_user_id]
    state.crm_org = {
        "id": state.new_crm_id(),
        "company_name": "Sandbox Inc.",
        "primary_email": admin["email"],
        "primary_zuid": admin["zuid"],
        "zgid": "60000000001",
        "domain_name": "org60000000001",
        "currency": "US Dollar - USD",
        "currency_symbol": "$",
        "currency_locale": "en_US",
        "iso_code": "USD",
        "country": "United States",
        "country_code": "US",
        "time_zone": "UTC",
    }
    from connector.sandbox import finance  # the web emulator: imported only when a state is seeded

    finance.seed_organizations(state, now, admin["full_name"], admin["email"])


def seed_records(state: SandboxState, module: str, count: int, now: float) -> int:
    """Insert `count` valid records without per-record validation (about a second per 100,000)."""
    mod = state.module(module)
    if mod is None:
        raise KeyError(module)
    store = state.records[mod.api_name]
    owner = state.user_ref(state.current_user_id)
    stamp = crm_time(now)
    start = len(store)
    for n in range(start, start + count):
        rid = state.new_crm_id()
        row: dict[str, Any] = {f.api_name: None for f in mod.fields}
        row.update(id=rid, Owner=owner, Created_By=owner, Modified_By=owner, Created_Time=stamp, Modified_Time=stamp)
        for f in mod.fields:
            if f.read_only or f.data_type in {"ownerlookup", "lookup", "datetime"}:
                continue
            row[f.api_name] = _sample(f, n)
        if "Full_Name" in row:
            row["Full_Name"] = f"{row.get('First_Name') or ''} {row.get('Last_Name') or ''}".strip()
        store[rid] = row
    state.touch(mod.api_name)
    return count


def _sample(f: FieldDef, n: int) -> Any:
    kind = f.data_type
    if kind == "email":
        return f"{f.api_name.lower()}{n}@example.com"
    if kind == "phone":
        return f"+1 555 {n % 10_000_000:07d}"
    if kind == "picklist":
        return f.pick_list[n % len(f.pick_list)] if f.pick_list else None
    if kind in {"integer", "bigint"}:
        return n % 1000
    if kind in {"currency", "double", "percent"}:
        return float((n * 37) % 100_000)
    if kind == "boolean":
        return n % 2 == 0
    if kind == "date":
        return f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
    if kind == "website":
        return f"https://example{n}.com"
    if kind == "textarea":
        return None
    return f"{f.api_name.replace('_', ' ')} {n}"
