"""What polling triggers rely on in the sandbox: If-Modified-Since under either reading (switchable, since Zoho does
not say which it uses), a Date header from the sandbox's own clock, Books lists sorted by their timestamps."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx
import pytest

from connector.sandbox import SandboxState
from connector.sandbox.clock import crm_time
from connector.sandbox.server import _parser
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def _lead(api: httpx.AsyncClient, name: str) -> str:
    created = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": name}]})
    return str(created.json()["data"][0]["details"]["id"])


async def _modified_since(api: httpx.AsyncClient, moment: float) -> httpx.Response:
    return await api.get(
        "/crm/v8/Leads",
        params={"fields": "Last_Name", "sort_by": "Modified_Time", "sort_order": "asc"},
        headers={"If-Modified-Since": crm_time(moment)},
    )


async def test_if_modified_since_is_exclusive_by_default_and_switchable(
    api: httpx.AsyncClient, client: httpx.AsyncClient, clock: FakeClock, state: SandboxState
) -> None:
    at = clock.now
    exact = await _lead(api, "Exact")
    clock.now += 1
    later = await _lead(api, "Later")
    assert (await client.get("/__sandbox/options")).json() == {"modified_since": "exclusive"}
    exclusive = await _modified_since(api, at)
    assert [r["id"] for r in exclusive.json()["data"]] == [later]

    switched = await client.post("/__sandbox/options", json={"modified_since": "inclusive"})
    assert switched.json() == {"modified_since": "inclusive"} and state.options.modified_since == "inclusive"
    inclusive = await _modified_since(api, at)
    assert [r["id"] for r in inclusive.json()["data"]] == [exact, later]
    assert (await _modified_since(api, clock.now + 1)).status_code == 304  # nothing since: Zoho's 304


@pytest.mark.parametrize(
    ("body", "problem"),
    [({"modified_since": "sometimes"}, "must be one of"), ({"edition": "free"}, "unknown option 'edition'")],
)
async def test_only_known_options_and_values_are_switched(
    client: httpx.AsyncClient, state: SandboxState, body: dict[str, str], problem: str
) -> None:
    refused = await client.post("/__sandbox/options", json=body)
    assert refused.status_code == 400 and problem in refused.json()["message"]
    assert state.options.modified_since == "exclusive" and state.options.edition == "enterprise"


def test_the_reading_is_a_command_line_flag_too() -> None:
    assert _parser().parse_args(["--modified-since", "inclusive"]).modified_since == "inclusive"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--modified-since", "both"])


async def test_every_answer_is_dated_by_the_sandbox_clock(
    api: httpx.AsyncClient, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.now = 1_900_000_000.0
    for response in (await api.get("/crm/v8/Leads", params={"fields": "Last_Name"}), await client.get("/nowhere")):
        assert parsedate_to_datetime(response.headers["date"]).timestamp() == clock.now
        assert len(response.headers.get_list("date")) == 1


async def test_books_lists_sort_by_their_timestamps(api: httpx.AsyncClient, clock: FakeClock) -> None:
    params = {"organization_id": "10234695"}
    made = []
    for name in ("A", "B", "C"):
        created = await api.post("/books/v3/contacts", params=params, json={"contact_name": name})
        made.append(created.json()["contact"]["contact_id"])
        clock.now += 1
    await api.put(f"/books/v3/contacts/{made[0]}", params=params, json={"website": "a.example"})
    listed = await api.get(
        "/books/v3/contacts", params={**params, "sort_column": "last_modified_time", "sort_order": "D"}
    )
    assert [c["contact_id"] for c in listed.json()["contacts"]] == [made[0], made[2], made[1]]
    seeded = await api.post("/__sandbox/seed", json={"books_kind": "invoices", "count": 2})
    assert seeded.status_code == 200
    invoices = (await api.get("/books/v3/invoices", params=params)).json()["invoices"]
    assert all(i["created_time"] == i["last_modified_time"] for i in invoices) and len(invoices) == 2
