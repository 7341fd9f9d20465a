"""The real loopback server in a thread, and the CLI entry's argument handling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, main, serve, serve_in_thread

ROOT = Path(__file__).resolve().parents[3]


def test_serve_in_thread_full_oauth_round_trip_over_a_socket() -> None:
    state = SandboxState()
    with serve_in_thread(state) as base, httpx.Client(base_url=base, follow_redirects=False) as http:
        assert base.startswith("http://127.0.0.1:")
        code = http.post("/__sandbox/grant-code", json={}).json()["code"]
        tokens = http.post(
            "/oauth/v2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            },
        ).json()
        assert tokens["api_domain"] == base
        headers = {"Authorization": f"Zoho-oauthtoken {tokens['access_token']}"}
        created = http.post("/crm/v8/Leads", headers=headers, json={"data": [{"Last_Name": "Socket"}]})
        assert created.status_code == 201
        listed = http.get("/crm/v8/Leads", headers=headers, params={"fields": "Last_Name"})
        assert listed.json()["data"][0]["Last_Name"] == "Socket"
    assert len(state.records["Leads"]) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/__sandbox/stats", timeout=1)


def test_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["--seed", "Nope=5"]) == 2
    with pytest.raises(SystemExit):
        main(["--fail-kind", "teapot"])
    with pytest.raises(SystemExit):
        main(["--edition", "platinum"])
    assert main(["--fault-targets", "crm,mail"]) == 2
    assert "fault" in capsys.readouterr().err


def test_serve_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        serve("192.0.2.1")


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter, where nothing has imported starlette yet."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_sandbox_help_documents_the_admin_api_without_importing_starlette() -> None:
    done = _fresh_python(
        "import sys\n"
        "from connector.cli import main\n"
        "try:\n"
        "    main(['sandbox', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'multipart') if m in sys.modules), file=sys.stderr)\n"
    )
    assert done.stderr.strip() == "[]"
    for text in ("/__sandbox/seed", "/__sandbox/tokens", "/__sandbox/stats", "/__sandbox/faults", "auto-approves"):
        assert text in done.stdout
    assert '"fail_next"' in done.stdout and "--fail-next" in done.stdout


def test_importing_the_connector_or_the_sandbox_package_loads_no_web_framework() -> None:
    done = _fresh_python(
        "import sys, connector, connector.sandbox\n"
        "from connector.sandbox import FaultConfig, SandboxState\n"
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))\n"
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_the_sandbox_packages_are_plain_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert {"starlette", "uvicorn", "python-multipart"} <= names
    assert project["optional-dependencies"]["sandbox"] == []  # the old extra still installs


def test_consent_page_says_it_auto_approves() -> None:
    with serve_in_thread(SandboxState()) as base:
        params = {"client_id": DEFAULT_CLIENT_ID, "redirect_uri": "https://app.example/cb", "scope": "ZohoCRM.org.READ"}
        answer = httpx.get(f"{base}/oauth/v2/auth", params=params)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("https://app.example/cb?code=")
    assert "auto-approves every request" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_the_bound_socket_listens_before_its_url_is_handed_out() -> None:
    """A client that connects as soon as it reads the URL, before uvicorn has started, is queued, not refused."""
    import socket

    from connector.sandbox.server import _bind, _url

    sock = _bind("127.0.0.1", 0)
    try:
        port = int(_url(sock).rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        sock.close()


def test_the_sandbox_writes_a_private_connections_file_that_workers_run_actions_with(tmp_path: Path) -> None:
    """`zoho-connector sandbox --write-connections FILE`: what a newcomer gives an engine's workers to try them."""
    from connector import Connector

    file = tmp_path / "sandbox-connections.json"
    command = [sys.executable, "-m", "connector.cli", "sandbox", "--port", "0", "--seed", "Leads=3"]
    process = subprocess.Popen(
        [*command, "--write-connections", str(file)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        assert file.stat().st_mode & 0o777 == 0o600
        with Connector.load(connections=file) as connector:
            inputs = {"recordType": "Leads", "fields": ["Last_Name"]}
            leads = connector.run("crmGetRecords", inputs, connection="sandbox")
        assert len(leads["data"]["data"]) == 3
        assert (tmp_path / "sandbox-connections.tokens.db").exists()  # tokens shared through a store beside it
    finally:
        process.terminate()
        process.wait(30)


def test_every_admin_endpoint_is_in_the_help_and_the_readme() -> None:
    """Derived from the app's routes, so an admin endpoint added later cannot go undocumented."""
    from connector.sandbox import create_app
    from connector.sandbox.server import _parser

    routes = [str(getattr(r, "path", "")) for r in create_app().routes]
    paths = {p for p in routes if p.startswith("/__sandbox/")}
    assert {"/__sandbox/seed", "/__sandbox/tokens", "/__sandbox/stats", "/__sandbox/faults"} <= paths
    help_text = _parser().format_help()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(p for p in paths if p not in help_text) == []
    assert sorted(p for p in paths if p not in readme) == []
