"""`zoho-connector automation …` in-process: the default connection, and the poll state kept between runs (a poll
trigger and Connector.poll are faked here; the real ones are tested with the triggers)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector import manifest as manifest_module
from connector.cli import main
from connector.errors import TransientError
from connector.named_connections import ENV

SCHEMA = {"type": "object", "properties": {"recordType": {"type": "string"}}, "additionalProperties": False}


class FakeConnector:
    """Polls from a script and answers crmGetRecord; remembers what it was given."""

    def __init__(self) -> None:
        self.polled_from: list[Any] = []
        self.fail = False
        self.connections: list[Any] = []

    def __enter__(self) -> FakeConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def poll(self, trigger: str, inputs: Any, state: Any, *, connection: Any) -> dict[str, Any]:
        self.polled_from.append(state)
        cursor = (state or {}).get("cursor", 0)
        return {"records": [{"id": str(cursor + 1)}], "state": {"cursor": cursor + 1}}

    def run(self, action: str, inputs: dict[str, Any], *, connection: Any) -> dict[str, Any]:
        self.connections.append(connection)
        if self.fail:
            raise TransientError("Zoho answered HTTP 503", status=503)
        return {"data": {"id": inputs["recordId"]}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeConnector:
    base = manifest_module.bundled_manifest()
    poll = type("T", (), {"kind": "poll", "input_schema": SCHEMA})()
    webhook = type("T", (), {"kind": "webhook", "input_schema": SCHEMA})()
    patched = dataclasses.replace(base, triggers={**base.triggers, "crmNewThings": poll, "crmStageChanged": webhook})
    monkeypatch.setattr(manifest_module, "bundled_manifest", lambda: patched)
    connector = FakeConnector()
    from connector import runner

    monkeypatch.setattr(runner.Connector, "load", classmethod(lambda cls, *a, **k: connector))
    return connector


@pytest.fixture
def polling(tmp_path: Path) -> Path:
    file = tmp_path / "poll.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "name": "each-new-thing",
                "trigger": {"poll": {"trigger": "crmNewThings", "inputs": {"recordType": "Leads"}}},
                "steps": [
                    {
                        "name": "read",
                        "action": "crmGetRecord",
                        "for_each": "${trigger.records}",
                        "inputs": {"recordType": "Leads", "recordId": "${item.id}"},
                    }
                ],
            }
        )
    )
    return file


def _webhook_automation(polling: Path) -> Path:
    """The polling automation, started by a webhook trigger instead."""
    document = yaml.safe_load(polling.read_text())
    document["trigger"] = {"webhook": {"trigger": "crmStageChanged", "inputs": {"recordType": "Leads"}}}
    file = polling.with_name("webhook.yaml")
    file.write_text(yaml.safe_dump(document))
    return file


def connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({name: {"region": "eu", "access_token": "x"} for name in names}))
    monkeypatch.setenv(ENV, str(path))


def test_the_poll_state_is_kept_between_runs(
    fake: FakeConnector, polling: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    connections(tmp_path, monkeypatch, ["only"])
    state = tmp_path / "state.json"
    assert main(["automation", "run", str(polling), "--state", str(state)]) == 0
    assert main(["automation", "run", str(polling), "--state", str(state)]) == 0
    assert fake.polled_from == [None, {"cursor": 1}]
    assert json.loads(state.read_text()) == {"cursor": 2}
    assert state.stat().st_mode & 0o777 == 0o600  # private, as poll --state's
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    assert set(fake.connections) == {"only"}  # the file's only connection
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out[:3] == [
        {"trigger": "crmNewThings", "records": 1, "more": False},
        {"step": "read", "action": "crmGetRecord", "calls": 1, "ok": True},
        {"automation": "each-new-thing", "ok": True, "ran": True, "steps": 1},
    ]


def test_a_failed_run_leaves_the_state_as_it_was(
    fake: FakeConnector, polling: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    connections(tmp_path, monkeypatch, ["default", "other"])
    state = tmp_path / "state.json"
    state.write_text('{"cursor": 5}')
    fake.fail = True
    assert main(["automation", "run", str(polling), "--state", str(state)]) == 5  # transient: retry later
    assert json.loads(state.read_text()) == {"cursor": 5}  # the same records are polled again next time
    assert fake.connections == ["default"]
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["type"] == "transient" and error["step"] == "read" and error["call"] == 0


def test_several_connections_and_no_default_need_a_name(
    fake: FakeConnector, polling: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    connections(tmp_path, monkeypatch, ["eu", "us"])
    assert main(["automation", "run", str(polling)]) == 3
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["type"] == "connection_error"
    assert "has 2 connections (eu, us) and none is named default: pass --connection NAME" in error["message"]
    assert main(["automation", "run", str(polling), "--connection", "us"]) == 0
    assert fake.connections == ["us"]


def test_no_connections_file_is_a_clear_error(
    fake: FakeConnector, polling: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert main(["automation", "run", str(polling)]) == 3
    assert "pass --connections FILE" in json.loads(capsys.readouterr().err)["error"]["message"]


def test_validate_checks_every_file(fake: FakeConnector, polling: Path, tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(polling.read_text().replace("crmNewThings", "crmNewThing"))
    assert main(["automation", "validate", str(polling), str(broken)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["automation"] == "each-new-thing"
    error = json.loads(captured.err)["error"]
    assert error["violations"] == [
        {
            "input": "trigger",
            "pointer": "/trigger/poll/trigger",
            "message": "unknown trigger 'crmNewThing'; did you mean crmNewThings?",
        }
    ]


def test_list_shows_the_shipped_automations(capsys: Any) -> None:
    assert main(["automation", "list"]) == 0
    shipped = manifest_module.bundled_manifest().automations
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out == [{"automation": name, "file": file} for name, file in sorted(shipped.items())]


def test_a_webhook_automation_runs_on_the_events_given_with_trigger(
    fake: FakeConnector, polling: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    connections(tmp_path, monkeypatch, ["only"])
    automation = _webhook_automation(polling)
    assert main(["automation", "run", str(automation)]) == 1
    error = json.loads(capsys.readouterr().err)["error"]
    assert "starts from a webhook" in error["message"] and "--trigger" in error["message"]
    events = tmp_path / "events.json"
    events.write_text(json.dumps({"records": [{"id": "7"}, {"id": "8"}]}))
    assert main(["automation", "run", str(automation), "--trigger", f"@{events}"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out == [
        {"step": "read", "action": "crmGetRecord", "calls": 2, "ok": True},
        {"automation": "each-new-thing", "ok": True, "ran": True, "steps": 1},
    ]
    assert fake.polled_from == []


@pytest.mark.parametrize(
    ("given", "problem"),
    [("[1, 2]", "expected a JSON object"), ("{records: 1}", "not valid JSON"), ("@/no/such/file", "cannot read")],
)
def test_a_trigger_that_is_not_a_json_object_is_an_input_error_and_nothing_runs(
    fake: FakeConnector,
    polling: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    given: str,
    problem: str,
) -> None:
    connections(tmp_path, monkeypatch, ["only"])
    assert main(["automation", "run", str(_webhook_automation(polling)), "--trigger", given]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["type"] == "invalid_input" and problem in error["violations"][0]["message"]
    assert fake.connections == []
