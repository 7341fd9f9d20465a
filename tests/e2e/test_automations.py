"""End to end: an automation of several steps, checked and run through the command line with a connections file,
against the sandbox over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector import Connector
from connector.automations import load_automation, run_automation
from connector.sandbox import SandboxState, serve_in_thread
from connector.sandbox.clock import crm_time
from tests.conftest import FakeClock
from tests.e2e.connections import with_access_token, with_refresh_token
from tests.webhooks import listening

ROOT = Path(__file__).resolve().parents[2]

AUTOMATION = """
name: tidy-doe-leads
description: Create two leads, find them, move them to Acme, and read one back.
trigger: {schedule: {cron: "0 */2 * * *"}}
steps:
  - name: create
    action: crmCreateRecords
    inputs:
      recordType: Leads
      records:
        - {Last_Name: TAG, Company: Old}
        - {Last_Name: TAG}
      trigger: []
  - name: find
    action: crmSearchRecords
    inputs: {recordType: Leads, criteria: "(Last_Name:equals:TAG)", fields: [Last_Name, Company]}
  - name: move
    action: crmUpdateRecord
    for_each: ${steps.find.data.data}
    inputs:
      recordType: Leads
      recordId: ${item.id}
      fieldValues: {Company: Acme, Description: "${item.Last_Name}"}
  - name: check
    action: crmGetRecord
    inputs:
      recordType: Leads
      recordId: ${steps.create.data.1.id}
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connections(sandbox: str, tmp_path: Path) -> Path:
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump({"sandbox": with_refresh_token(sandbox, tmp_path)}))
    return path


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector.cli", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow
def test_a_multi_step_automation_runs_through_the_cli(connections: Path, tmp_path: Path) -> None:
    tag = f"Doe{os.getpid()}x{tmp_path.name[-6:]}".replace("_", "")
    file = tmp_path / "tidy.yaml"
    file.write_text(AUTOMATION.replace("TAG", tag))

    checked = cli("automation", "validate", str(file))
    assert checked.returncode == 0, checked.stderr
    assert lines(checked.stdout)[0]["steps"] == ["create", "find", "move", "check"]

    ran = cli("automation", "run", str(file), "--connections", str(connections))
    assert ran.returncode == 0, ran.stderr
    assert lines(ran.stdout) == [
        {"step": "create", "action": "crmCreateRecords", "calls": 1, "ok": True},
        {"step": "find", "action": "crmSearchRecords", "calls": 1, "ok": True},
        {"step": "move", "action": "crmUpdateRecord", "calls": 2, "ok": True},
        {"step": "check", "action": "crmGetRecord", "calls": 1, "ok": True},
        {"automation": "tidy-doe-leads", "ok": True, "ran": True, "steps": 4},
    ]
    assert "refresh_token" not in ran.stdout + ran.stderr

    # what Zoho (the sandbox) now holds
    with Connector.load(connections=connections) as connector:
        found = connector.run(
            "crmSearchRecords",
            {"recordType": "Leads", "criteria": f"(Last_Name:equals:{tag})", "fields": ["Company", "Description"]},
            connection="sandbox",
        )
    assert sorted((r["Company"], r["Description"]) for r in found["data"]["data"]) == [("Acme", tag), ("Acme", tag)]


@pytest.mark.slow
def test_a_failing_step_stops_the_run_with_its_name_and_zohos_error(connections: Path, tmp_path: Path) -> None:
    file = tmp_path / "missing.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "name": "read-missing",
                "trigger": {"schedule": {"cron": "0 0 * * *"}},
                "steps": [
                    {"name": "read", "action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "404"}},
                    {"name": "never", "action": "crmGetRecord", "inputs": {"recordType": "Leads", "recordId": "1"}},
                ],
            }
        )
    )
    ran = cli("--connections", str(connections), "automation", "run", str(file), "--connection", "sandbox")
    assert ran.returncode == 4  # Zoho answered with an error
    assert lines(ran.stdout)[0]["step"] == "read" and lines(ran.stdout)[0]["ok"] is False
    assert len(lines(ran.stdout)) == 1  # `never` did not run
    error = json.loads(ran.stderr)["error"]
    assert error["type"] == "not_found" and error["step"] == "read"
    assert "step 'read' (crmGetRecord) failed" in error["message"]


@pytest.mark.slow
def test_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(
        AUTOMATION.replace("crmGetRecord", "crmGetRecrod").replace("${steps.create.data.1.id}", "${steps.later.id}")
    )
    checked = cli("automation", "validate", str(file))
    assert checked.returncode == 2
    error = json.loads(checked.stderr)["error"]
    assert error["subject"] == str(file)
    assert [(v["input"], v["pointer"]) for v in error["violations"]] == [
        ("check", "/steps/3/inputs/recordId"),
        ("check", "/steps/3/action"),
    ]


@pytest.mark.slow
def test_a_poll_automation_runs_each_new_record_once_across_runs(tmp_path: Path) -> None:
    """A poll trigger through the CLI, each run a new process that knows earlier runs only by --state: the
    records created before a run are handled by that run, once; a run with nothing new runs no step."""
    clock = FakeClock(1_800_000_000.0)
    with serve_in_thread(SandboxState(), clock=clock) as base:
        connection = with_access_token(base)
        connections = tmp_path / "connections.json"
        connections.write_text(json.dumps({"default": connection, "other": connection}))
        file = tmp_path / "poll.yaml"
        file.write_text(
            yaml.safe_dump(
                {
                    "name": "mark-new-leads",
                    "trigger": {
                        "poll": {
                            "trigger": "crmNewRecords",
                            "inputs": {"recordType": "Leads", "fields": ["Last_Name"], "since": crm_time(clock.now)},
                        }
                    },
                    "steps": [
                        {
                            "name": "mark",
                            "action": "crmUpdateRecord",
                            "for_each": "${trigger.records}",
                            "inputs": {
                                "recordType": "Leads",
                                "recordId": "${item.id}",
                                "fieldValues": {"Description": "${item.Last_Name}"},
                            },
                        }
                    ],
                }
            )
        )
        state = tmp_path / "state.json"
        connector = Connector.load(clock=clock)

        def create(*names: str) -> list[str]:
            made = connector.run(
                "crmCreateRecords",
                {"recordType": "Leads", "records": [{"Last_Name": n} for n in names], "trigger": []},
                connection=connection,
            )["data"]
            clock.now += 2  # their second is over: a poll hands them out
            return [entry["id"] for entry in made]

        def run() -> list[Any]:
            ran = cli("--connections", str(connections), "automation", "run", str(file), "--state", str(state))
            assert ran.returncode == 0, ran.stderr
            return lines(ran.stdout)

        first = create("Ada", "Bob", "Cy")
        assert run()[:2] == [
            {"trigger": "crmNewRecords", "records": 3, "more": False},
            {"step": "mark", "action": "crmUpdateRecord", "calls": 3, "ok": True},
        ]
        assert run() == [
            {"trigger": "crmNewRecords", "records": 0, "more": False},
            {"automation": "mark-new-leads", "ok": True, "ran": False, "steps": 0},
        ]
        later = create("Dee")
        assert run()[:2] == [
            {"trigger": "crmNewRecords", "records": 1, "more": False},
            {"step": "mark", "action": "crmUpdateRecord", "calls": 1, "ok": True},
        ]
        for record_id, name in zip(first + later, ["Ada", "Bob", "Cy", "Dee"], strict=True):
            record = connector.run(
                "crmGetRecord", {"recordType": "Leads", "recordId": record_id}, connection=connection
            )
            assert record["data"]["data"][0]["Description"] == name  # ${item.Last_Name}, per record
        connector.close()


def _readme_trigger_examples() -> dict[str, str]:
    """The automation files of the README's Triggers section, by name."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Triggers\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]
    return {yaml.safe_load(block)["name"]: block for block in blocks}


def test_the_readme_trigger_automations_run_on_the_sandbox(tmp_path: Path) -> None:
    """Both trigger kinds as the README shows them in an automation: the poll example notes each new lead once, and
    the webhook example, given the events of Zoho's callbacks, notes the deal whose stage changed (an edit of
    another field is not reported, a creation neither)."""
    examples = _readme_trigger_examples()
    assert sorted(examples) == ["note-deal-stage-changes", "welcome-new-leads"]
    clock = FakeClock(1_800_000_000.0)
    with serve_in_thread(SandboxState(), clock=clock) as base, listening() as listener:
        connection = with_access_token(base)
        with Connector.load(clock=clock) as connector:
            automations = {}
            for name, text in examples.items():
                (tmp_path / f"{name}.yaml").write_text(text)
                automations[name] = load_automation(tmp_path / f"{name}.yaml", connector.manifest)

            def run(action: str, inputs: dict[str, Any]) -> Any:
                return connector.run(action, inputs, connection=connection)["data"]

            def notes(module: str, record_id: str) -> list[tuple[str, str]]:
                found = run("crmListNotes", {"recordType": module, "recordId": record_id})["data"]
                return [(n["Note_Title"], n["Note_Content"]) for n in found]

            welcome = automations["welcome-new-leads"]
            first = run_automation(connector, welcome, connection=connection)  # the first poll starts now
            assert first["ran"] is False
            leads = {"Ada": "", "Bob": ""}
            for name in leads:
                created = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": name}})
                leads[name] = created["data"][0]["details"]["id"]
            clock.now += 2  # their second is over
            second = run_automation(connector, welcome, connection=connection, state=first["state"])
            assert second["ran"] is True
            assert {name: notes("Leads", rid) for name, rid in leads.items()} == {
                name: [("Welcome", name)] for name in leads
            }
            third = run_automation(connector, welcome, connection=connection, state=second["state"])
            assert third["ran"] is False

            stages = automations["note-deal-stage-changes"]
            spec = stages.trigger["webhook"]
            subscription = connector.subscribe(
                spec["trigger"], spec["inputs"], connection=connection, notify_url=listener.url
            )
            made = run("crmCreateRecord", {"recordType": "Deals", "fieldValues": {"Deal_Name": "Enigma"}})
            deal = made["data"][0]["details"]["id"]
            for change in ({"Amount": 1200}, {"Stage": "Negotiation/Review"}):
                run("crmUpdateRecord", {"recordType": "Deals", "recordId": deal, "fieldValues": change})
            flushed = httpx.get(f"{base}/__sandbox/notifications/deliveries", params={"wait": 10}, timeout=15)
            assert flushed.json()["idle"]
            events = [
                event
                for received in listener.received
                for event in connector.handle_webhook(
                    subscription, received.headers, received.body, connection=connection
                )
            ]
            assert [(e["operation"], e["id"], e["record"]["Stage"]) for e in events] == [
                ("edit", deal, "Negotiation/Review")
            ]
            result = run_automation(connector, stages, connection=connection, trigger={"records": events})
            assert result["ran"] is True
            assert notes("Deals", deal) == [("Stage changed", "Negotiation/Review")]
            connector.unsubscribe(subscription, connection=connection)
