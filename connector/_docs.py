"""Human-readable views of the manifest: `describe KEY` and the Markdown reference printed by `docs`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connector.manifest import Action, Manifest, Trigger

__all__ = ["describe_action", "describe_trigger", "reference"]


def _type(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(map(str, prop["enum"]))
    if prop.get("x-collection") == "keyvaluelist":
        return "key/value list"
    if prop.get("x-collection") == "valuelist":
        return "list of " + str(prop.get("items", {}).get("type", "value"))
    if prop.get("x-widget") == "file":
        return "file"
    kind = prop.get("type")
    if isinstance(kind, str):
        return kind
    return "any"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _inputs(schema: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], bool]]:
    required = set(schema.get("required", []))
    return [(name, prop, name in required) for name, prop in schema.get("properties", {}).items()]


def describe_action(action: Action) -> str:
    lines = [f"{action.label}  ({action.key})", action.description, f"safety: {action.safety}", "", "inputs:"]
    return "\n".join(lines + _input_lines(action.input_schema))


def describe_trigger(trigger: Trigger) -> str:
    lines = [f"{trigger.label}  ({trigger.key})", trigger.description, f"kind: {_how(trigger)}", "", "inputs:"]
    return "\n".join(lines + _input_lines(trigger.input_schema))


def _how(trigger: Trigger) -> str:
    """One line on how a trigger finds its events."""
    if trigger.poll is not None and "list" in trigger.poll:
        watched = " and what changed" if "watch" in trigger.poll["list"] else ""
        return f"poll ({trigger.poll['action']}, a list with no filter or order: what is new{watched})"
    if trigger.poll is not None:
        cursor = trigger.poll["cursor"]
        return f"poll ({trigger.poll['action']}, by {cursor['field']}, {cursor['order']})"
    if trigger.webhook is not None:
        return f"webhook (channel {trigger.webhook['channel']}, opened by {trigger.webhook['subscribe']})"
    return trigger.kind


def _input_lines(schema: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, prop, required in _inputs(schema):
        flags = [_type(prop), "required" if required else "optional"]
        lines.append(f"  {name}  [{', '.join(flags)}]  {prop.get('title', '')}")
        lines.append(f"      {prop.get('description', '')}")
        if "default" in prop:
            lines.append(f"      default: {_value(prop['default'])}")
        if prop.get("examples"):
            lines.append(f"      example: {_value(prop['examples'][0])}")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(schema: Mapping[str, Any]) -> list[str]:
    rows = ["| Input | Key | Type | Notes | Example |", "|---|---|---|---|---|"]
    for name, prop, required in _inputs(schema):
        notes = prop.get("description", "")
        if required:
            notes = "**Required.** " + notes
        if "default" in prop:
            notes += f" Default: `{_value(prop['default'])}`."
        example = f"`{_value(prop['examples'][0])}`" if prop.get("examples") else ""
        cells = [_cell(prop.get("title", name)), f"`{name}`", _cell(_type(prop)), _cell(notes), _cell(example)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def reference(manifest: Manifest) -> str:
    """Markdown for the whole component: connections, every action, then every trigger, from the data files."""
    out = [
        f"# {manifest.label} component",
        "",
        manifest.description,
        "",
        f"Component key: `{manifest.key}` · version {manifest.version}",
        "",
        "## Connections",
        "",
    ]
    for conn in manifest.connections.values():
        out += [f"### {conn.label}", "", conn.description, "", f"Key: `{conn.key}`", "", *_table(conn.input_schema), ""]
        out += ["Regions: " + ", ".join(f"`{k}` ({r['label']})" for k, r in conn.regions.items()), ""]
    out += ["## Actions", ""]
    for action in sorted(manifest.actions.values(), key=lambda a: a.label):
        out += [f"### {action.label}", "", f"{action.description} | key: `{action.key}` | safety: {action.safety}", ""]
        out += [*_table(action.input_schema), ""]
        out += ["Example output:", "", "```json", json.dumps(action.example_output, indent=2), "```", ""]
    if manifest.triggers:
        out += ["## Triggers", ""]
    for trigger in sorted(manifest.triggers.values(), key=lambda t: t.label):
        out += [f"### {trigger.label}", "", f"{trigger.description} | key: `{trigger.key}` | {_how(trigger)}", ""]
        out += [*_table(trigger.input_schema), ""]
        out += ["Example record:", "", "```json", json.dumps(trigger.example_output, indent=2), "```", ""]
    return "\n".join(out)
