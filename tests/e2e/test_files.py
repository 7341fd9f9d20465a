"""From the command line: `--file` streams an attachment from disk, `--output` streams a download to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_access_token


def test_attach_from_disk_and_download_to_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.txt"
    report.write_bytes(b"quarterly numbers\n" * 1000)
    with serve_in_thread(SandboxState()) as sandbox:
        connection = json.dumps(with_access_token(sandbox))

        def run(*args: str) -> Any:
            assert main(["run", *args, "--connection", connection]) == 0, capsys.readouterr().err
            return json.loads(capsys.readouterr().out)["data"]

        lead = run("crmCreateRecord", "--inputs", '{"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}}')
        lead_id = lead["data"][0]["details"]["id"]
        attach = json.dumps({"recordType": "Leads", "recordId": lead_id, "fileName": "report.txt"})
        added = run("crmAddAttachment", "--inputs", attach, "--file", f"file={report}")
        attachment_id = added["data"][0]["details"]["id"]
        target = tmp_path / "copy.txt"
        url = f"/Leads/{lead_id}/Attachments/{attachment_id}"
        downloaded = run("crmRawRequest", "--inputs", json.dumps({"url": url}), "--output", str(target))
    assert target.read_bytes() == report.read_bytes()
    assert downloaded["fileName"] == "report.txt" and downloaded["path"] == str(target)
    assert downloaded["size"] == report.stat().st_size
