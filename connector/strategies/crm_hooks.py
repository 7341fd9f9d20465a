"""CRM hooks: request shapes the template language cannot express (registered in connector.hooks.HOOKS).

`include_meta` turns COQL's yes/no `includeMeta` into the list Zoho wants (`["fields"]`); `bulk_read_callback`
turns a bulk read's callback URL into Zoho's `{url, method}` object (a template cannot drop an object when only one
of its members is absent).

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

__all__ = ["bulk_read_callback", "convert_lead", "include_meta"]


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


def include_meta(values: dict[str, Any]) -> dict[str, Any]:
    """A yes/no `includeMeta` input becomes the list of metadata kinds the API wants (`["fields"]`), or nothing."""
    wanted = values.pop("includeMeta", False)
    return {**values, "includeMeta": ["fields"]} if wanted is True else values


def bulk_read_callback(inputs: dict[str, Any]) -> dict[str, Any]:
    """A callback URL becomes the callback object the API needs ({url, method})."""
    url = inputs.get("callbackUrl")
    if url is None or "callback" in inputs:
        return inputs
    return {**inputs, "callback": {"url": url, "method": "post"}}


for _name, _hook in (
    ("crm_convert_lead", convert_lead),
    ("include_meta", include_meta),
    ("bulk_read_callback", bulk_read_callback),
):
    HOOKS.setdefault(_name, _hook)
