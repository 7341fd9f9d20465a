"""The Partner Store emulator: bare arrays of the notes' fields, GET only, page/per_page with pagination headers
(or none), scope checks, seeding through the admin API, and persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.sandbox import SandboxState
from connector.sandbox.store import KINDS
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio
ROOT = "/api/v1/partner"

# zoho-api.md §6: every subscription field the notes list.
SUBSCRIPTION_FIELDS = {
    "id",
    "subscription_id",
    "subscription_type",
    "pricing_type",
    "status",
    "subscription_start_date",
    "next_recurring_date",
    "next_recurring_amount",
    "next_recurring_amount_usd",
    "billing_frequency",
    "email_id",
    "customer_company_name",
    "org_id",
    "plan_id",
    "plan_name",
    "profile_id",
    "service_id",
    "service_name",
}


async def test_subscriptions_are_a_bare_array_with_the_notes_fields(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{ROOT}/subscriptions")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and body
    for row in body:
        assert set(row) >= SUBSCRIPTION_FIELDS
        assert row["pricing_type"] in ("partner_price", "list_price")
        assert row["status"] in ("active", "inactive")
        assert row["billing_frequency"] in ("monthly", "quarterly", "half_yearly", "yearly")


async def test_transactions_and_commissions_link_to_what_they_belong_to(api: httpx.AsyncClient) -> None:
    subscriptions = {s["subscription_id"] for s in (await api.get(f"{ROOT}/subscriptions")).json()}
    transactions = (await api.get(f"{ROOT}/transactions")).json()
    commissions = (await api.get(f"{ROOT}/commissions")).json()
    assert transactions and {t["subscription_id"] for t in transactions} <= subscriptions
    # One commission per transaction (the sync FAQ), open, requested or completed.
    assert {c["transaction_id"] for c in commissions} <= {t["transaction_id"] for t in transactions}
    assert {c["status"] for c in commissions} <= {"open", "requested", "completed"}
    assert (await api.get(f"{ROOT}/leads")).json()[0]["email_id"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_the_store_is_get_only(api: httpx.AsyncClient, method: str) -> None:
    response = await api.request(method, f"{ROOT}/subscriptions", json={})
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_a_path_filter_is_400_and_an_unknown_kind_404(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{ROOT}/subscriptions/status/active")).status_code == 400
    assert (await api.get(f"{ROOT}/invoices")).status_code == 404


async def test_pages_and_their_headers(api: httpx.AsyncClient) -> None:
    seeded = await api.post("/__sandbox/seed", json={"store_kind": "leads", "count": 448})
    assert seeded.json() == {"store_kind": "leads", "created": 448, "total": 450}
    first = await api.get(f"{ROOT}/leads")
    assert len(first.json()) == 200  # the documented default page
    assert (first.headers["X-Has-More-Page"], first.headers["X-Total-Count"]) == ("true", "450")
    last = await api.get(f"{ROOT}/leads", params={"page": 3, "per_page": 200})
    assert len(last.json()) == 50 and last.headers["X-Has-More-Page"] == "false"
    ids = [r["id"] for p in (1, 2, 3) for r in (await api.get(f"{ROOT}/leads", params={"page": p})).json()]
    assert len(set(ids)) == 450


async def test_page_headers_can_be_turned_off(api: httpx.AsyncClient) -> None:
    assert (await api.post("/__sandbox/store", json={"page_headers": "none"})).json()["page_headers"] == "none"
    response = await api.get(f"{ROOT}/leads")
    assert "X-Has-More-Page" not in response.headers and "X-Total-Count" not in response.headers
    assert (await api.post("/__sandbox/store", json={"page_headers": "some"})).status_code == 400


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"per_page": "201"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
    ],
)
async def test_bad_page_parameters_are_400(api: httpx.AsyncClient, params: dict[str, str], named: str) -> None:
    response = await api.get(f"{ROOT}/transactions", params=params)
    assert response.status_code == 400
    assert response.json()["message"].startswith(named)


async def test_an_unknown_store_kind_cannot_be_seeded(client: httpx.AsyncClient) -> None:
    response = await client.post("/__sandbox/seed", json={"store_kind": "invoices", "count": 1})
    assert response.status_code == 400 and "unknown store kind" in response.json()["message"]


async def test_calls_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ROOT}/subscriptions")
    assert response.status_code == 401


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_needs_its_own_scope(client: httpx.AsyncClient, kind: str) -> None:
    others = ",".join(f"ZohoPayments.{k}.READ" for k in KINDS if k != kind)
    token: dict[str, Any] = (await client.post("/__sandbox/tokens", json={"scope": others})).json()
    client.headers["Authorization"] = f"Zoho-oauthtoken {token['access_token']}"
    refused = await client.get(f"{ROOT}/{kind}")
    assert (refused.status_code, refused.json()["code"]) == (401, "OAUTH_SCOPE_MISMATCH")
    token = (await client.post("/__sandbox/tokens", json={"scope": f"ZohoPayments.{kind}.READ"})).json()
    client.headers["Authorization"] = f"Zoho-oauthtoken {token['access_token']}"
    assert (await client.get(f"{ROOT}/{kind}")).status_code == 200


def test_the_store_is_saved_and_loaded(tmp_path: Path) -> None:
    state = SandboxState()
    state.store_page_headers = "none"
    state.save(tmp_path / "world.json")
    loaded = SandboxState.load(tmp_path / "world.json")
    assert loaded.store == state.store and loaded.store_page_headers == "none"


async def test_records_added_while_running_carry_the_clock_date(api: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    added = (await api.post("/__sandbox/store", json={"add": {"kind": "transactions", "count": 2}})).json()
    assert [t["transaction_date"] for t in added["added"]] == ["2026-01-01", "2026-01-01"]
    clock.now += 86_400
    commission = (await api.post("/__sandbox/store", json={"add": {"kind": "commissions"}})).json()["added"][0]
    assert commission["created_date"] == "2026-01-02"
    listed = (await api.get(f"{ROOT}/transactions")).json()
    assert [t["id"] for t in listed[-2:]] == [t["id"] for t in added["added"]]  # appended: oldest first
    assert added["records"]["transactions"] == 5


async def test_a_new_transaction_changes_its_subscription(api: httpx.AsyncClient) -> None:
    before = {s["id"]: s for s in (await api.get(f"{ROOT}/subscriptions")).json()}
    added = (await api.post("/__sandbox/store", json={"add": {"kind": "transactions", "count": 6}})).json()["added"]
    after = {s["id"]: s for s in (await api.get(f"{ROOT}/subscriptions")).json()}
    touched = {t["subscription_id"] for t in added}
    assert touched and all(before[s] != after[s] for s in touched)
    assert {t["transaction_type"] for t in added} >= {"renewal", "cancellation"}
    cancelled = next(t for t in reversed(added) if t["transaction_type"] in ("cancellation", "new", "renewal"))
    status = "inactive" if cancelled["transaction_type"] == "cancellation" else "active"
    assert after[cancelled["subscription_id"]]["status"] == status


async def test_a_record_is_updated_in_place(api: httpx.AsyncClient) -> None:
    commission = (await api.get(f"{ROOT}/commissions")).json()[0]
    change = {"kind": "commissions", "id": commission["id"], "fields": {"status": "requested"}}
    assert (await api.post("/__sandbox/store", json={"update": change})).json()["updated"]["status"] == "requested"
    assert (await api.get(f"{ROOT}/commissions")).json()[0] == {**commission, "status": "requested"}
    missing = await api.post("/__sandbox/store", json={"update": {**change, "id": "1"}})
    assert missing.status_code == 404
    ids = await api.post("/__sandbox/store", json={"update": {**change, "fields": {"commission_id": "2"}}})
    assert ids.status_code == 400


async def test_the_list_order_can_be_newest_first(api: httpx.AsyncClient) -> None:
    oldest_first = [t["id"] for t in (await api.get(f"{ROOT}/transactions")).json()]
    assert (await api.post("/__sandbox/store", json={"order": "newest_first"})).json()["order"] == "newest_first"
    page = (await api.get(f"{ROOT}/transactions", params={"per_page": 2})).json()
    assert [t["id"] for t in page] == oldest_first[::-1][:2]
    for body in ({"order": "random"}, {"add": {"kind": "transactions", "count": -1}}, {"colour": 1}, [1]):
        assert (await api.post("/__sandbox/store", json=body)).status_code == 400


def test_the_order_is_saved_and_loaded(tmp_path: Path) -> None:
    state = SandboxState()
    state.store_order = "newest_first"
    state.save(tmp_path / "world.json")
    assert SandboxState.load(tmp_path / "world.json").store_order == "newest_first"


async def test_a_query_filter_on_a_field_keeps_the_equal_records_and_other_names_are_ignored(
    api: httpx.AsyncClient,
) -> None:
    everything = (await api.get(f"{ROOT}/subscriptions")).json()
    assert {s["status"] for s in everything} >= {"active"}
    active = (await api.get(f"{ROOT}/subscriptions", params={"status": "active"})).json()
    assert active == [s for s in everything if s["status"] == "active"]
    one = everything[0]
    both = await api.get(f"{ROOT}/subscriptions", params={"status": one["status"], "id": one["id"]})
    assert both.json() == [one]
    unknown = await api.get(f"{ROOT}/subscriptions", params={"no_such_field": "x"})
    assert unknown.json() == everything
    paged = await api.get(f"{ROOT}/subscriptions", params={"status": "active", "per_page": 1, "page": 1})
    assert paged.json() == active[:1]
