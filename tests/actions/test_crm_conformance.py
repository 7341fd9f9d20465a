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
    "crmListModules": {},
    "crmListFields": {"recordType": "Deals"},
    "crmListUsers": {"type": "ActiveUsers", "page": 1, "per_page": 50},
    "crmListCustomViews": {"recordType": "Leads"},
}


UPLOAD_ALTERNATIVES = {"attachmentUrl": "file"}


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
    return data


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


pytestmark = pytest.mark.skipif(not OAS_DIR.is_dir(), reason=f"Zoho's OpenAPI files are not at {OAS_DIR}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_matches_zoho_openapi(
    case: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"data": [], "info": {"more_records": False}})
    action = case.removesuffix("WithToken")
    connector.run(action, CASES[case], connection=connection)
    request = httpx_mock.get_requests()[0]
    op, doc = matching_operation(request)
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
    body_spec = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if body_spec and request.headers.get("content-type", "").startswith("application/json"):
        from jsonschema import Draft4Validator

        schema = resolve(body_spec["schema"], doc)
        errors = sorted(Draft4Validator(schema).iter_errors(json.loads(request.content)), key=str)
        assert not errors, errors[0].message
    elif op.get("requestBody", {}).get("required"):
        assert request.content, "the operation requires a body"


def test_the_cases_cover_every_crm_action(connector: Connector) -> None:
    crm = {k for k, a in connector.actions.items() if a.product == "crm" and a.safety != "by_method"}
    assert crm <= {c.removesuffix("WithToken") for c in CASES}
