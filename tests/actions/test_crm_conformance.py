"""Every CRM request our actions produce matches Zoho's official OpenAPI files (../shared/zoho-crm-oas/).

For each CRM action the request it sends is captured and checked against the operation with the same method and
path: every required parameter is present, every query parameter sent is one the operation declares, and a JSON
body validates against the operation's request-body schema.
"""

from __future__ import annotations

import json
import re
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
NOTIFICATIONS = [c for c in CASES if "Notification" in c]

# Variants of one action share its key: the case name is the key plus one of these suffixes.
VARIANTS = ("WithToken", "Filtered", "Triggered", "Meta", "ByEmail", "ByView", "All")


def action_of(case: str) -> str:
    for suffix in VARIANTS:
        if case.endswith(suffix) and case.removesuffix(suffix) in ACTION_KEYS:
            return case.removesuffix(suffix)
    return case


UPLOAD_ALTERNATIVES = {"attachmentUrl": "file"}
ACTION_KEYS = {
    c
    for c in CASES
    if not any(c.endswith(s) for s in ("WithToken", "Filtered", "Triggered", "Meta", "ByEmail", "ByView", "All"))
}


@cache
def operations() -> list[tuple[re.Pattern[str], str, dict[str, Any], dict[str, Any]]]:
    """(path regex, method, operation, whole document) for every operation in the OAS folder."""
    found = []
    for file in sorted(OAS_DIR.glob("*.json")):
        doc = load(file.name)
        for path, item in doc.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in item.items():
                if isinstance(op, dict) and method in ("get", "post", "put", "patch", "delete"):
                    found.append((pattern, method.upper(), op, doc))
    return found


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
    if name == "notifications.json":
        _fix_notifications(data["components"]["schemas"])
    return data


def _fix_notifications(schemas: dict[str, Any]) -> None:
    """Three generator slips in notifications.json's request schema, each contradicted by Zoho's own documents.

    - `channel_id` is typed `object`: Zoho's pages type it a long and the 2025 notifications.yaml a string of up to
      64 characters, and every example sends "1000000068001".
    - `notify_url` carries the pattern `www[.][a-z]{5}zoho[.]com`, made from a sample URL (the examples themselves,
      https://www.example.com/notify, do not match it).
    - `field_selection` reuses the search `Criteria` (comparator, value, … required), where Zoho's pages and
      samples give {"group_operator", "group": [{"field": {"api_name", "id"}}]}.
    """
    notification = schemas["Notification"]["properties"]
    notification["channel_id"] = {"type": ["string", "integer"]}
    notification["notify_url"].pop("pattern")
    schemas["notification_condition"]["properties"]["field_selection"] = {
        "type": "object",
        "properties": {"group_operator": {"type": "string", "enum": ["and", "or"]}, "group": {"type": "array"}},
        "required": ["group_operator", "group"],
    }


def matching_operation(request: httpx.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    path = request.url.path
    candidates = [
        (pattern.pattern.count("[^/]+"), i, op, doc)
        for i, (pattern, method, op, doc) in enumerate(operations())
        if method == request.method and pattern.match(path)
    ]
    assert candidates, f"no operation in Zoho's OpenAPI files for {request.method} {path}"
    # the most specific path wins: fewest placeholders (/users before record.json's /{module_api_name})
    _, _, op, doc = min(candidates, key=lambda c: (c[0], c[1]))
    return op, doc


def matching_operations(request: httpx.Request) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every operation for the request's method and path, the most specific (fewest placeholders) first. The files
    describe some endpoints twice (GET /{module}/search in module_search.json and record.json, /Notes as a module
    and on its own), not always alike: a request matches the endpoint when it satisfies one of them."""
    path = request.url.path
    found = [
        (pattern.pattern.count("[^/]+"), i, op, doc)
        for i, (pattern, method, op, doc) in enumerate(operations())
        if method == request.method and pattern.match(path)
    ]
    assert found, f"no operation in Zoho's OpenAPI files for {request.method} {path}"
    return [(op, doc) for _, _, op, doc in sorted(found, key=lambda f: (f[0], f[1]))]


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


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_matches_zoho_openapi(
    case: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=ANSWERS.get(action_of(case), {"data": [], "info": {"more_records": False}}))
    connector.run(action_of(case), CASES[case], connection=connection)
    request = httpx_mock.get_requests()[0]
    failures = []
    for op, doc in matching_operations(request):
        try:
            check_request(request, op, doc)
            return
        except AssertionError as exc:
            failures.append(str(exc))
    raise AssertionError(failures[0])


def check_request(request: httpx.Request, op: dict[str, Any], doc: dict[str, Any]) -> None:
    params = [resolve(p, doc) for p in op.get("parameters", [])]
    declared_query = {p["name"] for p in params if p["in"] == "query"}
    sent_query = set(request.url.params)
    assert sent_query <= declared_query, f"undeclared query parameters {sent_query - declared_query}"
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


@pytest.mark.parametrize("case", NOTIFICATIONS)
def test_notification_requests_match_notifications_json(
    case: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """/actions/watch also matches record.json's /{module_api_name}/{id}, which would accept nearly any body: the
    notification calls must satisfy notifications.json's own operation."""
    httpx_mock.add_response(json={"watch": [], "info": {"more_records": False}})
    connector.run(case, CASES[case], connection=connection)
    request = httpx_mock.get_requests()[0]
    op, doc = matching_operation(request)
    assert doc is load("notifications.json"), request.url.path
    check_request(request, op, doc)
    if request.method != "GET" and request.method != "DELETE":
        (item,) = json.loads(request.content)["watch"]
        assert item["channel_id"] == CASES[case]["channelId"]


def test_the_cases_cover_every_crm_action(connector: Connector) -> None:
    crm = {k for k, a in connector.actions.items() if a.product == "crm" and a.safety != "by_method"}
    assert crm <= {action_of(c) for c in CASES}


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
