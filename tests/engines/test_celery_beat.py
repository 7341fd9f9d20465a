"""Celery beat entries built from automation files (no broker needed: beat's schedule is data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="the celery extra is not installed: pip install 'zoho-connector[celery]'")

from celery.schedules import crontab

from connector.automations import AutomationError
from connector.engines.celery import beat_schedule, cron_schedule
from connector.errors import InputValidationError

EVERY_TWO_HOURS = """\
name: every-two-hours
trigger: {schedule: {cron: "0 */2 * * *"}}
steps:
  - {name: org, action: crmGetOrganization}
"""

WEEKENDS = """\
name: weekends
trigger: {schedule: {cron: "30 6 * * 6-7"}}
steps:
  - name: since
    action: crmGetRecords
    inputs: {recordType: Leads, fields: [Last_Name], modifiedSince: 2024-01-01T00:00:00+00:00}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "every-two-hours.yaml").write_text(EVERY_TWO_HOURS)
    (tmp_path / "sub" / "weekends.yml").write_text(WEEKENDS)
    (tmp_path / "notes.txt").write_text("not an automation")
    return tmp_path


def test_each_scheduled_automation_is_a_beat_entry_on_its_cron(folder: Path) -> None:
    entries = beat_schedule([folder], "eu-prod")
    assert sorted(entries) == ["zoho:every-two-hours", "zoho:weekends"]
    entry = entries["zoho:every-two-hours"]
    assert entry["task"] == "zoho.run_automation"
    assert entry["schedule"] == crontab(minute="0", hour="*/2")
    document, connection = entry["args"]
    assert (document["name"], connection) == ("every-two-hours", "eu-prod")
    # the message beat sends is JSON: the file's content (timestamps stay strings) and the connection's name
    weekends = entries["zoho:weekends"]["args"][0]
    assert weekends["steps"][0]["inputs"]["modifiedSince"] == "2024-01-01T00:00:00+00:00"
    json.dumps(entries["zoho:weekends"]["args"])


def test_cron_takes_sunday_as_7_as_well_as_0() -> None:
    assert cron_schedule("30 6 * * 6-7") == crontab(minute="30", hour="6", day_of_week="0,6")
    assert cron_schedule("0 0 * * 7") == crontab(minute="0", hour="0", day_of_week="0")
    assert cron_schedule("0 0 * * MON-FRI") == crontab(minute="0", hour="0", day_of_week="1-5")
    assert cron_schedule("0 0 * * */2") == crontab(minute="0", hour="0", day_of_week="0,2,4,6")


def test_a_broken_file_fails_when_the_schedule_is_built_naming_the_file(folder: Path) -> None:
    broken = folder / "broken.yaml"
    broken.write_text(EVERY_TWO_HOURS.replace("crmGetOrganization", "crmGetOrganizations"))
    with pytest.raises(AutomationError) as caught:
        beat_schedule([folder], "eu-prod")
    assert str(broken) in str(caught.value)
    assert "unknown action 'crmGetOrganizations'" in str(caught.value)


def test_a_connection_must_be_given_by_name(folder: Path) -> None:
    with pytest.raises(InputValidationError, match="NAME of a connection"):
        beat_schedule([folder], "")


def test_two_automations_of_one_name_are_refused(folder: Path) -> None:
    (folder / "again.json").write_text(json.dumps({**_yaml(EVERY_TWO_HOURS)}))
    with pytest.raises(InputValidationError, match="another scheduled automation is named 'every-two-hours'"):
        beat_schedule([folder], "eu-prod")


def _yaml(text: str) -> dict[str, object]:
    import yaml

    loaded: dict[str, object] = yaml.safe_load(text)
    return loaded


def test_each_shipped_partner_store_automation_is_an_entry_on_its_poll_cron() -> None:
    from connector.manifest import data_root

    folder = data_root() / "automations" / "partner-store"
    entries = beat_schedule([folder], "eu-prod")
    crons = {
        "zoho:partner-store-transactions": crontab(minute="0", hour="*/2"),
        "zoho:partner-store-subscriptions": crontab(minute="5", hour="*/2"),
        "zoho:partner-store-commissions": crontab(minute="30", hour="6"),
    }
    assert {name: entry["schedule"] for name, entry in entries.items()} == crons
    for name, entry in entries.items():
        document, connection = entry["args"]  # no trigger: the worker polls it
        assert (entry["task"], f"zoho:{document['name']}", connection) == ("zoho.run_automation", name, "eu-prod")
        assert document["trigger"]["poll"]["cron"]
        json.dumps(entry["args"])


def test_a_poll_without_a_cron_and_a_webhook_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "poll.yaml").write_text(
        "name: no-cron\ntrigger: {poll: {trigger: storeNewTransactions, inputs: {window: 200}}}\n"
        "steps:\n  - {name: org, action: crmGetOrganization}\n"
    )
    (tmp_path / "webhook.yaml").write_text(
        "name: on-edit\ntrigger: {webhook: {trigger: crmRecordEvents, inputs: {recordType: Leads}}}\n"
        "steps:\n  - {name: org, action: crmGetOrganization}\n"
    )
    (tmp_path / "every-two-hours.yaml").write_text(EVERY_TWO_HOURS)
    assert sorted(beat_schedule([tmp_path], "eu-prod")) == ["zoho:every-two-hours"]
