"""Every CRM request our actions produce matches Zoho's official OpenAPI files (../shared/zoho-crm-oas/).

Every request an action sends (each page of a Fetch All, each call of a bulk read job) is captured and checked
against the action's own operation (OWN): every required parameter is present, every query parameter sent is one
the operation declares, every value sent (query, path, header) satisfies its parameter's schema (enum, type), and a
JSON body validates against the operation's request-body schema. Where Zoho's files contradict Zoho's own pages,
the correction is made in PATCHES, each with its source.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector

OAS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "zoho-crm-oas"

# Representative inputs for each CRM action (raw requests are the user's own and checked elsewhere).
CASES: dict[str, dict[str, Any]] = {
    "crmGetRecord": {"recordType": "Leads", "recordId": "5394166000000379001", "fields": ["Last_Name"]},
    "crmGetRecords": {
        "recordType": "Leads",
        "fields": ["Last_Name", "Email"],
        "page": 2,
        "per_page": 50,
        "sort_by": "Created_Time",
        "sort_order": "asc",
    },
    "crmCreateRecord": {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe", "Email": "d@example.com"}},
    "crmUpdateRecord": {"recordType": "Leads", "recordId": "5394166000000379001", "fieldValues": {"Last_Name": "Roe"}},
    "crmRemoveRecord": {"recordType": "Leads", "recordId": "5394166000000379001"},
    "crmAddAttachment": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "file": "hello",
        "fileName": "a.txt",
    },
    "crmRunQuery": {"query": "select Last_Name from Contacts where Last_Name is not null"},
    "crmGetRecordsWithToken": {"recordType": "Leads", "fields": ["Email"], "page_token": "187d2af1e9c50119e"},
    "crmCreateRecords": {"recordType": "Leads", "records": [{"Last_Name": "Doe"}], "trigger": ["workflow"]},
    "crmUpdateRecords": {
        "recordType": "Leads",
        "records": [{"id": "5394166000000379001", "Company": "X"}],
        "trigger": [],
    },
    "crmUpsertRecords": {
        "recordType": "Leads",
        "records": [{"Last_Name": "Doe", "Email": "d@example.com"}],
        "duplicateCheckFields": ["Email"],
        "trigger": ["approval", "blueprint"],
    },
    "crmDeleteRecords": {"recordType": "Leads", "recordIds": ["5394166000000379001"], "wfTrigger": True},
    "crmConvertLead": {
        "recordId": "5394166000000379001",
        "overwrite": True,
        "notifyLeadOwner": True,
        "notifyNewEntityOwner": False,
        "accountId": "5394166000000379002",
        "contactId": "5394166000000379003",
        "assignTo": "5394166000000379004",
        "deal": {"Deal_Name": "D", "Stage": "Qualification"},
        "moveAttachmentsTo": "Deals",
        "carryOverTags": ["Contacts", "Deals"],
        "tagNames": ["VIP"],
    },
    "crmGetRecordsFiltered": {
        "recordType": "Leads",
        "fields": ["Email"],
        "cvid": "5394166000000087501",
        "ids": ["5394166000000379001"],
        "converted": "both",
        "modifiedSince": "2026-11-20T10:15:00+00:00",
    },
    "crmCreateRecordTriggered": {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}, "trigger": ["workflow"]},
    "crmUpdateRecordTriggered": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "fieldValues": {"Last_Name": "Roe"},
        "trigger": [],
    },
    "crmRemoveRecordTriggered": {"recordType": "Leads", "recordId": "5394166000000379001", "wfTrigger": False},
    "crmRunQueryMeta": {"query": "select Last_Name from Contacts where Last_Name is not null", "includeMeta": True},
    "crmSearchRecords": {
        "recordType": "Leads",
        "criteria": "(Last_Name:equals:Doe)",
        "fields": ["Last_Name"],
        "page": 2,
        "per_page": 10,
    },
    "crmSearchRecordsByEmail": {"recordType": "Leads", "email": "d@example.com"},
    "crmGetRecordsCount": {"recordType": "Leads", "criteria": "(Last_Name:equals:Doe)"},
    "crmGetRecordsCountByView": {"recordType": "Leads", "cvid": "5394166000000087501"},
    "crmGetDeletedRecords": {"recordType": "Leads", "type": "recycle", "page": 1, "per_page": 10},
    "crmGetRelatedRecords": {
        "recordType": "Accounts",
        "recordId": "5394166000000379001",
        "relatedList": "Contacts",
        "fields": ["Last_Name"],
    },
    "crmLinkRelatedRecord": {
        "recordType": "Accounts",
        "recordId": "5394166000000379001",
        "relatedList": "Contacts",
        "relatedRecordId": "5394166000000412001",
    },
    "crmDelinkRelatedRecord": {
        "recordType": "Accounts",
        "recordId": "5394166000000379001",
        "relatedList": "Contacts",
        "relatedRecordId": "5394166000000412001",
    },
    "crmListNotes": {"recordType": "Leads", "recordId": "5394166000000379001"},
    "crmListNotesAll": {},
    "crmCreateNote": {"recordType": "Leads", "recordId": "5394166000000379001", "noteContent": "c", "noteTitle": "t"},
    "crmUpdateNote": {"noteId": "5394166000000501001", "noteContent": "c"},
    "crmDeleteNote": {"noteId": "5394166000000501001"},
    "crmListAttachments": {"recordType": "Leads", "recordId": "5394166000000379001"},
    "crmDownloadAttachment": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "attachmentId": "5394166000000412001",
    },
    "crmDeleteAttachment": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "attachmentId": "5394166000000412001",
    },
    "crmAddAttachmentFromUrl": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "attachmentUrl": "https://example.com/a.pdf",
        "title": "A",
    },
    "crmListUsers": {"type": "ActiveUsers", "page": 1, "per_page": 10},
    "crmGetUser": {"userId": "5394166000000173021"},
    "crmGetOrganization": {},
    "crmListModules": {},
    "crmListFields": {"recordType": "Leads"},
    "crmListLayouts": {"recordType": "Leads"},
    "crmListCustomViews": {"recordType": "Leads"},
    "crmListRelatedLists": {"recordType": "Leads"},
    "crmEnableNotification": {
        "channelId": "1000000068001",
        "events": ["Leads.create", "Deals.all"],
        "notifyUrl": "https://example.com/zoho/notify?source=crm",
        "token": "TOKEN_FOR_VERIFICATION_OF_1000000068001",
        "channelExpiry": "2026-11-27T10:15:00+00:00",
        "notifyOnRelatedAction": False,
        "returnAffectedFieldValues": True,
        "notificationCondition": [
            {
                "type": "field_selection",
                "module": {"api_name": "Deals"},
                "field_selection": {
                    "group_operator": "or",
                    "group": [
                        {"field": {"api_name": "Stage"}},
                        {"group_operator": "and", "group": [{"field": {"api_name": "Amount"}}]},
                    ],
                },
            }
        ],
    },
    "crmUpdateNotification": {
        "channelId": "1000000068001",
        "events": ["Leads.edit"],
        "notifyUrl": "https://example.com/zoho/notify",
        "channelExpiry": "2026-11-27T10:15:00Z",
    },
    "crmGetNotificationDetails": {"channelId": "1000000068001", "module": "Leads", "page": 1, "per_page": 10},
    "crmDisableNotification": {"channelIds": ["1000000068001", "1000000068002"]},
    "crmDisableSpecificNotification": {"channelId": "1000000068001", "events": ["Leads.edit", "Deals.all"]},
}
# Fetch All walks: every page's request is checked, not only the first.
CASES |= {
    "crmGetRecordsFetchAll": {"recordType": "Leads", "fields": ["Email"], "fetchAll": True},
    "crmSearchRecordsFetchAll": {"recordType": "Leads", "word": "Doe", "fetchAll": True},
    "crmGetDeletedRecordsFetchAll": {"recordType": "Leads", "fetchAll": True},
    "crmGetRelatedRecordsFetchAll": {
        "recordType": "Accounts",
        "recordId": "5394166000000379001",
        "relatedList": "Contacts",
        "fetchAll": True,
    },
    "crmListNotesFetchAll": {"fetchAll": True},
    "crmListAttachmentsFetchAll": {"recordType": "Leads", "recordId": "5394166000000379001", "fetchAll": True},
    "crmListUsersFetchAll": {"fetchAll": True},  # the default type
    "crmRunQueryFetchAll": {"query": "select Last_Name from Contacts where Last_Name is not null", "fetchAll": True},
    # bulk read (/crm/bulk/v8, bulk_read.json)
    "crmCreateBulkReadJob": {
        "recordType": "Leads",
        "fields": ["Last_Name", "Email"],
        "criteria": {
            "group_operator": "or",
            "group": [
                {"field": {"api_name": "Email"}, "comparator": "equal", "value": "d@example.com"},
                {"field": {"api_name": "Last_Name"}, "comparator": "starts_with", "value": "Do"},
            ],
        },
        "fileType": "csv",
        "callbackUrl": "https://example.com/zoho/done",
    },
    "crmCreateBulkReadJobByView": {"recordType": "Leads", "cvid": "5394166000000087501", "fileType": "ics"},
    "crmGetBulkReadJob": {"jobId": "5394166000000568002"},
    "crmBulkReadRecords": {"recordType": "Leads", "fields": ["Email"], "page": 2},
    "crmBulkReadRecordsWithToken": {"recordType": "Leads", "page_token": "187d2af1e9c50119e"},
}
# Every other input issue 11 names, each sent at least once (tests/actions/test_crm_contract.py lists them).
CASES |= {
    "crmSearchRecordsByPhone": {"recordType": "Contacts", "phone": "555-0100", "per_page": 5},
    "crmGetRecordsCountByEmail": {"recordType": "Leads", "email": "d@example.com"},
    "crmGetRecordsCountByPhone": {"recordType": "Leads", "phone": "555-0100"},
    "crmGetRecordsCountByWord": {"recordType": "Leads", "word": "Zylker"},
    "crmGetRelatedRecordsPaged": {
        "recordType": "Accounts",
        "recordId": "5394166000000379001",
        "relatedList": "Deals",
        "fields": ["Deal_Name", "Stage"],
        "page": 2,
        "per_page": 10,
    },
    "crmLinkRelatedRecordWithValues": {
        "recordType": "Deals",
        "recordId": "5394166000000379001",
        "relatedList": "Contact_Roles",
        "relatedRecordId": "5394166000000412001",
        "fieldValues": {"Contact_Role": "5394166000000006871"},
    },
    "crmListNotesPaged": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "fields": ["Note_Title", "Note_Content"],
        "page": 2,
        "per_page": 10,
    },
    "crmUpdateNoteTitled": {"noteId": "5394166000000501001", "noteTitle": "t"},
    "crmListAttachmentsPaged": {
        "recordType": "Leads",
        "recordId": "5394166000000379001",
        "fields": ["File_Name", "Size"],
        "page": 2,
        "per_page": 10,
    },
    "crmBulkReadRecordsByCriteria": {
        "recordType": "Leads",
        "criteria": {"field": {"api_name": "Lead_Status"}, "comparator": "equal", "value": "Contacted"},
    },
}
NOTIFICATIONS = [c for c in CASES if "Notification" in c]

# Variants of one action share its key: the case name is the key plus one of these suffixes.
VARIANTS = (
    "WithToken",
    "Filtered",
    "Triggered",
    "Meta",
    "ByEmail",
    "ByPhone",
    "ByWord",
    "ByView",
    "ByCriteria",
    "Paged",
    "WithValues",
    "Titled",
    "FetchAll",
    "All",
)
ACTION_KEYS = {c for c in CASES if not any(c.endswith(s) for s in VARIANTS)}


def action_of(case: str) -> str:
    for suffix in VARIANTS:
        if case.endswith(suffix) and case.removesuffix(suffix) in ACTION_KEYS:
            return case.removesuffix(suffix)
    return case


UPLOAD_ALTERNATIVES = {"attachmentUrl": "file"}

# Each action's own operations (file, operationId): every request it sends must match one of them by method and
# path and satisfy it. No looser operation is tried instead: the files also describe /Notes, /users, /org … as the
# generic /{module_api_name}, and a request that fails its own operation would pass that one.
OWN: dict[str, set[tuple[str, str]]] = {
    "crmGetRecord": {("record.json", "Get Record")},
    "crmGetRecords": {("record.json", "Get Records")},
    "crmCreateRecord": {("record.json", "Create Records")},
    "crmUpdateRecord": {("record.json", "Update Record")},
    "crmRemoveRecord": {("record.json", "Delete Record")},
    "crmAddAttachment": {("attachments.json", "Upload Url Attachments")},
    "crmAddAttachmentFromUrl": {("attachments.json", "Upload Url Attachments")},
    "crmRunQuery": {("coql.json", "Get Records")},
    "crmCreateRecords": {("record.json", "Create Records")},
    "crmUpdateRecords": {("record.json", "Update Records")},
    "crmUpsertRecords": {("record.json", "Upsert Records")},
    "crmDeleteRecords": {("record.json", "Delete Records")},
    "crmConvertLead": {("convert_lead.json", "Convert Lead")},
    "crmSearchRecords": {("module_search.json", "Search module")},
    # record_count.json's Get Count describes the same GET /{module}/actions/count without `criteria`, which
    # record.json's Record Count and Zoho's v8 get-records-count page both document.
    "crmGetRecordsCount": {("record.json", "Record Count")},
    "crmGetDeletedRecords": {("record.json", "Get Deleted Records")},
    "crmGetRelatedRecords": {("related_records.json", "Get Related Records")},
    "crmLinkRelatedRecord": {("related_records.json", "Update Related Record")},
    "crmDelinkRelatedRecord": {("related_records.json", "Delink Record")},
    # notes.json describes only /Notes: a record's notes are its Notes related list (GET /{module}/{id}/Notes).
    "crmListNotes": {("related_records.json", "Get Related Records"), ("notes.json", "Get Notes")},
    "crmCreateNote": {("notes.json", "Create Notes")},
    "crmUpdateNote": {("notes.json", "Update Note")},
    "crmDeleteNote": {("notes.json", "Delete Note")},
    "crmListAttachments": {("attachments.json", "Get Attachments")},
    "crmDownloadAttachment": {("attachments.json", "Get Attachment")},
    "crmDeleteAttachment": {("attachments.json", "Delete Attachment")},
    "crmListUsers": {("users.json", "Get Users")},
    "crmGetUser": {("users.json", "Get User")},
    "crmGetOrganization": {("org.json", "Get Organization")},
    "crmListModules": {("modules.json", "Get Modules")},
    "crmListFields": {("fields.json", "Get Fields")},
    "crmListLayouts": {("layouts.json", "Get Layouts")},
    "crmListCustomViews": {("custom_views.json", "Get Custom Views")},
    "crmListRelatedLists": {("related_lists.json", "Get Related Lists")},
    "crmEnableNotification": {("notifications.json", "Enable Notifications")},
    "crmUpdateNotification": {("notifications.json", "Update Notifications")},
    "crmGetNotificationDetails": {("notifications.json", "Get Notifications")},
    "crmDisableNotification": {("notifications.json", "Delete Notification")},
    "crmDisableSpecificNotification": {("notifications.json", "Disable Notification")},
    "crmCreateBulkReadJob": {("bulk_read.json", "Create Bulk Read Job")},
    "crmGetBulkReadJob": {("bulk_read.json", "Get Bulk Read Job Details")},
    "crmBulkReadRecords": {
        ("bulk_read.json", "Create Bulk Read Job"),
        ("bulk_read.json", "Get Bulk Read Job Details"),
        ("bulk_read.json", "Download Result"),
    },
}

Operation = tuple[re.Pattern[str], str, dict[str, Any], dict[str, Any]]


@cache
def operations() -> dict[tuple[str, str], Operation]:
    """(file, operationId) → (path regex with one group per placeholder, method, operation, whole document)."""
    found = {}
    for file in sorted(OAS_DIR.glob("*.json")):
        doc = load(file.name)
        for path, item in doc.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)) + "$")
            for method, op in item.items():
                if isinstance(op, dict) and method in ("get", "post", "put", "patch", "delete"):
                    found[(file.name, op["operationId"])] = (pattern, method.upper(), op, doc)
    return found


def path_names(op_path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", op_path)


def resolve(node: Any, doc: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline $refs (local, or to a sibling file by URL), and turn OpenAPI 3.0's `nullable` into JSON Schema.
    A recursive reference is left open ({}): the check then accepts anything at that depth."""
    if isinstance(node, list):
        return [resolve(n, doc, seen) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            return {}
        location, _, pointer = ref.partition("#")
        target: Any = load(location.rsplit("/", 1)[-1]) if location else doc
        owner = target
        for part in pointer.lstrip("/").split("/"):
            target = target[part]
        return resolve(target, owner, (*seen, ref))
    out = {k: resolve(v, doc, seen) for k, v in node.items() if k not in ("nullable", "example", "discriminator")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    return out


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OAS_DIR / name).read_text())
    fix = PATCHES.get(name)
    if fix:
        fix(data)
    return data


def _fix_notifications(data: dict[str, Any]) -> None:
    """Three generator slips in notifications.json's request schema, each contradicted by Zoho's own documents.

    - `channel_id` is typed `object`: Zoho's pages type it a long and the 2025 notifications.yaml a string of up to
      64 characters, and every example sends "1000000068001".
    - `notify_url` carries the pattern `www[.][a-z]{5}zoho[.]com`, made from a sample URL (the examples themselves,
      https://www.example.com/notify, do not match it).
    - `field_selection` reuses the search `Criteria` (comparator, value, … required), where Zoho's pages and
      samples give {"group_operator", "group": [{"field": {"api_name", "id"}}]}.
    """
    schemas = data["components"]["schemas"]
    notification = schemas["Notification"]["properties"]
    notification["channel_id"] = {"type": ["string", "integer"]}
    notification["notify_url"].pop("pattern")
    schemas["notification_condition"]["properties"]["field_selection"] = {
        "type": "object",
        "properties": {"group_operator": {"type": "string", "enum": ["and", "or"]}, "group": {"type": "array"}},
        "required": ["group_operator", "group"],
    }


def _fix_users(data: dict[str, Any]) -> None:
    """users.json's `type` enum lists 6 of the 10 values Zoho's v8 Get Users page documents
    (zoho.com/crm/developer/docs/api/v8/get-users.html: AllUsers, the default, ActiveUsers, DeactiveUsers,
    ConfirmedUsers, NotConfirmedUsers, DeletedUsers, ActiveConfirmedUsers, AdminUsers, ActiveConfirmedAdmins,
    CurrentUser; the Users Count page lists the same ten). The issue names AdminUsers among the values to offer."""
    data["components"]["parameters"]["type"]["schema"]["enum"] = [
        "AllUsers",
        "ActiveUsers",
        "DeactiveUsers",
        "ConfirmedUsers",
        "NotConfirmedUsers",
        "DeletedUsers",
        "ActiveConfirmedUsers",
        "AdminUsers",
        "ActiveConfirmedAdmins",
        "CurrentUser",
    ]


def _optional_ids(data: dict[str, Any]) -> None:
    """notes.json and attachments.json mark `ids` required on their list operations, which would make listing
    impossible without knowing the ids first. Zoho's v8 Get Notes and Get Attachments pages make only `fields`
    mandatory (`ids` narrows the list, up to 100), and the same files' DELETE operations, where ids is mandatory,
    share the one component: it is made optional on the GETs only."""
    optional = {**data["components"]["parameters"]["ids"], "required": False}
    for item in data["paths"].values():
        get = item.get("get")
        if get:
            get["parameters"] = [
                optional if p.get("$ref") == "#/components/parameters/ids" else p for p in get.get("parameters", [])
            ]


def _fix_notes(data: dict[str, Any]) -> None:
    """notes.json's create and update bodies reuse the `Note` read shape, whose `required` lists what Zoho sets
    ($attachments, $state, id, Created_Time, Modified_By …): no request could send it. Zoho's v8 Create Notes
    page makes Note_Content and Parent_Id mandatory; Update Notes makes nothing mandatory (title or content). Its
    sample names the parent's module by api_name ({"module": {"api_name": "Leads"}, "id": …}), where the shared
    Minified_Module requires an id."""
    _optional_ids(data)
    schemas = data["components"]["schemas"]
    schemas["Parent_Id"]["properties"]["module"] = {
        "type": "object",
        "properties": {"api_name": {"type": "string"}, "id": {"type": "string"}},
        "anyOf": [{"required": ["api_name"]}, {"required": ["id"]}],
    }
    schemas["Parent_Id"]["required"] = ["module", "id"]
    schemas["Note_Create"] = {**schemas["Note"], "required": ["Note_Content", "Parent_Id"]}
    schemas["Note_Update"] = {k: v for k, v in schemas["Note"].items() if k != "required"}
    for method, shape in (("post", "Note_Create"), ("put", "Note_Update")):
        for path in ("/crm/v8/Notes", "/crm/v8/Notes/{id}"):
            op = data["paths"][path].get(method)
            if op:
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{shape}"}}
                                },
                                "required": ["data"],
                            }
                        }
                    },
                }


def _fix_module_search(data: dict[str, Any]) -> None:
    """module_search.json's search omits `page` and `fields`, which record.json's Search Records (the same
    GET /{module_api_name}/search) declares and Zoho's v8 search-records page documents (page with per_page, at
    most 2,000 results; fields to choose the columns)."""
    parameters = data["components"]["parameters"]
    parameters.setdefault("page", {"name": "page", "in": "query", "schema": {"type": "integer"}})
    parameters["fields"] = {"name": "fields", "in": "query", "required": False, "schema": {"type": "string"}}
    op = data["paths"]["/crm/v8/{module}/search"]["get"]
    op["parameters"] += [{"$ref": "#/components/parameters/page"}, {"$ref": "#/components/parameters/fields"}]


def _fix_bulk_read(data: dict[str, Any]) -> None:
    """bulk_read.json's request schemas mark every member required, as generated from one full sample: `Query`
    demands module, cvid, fields, page, criteria and file_type together (cvid and criteria are alternatives), each
    `Criteria` node a `type`, and module and field an `id`. Zoho's v8 Create Bulk Read Job page makes only
    query.module mandatory (by api_name or id), and gives criteria as {field: {api_name}, comparator, value} or
    {group_operator, group}, where value is a string, number or array (typed `object` here)."""
    schemas = data["components"]["schemas"]
    by_name_or_id = {
        "type": "object",
        "properties": {"api_name": {"type": "string"}, "id": {"type": "string"}},
        "anyOf": [{"required": ["api_name"]}, {"required": ["id"]}],
    }
    query = schemas["Query"]
    query["required"] = ["module"]
    query["properties"]["module"] = by_name_or_id
    criteria = schemas["Criteria"]
    criteria.pop("required")
    criteria["properties"]["value"] = {}
    criteria["properties"]["field"] = by_name_or_id


# Every correction made to Zoho's files, by file; each says why and where Zoho documents otherwise.
PATCHES = {
    "notifications.json": _fix_notifications,
    "users.json": _fix_users,
    "notes.json": _fix_notes,
    "attachments.json": _optional_ids,
    "module_search.json": _fix_module_search,
    "bulk_read.json": _fix_bulk_read,
}


def own_operation(case: str, request: httpx.Request) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The one operation of the action's own that matches the request's method and path, and the path values."""
    own = OWN[action_of(case)]
    found = []
    for key in sorted(own):
        pattern, method, op, doc = operations()[key]
        match = pattern.match(request.url.path)
        if method == request.method and match:
            path = next(p for p, item in doc["paths"].items() if item.get(method.lower()) is op)
            found.append((op, doc, dict(zip(path_names(path), match.groups(), strict=True))))
    assert len(found) == 1, f"{request.method} {request.url.path} is not one of {case}'s operations {sorted(own)}"
    return found[0]


pytestmark = pytest.mark.skipif(not OAS_DIR.is_dir(), reason=f"Zoho's OpenAPI files are not at {OAS_DIR}")

# Answers for actions whose output is built from a success's members (an empty list would be a bad answer).
ANSWERS: dict[str, Any] = {
    "crmConvertLead": {
        "data": [
            {
                "code": "SUCCESS",
                "status": "success",
                "message": "The record has been converted successfully",
                "details": {"Contacts": {"name": "D", "id": "1"}, "Accounts": None, "Deals": None},
            }
        ]
    }
}
JOB = "5394166000000568002"


def _zipped_csv() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{JOB}.csv", "Id,Email\n1,d@example.com\n")
    return out.getvalue()


def answer(case: str) -> Any:
    """A reusable responder: bulk read's job life cycle, two pages for a Fetch All, else one empty page."""
    sent: list[httpx.Request] = []
    member = "users" if action_of(case) == "crmListUsers" else "data"

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        path = request.url.path
        if path.startswith("/crm/bulk/"):
            if path.endswith("/result"):
                return httpx.Response(200, content=_zipped_csv(), headers={"content-type": "application/zip"})
            if request.method == "POST":
                details = {"id": JOB, "operation": "read", "state": "ADDED"}
                body = {"data": [{"status": "success", "code": "ADDED_SUCCESSFULLY", "details": details}], "info": {}}
                return httpx.Response(201, json=body)
            result = {"page": 1, "count": 1, "per_page": 200000, "more_records": False, "next_page_token": None}
            return httpx.Response(
                200, json={"data": [{"id": JOB, "state": "COMPLETED", "file_type": "csv", "result": result}]}
            )
        if case.endswith("FetchAll") and len(sent) == 1:
            info: dict[str, Any] = {"more_records": True, "count": 1, "page": 1, "per_page": 1}
            if action_of(case) == "crmGetRecords":
                info["next_page_token"] = "187d2af1e9c50119e"
            return httpx.Response(200, json={member: [{"id": "1"}], "info": info})
        if case.endswith("FetchAll"):
            return httpx.Response(200, json={member: [{"id": "2"}], "info": {"more_records": False, "count": 1}})
        return httpx.Response(200, json=ANSWERS.get(action_of(case), {member: [], "info": {"more_records": False}}))

    return respond


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_matches_zoho_openapi(
    case: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_callback(answer(case), is_reusable=True)
    connector.run(action_of(case), CASES[case], connection=connection)
    requests = httpx_mock.get_requests()
    if case.endswith("FetchAll"):
        assert len(requests) == 2, "a Fetch All of two pages sends two requests"
    if action_of(case) == "crmBulkReadRecords":
        assert [r.method for r in requests] == ["POST", "GET", "GET"]  # create, poll, download
    for request in requests:
        op, doc, path_values = own_operation(case, request)
        check_request(request, op, doc, path_values)


def _typed(raw: str, schema: dict[str, Any]) -> Any:
    """A query or path string as the JSON value its schema describes (form style: arrays comma-separated)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds:
        return [_typed(part, schema.get("items", {})) for part in raw.split(",")]
    if "integer" in kinds and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if "number" in kinds and re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return float(raw)
    if "boolean" in kinds and raw in ("true", "false"):
        return raw == "true"
    return raw


def check_value(where: str, raw: str, schema: dict[str, Any]) -> None:
    from jsonschema import Draft4Validator

    errors = sorted(Draft4Validator(schema).iter_errors(_typed(raw, schema)), key=str)
    assert not errors, f"{where}={raw!r}: {errors[0].message}"


def check_request(
    request: httpx.Request, op: dict[str, Any], doc: dict[str, Any], path_values: dict[str, str] | None = None
) -> None:
    """Names, required parameters and every value sent (query, path, header) against the parameter schemas, and a
    JSON body against the operation's request-body schema."""
    params = [resolve(p, doc) for p in op.get("parameters", [])]
    declared_query = {p["name"]: p for p in params if p["in"] == "query"}
    sent_query = set(request.url.params)
    assert sent_query <= set(declared_query), f"undeclared query parameters {sent_query - set(declared_query)}"
    for name in sent_query:
        values = request.url.params.get_list(name)
        assert len(values) == 1, f"query parameter {name} sent {len(values)} times"
        check_value(f"query {name}", values[0], declared_query[name].get("schema", {}))
    for p in params:
        if p["in"] == "path" and path_values is not None and p["name"] in path_values:
            check_value(f"path {p['name']}", path_values[p["name"]], p.get("schema", {}))
        if p["in"] == "header" and p["name"] in request.headers:
            check_value(f"header {p['name']}", request.headers[p["name"]], p.get("schema", {}))
    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    for p in params:
        if p.get("required") and p["in"] == "query":
            if multipart and p["name"] in UPLOAD_ALTERNATIVES:
                # The OAS describes only the by-URL upload; Zoho documents the multipart `file` part as the other
                # form (zoho-api.md §3, crm-oas attachments/index.md).
                assert f'name="{UPLOAD_ALTERNATIVES[p["name"]]}"'.encode() in request.content
                continue
            assert p["name"] in sent_query, f"required query parameter {p['name']} missing"
        if p.get("required") and p["in"] == "header":
            assert p["name"] in request.headers
    body = resolve(op.get("requestBody") or {}, doc)  # notifications.json's is a $ref to components
    body_spec = body.get("content", {}).get("application/json")
    if body_spec and request.headers.get("content-type", "").startswith("application/json"):
        from jsonschema import Draft4Validator

        errors = sorted(Draft4Validator(body_spec["schema"]).iter_errors(json.loads(request.content)), key=str)
        assert not errors, errors[0].message
    elif body.get("required"):
        assert request.content, "the operation requires a body"


def test_the_checks_can_fail() -> None:
    """The value checks are live: a value outside a parameter's enum, or of the wrong type, is refused."""
    pattern, method, op, doc = operations()[("users.json", "Get Users")]
    assert method == "GET" and pattern.match("/crm/v8/users")
    with pytest.raises(AssertionError, match="type"):
        check_request(httpx.Request("GET", "https://x/crm/v8/users?type=EveryUser"), op, doc)
    with pytest.raises(AssertionError, match="page"):
        check_request(httpx.Request("GET", "https://x/crm/v8/users?page=first"), op, doc)
    check_request(httpx.Request("GET", "https://x/crm/v8/users?type=AdminUsers&page=2"), op, doc)
    create = operations()[("notes.json", "Create Notes")]
    with pytest.raises(AssertionError, match="Parent_Id"):
        check_request(
            httpx.Request("POST", "https://x/crm/v8/Notes", json={"data": [{"Note_Content": "c"}]}), *create[2:]
        )


@pytest.mark.parametrize("case", NOTIFICATIONS)
def test_notification_requests_carry_the_channel(
    case: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"watch": [], "info": {"more_records": False}})
    connector.run(case, CASES[case], connection=connection)
    request = httpx_mock.get_requests()[0]
    if request.method != "GET" and request.method != "DELETE":
        (item,) = json.loads(request.content)["watch"]
        assert item["channel_id"] == CASES[case]["channelId"]


def test_the_cases_cover_every_crm_action(connector: Connector) -> None:
    crm = {k for k, a in connector.actions.items() if a.product in ("crm", "crm_bulk") and a.safety != "by_method"}
    assert {"crmCreateBulkReadJob", "crmGetBulkReadJob", "crmBulkReadRecords"} <= crm
    assert crm <= {action_of(c) for c in CASES}
    assert crm == set(OWN)


def test_the_convert_body_matches_zohos_lead_converter(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """convert_lead.json leaves the request body untyped; its Lead_Converter schema types each member. Its
    `required` lists are not applied: they demand Accounts, Contacts, assign_to and add_to_existing_record on every
    conversion, and an `id` in move_attachments_to, where Zoho's documentation makes all of them optional."""
    from jsonschema import Draft4Validator

    httpx_mock.add_response(json=ANSWERS["crmConvertLead"])
    connector.run("crmConvertLead", CASES["crmConvertLead"], connection=connection)
    row = json.loads(httpx_mock.get_requests()[0].content)["data"][0]
    doc = load("convert_lead.json")
    schema = _without_required(resolve(doc["components"]["schemas"]["Lead_Converter"], doc))
    schema["additionalProperties"] = False
    errors = sorted(Draft4Validator(schema).iter_errors(row), key=str)
    assert not errors, errors[0].message
    assert row["Accounts"] == {"id": "5394166000000379002"} and row["assign_to"] == {"id": "5394166000000379004"}
    assert row["carry_over_tags"] == {"Contacts": ["VIP"], "Deals": ["VIP"]}
    assert row["move_attachments_to"] == {"api_name": "Deals"}


def _without_required(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_required(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: _without_required(v) for k, v in node.items() if k != "required"}
