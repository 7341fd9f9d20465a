"""CRM notification channels: what a `watch` item of /crm/v8/actions/watch may say, and what a channel is.

Sources: Zoho's notification pages (enable, update details, update info, disable, disable specific; their input
keys and "Possible Errors"), crm-oas notifications.json and its 2025 successor notifications.yaml (shapes, error
codes and examples), zoho-api.md §3. A channel whose events name two modules is two subscriptions sharing the channel
id, as Zoho lists them (state.Subscription). What no source settles is decided here and marked UNCERTAIN:

- channel_expiry: absent, or more than a week ahead, gives the documented default of one hour ("If it is not
  specified or set for more than a week, the default expiry time is for one hour"); an instant already past is
  refused (UNCERTAIN: Zoho documents nothing for it, so the sandbox refuses rather than accepts).
- channel_id: Zoho's pages type it `long`; the sandbox takes a number or a string of up to 19 digits within a long.
- notification_condition applies to edits: a create or a delete is notified whatever fields it touched (UNCERTAIN).
- notify_on_related_action is kept and listed, but sends nothing more: Zoho does not say what it sends for an
  action on a related record (a note, a link to the record); a link is an edit of the linked record (crm_links).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connector.sandbox.metadata import field_meta
from connector.sandbox.state import JSON, FieldDef, ModuleDef, SandboxState, Subscription

OPERATIONS = ("edit", "create", "delete")  # a channel's events, in the order Zoho lists them
EVENT_OPERATIONS = ("create", "edit", "delete", "all")
MAX_ITEMS = 50  # watch items per request
MAX_EVENTS = 50  # events per item
MAX_TOKEN = 50  # "Maximum length of characters is 50"
MAX_URL = 255
MAX_CONDITIONS = 2
MAX_CONDITION_FIELDS = 10  # "a maximum of 10 fields in the group array, irrespective of how you have grouped them"
DEFAULT_TTL = 3600.0
MAX_TTL = 7 * 86_400.0  # one week since API v4
_CHANNEL_ID = re.compile(r"[0-9]{1,19}")
_LONG_MAX = 2**63 - 1
_FLAGS = ("notify_on_related_action", "return_affected_field_values")


class Invalid(Exception):
    """One watch item's problem, answered in Zoho's error shape {"code", "details", "message", "status"}."""

    def __init__(self, code: str, message: str, details: JSON) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def row(self) -> JSON:
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def invalid(path: str, api_name: str, message: str = "invalid data", **extra: Any) -> Invalid:
    return Invalid("INVALID_DATA", message, {"api_name": api_name, "json_path": path, **extra})


def missing(path: str, api_name: str) -> Invalid:
    return Invalid("MANDATORY_NOT_FOUND", "required field not found", {"api_name": api_name, "json_path": path})


def not_subscribed(path: str) -> Invalid:
    return Invalid(
        "NOT_SUBSCRIBED", "the channel is not subscribed", {"api_name": "channel_id", "json_path": f"{path}.channel_id"}
    )


# one watch item ------------------------------------------------------------------------------------------------------


def parse_item(state: SandboxState, raw: Any, path: str, now: float, required: tuple[str, ...]) -> JSON:
    """The members `raw` gives, checked and normalized; raises Invalid for the first problem, as Zoho reports one.

    Keys of the answer: channel_id (str), events ({module: [operations]}), notify_url, token, expires_at (epoch),
    notify_on_related_action, return_affected_field_values, conditions ({module: [condition]}), delete_events.
    Members Zoho does not document for these calls are ignored, as Zoho ignores unknown keys elsewhere.
    """
    if not isinstance(raw, dict):
        raise Invalid("INVALID_DATA", "invalid data", {"expected_data_type": "jsonobject", "json_path": path})
    for name in required:
        if raw.get(name) is None:
            raise missing(f"{path}.{name}", name)
    given: JSON = {}
    if raw.get("channel_id") is not None:
        given["channel_id"] = channel_id(raw["channel_id"], f"{path}.channel_id")
    if raw.get("notify_url") is not None:
        given["notify_url"] = _notify_url(raw["notify_url"], f"{path}.notify_url")
    if raw.get("events") is not None:
        given["events"] = _events(state, raw["events"], f"{path}.events")
    if "token" in raw:
        given["token"] = _token(raw["token"], f"{path}.token")
    if raw.get("channel_expiry") is not None:
        given["expires_at"] = _expiry(raw["channel_expiry"], f"{path}.channel_expiry", now)
    for flag in _FLAGS:
        if raw.get(flag) is not None:
            given[flag] = _boolean(raw[flag], f"{path}.{flag}", flag)
    if raw.get("_delete_events") is not None:
        given["delete_events"] = _boolean(raw["_delete_events"], f"{path}._delete_events", "_delete_events")
    if raw.get("notification_condition") is not None:
        where = f"{path}.notification_condition"
        given["conditions"] = _conditions(state, raw["notification_condition"], where, given.get("events", {}))
    return given


def channel_id(raw: Any, path: str) -> str:
    """A long, as a number or a string of digits; kept as its decimal text, the form Zoho answers with."""
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not _CHANNEL_ID.fullmatch(text) or int(text) > _LONG_MAX:
        raise invalid(path, "channel_id", expected_data_type="long")
    return str(int(text))


def _notify_url(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise invalid(path, "notify_url", expected_data_type="string")
    if len(raw) > MAX_URL:
        raise invalid(path, "notify_url", maximum_length=MAX_URL)
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise invalid(path, "notify_url")
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise invalid(path, "notify_url") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise invalid(path, "notify_url")
    return raw


def _events(state: SandboxState, raw: Any, path: str) -> dict[str, list[str]]:
    """["Leads.create", "Deals.all", …] → {"Leads": ["create"], "Deals": ["edit", "create", "delete"]}."""
    if not isinstance(raw, list) or not raw:
        raise invalid(path, "events", expected_data_type="jsonarray")
    if len(raw) > MAX_EVENTS:
        raise invalid(path, "events", maximum_length=MAX_EVENTS)
    wanted: dict[str, set[str]] = {}
    for j, event in enumerate(raw):
        name, _, operation = event.rpartition(".") if isinstance(event, str) else ("", "", "")
        module = state.module(name) if name else None
        # An unknown module is Zoho's ModuleNotSupported example: INVALID_DATA naming `events`.
        if module is None or operation not in EVENT_OPERATIONS:
            raise invalid(f"{path}[{j}]", "events")
        wanted.setdefault(module.api_name, set()).update(OPERATIONS if operation == "all" else (operation,))
    return {module: [op for op in OPERATIONS if op in ops] for module, ops in wanted.items()}


def _token(raw: Any, path: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid(path, "token", expected_data_type="string")
    if len(raw) > MAX_TOKEN:
        raise invalid(path, "token", maximum_length=MAX_TOKEN)
    return raw


def _expiry(raw: Any, path: str, now: float) -> float:
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid(path, "channel_expiry", expected_data_type="datetime")
    at = moment.timestamp()
    if at <= now:
        raise invalid(path, "channel_expiry")
    return now + DEFAULT_TTL if at - now > MAX_TTL else at


def expiry_or_default(given: JSON, now: float) -> float:
    expires: float = given.get("expires_at", now + DEFAULT_TTL)
    return expires


def _boolean(raw: Any, path: str, name: str) -> bool:
    if not isinstance(raw, bool):
        raise invalid(path, name, expected_data_type="boolean")
    return raw


# notification_condition ----------------------------------------------------------------------------------------------


def _conditions(state: SandboxState, raw: Any, path: str, modules: dict[str, list[str]]) -> dict[str, list[JSON]]:
    """Each condition checked against the item's modules and normalized as Zoho lists it, grouped by module."""
    if not isinstance(raw, list):
        raise invalid(path, "notification_condition", expected_data_type="jsonarray")
    if len(raw) > MAX_CONDITIONS:
        raise invalid(path, "notification_condition", maximum_length=MAX_CONDITIONS)
    out: dict[str, list[JSON]] = {}
    for k, condition in enumerate(raw):
        here = f"{path}[{k}]"
        if not isinstance(condition, dict):
            raise invalid(here, "notification_condition", expected_data_type="jsonobject")
        if "type" not in condition:
            if "field_selection" in condition:
                raise Invalid(
                    "DEPENDENT_FIELD_MISSING",
                    "DEPENDENT_FIELD_MISSING",
                    {
                        "api_name": "field_selection",
                        "json_path": f"{here}.field_selection",
                        "dependee": {"api_name": "type", "json_path": f"{here}.type"},
                    },
                )
            raise missing(f"{here}.type", "type")
        kind = condition["type"]
        if not isinstance(kind, str):
            raise invalid(f"{here}.type", "type", expected_data_type="text")
        if kind != "field_selection":
            raise invalid(f"{here}.type", "type", supported_values=["field_selection"])
        if "field_selection" not in condition:
            raise missing(f"{here}.field_selection", "field_selection")
        if "module" not in condition:
            raise missing(f"{here}.module", "module")
        module = _condition_module(state, condition["module"], f"{here}.module", modules)
        selection = condition["field_selection"]
        if not isinstance(selection, dict):
            raise invalid(f"{here}.field_selection", "field_selection", expected_data_type="jsonobject")
        counted = [0]
        node = _group(module, selection, f"{here}.field_selection", counted)
        if counted[0] > MAX_CONDITION_FIELDS:
            raise invalid(f"{here}.field_selection", "field_selection", maximum_length=MAX_CONDITION_FIELDS)
        out.setdefault(module.api_name, []).append(
            {
                "field_selection": node,
                "module": {"api_name": module.api_name, "id": module.id},
                "type": "field_selection",
            }
        )
    return out


def _condition_module(state: SandboxState, raw: Any, path: str, modules: dict[str, list[str]]) -> ModuleDef:
    if not isinstance(raw, dict):
        raise invalid(path, "module", expected_data_type="jsonobject")
    name, mid = raw.get("api_name"), raw.get("id")
    if name is None and mid is None:
        raise Invalid(
            "EXPECTED_FIELD_MISSING",
            "Specify atleast one field",
            {
                "expected_fields": [
                    {"api_name": "api_name", "json_path": f"{path}.api_name"},
                    {"api_name": "id", "json_path": f"{path}.id"},
                ]
            },
        )
    for value, key in ((name, "api_name"), (mid, "id")):
        if value is not None and not isinstance(value, str):
            raise invalid(f"{path}.{key}", key, expected_data_type="string")
    by_name = state.module(name) if name is not None else None
    by_id = next((m for m in state.modules.values() if m.id == mid), None) if mid is not None else None
    if by_name is not None and by_id is not None and by_name is not by_id:
        raise Invalid(
            "AMBIGUITY_DURING_PROCESSING",
            "AMBIGUITY_DURING_PROCESSING",
            {
                "ambiguity_due_to": [
                    {"api_name": "api_name", "json_path": f"{path}.api_name"},
                    {"api_name": "id", "json_path": f"{path}.id"},
                ]
            },
        )
    module = by_name or by_id
    unknown = (name is not None and by_name is None) or (mid is not None and by_id is None)
    if module is None or unknown or module.api_name not in modules:
        # Zoho's RequestFieldModuleNotAvailableInNotificationCondition example, its message included.
        raise invalid(path, "module", "required field not found")
    return module


def _group(module: ModuleDef, node: JSON, path: str, counted: list[int]) -> JSON:
    if "group_operator" not in node:
        raise missing(f"{path}.group_operator", "group_operator")
    operator = node["group_operator"]
    if not isinstance(operator, str):
        raise invalid(f"{path}.group_operator", "group_operator", expected_data_type="text")
    if operator not in ("and", "or"):
        raise invalid(f"{path}.group_operator", "group_operator", supported_values=["or", "and"])
    if "group" not in node:
        raise missing(f"{path}.group", "group")
    members = node["group"]
    if not isinstance(members, list) or not members:
        raise invalid(f"{path}.group", "group", expected_data_type="jsonarray")
    group: list[JSON] = []
    for j, member in enumerate(members):
        here = f"{path}.group[{j}]"
        if not isinstance(member, dict):
            raise invalid(here, "group", expected_data_type="jsonobject")
        if "group" in member or "group_operator" in member:
            group.append(_group(module, member, here, counted))
            continue
        # Zoho's pages wrap a field as {"field": {"api_name", "id"}}; its 2025 OpenAPI example gives it bare.
        wrapped = "field" in member
        counted[0] += 1
        ref = _field(module, member.get("field", member), f"{here}.field" if wrapped else here)
        group.append({"field": ref, "group_operator": None, "group": None})
    return {"group_operator": operator, "group": group}


def _field(module: ModuleDef, raw: Any, path: str) -> JSON:
    if not isinstance(raw, dict):
        raise invalid(path, "field", expected_data_type="jsonobject")
    name, fid = raw.get("api_name"), raw.get("id")
    if name is None and fid is None:
        raise missing(f"{path}.api_name", "api_name")
    ids: dict[str, FieldDef] = {field_meta(module, f, i + 1)["id"]: f for i, f in enumerate(module.fields)}
    by_name = module.field(name) if isinstance(name, str) else None
    by_id = ids.get(fid) if isinstance(fid, str) else None
    if name is not None and by_name is None:
        raise invalid(f"{path}.api_name", "api_name")
    if fid is not None and (by_id is None or (by_name is not None and by_name is not by_id)):
        raise invalid(f"{path}.id", "id")
    found = by_name or by_id
    return {"api_name": found.api_name if found else name, "id": next(k for k, f in ids.items() if f is found)}


def condition_met(conditions: list[JSON], changed: set[str]) -> bool:
    """Whether an edit that changed `changed` fields raises a notification under the subscription's conditions."""
    return any(_holds(c["field_selection"], changed) for c in conditions)


def _holds(node: JSON, changed: set[str]) -> bool:
    if node.get("field"):
        return str(node["field"]["api_name"]) in changed
    results = [_holds(member, changed) for member in node["group"]]
    return all(results) if node["group_operator"] == "and" else any(results)


# answers -------------------------------------------------------------------------------------------------------------


def event_names(sub: Subscription) -> list[str]:
    return [f"{sub.module}.{op}" for op in sub.operations]


def listing(sub: Subscription, expiry: str) -> JSON:
    """A subscription as GET /actions/watch lists it (the members and order of Zoho's example)."""
    return {
        "notify_on_related_action": sub.notify_on_related_action,
        "channel_expiry": expiry,
        "return_affected_field_values": sub.return_affected_field_values,
        "resource_uri": sub.resource_uri,
        "resource_id": sub.resource_id,
        "notify_url": sub.notify_url,
        "resource_name": sub.module,
        "fields": None,
        "notification_condition": sub.notification_condition,
        "channel_id": sub.channel_id,
        "events": event_names(sub),
        "token": sub.token,
    }


def active(state: SandboxState, cid: str, now: float) -> dict[str, Subscription]:
    """The channel's live subscriptions by module; an expired one is gone for the API as on Zoho."""
    return {m: s for m, s in state.watch.get(cid, {}).items() if s.expires_at > now}
