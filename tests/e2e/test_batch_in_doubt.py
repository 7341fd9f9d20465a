"""End to end: a bulk write whose chunk lost its answer on the sandbox. The sandbox carries that chunk out and then
drops the connection before the answer's body (fault kind `lost`): its records come back `in_doubt` and are not
sent again, every other chunk's records succeed, and the result keeps input order — through the Python API, the
CLI and `invoke`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_access_token
from tests.e2e.test_every_action import WAYS, runner

RECORDS = 250  # chunks of 100, 100 and 50


@pytest.fixture
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


def lose_the_next_answer(sandbox: str) -> None:
    httpx.post(f"{sandbox}/__sandbox/faults", json={"fail_kind": "lost", "fail_next": 1}).raise_for_status()


def stats(sandbox: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{sandbox}/__sandbox/stats").json()
    return answer


def records(tag: str) -> list[dict[str, Any]]:
    return [{"Last_Name": f"{tag}{i}"} for i in range(RECORDS)]


def check(result: list[dict[str, Any]], doubtful: range) -> None:
    assert [r["index"] for r in result] == list(range(RECORDS))
    assert [r["status"] for r in result] == ["in_doubt" if i in doubtful else "success" for i in range(RECORDS)]
    for entry in (result[i] for i in doubtful):
        assert entry["id"] is None and entry["error"]["may_have_acted"] is True
    assert all(result[i]["id"] and result[i]["code"] == "SUCCESS" for i in range(RECORDS) if i not in doubtful)


@pytest.mark.parametrize("way", WAYS)
def test_a_lost_chunk_is_in_doubt_and_the_others_succeed(
    way: str, sandbox: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk at a time (a concurrency cap of 1), so the lost answer is the first chunk's."""
    run = runner(way, {**with_access_token(sandbox), "max_concurrency": 1}, capsys, monkeypatch)
    before = stats(sandbox)["requests"].get("POST /crm/v8/Leads", 0)
    lose_the_next_answer(sandbox)
    result = run("crmCreateRecords", {"recordType": "Leads", "records": records(way)})
    check(result, range(100))
    after = stats(sandbox)
    assert after["faults_injected"] == {"lost": 1}
    assert after["requests"]["POST /crm/v8/Leads"] - before == 3  # the lost chunk was not sent again
    # the lost chunk acted: Zoho holds all 250 records, only the answer about 100 of them never came
    count = run("crmGetRecordsCount", {"recordType": "Leads", "criteria": f"(Last_Name:starts_with:{way})"})
    assert count == {"count": RECORDS}


def test_with_chunks_in_flight_together_only_the_lost_one_is_in_doubt(sandbox: str) -> None:
    """Three chunks at once: whichever reached the sandbox first lost its answer; exactly its records are in doubt."""
    connection = {**with_access_token(sandbox), "max_concurrency": 3}
    lose_the_next_answer(sandbox)
    result = Connector.load().run(
        "crmCreateRecords", {"recordType": "Leads", "records": records("together")}, connection=connection
    )["data"]
    doubtful = [r["index"] for r in result if r["status"] == "in_doubt"]
    assert doubtful in ([*range(100)], [*range(100, 200)], [*range(200, RECORDS)]), doubtful
    check(result, range(doubtful[0], doubtful[-1] + 1))
