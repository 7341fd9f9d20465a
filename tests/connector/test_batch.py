"""Actions of many items (`batch:`): chunks of 100, concurrent up to the cap, one result per item in input order,
207 partial answers, and chunks that may have acted reported in doubt without being re-sent."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError, ZohoAPIError
from tests.conftest import CRM


def leads(n: int) -> list[dict[str, Any]]:
    return [{"Last_Name": f"L{i}"} for i in range(n)]


def row_for(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("Last_Name") == "bad":
        return {"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Email"}, "message": "m", "status": "error"}
    rid = record.get("id") or f"id-{record['Last_Name']}"
    return {"code": "SUCCESS", "details": {"id": rid}, "message": "record added", "status": "success"}


def echo(request: httpx.Request) -> httpx.Response:
    """Zoho's write answer: one row per record sent, in order; 207 when some failed."""
    rows = [row_for(r) for r in json.loads(request.content)["data"]]
    failed = any(r["status"] == "error" for r in rows)
    return httpx.Response(207 if failed else 201, json={"data": rows})


def sent_chunks(httpx_mock: HTTPXMock) -> list[list[Any]]:
    return [json.loads(r.content)["data"] for r in httpx_mock.get_requests()]


def test_records_go_100_a_call_and_come_back_in_input_order(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(echo, method="POST", url=f"{CRM}/Leads", is_reusable=True)
    result = connector.run("crmCreateRecords", {"recordType": "Leads", "records": leads(250)}, connection=connection)
    chunks = sorted(sent_chunks(httpx_mock), key=lambda c: int(c[0]["Last_Name"][1:]))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [r for c in chunks for r in c] == leads(250)
    assert [e["index"] for e in result["data"]] == list(range(250))
    assert [e["id"] for e in result["data"]] == [f"id-L{i}" for i in range(250)]
    assert {e["status"] for e in result["data"]} == {"success"}


def test_trigger_is_sent_with_every_chunk_and_empty_means_none(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(echo, method="POST", url=f"{CRM}/Leads", is_reusable=True)
    connector.run(
        "crmCreateRecords", {"recordType": "Leads", "records": leads(150), "trigger": []}, connection=connection
    )
    assert [json.loads(r.content)["trigger"] for r in httpx_mock.get_requests()] == [[], []]


def test_a_207_keeps_each_records_own_answer(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(echo, method="POST", url=f"{CRM}/Leads", is_reusable=True)
    records = leads(120)
    records[105] = {"Last_Name": "bad"}
    result = connector.run("crmCreateRecords", {"recordType": "Leads", "records": records}, connection=connection)
    refused = result["data"][105]
    assert refused["index"] == 105 and refused["status"] == "error" and refused["code"] == "MANDATORY_NOT_FOUND"
    assert refused["details"] == {"api_name": "Email"} and refused["id"] is None
    assert sum(e["status"] == "success" for e in result["data"]) == 119


def test_a_chunk_zoho_refused_whole_still_reports_each_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """Every record of a chunk refused: HTTP 400 with a row per record, which are results, not a failed call."""
    rows = [
        {"code": "INVALID_DATA", "details": {"id": str(i)}, "message": "the id given seems to be invalid"}
        for i in range(3)
    ]
    httpx_mock.add_response(method="DELETE", status_code=400, json={"data": [{**r, "status": "error"} for r in rows]})
    result = connector.run(
        "crmDeleteRecords", {"recordType": "Leads", "recordIds": ["0", "1", "2"]}, connection=connection
    )
    assert [(e["index"], e["id"], e["code"]) for e in result["data"]] == [(i, str(i), "INVALID_DATA") for i in range(3)]


def test_a_chunk_whose_connection_drops_is_in_doubt_and_not_resent(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    records = [{"id": f"r{i}", "Company": "X"} for i in range(300)]
    doubtful = {"data": records[100:200]}
    httpx_mock.add_exception(httpx.ReadTimeout("the server went quiet"), method="PUT", match_json=doubtful)
    httpx_mock.add_callback(echo, method="PUT", url=f"{CRM}/Leads", is_reusable=True)
    result = connector.run("crmUpdateRecords", {"recordType": "Leads", "records": records}, connection=connection)
    assert sum(chunk == records[100:200] for chunk in sent_chunks(httpx_mock)) == 1  # sent once, never again
    entries = result["data"]
    assert [e["index"] for e in entries] == list(range(300))
    assert all(e["status"] == "success" and e["id"] == f"r{e['index']}" for e in entries[:100] + entries[200:])
    for entry in entries[100:200]:
        assert entry["status"] == "in_doubt" and entry["id"] == f"r{entry['index']}"
        assert entry["error"]["type"] == "transient" and entry["error"]["may_have_acted"] is True
        assert entry["error"]["retryable"] is False and "may have reached Zoho" in entry["message"]


def test_a_5xx_on_a_write_chunk_is_in_doubt_without_retry(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=f"{CRM}/Leads/upsert", status_code=503, json={"code": "INTERNAL_ERROR"})
    result = connector.run("crmUpsertRecords", {"recordType": "Leads", "records": leads(2)}, connection=connection)
    assert len(httpx_mock.get_requests()) == 1
    assert [e["status"] for e in result["data"]] == ["in_doubt", "in_doubt"]


def test_an_answer_with_the_wrong_number_of_rows_is_in_doubt(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", status_code=201, json={"data": [row_for({"Last_Name": "L0"})]})
    result = connector.run("crmCreateRecords", {"recordType": "Leads", "records": leads(2)}, connection=connection)
    assert [e["status"] for e in result["data"]] == ["in_doubt", "in_doubt"]
    assert (
        result["data"][0]["error"]["type"] == "bad_response" and "1 results for 2 items" in result["data"][0]["message"]
    )


def test_upserts_keep_zohos_action(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    rows = [
        {
            "code": "SUCCESS",
            "details": {"id": "7"},
            "message": "record updated",
            "status": "success",
            "action": "update",
        },
        {"code": "SUCCESS", "details": {"id": "8"}, "message": "record added", "status": "success", "action": "insert"},
    ]
    httpx_mock.add_response(method="POST", url=f"{CRM}/Leads/upsert", json={"data": rows})
    inputs = {"recordType": "Leads", "records": leads(2), "duplicateCheckFields": ["Email"]}
    result = connector.run("crmUpsertRecords", inputs, connection=connection)
    assert [(e["id"], e["action"]) for e in result["data"]] == [("7", "update"), ("8", "insert")]
    assert json.loads(httpx_mock.get_requests()[0].content)["duplicate_check_fields"] == ["Email"]


def test_deletes_send_100_ids_a_call(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    def deleted(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(200, json={"data": [row_for({"id": i}) for i in ids]})

    httpx_mock.add_callback(deleted, method="DELETE", is_reusable=True)
    ids = [str(i) for i in range(205)]
    result = connector.run(
        "crmDeleteRecords", {"recordType": "Leads", "recordIds": ids, "wfTrigger": False}, connection=connection
    )
    sent = sorted((r.url.params["ids"].split(",") for r in httpx_mock.get_requests()), key=lambda c: int(c[0]))
    assert sent == [ids[:100], ids[100:200], ids[200:]]
    assert {r.url.params["wf_trigger"] for r in httpx_mock.get_requests()} == {"false"}
    assert [e["id"] for e in result["data"]] == ids


def test_a_failure_of_the_whole_call_is_raised(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """No chunk got an answer about its records and none acted (an unknown module): an error, not a list."""
    refusal = {"code": "INVALID_MODULE", "details": {}, "message": "the module name given seems to be invalid"}
    httpx_mock.add_response(method="POST", status_code=400, json={**refusal, "status": "error"}, is_reusable=True)
    with pytest.raises(ZohoAPIError) as caught:
        connector.run("crmCreateRecords", {"recordType": "Nope", "records": leads(150)}, connection=connection)
    assert caught.value.code == "INVALID_MODULE"


def test_a_refused_chunk_among_answered_ones_is_an_error_per_record(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    refusal = {"code": "LIMIT_EXCEEDED", "details": {}, "message": "too big", "status": "error"}
    httpx_mock.add_response(method="POST", status_code=400, json=refusal, match_json={"data": leads(200)[100:]})
    httpx_mock.add_callback(echo, method="POST", is_reusable=True)
    result = connector.run("crmCreateRecords", {"recordType": "Leads", "records": leads(200)}, connection=connection)
    assert {e["status"] for e in result["data"][:100]} == {"success"}
    assert {(e["status"], e["code"]) for e in result["data"][100:]} == {("error", "LIMIT_EXCEEDED")}
    assert result["data"][150]["error"]["may_have_acted"] is False


def test_bad_items_are_refused_before_anything_is_sent(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    records = [{"id": "1"}] * 150 + [{"Company": "no id"}]
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmUpdateRecords", {"recordType": "Leads", "records": records}, connection=connection)
    assert caught.value.violations[0].pointer == "/records/150/id"
    assert httpx_mock.get_requests() == []


def test_no_records_no_calls(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    assert connector.run("crmCreateRecords", {"recordType": "Leads", "records": []}, connection=connection) == {
        "data": []
    }
    assert httpx_mock.get_requests() == []


def test_chunks_run_concurrently_never_above_the_cap(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """Nine chunks with a cap of 3: the barrier only opens when 3 are in flight at once, and never more are."""
    cap = 3
    barrier = threading.Barrier(cap, timeout=10)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak

    def held(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        barrier.wait()
        with lock:
            in_flight[0] -= 1
        return echo(request)

    httpx_mock.add_callback(held, method="POST", is_reusable=True)
    result = connector.run(
        "crmCreateRecords",
        {"recordType": "Leads", "records": leads(900)},
        connection={**connection, "max_concurrency": cap},
    )
    assert len(httpx_mock.get_requests()) == 9 and in_flight[1] == cap
    assert [e["id"] for e in result["data"]] == [f"id-L{i}" for i in range(900)]


async def test_async_runs_chunks_under_the_cap_with_the_same_results(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    import asyncio

    cap = 2
    in_flight = [0, 0]
    both_in = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        if in_flight[0] == cap:
            both_in.set()
        await asyncio.wait_for(both_in.wait(), 10)
        in_flight[0] -= 1
        return echo(request)

    httpx_mock.add_callback(held, method="POST", is_reusable=True)
    records = leads(450)
    records[420] = {"Last_Name": "bad"}
    result = await connector.arun(
        "crmCreateRecords",
        {"recordType": "Leads", "records": records},
        connection={**connection, "max_concurrency": cap},
    )
    assert len(httpx_mock.get_requests()) == 5 and in_flight[1] == cap
    assert [e["index"] for e in result["data"]] == list(range(450))
    assert result["data"][420]["code"] == "MANDATORY_NOT_FOUND" and result["data"][419]["id"] == "id-L419"
    await connector.aclose()
