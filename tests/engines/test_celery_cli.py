"""`zoho-connector celery …` without a broker: the help of the worker and beat commands."""

from __future__ import annotations

import pytest

pytest.importorskip("celery", reason="the celery extra is not installed: pip install 'zoho-connector[celery]'")

from connector.engines import celery_cli


def test_worker_help_shows_celerys_options_without_a_connections_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZOHO_CONNECTIONS", raising=False)
    assert celery_cli.main(["worker", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--connections FILE" in out
    assert "--concurrency" in out  # Celery's own worker options follow


def test_beat_help_shows_its_options_and_celerys_without_automations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZOHO_CELERY_AUTOMATIONS", raising=False)
    assert celery_cli.main(["beat", "-h"]) == 0
    out = capsys.readouterr().out
    assert "--automations" in out
    assert "--schedule" in out  # Celery's own beat options follow
