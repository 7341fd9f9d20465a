"""End to end: the CRM working surface (search, count, deleted, related records, notes, attachments, users,
organization, metadata) through the Python API, the CLI and `invoke`, against the sandbox over loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.errors import (
    InputValidationError,
    NotFoundError,
    PaginationError,
    TransientError,
    ZohoAPIError,
)
from connector.runner import Stream
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token
from tests.e2e.test_every_action import WAYS, runner


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connection(sandbox: str, tmp_path: Path) -> dict[str, Any]:
    return with_refresh_token(sandbox, tmp_path)


@pytest.fixture(params=WAYS)
def run(
    request: pytest.FixtureRequest,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    return runner(request.param, connection, capsys, monkeypatch)


def test_the_crm_working_surface(run: Any, sandbox: str) -> None:
    tag = f"s{id(run)}"
    account = run(
        "crmCreateRecord", {"recordType": "Accounts", "fieldValues": {"Account_Name": f"Zylker {tag}"}, "trigger": []}
    )
    account_id = account["data"][0]["details"]["id"]
    contact = run(
        "crmCreateRecord",
        {
            "recordType": "Contacts",
            "fieldValues": {"Last_Name": f"Doe{tag}", "Email": f"{tag}@example.com"},
            "trigger": ["workflow"],
        },
    )
    contact_id = contact["data"][0]["details"]["id"]

    # search and count
    found = run("crmSearchRecords", {"recordType": "Contacts", "email": f"{tag}@example.com", "fields": ["Last_Name"]})
    assert [r["id"] for r in found["data"]] == [contact_id]
    by_criteria = run(
        "crmSearchRecords", {"recordType": "Contacts", "criteria": f"(Last_Name:equals:Doe{tag})", "fetchAll": True}
    )
    assert [r["id"] for r in by_criteria["data"]] == [contact_id] and by_criteria["info"]["more_records"] is False
    none = run("crmSearchRecords", {"recordType": "Contacts", "word": "nothing-matches-this"})
    assert none["data"] == []
    assert run("crmGetRecordsCount", {"recordType": "Contacts", "email": f"{tag}@example.com"}) == {"count": 1}

    # related records: link, list, delink
    linked = run(
        "crmLinkRelatedRecord",
        {"recordType": "Accounts", "recordId": account_id, "relatedList": "Contacts", "relatedRecordId": contact_id},
    )
    assert linked["data"][0]["code"] == "SUCCESS"
    related = run(
        "crmGetRelatedRecords",
        {
            "recordType": "Accounts",
            "recordId": account_id,
            "relatedList": "Contacts",
            "fields": ["Last_Name"],
            "fetchAll": True,
        },
    )
    assert [r["id"] for r in related["data"]] == [contact_id]
    run(
        "crmDelinkRelatedRecord",
        {"recordType": "Accounts", "recordId": account_id, "relatedList": "Contacts", "relatedRecordId": contact_id},
    )
    assert (
        run("crmGetRelatedRecords", {"recordType": "Accounts", "recordId": account_id, "relatedList": "Contacts"})[
            "data"
        ]
        == []
    )

    # notes
    note = run(
        "crmCreateNote",
        {"recordType": "Contacts", "recordId": contact_id, "noteContent": "Called", "noteTitle": "Follow-up"},
    )
    note_id = note["data"][0]["details"]["id"]
    run("crmUpdateNote", {"noteId": note_id, "noteContent": "Called twice"})
    notes = run("crmListNotes", {"recordType": "Contacts", "recordId": contact_id})
    assert [(n["id"], n["Note_Content"], n["Note_Title"]) for n in notes["data"]] == [
        (note_id, "Called twice", "Follow-up")
    ]
    assert any(n["id"] == note_id for n in run("crmListNotes", {"fetchAll": True})["data"])
    assert run("crmDeleteNote", {"noteId": note_id})["data"][0]["code"] == "SUCCESS"

    # attachments
    pdf = base64.b64encode(b"%PDF-1.7 proposal").decode()
    added = run(
        "crmAddAttachment",
        {
            "recordType": "Contacts",
            "recordId": contact_id,
            "fileName": "p.pdf",
            "file": {"base64": pdf, "contentType": "application/pdf"},
        },
    )
    attachment = added["data"][0]["details"]["id"]
    link = run(
        "crmAddAttachmentFromUrl",
        {"recordType": "Contacts", "recordId": contact_id, "attachmentUrl": "https://example.com/x", "title": "X"},
    )
    link_id = link["data"][0]["details"]["id"]
    listed = run("crmListAttachments", {"recordType": "Contacts", "recordId": contact_id, "fetchAll": True})
    assert {a["id"] for a in listed["data"]} == {attachment, link_id}
    assert {a["File_Name"] for a in listed["data"]} == {"p.pdf", "X"}
    got = run("crmDownloadAttachment", {"recordType": "Contacts", "recordId": contact_id, "attachmentId": attachment})
    assert base64.b64decode(got["base64"]) == b"%PDF-1.7 proposal"
    assert (got["fileName"], got["contentType"], got["size"]) == ("p.pdf", "application/pdf", 17)
    run("crmDeleteAttachment", {"recordType": "Contacts", "recordId": contact_id, "attachmentId": link_id})
    with pytest.raises(NotFoundError):
        run("crmDownloadAttachment", {"recordType": "Contacts", "recordId": contact_id, "attachmentId": link_id})

    # deleted records
    run("crmRemoveRecord", {"recordType": "Contacts", "recordId": contact_id, "wfTrigger": False})
    deleted = run("crmGetDeletedRecords", {"recordType": "Contacts", "type": "recycle", "fetchAll": True})
    assert any(d["id"] == contact_id and d["type"] == "recycle" for d in deleted["data"])
    assert run("crmGetDeletedRecords", {"recordType": "Contacts", "type": "permanent"})["data"] == []

    # users, organization, metadata
    users = run("crmListUsers", {"type": "ActiveUsers", "fetchAll": True})["users"]
    me = run("crmListUsers", {"type": "CurrentUser"})["users"][0]
    assert me["id"] in {u["id"] for u in users}
    assert run("crmGetUser", {"userId": me["id"]})["users"][0]["email"] == me["email"]
    with pytest.raises(NotFoundError):
        run("crmGetUser", {"userId": "1"})
    assert run("crmGetOrganization", {})["org"][0]["id"]
    assert "Contacts" in {m["api_name"] for m in run("crmListModules", {})["modules"]}
    assert "Last_Name" in {f["api_name"] for f in run("crmListFields", {"recordType": "Contacts"})["fields"]}
    layout = run("crmListLayouts", {"recordType": "Contacts"})["layouts"][0]
    assert "Last_Name" in {f["api_name"] for s in layout["sections"] for f in s["fields"]}
    views = run("crmListCustomViews", {"recordType": "Contacts"})["custom_views"]
    assert [v["name"] for v in views] == ["All Contacts", "My Contacts"]
    lists = {r["api_name"] for r in run("crmListRelatedLists", {"recordType": "Accounts"})["related_lists"]}
    assert {"Notes", "Attachments", "Contacts"} <= lists


def test_the_attachments_list_sends_its_default_fields(run: Any) -> None:
    """attachments.json makes `fields` mandatory and the sandbox refuses a list without it, as Zoho does: the
    action, given no fields, sends its default and gets the attachments' columns."""
    made = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Files"}})
    lead = made["data"][0]["details"]["id"]
    run("crmAddAttachmentFromUrl", {"recordType": "Leads", "recordId": lead, "attachmentUrl": "https://example.com/a"})
    with pytest.raises(ZohoAPIError) as refused:
        run("crmRawRequest", {"url": f"/Leads/{lead}/Attachments"})
    assert (refused.value.code, refused.value.details) == ("REQUIRED_PARAM_MISSING", {"param_name": "fields"})
    (listed,) = run("crmListAttachments", {"recordType": "Leads", "recordId": lead})["data"]
    assert listed["File_Name"] == "https://example.com/a" and {"Size", "$link_url", "Parent_Id"} <= set(listed)


def test_custom_views_count_and_list_their_own_rows(run: Any, sandbox: str) -> None:
    """A module of its own per way, so the counts are exact: "All …" holds every record, "My …" the current user's."""
    module = f"Views_{run.__class__.__name__}"
    fields = [{"api_name": "Name", "data_type": "text"}]  # Owner is a system field of every module
    httpx.post(f"{sandbox}/__sandbox/modules", json={"api_name": module, "fields": fields}).raise_for_status()
    me = run("crmListUsers", {"type": "CurrentUser"})["users"][0]["id"]
    other = next(u["id"] for u in run("crmListUsers", {"type": "ActiveUsers"})["users"] if u["id"] != me)
    rows = [{"Name": "a"}, {"Name": "b"}, {"Name": "c", "Owner": {"id": other}}]
    made = run("crmCreateRecords", {"recordType": module, "records": rows})
    ids = [r["id"] for r in made]
    every, mine = run("crmListCustomViews", {"recordType": module})["custom_views"]
    assert run("crmGetRecordsCount", {"recordType": module}) == {"count": 3}
    assert run("crmGetRecordsCount", {"recordType": module, "cvid": every["id"]}) == {"count": 3}
    assert run("crmGetRecordsCount", {"recordType": module, "cvid": mine["id"]}) == {"count": 2}
    assert run("crmGetRecordsCount", {"recordType": module, "cvid": mine["id"], "word": "c"}) == {"count": 0}
    listed = run("crmGetRecords", {"recordType": module, "fields": ["Name"], "cvid": mine["id"], "fetchAll": True})
    assert sorted(r["id"] for r in listed["data"]) == sorted(ids[:2])


def test_get_records_filters(run: Any) -> None:
    made = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Filter"}})
    lead = made["data"][0]["details"]["id"]
    got = run("crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"], "ids": [lead], "converted": "both"})
    assert [r["id"] for r in got["data"]] == [lead]
    # Zoho lists converted leads only when asked (converted: false by default)
    made = run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Converted", "Company": "Z"}})
    gone = made["data"][0]["details"]["id"]
    run("crmConvertLead", {"recordId": gone})
    both = {"recordType": "Leads", "fields": ["Last_Name"], "ids": [lead, gone]}
    assert [r["id"] for r in run("crmGetRecords", both)["data"]] == [lead]
    assert [r["id"] for r in run("crmGetRecords", {**both, "converted": "true"})["data"]] == [gone]
    assert sorted(r["id"] for r in run("crmGetRecords", {**both, "converted": "both"})["data"]) == sorted([lead, gone])
    # Nothing is modified after the far future: Zoho answers 304, which is an empty list.
    later = run(
        "crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"], "modifiedSince": "2100-01-01T00:00:00+00:00"}
    )
    assert later == {"data": [], "info": {"count": 0, "more_records": False}}
    since = run(
        "crmGetRecords",
        {
            "recordType": "Leads",
            "fields": ["Last_Name"],
            "modifiedSince": "2000-01-01T00:00:00+00:00",
            "fetchAll": True,
        },
    )
    assert lead in {r["id"] for r in since["data"]}


def test_coql_fetch_all_and_meta(run: Any, sandbox: str) -> None:
    httpx.post(
        f"{sandbox}/__sandbox/modules",
        json={"api_name": "Coql_Items", "fields": [{"api_name": "Name", "data_type": "text"}]},
    )
    if run.__class__.__name__ == "Python":
        httpx.post(f"{sandbox}/__sandbox/seed", json={"module": "Coql_Items", "count": 4500}).raise_for_status()
    query = "select Name from Coql_Items where Name is not null"
    first = run("crmRunQuery", {"query": query})
    assert len(first["data"]) == 200 and first["info"]["more_records"] is True  # one call: the query as written
    every = run("crmRunQuery", {"query": query, "fetchAll": True})
    ids = [r["id"] for r in every["data"]]
    assert len(ids) >= 4500 and len(set(ids)) == len(ids)
    assert every["info"]["more_records"] is False
    capped = run("crmRunQuery", {"query": query + " limit 2500 offset 10", "fetchAll": True})
    assert [r["id"] for r in capped["data"]] == ids[10:2510]
    meta = run("crmRunQuery", {"query": query + " limit 1", "includeMeta": True})
    assert "Name" in meta["fields"]


def test_a_coql_fetch_all_that_fails_midway_resumes_from_its_progress(sandbox: str, connection: dict[str, Any]) -> None:
    """The error's resume point, run as the action's inputs with Fetch All, delivers exactly the rows not yet
    delivered: none lost, none twice (it once resumed with a one-page LIMIT and lost the rest)."""
    httpx.post(
        f"{sandbox}/__sandbox/modules",
        json={"api_name": "Resume_Items", "fields": [{"api_name": "Name", "data_type": "text"}]},
    )
    httpx.post(f"{sandbox}/__sandbox/seed", json={"module": "Resume_Items", "count": 7000}).raise_for_status()
    query = "select Name from Resume_Items where Name is not null order by id"
    flaky = {**connection, "max_retries": 0}
    delivered: list[str] = []
    with Connector.load() as connector:
        stream = connector.stream("crmRunQuery", {"query": query, "fetchAll": True}, connection=flaky)
        assert isinstance(stream, Stream)  # a paged walk (bulk read jobs stream a JobStream)
        with pytest.raises(TransientError) as caught:  # a 5xx, not retried here (max_retries 0)
            for page in stream.pages():
                delivered += [r["id"] for r in page]
                httpx.post(f"{sandbox}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "5xx"})
        progress = caught.value.progress
        assert progress is not None and progress["delivered"] == len(delivered) == 2000
        assert set(progress["resume"]) == {"query"}  # the action's own input, ready to run again
        rest = connector.run("crmRunQuery", {**progress["resume"], "fetchAll": True}, connection=connection)
        every = connector.run("crmRunQuery", {"query": query, "fetchAll": True}, connection=connection)
    assert delivered + [r["id"] for r in rest["data"]["data"]] == [r["id"] for r in every["data"]["data"]]
    assert len(every["data"]["data"]) == 7000


def test_search_fetch_all_stops_at_zoho_cap(sandbox: str, connection: dict[str, Any]) -> None:
    httpx.post(
        f"{sandbox}/__sandbox/modules",
        json={"api_name": "Many_Items", "fields": [{"api_name": "Name", "data_type": "text"}]},
    )
    httpx.post(f"{sandbox}/__sandbox/seed", json={"module": "Many_Items", "count": 2100}).raise_for_status()
    with Connector.load() as connector, pytest.raises(PaginationError) as caught:
        connector.run(
            "crmSearchRecords",
            {"recordType": "Many_Items", "criteria": "(Name:starts_with:N)", "fetchAll": True},
            connection=connection,
        )
    assert caught.value.code == "MAX_RECORDS" and "2,000" in caught.value.message


def test_download_attachment_streams_to_a_file(
    sandbox: str, connection: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Connector.load() as connector:
        lead = connector.run(
            "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Dl"}}, connection=connection
        )
        lead_id = lead["data"]["data"][0]["details"]["id"]
        content = bytes(range(256)) * 1000
        added = connector.run(
            "crmAddAttachment",
            {
                "recordType": "Leads",
                "recordId": lead_id,
                "fileName": "blob.bin",
                "file": {"base64": base64.b64encode(content).decode()},
            },
            connection=connection,
        )
        aid = added["data"]["data"][0]["details"]["id"]
        inputs = {"recordType": "Leads", "recordId": lead_id, "attachmentId": aid}
        result = connector.download("crmDownloadAttachment", inputs, connection=connection, to=tmp_path / "a.bin")
        with (tmp_path / "c.bin").open("wb") as sink:  # an open binary file: written, not closed, no path
            into_file = connector.download("crmDownloadAttachment", inputs, connection=connection, to=sink)
            assert not sink.closed
    assert (tmp_path / "a.bin").read_bytes() == content == (tmp_path / "c.bin").read_bytes()
    assert result["data"]["fileName"] == "blob.bin" and result["data"]["size"] == len(content)
    assert result["data"]["path"] == str(tmp_path / "a.bin")
    assert into_file["data"] == {k: v for k, v in result["data"].items() if k != "path"}
    code = main(
        [
            "run",
            "crmDownloadAttachment",
            "--inputs",
            json.dumps(inputs),
            "--connection",
            json.dumps(connection),
            "--output",
            str(tmp_path / "b.bin"),
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and (tmp_path / "b.bin").read_bytes() == content
    assert json.loads(out)["data"]["path"] == str(tmp_path / "b.bin")


def test_search_without_a_term_is_an_input_error(run: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        run("crmSearchRecords", {"recordType": "Leads"})
    assert "criteria, email, phone or word" in caught.value.violations[0].message
