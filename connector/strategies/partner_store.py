"""`zoho-connector partner-store setup`: create the CRM modules and fields the Partner Store automations write.

    zoho-connector partner-store setup --connection NAME [--connections FILE] [--automation FILE]… [--dry-run]

What to create is read from the automation files (default: the three shipped under automations/partner-store/):
each upsert step's `recordType` is a module, and each key of its records' `$map` → `to` a field. A field takes its
type from what it holds: the whole record as JSON (`{$json: …}`) is a long text area (32,000 characters), the
duplicate check field a unique single line (what the upsert matches on), a Store amount or percentage a decimal,
anything else a single line of 255 (dates included: the Store's date format is not documented, text keeps any).
So a file edited at deploy time (another module, other field names) gets what it writes.

Through Zoho's settings API (crm-oas modules.json "Create Custom Modules", fields.json "Create Field"): the modules
are listed, a missing one is created (its API name asked for, with every profile found on the account's modules),
then its fields are listed and each missing one is created, one call each. What exists is left as it is, so running
it twice changes nothing; a field that exists with another type is reported, not changed. Needs the scope
ZohoCRM.settings.ALL (or settings.modules and settings.fields) besides the records' scopes.

Zoho may give a new custom module an API name of its own (not the one asked for): the answer says which, and the
automation files' `recordType` must then name it (or rename the module's API name in Zoho's Setup).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.errors import InputValidationError, Violation

if TYPE_CHECKING:
    from connector.automations import Automation
    from connector.runner import Connector

__all__ = ["FieldSpec", "ModuleSpec", "main", "plan", "setup"]

AUTOMATION_PREFIX = "partner-store-"
UPSERT = "crmUpsertRecords"
# Members of Store records that hold numbers (zoho-api.md §6 and the sandbox's transactions and commissions).
NUMERIC = {
    "amount",
    "amount_usd",
    "next_recurring_amount",
    "next_recurring_amount_usd",
    "commission_amount",
    "commission_amount_usd",
    "commission_percentage",
}
TEXT_LENGTH = 255
_MEMBER = re.compile(r"^\$\{item\.([^.?{}]+)\??\}$")


@dataclass(frozen=True)
class FieldSpec:
    api_name: str
    data_type: str  # Zoho's: text, textarea, double
    unique: bool = False

    @property
    def label(self) -> str:
        return self.api_name.replace("_", " ")  # Zoho derives the API name back from it

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field_label": self.label, "api_name": self.api_name, "data_type": self.data_type}
        if self.data_type == "text":
            out["length"] = TEXT_LENGTH
        if self.data_type == "textarea":
            out["textarea"] = {"type": "large"}
        if self.unique:
            out["unique"] = {"casesensitive": "false"}
        return out


@dataclass
class ModuleSpec:
    api_name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    @property
    def plural_label(self) -> str:
        return self.api_name.replace("_", " ")

    @property
    def singular_label(self) -> str:
        return self.plural_label[:-1] if self.plural_label.endswith("s") else self.plural_label


def plan(automations: Sequence[Automation]) -> list[ModuleSpec]:
    """The modules and fields the automations' upsert steps write, in file order."""
    modules: dict[str, ModuleSpec] = {}
    for automation in automations:
        for step in automation.steps:
            if step.action != UPSERT:
                continue
            module, records = step.inputs.get("recordType"), step.inputs.get("records")
            template = records.get("to") if isinstance(records, Mapping) and "$map" in records else None
            if not isinstance(module, str) or "${" in module or not isinstance(template, Mapping):
                raise InputValidationError(
                    automation.source,
                    [Violation(step.name, "/inputs", "setup reads a literal recordType and records: {$map, to}")],
                )
            spec = modules.setdefault(module, ModuleSpec(module))
            unique = set(step.inputs.get("duplicateCheckFields") or [])
            for name, value in template.items():
                if name == "Name":  # every custom module has it: its display field
                    continue
                spec.fields.setdefault(name, FieldSpec(name, _type(value), unique=name in unique))
    return list(modules.values())


def _type(value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"$json"}:
        return "textarea"
    member = _MEMBER.match(value) if isinstance(value, str) else None
    if member and member.group(1) in NUMERIC:
        return "double"
    return "text"


def setup(
    connector: Connector, modules: Sequence[ModuleSpec], *, connection: Any, dry_run: bool = False
) -> dict[str, Any]:
    """Create what is missing; returns {"modules": [{"module", "created", "fields_created", "fields_present",
    "warnings"}]}."""

    def run(action: str, inputs: dict[str, Any]) -> Any:
        return connector.run(action, inputs, connection=connection)["data"]

    listed = run("crmListModules", {}).get("modules", [])
    names = {m.get("api_name") for m in listed}
    profiles = list({p["id"]: {"id": p["id"]} for m in listed for p in m.get("profiles") or [] if p.get("id")}.values())
    report = []
    for module in modules:
        entry: dict[str, Any] = {"module": module.api_name, "created": False, "fields_created": [], "warnings": []}
        if module.api_name not in names:
            if not profiles:
                raise InputValidationError(
                    "partner-store setup",
                    [Violation(module.api_name, "", "no profile found on the account's modules to give access to")],
                )
            entry["created"] = True
            if dry_run:
                entry["fields_created"] = list(module.fields)
                entry["fields_present"] = []
                report.append(entry)
                continue
            _create_module(run, module, profiles)
        present = {f["api_name"]: f for f in run("crmListFields", {"recordType": module.api_name}).get("fields", [])}
        entry["fields_present"] = sorted(name for name in module.fields if name in present)
        for name, spec in module.fields.items():
            if name in present:
                have = present[name].get("data_type")
                if have != spec.data_type:
                    entry["warnings"].append(f"{name} is a {have} field; the sync writes {spec.data_type} values")
                continue
            entry["fields_created"].append(name)
            if not dry_run:
                run("crmRawRequest", _post("/settings/fields", {"fields": [spec.body()]}, module=module.api_name))
        report.append(entry)
    return {"modules": report, "dry_run": dry_run}


def _post(url: str, body: dict[str, Any], **query: str) -> dict[str, Any]:
    inputs: dict[str, Any] = {"url": url, "method": "POST", "data": body}
    if query:
        inputs["queryParams"] = [{"key": k, "value": v} for k, v in query.items()]
    return inputs


def _create_module(run: Any, module: ModuleSpec, profiles: list[dict[str, str]]) -> None:
    body = {
        "modules": [
            {
                "api_name": module.api_name,
                "singular_label": module.singular_label,
                "plural_label": module.plural_label,
                "profiles": profiles,
            }
        ]
    }
    answer = run("crmRawRequest", _post("/settings/modules", body))
    made = (answer.get("modules") or [{}])[0].get("details", {}).get("id")
    listed = run("crmListModules", {}).get("modules", [])
    given = next((m.get("api_name") for m in listed if m.get("id") == made), module.api_name)
    if given != module.api_name:
        problem = (
            f"Zoho created the module with the API name {given!r}: set recordType to {given!r} in the automation "
            f"files, or rename the module's API name to {module.api_name!r} in Zoho's Setup, and run setup again"
        )
        raise InputValidationError("partner-store setup", [Violation(module.api_name, "", problem)])


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zoho-connector partner-store", description="The Partner Store → CRM sync: prepare the CRM account."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("setup", help="create the CRM modules and fields the Partner Store automations write")
    p.add_argument("--connection", help="connection as JSON, @file or a name in --connections FILE")
    p.add_argument(
        "--automation",
        action="append",
        metavar="FILE",
        help="an automation file to prepare for (repeatable; default: the shipped partner-store automations)",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be created (reads the account)")
    args = parser.parse_args(list(argv))
    if args.command != "setup":
        parser.print_help(sys.stderr)
        return 2
    from connector.automation_cli import _default_connection
    from connector.automations import load_automation
    from connector.cli import _connection_argument
    from connector.manifest import bundled_manifest, data_root
    from connector.runner import Connector

    manifest = bundled_manifest()
    shipped = sorted(manifest.automations.items())
    files = args.automation or [str(data_root() / file) for name, file in shipped if name.startswith(AUTOMATION_PREFIX)]
    modules = plan([load_automation(file, manifest) for file in files])
    given = args.connection or os.environ.get("ZOHO_CONNECTION")
    connection = _connection_argument(given) if given else _default_connection()
    with Connector.load() as connector:
        report = setup(connector, modules, connection=connection, dry_run=args.dry_run)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0
