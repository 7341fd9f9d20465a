"""Product behaviour, as small strategies the manifest picks by name.

A product in `manifest.yaml` names its envelope (how an answer becomes data or an error), its host rule (which API
domain it is served from), and how its organization id travels; an action names its pager. The generic runtime
looks each name up here and never branches on a product:

    ENVELOPES["crm"].classify(status, body)        HOSTS["crm_environment"](context)
    PAGERS["crm"](start, records_key, limits)       ORGANIZATIONS["query"].place(...)
    FIELD_SCHEMAS["crm_field"](entry)              (describe: a field's metadata as a JSON Schema)
    CHANNELS["crm_notifications"]                  (a webhook trigger's channel: subscribe, read callbacks)
    COMMANDS["partner-store"]                      (a product's own CLI subcommand: help, module with main(argv))

A new product with a new behaviour registers one strategy (`register(ENVELOPES, "name", strategy)`) and names it in
its data; nothing else in the runtime changes. Zoho's own keys and codes live in these modules and nowhere else.
"""

from __future__ import annotations

from typing import TypeVar

from connector.strategies import crm_hooks as crm_hooks  # registers the CRM hooks in connector.hooks.HOOKS
from connector.strategies.channels import CHANNELS
from connector.strategies.envelopes import ENVELOPES, Envelope
from connector.strategies.fields import FIELD_SCHEMAS, FieldSchema
from connector.strategies.hosts import HOSTS, HostContext, HostRule
from connector.strategies.organizations import ORGANIZATIONS, OrganizationConvention, pick_organization
from connector.strategies.pagers import PAGERS, PageLimits, Pager, PageStart

__all__ = [
    "BUILT_IN",
    "CHANNELS",
    "COMMANDS",
    "ENVELOPES",
    "FIELD_SCHEMAS",
    "HOSTS",
    "ORGANIZATIONS",
    "PAGERS",
    "Envelope",
    "FieldSchema",
    "HostContext",
    "HostRule",
    "OrganizationConvention",
    "PageLimits",
    "PageStart",
    "Pager",
    "pick_organization",
    "register",
    "registry",
]

T = TypeVar("T")

# Subcommands of `zoho-connector` that belong to a product: name → (help, module whose main(argv) runs it). The
# command line lists and dispatches them beside its own; the module is imported only when its command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "partner-store": (
        "the Partner Store → CRM sync: create the CRM modules and fields it writes",
        "connector.strategies.partner_store",
    ),
}


def register(table: dict[str, T], name: str, strategy: T) -> T:
    """Add a strategy under the name manifests use; a name is registered once."""
    if name in table:
        raise ValueError(f"a strategy named {name!r} is already registered")
    table[name] = strategy
    return strategy


def registry() -> dict[str, list[str]]:
    """The registered names by kind, as the manifest checks them."""
    return {
        "envelope": sorted(ENVELOPES),
        "host": sorted(HOSTS),
        "organization": sorted(ORGANIZATIONS),
        "pager": sorted(PAGERS),
        "field_schema": sorted(FIELD_SCHEMAS),
        "channel": sorted(CHANNELS),
    }


# The names this package registers itself, taken before anyone else registers: the meta-schemas publish them as
# examples (not an enum: a new product registers its own) for engines in other languages.
BUILT_IN: dict[str, list[str]] = registry()
