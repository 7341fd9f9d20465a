"""A wheel built from the repo carries the data files and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("zoho_connector-*.whl")
    return built


def test_wheel_carries_manifest_actions_triggers_connections_and_schemas(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "connector/_data/manifest.yaml" in names
    assert "connector/py.typed" in names
    folders = ("actions/crm", "actions/books", "triggers/crm", "automations", "connections", "schemas/meta")
    for folder in (*folders, "schemas/actions/crm", "schemas/triggers/crm"):
        assert any(n.startswith(f"connector/_data/{folder}/") for n in names), folder
    assert "connector/_data/schemas/automation.json" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_installed_wheel_runs_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean_env["ZOHO_CONNECTOR_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(
        [str(env_dir / "bin" / "zoho-connector"), "actions"],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "crmGetRecord " in result.stdout and "booksRawRequest" in result.stdout
    automation = elsewhere / "a.yaml"
    automation.write_text(
        "name: a\ntrigger: {schedule: {cron: '0 * * * *'}}\nsteps:\n"
        "  - {name: get, action: crmGetRecord, inputs: {recordType: Leads, recordId: '1'}}\n"
    )
    validated = subprocess.run(
        [str(env_dir / "bin" / "zoho-connector"), "automation", "validate", str(automation)],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stderr
    listed = subprocess.run(
        [str(env_dir / "bin" / "zoho-connector"), "triggers"],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "crmUpdatedRecords" in listed.stdout and "booksNewRecords" in listed.stdout
    located = subprocess.run(
        [str(python), "-c", "import connector.manifest as m; print(m.data_root())"],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "site-packages" in located.stdout
    sandbox_help = subprocess.run(
        [str(env_dir / "bin" / "zoho-connector"), "sandbox", "--help"],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sandbox_help.returncode == 0, sandbox_help.stderr
    assert "/__sandbox/faults" in sandbox_help.stdout
    _serve_the_sandbox(env_dir / "bin" / "zoho-connector", elsewhere, clean_env)
    demo = subprocess.run(
        [str(python), "-m", "connector.sandbox.demo"],
        cwd=elsewhere,
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "done in" in demo.stdout


def _serve_the_sandbox(command: Path, cwd: Path, env: dict[str, str]) -> None:
    """`zoho-connector sandbox` itself, not only its help: it listens, prints its URL and answers."""
    import httpx

    server = subprocess.Popen(
        [str(command), "sandbox", "--port", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stderr is not None
        base = server.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), base + (server.stderr.read() if server.poll() is not None else "")
        token = httpx.post(f"{base}/__sandbox/tokens", json={}, timeout=30).json()["access_token"]
        org = httpx.get(f"{base}/crm/v8/org", headers={"Authorization": f"Zoho-oauthtoken {token}"}, timeout=30)
        assert org.status_code == 200 and org.json()["org"][0]["id"]
    finally:
        server.terminate()
        server.wait(timeout=30)
