"""A new action is one YAML file and one schema, with no runner change; a named hook is the rare exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector
from tests.conftest import CRM

USERS_ACTION = """\
key: crmListTeamUsers
label: CRM - List Users
description: List the users of the CRM organization
product: crm
connection: zohoOAuth
inputs: schemas/actions/crm/list-team-users.json
safety: read
{hook}request:
  method: GET
  path: /users
  query:
    type: {{$input: type}}
result:
  when_empty: {{users: []}}
example_output:
  data:
    users: [{{id: "1", full_name: Ann Doe}}]
"""

USERS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "type": {
            "title": "Type",
            "description": "Which users",
            "enum": ["AllUsers", "ActiveUsers"],
            "default": "AllUsers",
        },
        "debugRequest": {"$ref": "../../common.json#/$defs/debugRequest"},
    },
}


def add_users_action(root: Path, hook: str = "") -> None:
    (root / "actions/crm/list-team-users.yaml").write_text(USERS_ACTION.format(hook=hook))
    (root / "schemas/actions/crm/list-team-users.json").write_text(json.dumps(USERS_SCHEMA))
    manifest = root / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace("\nactions:\n", "\nactions:\n  - actions/crm/list-team-users.yaml\n", 1)
    )


def test_a_new_action_needs_only_data(tree: Path, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    add_users_action(tree)
    httpx_mock.add_response(url=f"{CRM}/users?type=AllUsers", json={"users": [{"id": "1"}]})
    with Connector.load(tree) as connector:
        assert connector.run("crmListTeamUsers", {}, connection=connection) == {"data": {"users": [{"id": "1"}]}}
        assert connector.actions["crmListTeamUsers"].safety == "read"


def test_a_named_hook_runs_before_the_request(
    tree: Path,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connector import hooks

    monkeypatch.setitem(hooks.HOOKS, "only_active", lambda inputs: {**inputs, "type": "ActiveUsers"})
    add_users_action(tree, hook="hook: only_active\n")
    httpx_mock.add_response(url=f"{CRM}/users?type=ActiveUsers", json={"users": []})
    with Connector.load(tree) as connector:
        connector.run("crmListTeamUsers", {"type": "AllUsers"}, connection=connection)
