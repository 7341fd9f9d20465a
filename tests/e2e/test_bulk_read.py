"""Bulk read end to end on the sandbox (configured with 7 rows a job, so "more than 200,000 rows" is 20 rows):
the job actions, crmBulkReadRecords through Python, the CLI and invoke, the raw request, and bad inputs."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.errors import InputValidationError, TransientError, ZohoAPIError
from connector.sandbox import SandboxState, serve_in_thread
from connector.sandbox.state import Options
from tests.e2e.connections import with_access_token
from tests.e2e.test_every_action import WAYS, runner

ROWS_PER_JOB = 7
LEADS = 20


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    state = SandboxState(options=Options(bulk_read_page_rows=ROWS_PER_JOB, bulk_read_polls=2))
    with serve_in_thread(state) as base:
        httpx.post(f"{base}/__sandbox/seed", json={"module": "Leads", "count": LEADS}).raise_for_status()
        yield base


@pytest.fixture
def connection(sandbox: str) -> dict[str, Any]:
    return with_access_token(sandbox)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def requests(sandbox: str) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"]
    return counts


def all_leads(connector: Connector, connection: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = {"recordType": "Leads", "fields": ["Last_Name", "Email"], "fetchAll": True}
    leads: list[dict[str, Any]] = connector.run("crmGetRecords", inputs, connection=connection)["data"]["data"]
    return sorted(leads, key=lambda r: r["id"])


def test_every_record_past_the_rows_of_one_job(sandbox: str, connection: dict[str, Any]) -> None:
    sleeps = Sleeps()
    connector = Connector.load(sleep=sleeps)
    before = requests(sandbox)
    result = connector.run(
        "crmBulkReadRecords", {"recordType": "Leads", "fields": ["Last_Name", "Email"]}, connection=connection
    )["data"]
    expected = [
        {"Id": r["id"], "Last_Name": r["Last_Name"], "Email": r["Email"]} for r in all_leads(connector, connection)
    ]
    assert result["data"] == expected
    assert result["info"]["count"] == LEADS and len(result["info"]["jobs"]) == 3  # 7 + 7 + 6 rows
    after = requests(sandbox)
    assert after["POST /crm/bulk/v8/read"] - before.get("POST /crm/bulk/v8/read", 0) == 3
    # each job answers ADDED, IN PROGRESS, then COMPLETED: two waits a job, backing off 1 s then 2 s
    assert sleeps == [1.0, 2.0] * 3


def test_the_first_job_only_without_fetch_all_and_resuming_from_its_token(connection: dict[str, Any]) -> None:
    connector = Connector.load(sleep=Sleeps())
    one = connector.run("crmBulkReadRecords", {"recordType": "Leads", "fetchAll": False}, connection=connection)
    assert one["data"]["info"]["count"] == ROWS_PER_JOB
    job = connector.run("crmGetBulkReadJob", {"jobId": one["data"]["info"]["jobs"][0]}, connection=connection)
    token = job["data"]["data"][0]["result"]["next_page_token"]
    rest = connector.run("crmBulkReadRecords", {"recordType": "Leads", "page_token": token}, connection=connection)
    assert rest["data"]["info"]["count"] == LEADS - ROWS_PER_JOB
    assert {r["Id"] for r in one["data"]["data"]}.isdisjoint(r["Id"] for r in rest["data"]["data"])
    page_three = connector.run("crmBulkReadRecords", {"recordType": "Leads", "page": 3}, connection=connection)
    assert [r["Id"] for r in page_three["data"]["data"]] == [r["Id"] for r in rest["data"]["data"]][ROWS_PER_JOB:]


def test_criteria_and_custom_views_choose_the_rows(connection: dict[str, Any]) -> None:
    connector = Connector.load(sleep=Sleeps())
    leads = all_leads(connector, connection)
    target = leads[3]
    criteria = {
        "group_operator": "or",
        "group": [
            {"field": {"api_name": "Email"}, "comparator": "equal", "value": target["Email"]},
            {"field": {"api_name": "Last_Name"}, "comparator": "equal", "value": leads[5]["Last_Name"]},
        ],
    }
    picked = connector.run(
        "crmBulkReadRecords", {"recordType": "Leads", "fields": ["Email"], "criteria": criteria}, connection=connection
    )["data"]["data"]
    assert [r["Id"] for r in picked] == [target["id"], leads[5]["id"]]
    views = connector.options("crmBulkReadRecords", "cvid", {"recordType": "Leads"}, connection=connection)
    every = connector.run(
        "crmBulkReadRecords", {"recordType": "Leads", "cvid": views[0]["value"]}, connection=connection
    )
    assert every["data"]["info"]["count"] == LEADS


@pytest.mark.parametrize("way", WAYS)
def test_the_job_actions_one_call_each(
    way: str,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """crmCreateBulkReadJob and crmGetBulkReadJob through Python, the CLI and invoke: one call each, no polling."""
    run = runner(way, connection, capsys, monkeypatch)
    created = run(
        "crmCreateBulkReadJob",
        {"recordType": "Leads", "fields": ["Email"], "callbackUrl": "https://example.com/done", "fileType": "csv"},
    )["data"][0]
    assert created["code"] == "ADDED_SUCCESSFULLY" and created["details"]["state"] == "ADDED"
    job_id = created["details"]["id"]
    states = [run("crmGetBulkReadJob", {"jobId": job_id})["data"][0]["state"] for _ in range(3)]
    assert states == ["ADDED", "IN PROGRESS", "COMPLETED"]
    # the raw request reaches the bulk API: a url starting with /crm/ is taken from the API domain's root
    raw = run("crmRawRequest", {"url": f"/crm/bulk/v8/read/{job_id}"})
    assert raw["data"][0]["result"]["more_records"] is True
    zipped = run("crmRawRequest", {"url": f"/crm/bulk/v8/read/{job_id}/result", "responseType": "binary"})
    import base64

    with zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped["base64"]))) as archive:
        rows = archive.read(archive.namelist()[0]).decode().splitlines()
    assert rows[0] == "Id,Email" and len(rows) == ROWS_PER_JOB + 1
    # bad inputs are refused before anything is sent, whichever way the action runs
    with pytest.raises(InputValidationError) as caught:
        run("crmCreateBulkReadJob", {"recordType": "Leads", "fileType": "xlsx"})
    assert "fileType" in {v.input for v in caught.value.violations}
    with pytest.raises(ZohoAPIError) as missing:
        run("crmGetBulkReadJob", {"jobId": "404"})
    assert (missing.value.status, missing.value.code) == (404, "RESOURCE_NOT_FOUND")


def test_the_command_line_streams_and_invoke_answers(
    connection: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the CLI's Connector sleeps between polls
    conn = json.dumps(connection)
    inputs = json.dumps({"recordType": "Leads", "fields": ["Last_Name"]})
    assert main(["run", "crmBulkReadRecords", "--inputs", inputs, "--connection", conn]) == 0
    out = json.loads(capsys.readouterr().out)["data"]
    assert len(out["data"]) == LEADS and out["info"]["count"] == LEADS and len(out["info"]["jobs"]) == 3

    request = {"action": "crmBulkReadRecords", "inputs": {"recordType": "Leads"}, "connection": connection}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request)))
    assert main(["invoke"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is True and answer["data"]["info"]["count"] == LEADS


def test_iter_records_and_async(connection: dict[str, Any]) -> None:
    import asyncio

    connector = Connector.load(sleep=Sleeps())
    streamed = list(connector.iter_records("crmBulkReadRecords", {"recordType": "Leads"}, connection=connection))
    assert len(streamed) == LEADS
    whole = asyncio.run(connector.arun("crmBulkReadRecords", {"recordType": "Leads"}, connection=connection))
    assert whole["data"]["data"] == streamed

    async def streamed_async(limit: int | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        leads = {"recordType": "Leads"}
        async for record in connector.aiter_records("crmBulkReadRecords", leads, connection=connection):
            rows.append(record)
            if len(rows) == limit:
                break
        return rows

    assert asyncio.run(streamed_async()) == streamed  # every job, in order, as the blocking stream gives them
    assert asyncio.run(streamed_async(3)) == streamed[:3]  # a caller may stop early


def test_aiter_records_streams_a_job_a_slice_at_a_time(
    connection: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The async stream holds one slice of rows at a time, not the whole export, and checks inputs before it
    sends anything."""
    import asyncio

    monkeypatch.setattr("connector.runner.JOB_SLICE", 4)
    connector = Connector.load(sleep=Sleeps())
    seen: list[int] = []

    async def walk() -> int:
        count = 0
        async for _ in connector.aiter_records("crmBulkReadRecords", {"recordType": "Leads"}, connection=connection):
            count += 1
        return count

    real = asyncio.to_thread

    async def counting(fn: Any, *args: Any) -> Any:
        result = await real(fn, *args)
        seen.append(len(result))
        return result

    monkeypatch.setattr(asyncio, "to_thread", counting)
    assert asyncio.run(walk()) == LEADS
    assert seen == [4, 4, 4, 4, 4, 0]  # 20 rows over three jobs, 4 a hop, then the end

    async def bad() -> None:
        async for _ in connector.aiter_records("crmBulkReadRecords", {"recordType": 5}, connection=connection):
            pass

    with pytest.raises(InputValidationError):
        asyncio.run(bad())


@pytest.mark.parametrize(
    ("inputs", "input"),
    [
        ({}, "recordType"),
        ({"recordType": "Leads", "criteria": {"field": "Email", "comparator": "equal", "value": 1}}, "criteria"),
        (
            {"recordType": "Leads", "criteria": {"field": {"api_name": "Email"}, "comparator": "like", "value": 1}},
            "criteria",
        ),
        ({"recordType": "Leads", "page": 51}, "page"),
        ({"recordType": "Leads", "fields": []}, "fields"),
        ({"recordType": "Leads", "cvid": "all"}, "cvid"),
        ({"recordType": "Leads", "fileType": "csv"}, "fileType"),  # crmBulkReadRecords always reads CSV
    ],
)
def test_bad_inputs_send_nothing(sandbox: str, connection: dict[str, Any], inputs: dict[str, Any], input: str) -> None:
    before = requests(sandbox).get("POST /crm/bulk/v8/read", 0)
    with pytest.raises(InputValidationError) as caught:
        Connector.load().run("crmBulkReadRecords", inputs, connection=connection)
    assert input in {v.input for v in caught.value.violations}
    assert requests(sandbox).get("POST /crm/bulk/v8/read", 0) == before


def test_zohos_refusals_come_back_as_zoho_errors(connection: dict[str, Any]) -> None:
    connector = Connector.load(sleep=Sleeps())
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmBulkReadRecords", {"recordType": "Gizmos"}, connection=connection)
    assert caught.value.code == "MODULE_NOT_SUPPORTED"
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmBulkReadRecords", {"recordType": "Leads", "fields": ["Colour"]}, connection=connection)
    assert caught.value.code == "FIELD_NOT_AVAILABLE"
    criteria = {"field": {"api_name": "Colour"}, "comparator": "equal", "value": "red"}
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmBulkReadRecords", {"recordType": "Leads", "criteria": criteria}, connection=connection)
    assert caught.value.code == "FIELD_IN_CRITERIA_NOT_SUPPORTED"
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmGetBulkReadJob", {"jobId": "404"}, connection=connection)
    assert caught.value.status == 404 and caught.value.code == "RESOURCE_NOT_FOUND"


def test_a_job_that_never_finishes_times_out_on_the_injected_clock(tmp_path: Any) -> None:
    state = SandboxState(options=Options(bulk_read_polls=10**6))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with serve_in_thread(state) as base:
        connector = Connector.load(sleep=sleep, clock=lambda: 1_800_000_000.0 + now[0])
        with pytest.raises(TransientError) as caught:
            connector.run("crmBulkReadRecords", {"recordType": "Leads"}, connection=with_access_token(base))
    assert "is still ADDED after 3600.0 s" in str(caught.value) and caught.value.retryable
    assert 3500 < now[0] <= 3600  # waits capped at 30 s, never past the deadline
