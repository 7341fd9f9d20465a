"""Fault injection (next N, windows, random rates, slow answers, token actions) and the admin endpoints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.sandbox import FaultConfig, SandboxState, create_app, records, seed
from connector.sandbox.faults import JSON_KEYS
from connector.sandbox.server import _parser, fault_flags
from tests.conftest import FakeClock
from tests.connector.sandbox.conftest import BASE

pytestmark = pytest.mark.anyio
_UNSAMPLED = {"ownerlookup", "lookup", "datetime"}


async def test_next_n_429_with_and_without_retry_after(api: httpx.AsyncClient) -> None:
    set_ = await api.post("/__sandbox/faults", json={"fail_kind": "429", "fail_next": 2, "retry_after": 7})
    assert set_.json()["faults"]["fail_next"] == 2
    first = await api.get("/crm/v8/org")
    assert (first.status_code, first.headers["retry-after"], first.json()["code"]) == (429, "7", "TOO_MANY_REQUESTS")
    books = await api.get("/books/v3/organizations")
    assert (books.status_code, books.json()["code"]) == (429, 45)
    assert (await api.get("/crm/v8/org")).status_code == 200
    await api.post("/__sandbox/faults", json={"fail_next": 1})
    plain = await api.get("/crm/v8/org")
    assert plain.status_code == 429
    assert "retry-after" not in plain.headers
    stats = (await api.get("/__sandbox/stats")).json()
    assert stats["faults_injected"] == {"429": 3}
    assert stats["requests"]["GET /crm/v8/org"] == 3


async def test_crm_throttle_and_5xx(api: httpx.AsyncClient) -> None:
    await api.post("/__sandbox/faults", json={"kind": "throttle", "next_n": 1})
    throttled = await api.get("/crm/v8/org")
    assert throttled.status_code == 400
    assert throttled.json() == {
        "error_description": "You have made too many requests continuously. Please try again after some time.",
        "error": "Access Denied",
        "status": "failure",
    }
    await api.post("/__sandbox/faults", json={"kind": "5xx", "next_n": 2, "status_5xx": 503})
    crm = await api.get("/crm/v8/org")
    assert (crm.status_code, crm.json()["code"]) == (503, "INTERNAL_ERROR")
    books = await api.get("/books/v3/organizations")
    assert (books.status_code, books.json()) == (503, {"code": 1000, "message": "Internal error"})
    assert "retry-after" not in crm.headers and "retry-after" not in books.headers
    await api.post("/__sandbox/faults", json={"fail_kind": "5xx", "fail_next": 1, "status_5xx": 503, "retry_after": 4})
    unavailable = await api.get("/crm/v8/org")
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "4")  # "come back in 4 s"


async def test_window_and_targets(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await api.post("/__sandbox/faults", json={"kind": "5xx", "for_seconds": 30, "targets": ["crm"]})
    assert (await api.get("/crm/v8/org")).status_code == 500
    assert (await api.get("/books/v3/organizations")).status_code == 200
    clock.now += 31
    assert (await api.get("/crm/v8/org")).status_code == 200
    await api.post("/__sandbox/faults", json={"kind": "throttle", "next_n": 1, "targets": ["accounts"]})
    answer = await api.post("/oauth/v2/token", data={"grant_type": "refresh_token"})
    assert answer.json()["error"] == "Access Denied"


async def test_random_rates_are_seedable(api: httpx.AsyncClient) -> None:
    await api.post("/__sandbox/faults", json={"fail_rate_429": 0.5, "fault_seed": 3})
    first = [(await api.get("/crm/v8/org")).status_code for _ in range(20)]
    await api.post("/__sandbox/faults", json={"fail_rate_429": 0.5, "fault_seed": 3})
    second = [(await api.get("/crm/v8/org")).status_code for _ in range(20)]
    assert first == second
    assert {200, 429} == set(first)
    cleared = await api.delete("/__sandbox/faults")
    assert cleared.json()["faults"]["fail_rate_429"] == 0.0


async def test_slow_answers_use_the_injected_sleep(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await api.post("/__sandbox/faults", json={"slow_ms": 250})
    assert (await api.get("/crm/v8/org")).status_code == 200
    assert clock.sleeps == [0.25]


async def test_a_held_back_answer_comes_after_the_call_acted(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await api.post("/__sandbox/faults", json={"slow_reply_ms": 400})
    created = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "Late"}]})
    assert created.status_code == 201
    assert clock.sleeps == [0.4]
    await api.delete("/__sandbox/faults")
    lead = created.json()["data"][0]["details"]["id"]
    assert (await api.get(f"/crm/v8/Leads/{lead}")).json()["data"][0]["Last_Name"] == "Late"


async def test_expire_tokens_and_revoke_refresh(api: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    expired = await api.post("/__sandbox/faults", json={"expire_access_tokens": True})
    assert expired.json()["expired_access_tokens"] == 1
    assert (await api.get("/crm/v8/org")).status_code == 401
    revoked = await api.post("/__sandbox/faults", json={"revoke_refresh_token": tokens["refresh_token"]})
    assert revoked.json()["revoked_refresh_token"] == tokens["refresh_token"]
    data = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": "1000.SANDBOXCLIENT",
        "client_secret": "sandbox-secret",
    }
    assert (await api.post("/oauth/v2/token", data=data)).json() == {"error": "invalid_code"}
    assert (await api.post("/__sandbox/faults", json={"revoke_refresh_token": "nope"})).status_code == 404


async def test_bad_fault_settings(client: httpx.AsyncClient) -> None:
    assert (await client.post("/__sandbox/faults", json={"bogus": 1})).status_code == 400
    assert (await client.post("/__sandbox/faults", json={"kind": "teapot", "next_n": 1})).status_code == 400


def test_fault_config_from_json_and_pick() -> None:
    config = FaultConfig.from_json({"kind": "5xx", "for_seconds": 10, "targets": ["books"]}, now=100.0)
    assert config.until == 110.0
    assert config.pick("crm", 105.0) is None
    assert config.pick("books", 105.0) == "5xx"
    assert config.pick("books", 111.0) is None
    assert config.to_json()["fault_targets"] == ["books"]


async def test_seed_reset_stats(api: httpx.AsyncClient, state: SandboxState) -> None:
    seeded = await api.post("/__sandbox/seed", json={"module": "Contacts", "count": 1000})
    assert seeded.json() == {"module": "Contacts", "created": 1000, "total": 1000}
    assert (await api.get("/crm/v8/Contacts/actions/count")).json() == {"count": 1000}
    assert (await api.post("/__sandbox/seed", json={"module": "Nope"})).status_code == 404
    assert (await api.post("/__sandbox/seed", json={"module": "Leads", "count": -1})).status_code == 400
    stats = (await api.get("/__sandbox/stats")).json()
    assert stats["records"]["Contacts"] == 1000
    assert stats["active_access_tokens"] == 1
    assert (await api.post("/__sandbox/reset")).json() == {"status": "success"}
    assert state.records["Contacts"] == {}
    assert (await api.get("/__sandbox/stats")).json()["requests_total"] == 0
    assert (await api.get("/crm/v8/org")).status_code == 401  # tokens went with the reset
    assert (await api.delete("/__sandbox/stats")).json() == {"status": "success"}


async def test_seed_is_fast_enough_for_benchmarks(
    client: httpx.AsyncClient, state: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeding does a fixed amount of work per record: no validation, no index or sort rebuilt per row.

    Counted, not timed, so it cannot flake on a busy machine; bench/ measures the wall time.
    """
    calls: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(seed, "_sample", counting("sample", seed._sample))
    monkeypatch.setattr(SandboxState, "touch", counting("touch", SandboxState.touch))
    monkeypatch.setattr(SandboxState, "sorted_records", counting("sort", SandboxState.sorted_records))
    monkeypatch.setattr(records.Batch, "prepare", counting("validate", records.Batch.prepare))
    per_row = sum(1 for f in state.modules["Leads"].fields if not f.read_only and f.data_type not in _UNSAMPLED)
    for count in (1_000, 2_000):
        calls.clear()
        response = await client.post("/__sandbox/seed", json={"module": "Leads", "count": count})
        assert response.json()["created"] == count
        # Linear: exactly one sample per writable field per row, one cache invalidation per request.
        assert calls == Counter({"sample": per_row * count, "touch": 1})
    response = await client.post("/__sandbox/seed", json={"module": "Leads", "count": 100_000})
    assert response.json()["total"] == 103_000
    assert len(state.records["Leads"]) == 103_000


async def test_persistence_round_trip(tmp_path: Path, clock: FakeClock) -> None:
    state = SandboxState()
    app = create_app(state, clock=clock, data_path=tmp_path / "sandbox.json")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        token = (await client.post("/__sandbox/tokens", json={})).json()
        headers = {"Authorization": f"Zoho-oauthtoken {token['access_token']}"}
        lead = await client.post("/crm/v8/Leads", headers=headers, json={"data": [{"Last_Name": "Kept"}]})
        lid = lead.json()["data"][0]["details"]["id"]
        await client.post(f"/crm/v8/Leads/{lid}/Attachments", headers=headers, files={"file": ("b.bin", b"\xff\x00")})
        assert (await client.post("/__sandbox/save")).json()["status"] == "success"
    loaded = SandboxState.load(tmp_path / "sandbox.json")
    assert loaded.records["Leads"][lid]["Last_Name"] == "Kept"
    assert next(iter(loaded.attachments.values())).content == b"\xff\x00"
    assert loaded.to_dict() == state.to_dict()
    assert loaded.new_crm_id() == state.new_crm_id()
    unsaved = create_app(SandboxState(), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=unsaved), base_url=BASE) as client:
        assert (await client.post("/__sandbox/save")).status_code == 409


def test_fault_json_keys_are_the_cli_flags() -> None:
    group = next(g for g in _parser()._action_groups if g.title and g.title.startswith("faults"))
    flags = {a.dest for a in group._group_actions}
    assert flags == set(JSON_KEYS)
    for action in group._group_actions:
        assert action.option_strings == ["--" + action.dest.replace("_", "-")]


async def test_cli_flags_and_admin_json_configure_the_same_faults(client: httpx.AsyncClient, clock: FakeClock) -> None:
    argv = [
        "--fail-next=3",
        "--fail-kind=5xx",
        "--fail-for-seconds=30",
        "--fail-rate-429=0.25",
        "--fail-rate-5xx=0.5",
        "--fail-rate-throttle=0.125",
        "--retry-after=4",
        "--status-5xx=503",
        "--slow-ms=10",
        "--fault-targets=crm,accounts",
        "--fault-seed=9",
    ]
    from_cli = FaultConfig.from_json(fault_flags(_parser().parse_args(argv)), clock.now).to_json()
    body = {
        key: value if key in {"fail_kind", "fault_targets"} else float(value)
        for key, value in (arg.removeprefix("--").replace("-", "_").split("=") for arg in argv)
    }
    posted = await client.post("/__sandbox/faults", json=body)
    assert posted.status_code == 200, posted.text
    assert posted.json()["faults"] == from_cli
    assert from_cli["fail_next"] == 3 and from_cli["fault_targets"] == ["crm", "accounts"]
    assert from_cli["until"] == clock.now + 30


async def test_older_fault_names_still_work(client: httpx.AsyncClient) -> None:
    old = await client.post("/__sandbox/faults", json={"kind": "throttle", "next_n": 2, "for_seconds": 5})
    assert (old.json()["faults"]["fail_kind"], old.json()["faults"]["fail_next"]) == ("throttle", 2)
    bad = await client.post("/__sandbox/faults", json={"fault_targets": ["crm", "mail"]})
    assert bad.status_code == 400
    assert (await client.post("/__sandbox/faults", json={"fail_next": "2"})).status_code == 400
