"""The README's Python example runs as written, on the sandbox: only its connection line is swapped."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token

ROOT = Path(__file__).resolve().parents[2]
CONNECTION_LINE = re.compile(r"^connection = \{.*\}$", re.MULTILINE)


def _python_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"\*\*Python\*\*\n\n```python\n(.*?)```", readme, re.DOTALL)
    assert found, "the README's **Python** example is gone"
    return found.group(1)


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    example = _python_example()
    assert len(CONNECTION_LINE.findall(example)) == 1, "the example's one connection line"
    (tmp_path / "q3.pdf").write_bytes(b"%PDF-1.7 the example's attachment")
    with serve_in_thread(SandboxState()) as sandbox:
        connection = with_refresh_token(sandbox, tmp_path)
        script = CONNECTION_LINE.sub(lambda _: f"connection = {json.dumps(connection)}", example)
        (tmp_path / "example.py").write_text(script, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ZOHO_CONNECTOR_HOME": str(tmp_path / "home")}
        ran = subprocess.run(
            [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        requests = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"]
    assert ran.returncode == 0, ran.stderr
    printed = ast.literal_eval(ran.stdout.strip())  # arun's COQL answer: the example's lead has no Email
    assert printed["data"] == [] and printed["info"]["more_records"] is False
    called = {key.split(" ", 1)[0] + " " + re.sub(r"/\d+", "/{id}", key.split(" ", 1)[1]) for key in requests}
    assert {
        "POST /crm/v8/Leads",
        "GET /crm/v8/Leads",
        "POST /crm/v8/Leads/{id}/Attachments",
        "POST /crm/v8/coql",
    } <= called
