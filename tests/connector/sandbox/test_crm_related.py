"""Attachments (multipart `file` and links), notes, users, org and metadata."""

from __future__ import annotations

import httpx
import pytest

from connector.sandbox import SandboxState

pytestmark = pytest.mark.anyio


@pytest.fixture
async def lead(api: httpx.AsyncClient) -> str:
    response = await api.post("/crm/v8/Leads", json={"data": [{"Last_Name": "Doe", "First_Name": "Jo"}]})
    rid: str = response.json()["data"][0]["details"]["id"]
    return rid


async def test_attachment_upload_list_download_delete(api: httpx.AsyncClient, lead: str) -> None:
    base = f"/crm/v8/Leads/{lead}/Attachments"
    fields = {"fields": "File_Name,Size,$link_url,Parent_Id"}
    assert (await api.get(base, params=fields)).status_code == 204
    up = await api.post(base, files={"file": ("notes.txt", b"hello zoho", "text/plain")})
    assert up.status_code == 200
    row = up.json()["data"][0]
    assert (row["code"], row["message"]) == ("SUCCESS", "attachment uploaded successfully")
    aid = row["details"]["id"]
    link = await api.post(base, params={"attachmentUrl": "https://example.com/x.pdf", "title": "Spec"})
    link_id = link.json()["data"][0]["details"]["id"]
    listed = (await api.get(base, params=fields)).json()
    assert listed["info"] == {"per_page": 200, "count": 2, "page": 1, "more_records": False}
    by_id = {a["id"]: a for a in listed["data"]}
    assert (by_id[aid]["File_Name"], by_id[aid]["Size"], by_id[aid]["$link_url"]) == ("notes.txt", "10", None)
    assert by_id[aid]["Parent_Id"] == {"id": lead, "name": "Jo Doe"}
    assert (by_id[link_id]["File_Name"], by_id[link_id]["$link_url"]) == ("Spec", "https://example.com/x.pdf")
    download = await api.get(f"{base}/{aid}")
    assert (download.status_code, download.content) == (200, b"hello zoho")
    assert download.headers["content-type"].startswith("text/plain")
    assert "notes.txt" in download.headers["content-disposition"]
    assert (await api.get(f"{base}/123")).status_code == 204
    gone = await api.delete(f"{base}/{aid}")
    assert gone.json()["data"][0] == {
        "code": "SUCCESS",
        "details": {"id": aid},
        "message": "record deleted",
        "status": "success",
    }
    assert (await api.delete(f"{base}/{aid}")).status_code == 400
    bulk = await api.delete(base, params={"ids": link_id})
    assert bulk.status_code == 200


async def test_attachment_errors(api: httpx.AsyncClient, lead: str) -> None:
    no_file = await api.post(f"/crm/v8/Leads/{lead}/Attachments", files={"other": ("a", b"x")})
    assert no_file.json()["code"] == "REQUIRED_PARAM_MISSING"
    no_record = await api.get("/crm/v8/Leads/42/Attachments", params={"fields": "File_Name"})
    assert no_record.json()["code"] == "INVALID_DATA"
    # attachments.json makes `fields` mandatory on the list, as Zoho does
    no_fields = await api.get(f"/crm/v8/Leads/{lead}/Attachments")
    assert no_fields.status_code == 400
    assert (no_fields.json()["code"], no_fields.json()["details"]) == (
        "REQUIRED_PARAM_MISSING",
        {"param_name": "fields"},
    )


async def test_deleting_a_record_drops_its_attachments_and_notes(
    api: httpx.AsyncClient, lead: str, state: SandboxState
) -> None:
    await api.post(f"/crm/v8/Leads/{lead}/Attachments", files={"file": ("a.bin", b"\x00\x01")})
    await api.post(f"/crm/v8/Leads/{lead}/Notes", json={"data": [{"Note_Content": "hi"}]})
    await api.delete(f"/crm/v8/Leads/{lead}")
    assert not state.attachments
    assert not state.notes


async def test_notes_everywhere(api: httpx.AsyncClient, lead: str) -> None:
    created = await api.post(
        "/crm/v8/Notes",
        json={
            "data": [
                {"Note_Title": "T", "Note_Content": "C", "Parent_Id": {"module": {"api_name": "Leads"}, "id": lead}},
                {"Note_Content": "legacy", "Parent_Id": lead, "se_module": "Leads"},
                {"Note_Title": "no content", "Parent_Id": {"module": {"api_name": "Leads"}, "id": lead}},
                {"Note_Content": "orphan", "Parent_Id": {"module": {"api_name": "Leads"}, "id": "1"}},
            ]
        },
    )
    assert created.status_code == 207
    first, second, missing, orphan = created.json()["data"]
    assert first["message"] == "record added"
    assert missing["code"] == "MANDATORY_NOT_FOUND"
    assert orphan["details"]["api_name"] == "Parent_Id"
    nid = first["details"]["id"]
    via_record = await api.post(f"/crm/v8/Leads/{lead}/Notes", json={"data": [{"Note_Content": "third"}]})
    assert via_record.status_code == 201
    per_record = (await api.get(f"/crm/v8/Leads/{lead}/Notes", params={"fields": "Note_Content"})).json()
    assert sorted(n["Note_Content"] for n in per_record["data"]) == ["C", "legacy", "third"]
    assert (await api.get("/crm/v8/Notes")).json()["code"] == "REQUIRED_PARAM_MISSING"
    every = (await api.get("/crm/v8/Notes", params={"fields": "Note_Title,Parent_Id"})).json()
    assert every["info"]["count"] == 3
    one = (await api.get(f"/crm/v8/Notes/{nid}")).json()["data"][0]
    assert one["Parent_Id"]["module"]["api_name"] == "Leads"
    assert one["Parent_Id"]["name"] == "Jo Doe"
    put = await api.put(f"/crm/v8/Notes/{nid}", json={"data": [{"Note_Content": "changed"}]})
    assert put.json()["data"][0]["message"] == "record updated"
    bulk_put = await api.put(
        "/crm/v8/Notes", json={"data": [{"id": second["details"]["id"], "Note_Title": "x"}, {"id": "9"}]}
    )
    assert bulk_put.status_code == 207
    assert (await api.get(f"/crm/v8/Notes/{nid}")).json()["data"][0]["Note_Content"] == "changed"
    assert (await api.delete(f"/crm/v8/Notes/{nid}")).status_code == 200
    assert (await api.get(f"/crm/v8/Notes/{nid}")).status_code == 204
    assert (await api.delete("/crm/v8/Notes", params={"ids": second["details"]["id"]})).status_code == 200


async def test_users(api: httpx.AsyncClient, state: SandboxState) -> None:
    every = (await api.get("/crm/v8/users", params={"type": "AllUsers"})).json()
    assert every["info"] == {"per_page": 200, "count": 2, "page": 1, "more_records": False}
    me = (await api.get("/crm/v8/users", params={"type": "CurrentUser"})).json()["users"]
    assert [u["email"] for u in me] == ["admin@sandbox.test"]
    admins = (await api.get("/crm/v8/users", params={"type": "AdminUsers"})).json()["users"]
    assert len(admins) == 1
    uid = every["users"][1]["id"]
    assert (await api.get(f"/crm/v8/users/{uid}")).json()["users"][0]["id"] == uid
    assert (await api.get("/crm/v8/users/1")).status_code == 204
    assert (await api.get("/crm/v8/users", params={"type": "Weird"})).json()["code"] == "INVALID_DATA"


async def test_org_and_metadata(api: httpx.AsyncClient, state: SandboxState) -> None:
    org = (await api.get("/crm/v8/org")).json()["org"][0]
    assert org["company_name"] == "Sandbox Inc."
    modules = (await api.get("/crm/v8/settings/modules")).json()["modules"]
    assert [m["api_name"] for m in modules] == ["Leads", "Contacts", "Accounts", "Deals"]
    leads = (await api.get("/crm/v8/settings/modules/leads")).json()["modules"][0]
    assert leads["api_name"] == "Leads"
    assert any(f["api_name"] == "Last_Name" and f["system_mandatory"] for f in leads["fields"])
    assert (await api.get("/crm/v8/settings/modules/Nope")).json()["code"] == "INVALID_MODULE"
    fields = (await api.get("/crm/v8/settings/fields", params={"module": "Contacts"})).json()["fields"]
    lookup = next(f for f in fields if f["api_name"] == "Account_Name")
    assert (lookup["data_type"], lookup["lookup"]["module"]["api_name"]) == ("lookup", "Accounts")
    email = next(f for f in fields if f["api_name"] == "Email")
    assert email["unique"] == {"casesensitive": "false"}
    assert (await api.get("/crm/v8/settings/fields")).json()["code"] == "REQUIRED_PARAM_MISSING"
    assert (await api.get("/crm/v8/settings/fields", params={"module": "X"})).json()["code"] == "INVALID_MODULE"
