"""CRM v8 lead conversion: POST /Leads/{id}/actions/convert, as Zoho does it (convert_lead.json, zoho-api.md §3).

The lead becomes a Contact and, when it has a Company (or an account is named), an Account; a Deal is created only
when `Deals` gives its fields. As on Zoho, an existing contact with the lead's email and an existing account named
as the lead's company are used rather than duplicated, and `Accounts` / `Contacts` name existing records to use.
Everything is checked before anything is written, so a refused conversion changes nothing. The lead is then marked
`$converted` and cannot be converted again (ID_ALREADY_CONVERTED).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, now_of, state_of
from connector.sandbox.crm import _fail, _handler, data_rows, user_of
from connector.sandbox.records import Batch, RecordError
from connector.sandbox.state import JSON, ModuleDef, SandboxState

TARGETS = ("Contacts", "Accounts", "Deals")
BOOLEANS = ("overwrite", "notify_lead_owner", "notify_new_entity_owner")


def _invalid(path: str, api_name: str, **extra: Any) -> RecordError:
    return RecordError("INVALID_DATA", "invalid data", {"api_name": api_name, "json_path": path, **extra})


def _module(state: SandboxState, name: str) -> ModuleDef:
    module = state.module(name)
    if module is None:  # the standard modules are always seeded
        raise RuntimeError(f"the sandbox has no {name} module")
    return module


def _existing(state: SandboxState, module: str, given: Any, path: str) -> JSON | None:
    """The record an `Accounts` / `Contacts` member names ({"id": …}), or None when the member is absent."""
    if given is None:
        return None
    rid = given.get("id") if isinstance(given, dict) else None
    row = state.records[module].get(rid) if isinstance(rid, str) else None
    if row is None:
        raise _invalid(f"{path}.id", module, expected_data_type="jsonobject")
    return row


def _first(batch: Batch, field: str, value: Any) -> JSON | None:
    """The record whose `field` equals `value` (case-insensitive), as Zoho matches on conversion."""
    if value is None or value == "":
        return None
    rid = batch.index(field).get(str(value).strip().lower())
    return batch.store[rid] if rid is not None else None


def _ref(row: JSON | None, display: str) -> JSON | None:
    return None if row is None else {"name": row.get(display), "id": row["id"]}


@_handler
async def convert_lead(request: Request) -> Response:
    state, now, user = state_of(request), now_of(request), user_of(request)
    lead_id = request.path_params["record_id"]
    lead = state.records["Leads"].get(lead_id)
    if lead is None:
        raise _fail("INVALID_DATA", "invalid data", resource_path_index=1)
    if lead.get("$converted"):
        raise _fail("ID_ALREADY_CONVERTED", "id already converted", resource_path_index=1)
    _, rows = await data_rows(request)
    options = rows[0]
    if len(rows) != 1 or not isinstance(options, dict):
        raise _invalid("$.data", "data", expected_data_type="jsonarray", maximum_length=1)
    path = "$.data[0]"
    for name in BOOLEANS:
        if name in options and not isinstance(options[name], bool):
            raise _invalid(f"{path}.{name}", name, expected_data_type="boolean")
    owner = options.get("assign_to")
    owner_id = owner.get("id") if isinstance(owner, dict) else None
    if owner is not None and owner_id not in state.users:
        raise _invalid(f"{path}.assign_to", "assign_to", expected_data_type="jsonobject")
    owner_id = owner_id or user

    contacts, accounts, deals = (Batch(state, _module(state, m), now, user) for m in TARGETS)
    account = _existing(state, "Accounts", options.get("Accounts"), f"{path}.Accounts")
    contact = _existing(state, "Contacts", options.get("Contacts"), f"{path}.Contacts")
    account = account or _first(accounts, "Account_Name", lead.get("Company"))
    contact = contact or _first(contacts, "Email", lead.get("Email"))
    deal_fields = options.get("Deals")
    if deal_fields is not None:
        if not isinstance(deal_fields, dict):
            raise _invalid(f"{path}.Deals", "Deals", expected_data_type="jsonobject")
        deals.prepare(deal_fields, f"{path}.Deals", None)  # raises the first problem, as Zoho reports it
    moved_to = _attachments_target(options.get("move_attachments_to"), f"{path}.move_attachments_to", state)
    if moved_to == "Deals" and deal_fields is None:
        raise _invalid(f"{path}.move_attachments_to", "move_attachments_to")
    tags = _tags(options.get("carry_over_tags"), f"{path}.carry_over_tags")

    # Checked: now write, in Zoho's order (account, contact, deal), each owned by assign_to (or the caller).
    owner_ref = {"id": owner_id}
    if account is None and lead.get("Company"):
        account = _created(accounts, {"Account_Name": lead["Company"], "Owner": owner_ref})
    if contact is None:
        person = {k: lead.get(k) for k in ("First_Name", "Last_Name", "Email", "Phone", "Mobile", "Lead_Source")}
        contact = _created(contacts, {**person, "Owner": owner_ref})
    if account is not None and (contact.get("Account_Name") is None or options.get("overwrite")):
        contacts.update(contact["id"], {"Account_Name": {"id": account["id"]}}, path)
    deal = None
    if deal_fields is not None:
        links = {"Contact_Name": {"id": contact["id"]}} | ({"Account_Name": {"id": account["id"]}} if account else {})
        deal = _created(deals, {"Owner": owner_ref, **links, **deal_fields})
    created = {"Contacts": contact, "Accounts": account, "Deals": deal}
    for module, names in tags.items():
        tagged = created[module]
        if tagged is not None:
            tagged["Tag"] = [{"name": n} for n in names]
    if moved_to is not None:
        target = created[moved_to]
        for attachment in state.attachments.values():
            if attachment.module == "Leads" and attachment.record_id == lead_id and target is not None:
                attachment.module, attachment.record_id = moved_to, target["id"]
    lead["$converted"] = True
    lead["$converted_detail"] = {m: (row or {}).get("id") for m, row in created.items()}
    state.touch("Leads")
    details = {
        "Contacts": _ref(contact, "Full_Name"),
        "Deals": _ref(deal, "Deal_Name"),
        "Accounts": _ref(account, "Account_Name"),
    }
    answer = {
        "code": "SUCCESS",
        "details": details,
        "message": "The record has been converted successfully",
        "status": "success",
    }
    return json_response({"data": [answer]})


def _created(batch: Batch, data: JSON) -> JSON:
    result = batch.insert(data, "$.data[0]")
    if result["status"] != "success":  # checked above; a failure here is a sandbox bug, not a client error
        raise RuntimeError(f"conversion write failed: {result}")
    return batch.store[result["details"]["id"]]


def _attachments_target(given: Any, path: str, state: SandboxState) -> str | None:
    """`move_attachments_to`: {"api_name": "Contacts" | "Accounts" | "Deals"} or the module's {"id": …}."""
    if given is None:
        return None
    if isinstance(given, dict):
        if given.get("api_name") in TARGETS:
            return str(given["api_name"])
        for name in TARGETS:
            module = state.module(name)
            if module is not None and given.get("id") == module.id:
                return name
    raise _invalid(path, "move_attachments_to", supported_values=list(TARGETS))


def _tags(given: Any, path: str) -> dict[str, list[str]]:
    """`carry_over_tags`: {"Contacts": [tag names], "Accounts": […], "Deals": […]}."""
    if given is None:
        return {}
    if not isinstance(given, dict) or any(k not in TARGETS for k in given):
        raise _invalid(path, "carry_over_tags", supported_values=list(TARGETS))
    for module, names in given.items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _invalid(f"{path}.{module}", "carry_over_tags", expected_data_type="jsonarray")
    return {module: list(names) for module, names in given.items()}


routes = [Route("/crm/v8/Leads/{record_id}/actions/convert", convert_lead, methods=["POST"])]
