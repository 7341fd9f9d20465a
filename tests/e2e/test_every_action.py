"""End to end: every action, through the Python API and through the CLI, against the sandbox over loopback."""

from __future__ import annotations

import base64
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.errors import (
    AuthenticationError,
    BadResponseError,
    ConnectionConfigError,
    ConnectorError,
    InputValidationError,
    ManifestError,
    NotFoundError,
    PaginationError,
    RateLimitedError,
    TransientError,
    Violation,
    WebhookRejected,
    ZohoAPIError,
)
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connection(sandbox: str, tmp_path: Path) -> dict[str, Any]:
    return with_refresh_token(sandbox, tmp_path)


class Python:
    def __init__(self, connection: dict[str, Any]) -> None:
        self.connection = connection
        self.connector = Connector.load()

    def __call__(self, action: str, inputs: dict[str, Any]) -> Any:
        return self.connector.run(action, inputs, connection=self.connection)["data"]


class Cli:
    """Runs actions through `zoho-connector run` and raises what the Python API would: the error is rebuilt from
    its JSON by `type`, and the exit code must be the one its kind documents."""

    def __init__(self, connection: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
        self.connection = json.dumps(connection)
        self.capsys = capsys

    def __call__(self, action: str, inputs: dict[str, Any]) -> Any:
        code = main(["run", action, "--inputs", json.dumps(inputs), "--connection", self.connection])
        out, err = self.capsys.readouterr()
        if code:
            error = error_from_json(json.loads(err)["error"])
            assert code == error.exit_code, f"exit code {code} for a {error.kind} error"
            raise error
        return json.loads(out)["data"]


class Invoke:
    """Runs actions through `zoho-connector invoke` (the engine protocol): one request on stdin, one response on
    stdout, an error rebuilt from it as for the CLI."""

    def __init__(self, connection: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
        self.connection = connection
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, action: str, inputs: dict[str, Any]) -> Any:
        request = {"action": action, "inputs": inputs, "connection": self.connection}
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request)))
        code = main(["invoke"])
        out, _ = self.capsys.readouterr()
        response = json.loads(out)
        if not response["ok"]:
            error = error_from_json(response["error"])
            assert code == error.exit_code, f"exit code {code} for a {error.kind} error"
            raise error
        assert code == 0
        return response["data"]


def error_from_json(e: dict[str, Any]) -> ConnectorError:
    """The error the CLI printed, as the class the Python API raises for it."""
    kind = e["type"]
    if e.get("progress"):  # the printed message ends with the progress, which str() adds back
        e = {**e, "message": e["message"].rsplit(" (after ", 1)[0]}
    common = {"retryable": e["retryable"], "retry_after": e["retry_after"], "may_have_acted": e["may_have_acted"]}
    error: ConnectorError
    if kind == "invalid_input":
        error = InputValidationError(e["subject"], [Violation(**v) for v in e["violations"]])
    elif kind == "manifest_error":
        error = ManifestError(e["file"], e["problem"])
    elif kind == "connection_error":
        error = ConnectionConfigError(e["message"], **common)
    elif kind == "authentication_error":
        error = AuthenticationError(
            e["message"], reason=e["reason"], retryable=e["retryable"], retry_after=e["retry_after"]
        )
    elif kind == "rate_limited":
        error = RateLimitedError(e["message"], retry_after=e["retry_after"], status=e["status"])
    elif kind in ("transient", "bad_response"):
        transient = TransientError if kind == "transient" else BadResponseError
        error = transient(e["message"], status=e["status"], **common)
    elif kind == "pagination_error":
        error = PaginationError(e["message"], code=e["code"])
    elif kind in ("zoho_error", "not_found"):
        zoho = ZohoAPIError if kind == "zoho_error" else NotFoundError
        details = {k: e[k] for k in ("status", "code", "details", "request_id")}
        error = zoho(message=e["zoho_message"], **details, **common)
    elif kind == "webhook_rejected":
        error = WebhookRejected(e["message"], reason=e["reason"])
    else:
        raise AssertionError(f"the CLI printed an error of unknown type {kind!r}: {e}")
    assert error.kind == kind
    error.progress = e.get("progress")
    return error


def test_every_error_kind_comes_back_as_its_own_class() -> None:
    """The wrapper above rebuilds each kind the runtime prints, with the fields `to_dict()` gives it."""
    from tests.connector.test_protocol import EVERY_KIND

    for original in EVERY_KIND:
        rebuilt = error_from_json(original.to_dict()["error"])
        assert type(rebuilt) is type(original) and rebuilt.exit_code == original.exit_code
        assert rebuilt.to_dict() == original.to_dict()


WAYS = ["python", "cli", "invoke"]


def runner(way: str, connection: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> Any:
    if way == "python":
        return Python(connection)
    return Cli(connection, capsys) if way == "cli" else Invoke(connection, capsys, monkeypatch)


@pytest.fixture(params=WAYS)
def run(
    request: pytest.FixtureRequest,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    return runner(request.param, connection, capsys, monkeypatch)


def test_bulk_writes_and_lead_conversion(run: Any, sandbox: str) -> None:
    """Many records at once (more than one chunk of 100), upsert, partial failures, deletion and conversion."""
    tag = f"{id(run)}"
    records = [{"Last_Name": f"Bulk{i}", "Email": f"bulk{i}-{tag}@example.com"} for i in range(130)]
    records[101] = {"Email": f"nameless-{tag}@example.com"}  # Last_Name is mandatory: refused, the rest written
    created = run("crmCreateRecords", {"recordType": "Leads", "records": records, "trigger": []})
    assert [e["index"] for e in created] == list(range(130))
    assert created[101]["status"] == "error" and created[101]["code"] == "MANDATORY_NOT_FOUND"
    ids = [e["id"] for e in created if e["status"] == "success"]
    assert len(ids) == 129

    updated = run(
        "crmUpdateRecords",
        {"recordType": "Leads", "records": [{"id": i, "Company": "Zylker"} for i in ids[:3]] + [{"id": "404"}]},
    )
    assert [e["status"] for e in updated] == ["success"] * 3 + ["error"]
    assert [e["id"] for e in updated] == [*ids[:3], "404"]

    upserted = run(
        "crmUpsertRecords",
        {
            "recordType": "Leads",
            "records": [
                {"Last_Name": "Again", "Email": f"bulk0-{tag}@example.com"},
                {"Last_Name": "Fresh", "Email": f"fresh-{tag}@example.com"},
            ],
            "duplicateCheckFields": ["Email"],
        },
    )
    assert [(e["action"], e["id"] == ids[0]) for e in upserted] == [("update", True), ("insert", False)]

    lead = ids[1]
    converted = run(
        "crmConvertLead",
        {
            "recordId": lead,
            "deal": {"Deal_Name": f"Deal {tag}", "Stage": "Qualification"},
            "notifyLeadOwner": False,
            "carryOverTags": ["Contacts"],
            "tagNames": ["VIP"],
        },
    )
    assert converted["details"]["Accounts"] == {"name": "Zylker", "id": converted["accountId"]}
    assert converted["details"]["Deals"] == {"name": f"Deal {tag}", "id": converted["dealId"]}
    assert converted["details"]["Contacts"]["id"] == converted["contactId"]
    contact = run("crmGetRecord", {"recordType": "Contacts", "recordId": converted["contactId"]})["data"][0]
    assert contact["Email"] == f"bulk1-{tag}@example.com" and contact["Account_Name"]["id"] == converted["accountId"]
    with pytest.raises(ZohoAPIError) as caught:
        run("crmConvertLead", {"recordId": lead})
    assert caught.value.code == "ID_ALREADY_CONVERTED"

    deleted = run(
        "crmDeleteRecords", {"recordType": "Leads", "recordIds": [*ids, upserted[1]["id"], "404"], "wfTrigger": False}
    )
    assert [e["status"] for e in deleted] == ["success"] * 130 + ["error"]
    assert [e["id"] for e in deleted][-1] == "404"


def test_bulk_chunks_never_exceed_the_cap_in_flight(tmp_path: Path) -> None:
    """The sandbox's own in-flight count (answering each call in 100 ms) never passes the connection's cap of 4,
    reaches it, and the sandbox refuses nothing with 429 (its cap is 4 too)."""
    from connector.sandbox import FaultConfig, Options

    state = SandboxState(options=Options(max_concurrent=4))
    with serve_in_thread(state, faults=FaultConfig(slow_ms=100)) as base:
        connection = {**with_refresh_token(base, tmp_path), "max_concurrency": 4}
        records = [{"Last_Name": f"C{i}"} for i in range(1200)]
        with Connector.load() as connector:
            result = connector.run(
                "crmCreateRecords", {"recordType": "Leads", "records": records}, connection=connection
            )
        stats = httpx.get(f"{base}/__sandbox/stats").json()
    assert stats["requests"]["POST /crm/v8/Leads"] == 12 and stats["throttled"] == {}
    assert stats["peak_in_flight"] == 4
    assert [e["status"] for e in result["data"]] == ["success"] * 1200


def test_every_crm_action(run: Any, sandbox: str) -> None:
    created = run(
        "crmCreateRecord",
        {
            "recordType": "Leads",
            "dynamicValues": {"Company": "Zylker"},
            "fieldValues": [
                {"key": "Last_Name", "value": "Doe"},
                {"key": "Email", "value": f"doe-{id(run)}@example.com"},
            ],
        },
    )
    lead = created["data"][0]["details"]["id"]
    got = run("crmGetRecord", {"recordType": "Leads", "recordId": lead, "fields": ["Last_Name", "Company"]})
    assert got["data"][0]["Last_Name"] == "Doe" and got["data"][0]["Company"] == "Zylker"

    assert (
        run("crmUpdateRecord", {"recordType": "Leads", "recordId": lead, "fieldValues": {"Company": "Acme"}})["data"][
            0
        ]["code"]
        == "SUCCESS"
    )

    listed = run(
        "crmGetRecords",
        {"recordType": "Leads", "fields": ["Company"], "sort_by": "Modified_Time", "sort_order": "desc", "per_page": 5},
    )
    assert any(r["id"] == lead and r["Company"] == "Acme" for r in listed["data"])

    pdf = base64.b64encode(b"%PDF-1.7 proposal").decode()
    attached = run(
        "crmAddAttachment",
        {
            "recordType": "Leads",
            "recordId": lead,
            "fileName": "proposal.pdf",
            "file": {"base64": pdf, "contentType": "application/pdf"},
        },
    )
    attachment = attached["data"][0]["details"]["id"]
    download = run("crmRawRequest", {"url": f"/Leads/{lead}/Attachments/{attachment}", "responseType": "binary"})
    assert base64.b64decode(download["base64"]) == b"%PDF-1.7 proposal"

    query = run("crmRunQuery", {"query": f"select Last_Name, Company from Leads where id = '{lead}'"})
    assert query["data"] == [{"Last_Name": "Doe", "Company": "Acme", "id": lead}]

    assert run("crmRemoveRecord", {"recordType": "Leads", "recordId": lead})["data"][0]["code"] == "SUCCESS"
    remaining = run("crmGetRecords", {"recordType": "Leads", "fields": ["Email"], "fetchAll": True})
    assert remaining["info"]["more_records"] is False
    assert all(r["id"] != lead for r in remaining["data"])


def test_every_books_action(run: Any) -> None:
    contact = run("booksCreateRecord", {"recordType": "contacts", "fieldValues": {"contact_name": "Zylker"}})
    contact_id = contact["contact"]["contact_id"]
    person = run(
        "booksCreateRecord",
        {
            "recordType": "contactpersons",
            "parentRecordType": "contacts",
            "parentRecordId": contact_id,
            "fieldValues": {"first_name": "Ann"},
        },
    )
    person_id = person["contact_person"]["contact_person_id"]
    got = run(
        "booksGetRecord",
        {
            "recordType": "contactpersons",
            "recordId": person_id,
            "parentRecordType": "contacts",
            "parentRecordId": contact_id,
        },
    )
    assert got["contact_person"]["first_name"] == "Ann"
    run(
        "booksUpdateRecord",
        {"recordType": "contacts", "recordId": contact_id, "fieldValues": {"website": "zylker.com"}},
    )
    listed = run("booksGetRecords", {"recordType": "contacts", "searchFields": {"contact_name": "Zylker"}})
    assert any(c["contact_id"] == contact_id for c in listed["contacts"])
    orgs = run("booksRawRequest", {"url": "/organizations"})
    assert orgs["organizations"][0]["organization_id"]
    run(
        "booksRemoveRecord",
        {
            "recordType": "contactpersons",
            "recordId": person_id,
            "parentRecordType": "contacts",
            "parentRecordId": contact_id,
        },
    )
    run("booksRemoveRecord", {"recordType": "contacts", "recordId": contact_id})
    with pytest.raises(ZohoAPIError) as caught:
        run("booksGetRecord", {"recordType": "contacts", "recordId": contact_id})
    assert (caught.value.status, caught.value.code) == (404, "1002")


# --- the Partner Store: the sandbox stands in for store.zoho.* through the connection's store_url -------------------

STORE_ACTIONS = {
    "storeListSubscriptions": "subscriptions",
    "storeListTransactions": "transactions",
    "storeListCommissions": "commissions",
    "storeListLeads": "leads",
}


@pytest.fixture(params=WAYS)
def store_run(
    request: pytest.FixtureRequest,
    sandbox: str,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """`run`, on a connection whose store_url points at the sandbox's Partner Store."""
    return runner(request.param, {**connection, "store_url": f"{sandbox}/api/v1/partner"}, capsys, monkeypatch)


@pytest.mark.parametrize(("action", "kind"), STORE_ACTIONS.items())
def test_every_store_action(store_run: Any, sandbox: str, action: str, kind: str) -> None:
    served = httpx.get(f"{sandbox}/api/v1/partner/{kind}", headers=_sandbox_auth(sandbox)).json()
    assert store_run(action, {}) == served
    assert store_run(action, {"per_page": 1, "page": 2}) == served[1:2]
    assert store_run(action, {"per_page": 1, "fetchAll": True}) == served


def test_store_filters_go_with_every_page(store_run: Any, sandbox: str) -> None:
    """`filters` are query parameters sent as written (the Store documents none; the sandbox keeps the records
    whose field equals a parameter naming one), on every page of a Fetch All."""
    served = httpx.get(f"{sandbox}/api/v1/partner/subscriptions", headers=_sandbox_auth(sandbox)).json()
    plan = served[1]["plan_id"]
    kept = [s for s in served if s["plan_id"] == plan]
    assert kept and len(kept) < len(served)
    inputs = {"filters": [{"key": "plan_id", "value": plan}], "per_page": 1, "fetchAll": True}
    assert store_run("storeListSubscriptions", inputs) == kept


def test_store_bad_inputs_name_the_input(store_run: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        store_run("storeListLeads", {"per_page": 201})
    assert [v.input for v in caught.value.violations] == ["per_page"]


def test_a_token_without_the_store_scope_is_refused(sandbox: str, tmp_path: Path) -> None:
    tokens = httpx.post(f"{sandbox}/__sandbox/tokens", json={"scope": "ZohoCRM.modules.ALL"}).json()
    connection = {
        **with_refresh_token(sandbox, tmp_path),
        "refresh_token": tokens["refresh_token"],
        "store_url": f"{sandbox}/api/v1/partner",
    }
    with Connector.load() as connector, pytest.raises(AuthenticationError, match="OAUTH_SCOPE_MISMATCH"):
        connector.run("storeListSubscriptions", {}, connection=connection)


def _sandbox_auth(sandbox: str) -> dict[str, str]:
    token = httpx.post(f"{sandbox}/__sandbox/tokens", json={}).json()["access_token"]
    return {"Authorization": f"Zoho-oauthtoken {token}"}


@pytest.mark.parametrize("page_headers", ["more", "none"])
def test_store_fetch_all_of_5000_against_the_sandbox(tmp_path: Path, page_headers: str) -> None:
    total, per_page = 5_000, 200
    with serve_in_thread(SandboxState()) as base:
        httpx.post(f"{base}/__sandbox/seed", json={"store_kind": "transactions", "count": total - 3})
        httpx.post(f"{base}/__sandbox/store", json={"page_headers": page_headers}).raise_for_status()
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        with Connector.load() as connector:
            records = list(connector.iter_records("storeListTransactions", {}, connection=connection))
        requests = httpx.get(f"{base}/__sandbox/stats").json()["requests"]["GET /api/v1/partner/transactions"]
    assert len(records) == total and len({r["id"] for r in records}) == total
    # With the header the walk stops on the last page; without it, 5,000 fills its pages exactly and only the
    # empty page after them says the walk is over.
    assert requests == math.ceil(total / per_page) + (page_headers == "none")


def test_bad_inputs_are_an_input_error_either_way(run: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        run("crmGetRecord", {"recordType": "Leads"})
    assert caught.value.violations == [Violation("recordId", "/recordId", "is required")]


def test_fetch_all_past_2000_against_the_sandbox(sandbox: str, connection: dict[str, Any]) -> None:
    httpx.post(
        f"{sandbox}/__sandbox/modules",
        json={"api_name": "Bulk_Items", "fields": [{"api_name": "Name", "data_type": "text"}]},
    )
    httpx.post(f"{sandbox}/__sandbox/seed", json={"module": "Bulk_Items", "count": 2345}).raise_for_status()
    before = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"].get("GET /crm/v8/Bulk_Items", 0)
    with Connector.load() as connector:
        records = list(
            connector.iter_records(
                "crmGetRecords", {"recordType": "Bulk_Items", "fields": ["Name"]}, connection=connection
            )
        )
    after = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"]["GET /crm/v8/Bulk_Items"]
    assert len(records) == 2345 and len({r["id"] for r in records}) == 2345
    assert after - before == 12  # ceil(2345 / 200)


def test_expired_tokens_refresh_once_and_replay(sandbox: str, connection: dict[str, Any]) -> None:
    with Connector.load() as connector:
        connector.run("crmGetRecords", {"recordType": "Leads", "fields": ["Email"]}, connection=connection)
        grants = httpx.get(f"{sandbox}/__sandbox/stats").json()["token_grants"].get("refresh_token", 0)
        httpx.post(f"{sandbox}/__sandbox/faults", json={"expire_access_tokens": True}).raise_for_status()
        connector.run("crmGetRecords", {"recordType": "Leads", "fields": ["Email"]}, connection=connection)
        after = httpx.get(f"{sandbox}/__sandbox/stats").json()["token_grants"]["refresh_token"]
    assert after == grants + 1


def test_the_installed_command_runs_an_action(sandbox: str, connection: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "connection.json").write_text(json.dumps(connection))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "zoho-connector"),
            "run",
            "crmRunQuery",
            "--inputs",
            '{"query": "select Last_Name from Leads where Last_Name is not null limit 1"}',
            "--connection",
            f"@{tmp_path / 'connection.json'}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "data" in json.loads(result.stdout)


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    from connector.sandbox.demo import EXTRA_LEADS, run_demo

    steps: list[str] = []
    with serve_in_thread(SandboxState()) as base:
        summary = run_demo(base, f"sqlite:///{tmp_path / 'tokens.db'}", lambda step, _: steps.append(step))
    assert summary["fetched"] >= EXTRA_LEADS + 3
    assert any("OAuth" in s for s in steps) and any("invoice" in s for s in steps)
    assert "Partner Store transactions" in steps and summary["store_transactions"] >= 1
    for step in ("searched by email", "bulk upsert (one update, one insert)", "converted a lead into"):
        assert step in steps
    assert "Inventory: items in its own organization" in steps
    assert summary["partner_store_sync"] == {
        "partner-store-transactions": 3,
        "partner-store-subscriptions": 3,
        "partner-store-commissions": 3,  # the seeded ones, created long before yesterday
    }


async def test_async_runs_refresh_and_recover_from_expired_tokens(sandbox: str, connection: dict[str, Any]) -> None:
    connector = Connector.load()
    try:
        created = await connector.arun(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Async"}}, connection=connection
        )
        lead = created["data"]["data"][0]["details"]["id"]
        httpx.post(f"{sandbox}/__sandbox/faults", json={"expire_access_tokens": True}).raise_for_status()
        got = await connector.arun("crmGetRecord", {"recordType": "Leads", "recordId": lead}, connection=connection)
        assert got["data"]["data"][0]["Last_Name"] == "Async"
        records = [
            r
            async for r in connector.aiter_records(
                "crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"]}, connection=connection
            )
        ]
        assert any(r["id"] == lead for r in records)
    finally:
        await connector.aclose()


# --- Finance (issue 13): Books in depth and the other Finance apps ----------------------------------------------


def _requests(sandbox: str, suffix: str) -> int:
    counts: dict[str, int] = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests"]
    return sum(n for key, n in counts.items() if key.endswith(suffix))


def test_every_books_document_action(run: Any, sandbox: str) -> None:
    contact = run("booksCreateRecord", {"recordType": "contacts", "fieldValues": {"contact_name": f"Doc {id(run)}"}})
    customer = contact["contact"]["contact_id"]
    line = {"name": "Widget", "rate": 20.3, "quantity": 2, "tax_percentage": 10}
    invoice = run(
        "booksCreateRecord", {"recordType": "invoices", "fieldValues": {"customer_id": customer, "line_items": [line]}}
    )["invoice"]
    invoice_id = invoice["invoice_id"]
    assert (invoice["sub_total"], invoice["tax_total"], invoice["total"], invoice["balance"]) == (
        40.6,
        4.06,
        44.66,
        44.66,
    )

    sent = run(
        "booksEmailDocument",
        {
            "recordType": "invoices",
            "recordId": invoice_id,
            "toMailIds": ["ann@zylker.com"],
            "ccMailIds": ["books@zylker.com"],
            "subject": "Your invoice",
            "body": "Thanks!",
        },
    )
    assert sent["message"] == "Your invoice has been sent."
    got = run("booksGetRecord", {"recordType": "invoices", "recordId": invoice_id})["invoice"]
    assert (got["status"], got["is_emailed"]) == ("sent", True)

    marked = run("booksMarkStatus", {"recordType": "invoices", "recordId": invoice_id, "status": "void"})
    assert marked["message"] == "Invoice status has been changed to void."
    assert run("booksGetRecord", {"recordType": "invoices", "recordId": invoice_id})["invoice"]["status"] == "void"

    pdf = run("booksDownloadPdf", {"recordType": "invoices", "recordId": invoice_id})
    assert pdf["fileName"] == f"{invoice['invoice_number']}.pdf" and pdf["contentType"] == "application/pdf"
    content = base64.b64decode(pdf["base64"])
    assert content.startswith(b"%PDF-") and pdf["size"] == len(content)

    comment = run(
        "booksCreateRecord",
        {
            "recordType": "comments",
            "parentRecordType": "invoices",
            "parentRecordId": invoice_id,
            "fieldValues": {"description": "Paid by wire"},
        },
    )["comment"]
    comments = run(
        "booksGetRecords", {"recordType": "comments", "parentRecordType": "invoices", "parentRecordId": invoice_id}
    )["comments"]
    assert [c["comment_id"] for c in comments] == [comment["comment_id"]]

    for name in ("Zeta", "Alpha"):
        run("booksCreateRecord", {"recordType": "items", "fieldValues": {"name": f"{name} {id(run)}", "rate": 1}})
    listed = run(
        "booksGetRecords",
        {
            "recordType": "items",
            "searchText": str(id(run)),
            "sortColumn": "name",
            "sortOrder": "descending",
            "filterBy": "Status.All",
        },
    )
    assert [i["name"].split()[0] for i in listed["items"]] == ["Zeta", "Alpha"]
    assert listed["page_context"]["sort_order"] == "D" and listed["page_context"]["applied_filter"] == "Status.All"
    ascending = {"recordType": "items", "searchText": str(id(run)), "sortColumn": "name", "sortOrder": "ascending"}
    assert [i["name"].split()[0] for i in run("booksGetRecords", ascending)["items"]] == ["Alpha", "Zeta"]


@pytest.mark.parametrize(
    ("product", "kind", "fields", "singular"),
    [
        ("inventory", "items", {"name": "Bolt", "rate": 2}, "item"),
        ("invoice", "contacts", {"contact_name": "Bolt Co"}, "contact"),
        ("expense", "trips", {"trip_number": "Bolt trip"}, "trip"),
        ("billing", "customers", {"display_name": "Bolt Co", "email": "bolt@example.com"}, "customer"),
    ],
)
def test_every_finance_product_action(
    run: Any, sandbox: str, product: str, kind: str, fields: dict[str, Any], singular: str
) -> None:
    tag = f"{id(run)}-{product}"
    created = run(f"{product}CreateRecord", {"recordType": kind, "fieldValues": {**fields, "note": tag}})
    record_id = created[singular][f"{singular}_id"]
    got = run(f"{product}GetRecord", {"recordType": kind, "recordId": record_id})
    assert got[singular]["note"] == tag
    run(f"{product}UpdateRecord", {"recordType": kind, "recordId": record_id, "fieldValues": {"note": f"{tag}!"}})
    listed = run(f"{product}GetRecords", {"recordType": kind, "searchText": f"{tag}!"})
    assert [r[f"{singular}_id"] for r in listed[kind]] == [record_id]
    orgs = run(f"{product}RawRequest", {"url": "/organizations"})["organizations"]
    assert orgs[0]["is_default_org"] is True
    run(f"{product}RemoveRecord", {"recordType": kind, "recordId": record_id})
    with pytest.raises(NotFoundError):
        run(f"{product}GetRecord", {"recordType": kind, "recordId": record_id})


def test_billing_raw_request_takes_the_old_subscriptions_base_as_written(run: Any, sandbox: str) -> None:
    created = run("billingCreateRecord", {"recordType": "customers", "fieldValues": {"display_name": f"Old {id(run)}"}})
    before = _requests(sandbox, "/subscriptions/v1/customers")
    old = run("billingRawRequest", {"url": "/subscriptions/v1/customers", "queryParams": {"per_page": 200}})
    assert any(c["customer_id"] == created["customer"]["customer_id"] for c in old["customers"])
    assert _requests(sandbox, "/subscriptions/v1/customers") == before + 1


def test_finance_bad_inputs_name_the_input_and_send_nothing(run: Any, sandbox: str) -> None:
    before = httpx.get(f"{sandbox}/__sandbox/stats").json()["requests_total"]
    with pytest.raises(InputValidationError) as caught:
        run("booksMarkStatus", {"recordType": "invoices", "recordId": "1", "status": "accepted"})
    assert [v.input for v in caught.value.violations] == ["status"]
    with pytest.raises(InputValidationError) as caught:
        run("booksEmailDocument", {"recordType": "contacts", "recordId": "1"})
    assert [v.input for v in caught.value.violations] == ["recordType"]
    with pytest.raises(InputValidationError) as caught:
        run("booksDownloadPdf", {"recordType": "invoices"})
    assert [v.input for v in caught.value.violations] == ["recordId"]
    with pytest.raises(InputValidationError) as caught:
        run("booksGetRecords", {"recordType": "invoices", "sortOrder": "downwards"})
    assert [v.input for v in caught.value.violations] == ["sortOrder"]
    with pytest.raises(InputValidationError) as caught:
        run("inventoryGetRecord", {"recordType": "items", "recordId": "1", "organizationId": "a b"})
    assert [v.input for v in caught.value.violations] == ["organizationId"]
    assert httpx.get(f"{sandbox}/__sandbox/stats").json()["requests_total"] == before


def test_download_pdf_streams_to_a_file_with_output(
    sandbox: str, connection: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Connector.load() as connector:
        customer = connector.run(
            "booksCreateRecord",
            {"recordType": "contacts", "fieldValues": {"contact_name": "Pdf"}},
            connection=connection,
        )["data"]["contact"]["contact_id"]
        estimate = connector.run(
            "booksCreateRecord",
            {"recordType": "estimates", "fieldValues": {"customer_id": customer, "line_items": [{"rate": 5}]}},
            connection=connection,
        )["data"]["estimate"]
    target = tmp_path / "estimate.pdf"
    inputs = json.dumps({"recordType": "estimates", "recordId": estimate["estimate_id"]})
    code = main(
        ["run", "booksDownloadPdf", "--inputs", inputs, "--output", str(target), "--connection", json.dumps(connection)]
    )
    printed = json.loads(capsys.readouterr().out)["data"]
    assert code == 0 and target.read_bytes().startswith(b"%PDF-")
    assert printed["fileName"] == f"{estimate['estimate_number']}.pdf" and printed["size"] == target.stat().st_size
    assert "base64" not in printed and printed["path"] == str(target)


def test_download_pdf_streams_to_a_path_from_python(connection: dict[str, Any], tmp_path: Path) -> None:
    """Connector.download(…, to=PATH): the PDF on disk, written whole (no partial file left), and its metadata."""
    with Connector.load() as connector:
        customer = connector.run(
            "booksCreateRecord",
            {"recordType": "contacts", "fieldValues": {"contact_name": "Pdf to path"}},
            connection=connection,
        )["data"]["contact"]["contact_id"]
        invoice = connector.run(
            "booksCreateRecord",
            {"recordType": "invoices", "fieldValues": {"customer_id": customer, "line_items": [{"rate": 7}]}},
            connection=connection,
        )["data"]["invoice"]
        target = tmp_path / "out" / "invoice.pdf"
        target.parent.mkdir()
        inputs = {"recordType": "invoices", "recordId": invoice["invoice_id"]}
        result = connector.download("booksDownloadPdf", inputs, connection=connection, to=target)["data"]
        in_memory = connector.run("booksDownloadPdf", inputs, connection=connection)["data"]
    content = target.read_bytes()
    assert content.startswith(b"%PDF-") and content == base64.b64decode(in_memory["base64"])
    assert result == {
        "fileName": f"{invoice['invoice_number']}.pdf",
        "contentType": "application/pdf",
        "size": len(content),
        "path": str(target),
    }
    assert [p.name for p in target.parent.iterdir()] == ["invoice.pdf"]


def test_books_and_inventory_keep_their_organizations_apart(sandbox: str, tmp_path: Path) -> None:
    from connector.sandbox.finance import DEFAULT_ORG_IDS

    books_org, inventory_org = DEFAULT_ORG_IDS["books"], DEFAULT_ORG_IDS["inventory"]
    looked = {p: _requests(sandbox, f"/{p}/organizations") for p in ("books/v3", "inventory/v1")}
    discovered = with_refresh_token(sandbox, tmp_path)
    (tmp_path / "x").mkdir()
    explicit = {**with_refresh_token(sandbox, tmp_path / "x"), "organization_id": "99999"}
    explicit["organization_ids"] = {"books": books_org, "inventory": inventory_org}
    for connection in (discovered, explicit):
        with Connector.load() as connector:
            item = connector.run(
                "inventoryCreateRecord",
                {"recordType": "items", "fieldValues": {"name": "Apart"}},
                connection=connection,
            )["data"]["item"]
            contact = connector.run(
                "booksCreateRecord",
                {"recordType": "contacts", "fieldValues": {"contact_name": "Apart"}},
                connection=connection,
            )["data"]["contact"]
            # Each record is in its own app's organization and only there.
            in_inventory = {"recordType": "items", "recordId": item["item_id"], "organizationId": inventory_org}
            assert (
                connector.run("inventoryGetRecord", in_inventory, connection=connection)["data"]["item"]["name"]
                == "Apart"
            )
            in_books = {"recordType": "contacts", "recordId": contact["contact_id"], "organizationId": books_org}
            assert connector.run("booksGetRecord", in_books, connection=connection)["data"]["contact"]
            with pytest.raises(NotFoundError):
                connector.run(
                    "booksGetRecord",
                    {**in_books, "organizationId": books_org, "recordType": "items", "recordId": item["item_id"]},
                    connection=connection,
                )
            with pytest.raises(ZohoAPIError) as caught:  # the Books organization is no Inventory organization
                connector.run(
                    "inventoryGetRecord", {**in_inventory, "organizationId": books_org}, connection=connection
                )
            assert caught.value.code == "6041"
    # Discovered once per product, kept with the token; the explicit connection never looked.
    assert {p: _requests(sandbox, f"/{p}/organizations") - n for p, n in looked.items()} == {
        "books/v3": 1,
        "inventory/v1": 1,
    }


FINANCE_LISTS = {
    "books": "journals",
    "inventory": "transferorders",
    "invoice": "recurringinvoices",
    "expense": "advances",
    "billing": "plans",
}


@pytest.fixture(scope="module")
def sandbox_process() -> Iterator[str]:
    """The sandbox in a process of its own, so that tracemalloc sees the client's memory alone (a sandbox thread's
    allocations for a 5,000-record list were traced too, and once pushed the 5,000 peak past twice the 1,000 one)."""
    command = [sys.executable, "-m", "connector.cli", "sandbox", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), base
        yield base
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("product", sorted(FINANCE_LISTS))
def test_fetch_all_of_5000_finance_records_pages_by_200_in_flat_memory(
    product: str, sandbox_process: str, tmp_path: Path
) -> None:
    import tracemalloc

    from connector.sandbox.finance import DEFAULT_ORG_IDS, PRODUCTS

    sandbox, connection = sandbox_process, with_refresh_token(sandbox_process, tmp_path)
    org, kind = DEFAULT_ORG_IDS[product], FINANCE_LISTS[product]
    path = f"{PRODUCTS[product].bases[0]}/{kind}"
    sets = {1000: f"{kind}/small", 5000: kind}
    for count, each in sets.items():
        seeded = {"books_kind": each, "count": count, "organization_id": org}
        httpx.post(f"{sandbox}/__sandbox/seed", json=seeded).raise_for_status()
    peaks: dict[int, int] = {}
    with Connector.load() as connector:

        def walk(each: str) -> int:
            seen = 0
            for record in connector.iter_records(f"{product}GetRecords", {"recordType": each}, connection=connection):
                seen += 1
                assert record["status"] == "active", record
            return seen

        walk(sets[1000])  # untraced: the first walk's one-time imports, token and connection are not per page
        for count, each in sets.items():
            before = _requests(sandbox, path if each == kind else f"{path}/small")
            tracemalloc.start()
            try:
                assert walk(each) == count
                peaks[count] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert _requests(sandbox, path if each == kind else f"{path}/small") - before == -(-count // 200)
    # Five times the records, not five times the memory: each page is freed once its records are handed out.
    # (Holding the 4,000 extra records, at some 350 bytes each as Python objects, would add 1.4 MB to a peak of a
    # few hundred KB; so would spent pages left for the garbage collector, which once held ten at a time.)
    assert peaks[5000] < peaks[1000] * 1.25, peaks
