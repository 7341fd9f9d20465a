"""CRM hooks: request shapes the template language cannot express (registered in connector.hooks.HOOKS).

`crm_convert_lead` shapes the inputs of `crmConvertLead` for Zoho's convert body (convert_lead.json's
Lead_Converter): ids become the objects Zoho wants — `accountId` → `{"id": …}` (sent as `Accounts`), `contactId` →
`{"id": …}` (`Contacts`), `assignTo` → `{"id": …}` (`assign_to`), `moveAttachmentsTo` → `{"api_name": …}` — and
`carryOverTags` (the modules that keep the lead's tags) with `tagNames` becomes `{module: [tag names]}`. A template
object would be sent even when its input is absent (`{"id": …}` gives `{}`), so these are shaped here and left out
when not given.
"""

from __future__ import annotations

from typing import Any

from connector.errors import InputValidationError, Violation
from connector.hooks import HOOKS

__all__ = ["convert_lead"]


def convert_lead(values: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(values)
    for name in ("accountId", "contactId", "assignTo"):
        if shaped.get(name) is not None:
            shaped[name] = {"id": shaped[name]}
    if shaped.get("moveAttachmentsTo") is not None:
        shaped["moveAttachmentsTo"] = {"api_name": shaped["moveAttachmentsTo"]}
    modules, names = shaped.get("carryOverTags"), shaped.get("tagNames")
    if modules and not names:
        problem = "is required to carry tags over: the names of the lead's tags to carry"
        raise InputValidationError("crmConvertLead", [Violation("tagNames", "/tagNames", problem)])
    if modules is not None:
        shaped["carryOverTags"] = {module: list(names or []) for module in modules} or None
    return shaped


HOOKS.setdefault("crm_convert_lead", convert_lead)
