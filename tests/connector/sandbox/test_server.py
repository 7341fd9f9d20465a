"""The real loopback server in a thread, and the CLI entry's argument handling."""

from __future__ import annotations

import httpx
import pytest

from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, main, serve, serve_in_thread


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


def test_serve_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        serve("192.0.2.1")
