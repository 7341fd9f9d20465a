"""Every CRM endpoint the sandbox serves, called once, with each success body validated against Zoho's OpenAPI.

The schemas come from Zoho's own crm-oas JSON files in the sibling `shared/zoho-crm-oas` directory. OpenAPI 3.0
schema objects are turned into JSON Schema (`nullable` becomes a null type) and checked with Draft 7.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from connector.sandbox import create_app

OAS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "zoho-crm-oas"
OAS_URL = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/"
# Keys real Zoho sends as null although the OAS types them as plain strings (see Zoho's own response examples).
ZOHO_SENDS_NULL = {"next_page_token", "previous_page_token", "page_token_expiry", "duplicate_field"}

# notes.json marks every one of these required, so the walk asks for all of them.
NOTE_FIELDS = (
    "Note_Title",
    "Note_Content",
    "Parent_Id",
    "Owner",
    "Created_By",
    "Modified_By",
    "Created_Time",
    "Modified_Time",
    "$attachments",
    "$editable",
    "$is_shared_to_client",
    "$size",
    "$state",
    "$voice_note",
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not OAS_DIR.is_dir(), reason=f"Zoho's CRM OpenAPI files are not at {OAS_DIR}"),
]


def _convert(node: Any, base: str) -> Any:
    """OpenAPI 3.0 -> JSON Schema: nullable to a null type, relative $refs made absolute, oneOf read as anyOf.

    Zoho's generated files use oneOf for overlapping branches (attachment `details` offers a full form and an
    `{id}` form that every full form also matches), so exclusive oneOf would reject Zoho's own answers.
    """
    if isinstance(node, list):
        return [_convert(n, base) for n in node]
    if not isinstance(node, dict):
        return node
    out = {("anyOf" if k == "oneOf" else k): _convert(v, base) for k, v in node.items()}
    if isinstance(out.get("pattern"), str):
        del out["pattern"]  # generated from samples, e.g. user emails must be exactly 9 + 5 characters
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = base + ref
    if out.pop("nullable", False):
        _allow_null(out)
    props = out.get("properties")
    if isinstance(props, dict):
        for name in ZOHO_SENDS_NULL & set(props):
            _allow_null(props[name])
    return out


def _allow_null(schema: dict[str, Any]) -> None:
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    if "$ref" in schema or "anyOf" in schema:
        inner = {k: schema.pop(k) for k in ("$ref", "anyOf") if k in schema}
        schema["anyOf"] = [inner, {"type": "null"}]


@cache
def _documents() -> dict[str, dict[str, Any]]:
    docs = {p.name: _convert(json.loads(p.read_text()), OAS_URL + p.name) for p in OAS_DIR.glob("*.json")}
    _fix_notifications(docs["notifications.json"]["components"]["schemas"])
    return docs


def _fix_notifications(schemas: dict[str, Any]) -> None:
    """Generator slips in notifications.json's answers, each contradicted by Zoho's own samples and by the 2025
    notifications.yaml: `channel_id` typed `object` (Zoho answers "1000000068001"); `field_selection` typed as the
    search Criteria (Zoho lists {"group_operator", "group": [{"field", "group_operator", "group"}]}); and each event
    of a write's answer requiring `notification_condition` (no sample of Zoho's has it) and `channel_expiry` (the
    answer to disabling specific events has none). A channel without conditions lists `notification_condition` as
    null, as in Zoho's sample."""
    schemas["Notification"]["properties"]["channel_id"] = {"type": "string"}
    _allow_null(schemas["Notification"]["properties"]["notification_condition"])
    schemas["notification_condition"]["properties"]["field_selection"] = {
        "type": "object",
        "required": ["group_operator", "group"],
        "properties": {"group_operator": {"type": "string", "enum": ["and", "or"]}, "group": {"type": "array"}},
    }
    event = schemas["event"]
    event["required"] = [r for r in event["required"] if r not in ("notification_condition", "channel_expiry")]
    event["additionalProperties"] = False


@cache
def _registry() -> Registry:
    resources = [(OAS_URL + name, Resource.from_contents(doc, DRAFT7)) for name, doc in _documents().items()]
    return Registry().with_resources(resources)


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and node["$ref"].split("#")[0].endswith(".json"):
        url, pointer = node["$ref"].split("#")
        target: Any = _documents()[url.rsplit("/", 1)[1]]
        for part in pointer.strip("/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _success_schema(file: str, path: str, method: str, status: int) -> dict[str, Any] | None:
    """The response schema for a success status; None when the OAS has none.

    Top-level branches for errors and for binary bodies (File_Body_Wrapper) are dropped: they have no required
    keys, so any JSON body would match them too and make the check vacuous.
    """
    doc = _documents()[file]
    responses = doc["paths"][path][method]["responses"]
    response = responses.get(str(status)) or responses.get("200")
    assert response is not None, f"{file} {method.upper()} {path} documents no {status} or 200"
    response = _resolve(doc, response)
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    branches = schema.get("anyOf")
    if branches:
        keep = [
            b for b in branches if not any(w in str(b.get("$ref", "")) for w in ("Exception", "Error", "File_Body"))
        ]
        schema = keep[0] if len(keep) == 1 else {"anyOf": keep}
    return dict(schema)


def _validate(body: Any, file: str, path: str, method: str, status: int) -> None:
    schema = _success_schema(file, path, method, status)
    if schema is None:
        assert isinstance(body, dict)
        return
    validator = Draft7Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    leaves = [leaf for e in errors for leaf in _leaves(e)]
    detail = "\n".join(f"  at {list(e.absolute_path)}: {e.message[:300]}" for e in leaves[:10])
    assert not errors, f"{method.upper()} {path} ({file}) breaks Zoho's schema:\n{detail}"


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The innermost causes, since oneOf/anyOf failures only say that no branch matched."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


class Walker:
    """Calls the sandbox, validates each answer, and remembers which sandbox routes were exercised."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.hit: set[tuple[str, str]] = set()

    async def call(
        self,
        route: str,
        method: str,
        url: str,
        specs: list[tuple[str, str]],
        expect: int = 200,
        *,
        base: str = "/crm/v8",
        adjust: Callable[[Any], Any] | None = None,
        **kw: Any,
    ) -> Any:
        """`adjust` rewrites a copy of the answer before it is validated, for the OAS's own slips (each says which)."""
        response = await self.api.request(method, f"{base}{url}", **kw)
        assert response.status_code == expect, f"{method} {url}: {response.status_code} {response.text[:500]}"
        self.hit.add((route, method))
        if "json" not in response.headers.get("content-type", ""):
            return response.content
        body = response.json()
        checked = adjust(copy.deepcopy(body)) if adjust else body
        for file, path in specs:
            _validate(checked, file, path, method.lower(), response.status_code)
        return body


def _served() -> Iterator[tuple[str, str]]:
    """Every CRM route of the app the sandbox serves, whichever module defines it, so a new one cannot be missed."""
    for route in create_app().routes:
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or ()
        if path.startswith("/crm/"):
            for method in methods:
                if method != "HEAD":
                    yield path, method


async def test_every_crm_endpoint_matches_zoho_openapi(api: httpx.AsyncClient) -> None:
    w = Walker(api)
    rec = ("record.json", "/crm/v8/{module_api_name}")
    rec_id = ("record.json", "/crm/v8/{module_api_name}/{id}")
    p = "/crm/v8/{module}"
    pid = "/crm/v8/{module}/{record_id}"

    acct = await w.call(p, "POST", "/Accounts", [rec], 201, json={"data": [{"Account_Name": "Acme"}]})
    acct_id = acct["data"][0]["details"]["id"]
    rows = [
        {"Last_Name": "Doe", "First_Name": "Jo", "Email": "jo@example.com", "No_of_Employees": 5},
        {"Last_Name": "Roe", "Email": "ro@example.com", "Annual_Revenue": 10.5},
    ]
    made = await w.call(p, "POST", "/Leads", [rec], 201, json={"data": rows})
    a, b = (r["details"]["id"] for r in made["data"])
    await w.call(
        p, "POST", "/Contacts", [rec], 201, json={"data": [{"Last_Name": "C", "Account_Name": {"id": acct_id}}]}
    )
    await w.call(p, "GET", "/Leads", [rec], params={"fields": "Last_Name,Email,Owner", "per_page": 1})
    await w.call(p, "GET", "/Contacts", [rec], params={"fields": "Last_Name,Account_Name"})
    await w.call(pid, "GET", f"/Leads/{a}", [rec_id])
    await w.call(p, "PUT", "/Leads", [rec], json={"data": [{"id": a, "Company": "X"}]})
    await w.call(pid, "PUT", f"/Leads/{b}", [rec_id], json={"data": [{"Company": "Y"}]})
    upsert = ("record.json", "/crm/v8/{module_api_name}/upsert")
    await w.call(
        f"{p}/upsert",
        "POST",
        "/Leads/upsert",
        [upsert],
        json={
            "data": [{"Last_Name": "Doe", "Email": "JO@example.com"}, {"Last_Name": "New", "Email": "n@example.com"}]
        },
    )
    search = [("record.json", "/crm/v8/{module_api_name}/search"), ("module_search.json", "/crm/v8/{module}/search")]
    await w.call(f"{p}/search", "GET", "/Leads/search", search, params={"criteria": "(Last_Name:equals:Doe)"})
    # record.json types count as a string, record_count.json leaves it open; Zoho's docs show a number, as sent here.
    count = [("record_count.json", "/crm/v8/{module_api_name}/actions/count")]
    await w.call(f"{p}/actions/count", "GET", "/Leads/actions/count", count)
    await w.call(
        "/crm/v8/coql",
        "POST",
        "/coql",
        [("coql.json", "/crm/v8/coql")],
        json={"select_query": "select Last_Name, Email, Owner from Leads where Last_Name is not null limit 5"},
    )

    att = ("attachments.json", "/crm/v8/{module}/{record_id}/Attachments")
    att_id = ("attachments.json", "/crm/v8/{module}/{record_id}/Attachments/{id}")
    ap = f"{pid}/Attachments"
    up = await w.call(ap, "POST", f"/Leads/{a}/Attachments", [att], files={"file": ("a.txt", b"abc", "text/plain")})
    aid = up["data"][0]["details"]["id"]
    link = await w.call(
        ap, "POST", f"/Leads/{a}/Attachments", [att], params={"attachmentUrl": "https://x.example/y", "title": "Y"}
    )
    every = "File_Name,Size,Created_Time,Modified_Time,Owner,Created_By,Modified_By,Parent_Id,$editable,$file_id,$type"
    every += ",$se_module,$state,$link_url"
    await w.call(ap, "GET", f"/Leads/{a}/Attachments", [att], params={"fields": every})
    assert await w.call(f"{ap}/{{attachment_id}}", "GET", f"/Leads/{a}/Attachments/{aid}", [att_id]) == b"abc"
    await w.call(f"{ap}/{{attachment_id}}", "DELETE", f"/Leads/{a}/Attachments/{aid}", [att_id])
    await w.call(ap, "DELETE", f"/Leads/{a}/Attachments", [att], params={"ids": link["data"][0]["details"]["id"]})

    notes = ("notes.json", "/crm/v8/Notes")
    note_id = ("notes.json", "/crm/v8/Notes/{id}")
    related = ("related_records.json", "/crm/v8/{module_api_name}/{record_id}/{related_list_api_name}")
    parent = {"module": {"api_name": "Leads"}, "id": a}
    n = await w.call(
        "/crm/v8/Notes",
        "POST",
        "/Notes",
        [notes],
        201,
        json={"data": [{"Note_Title": "T", "Note_Content": "C", "Parent_Id": parent}]},
    )
    nid = n["data"][0]["details"]["id"]
    n2 = await w.call(
        f"{pid}/Notes",
        "POST",
        f"/Leads/{a}/Notes",
        [notes],
        201,
        json={"data": [{"Note_Title": "T2", "Note_Content": "C2"}]},
    )
    every = ",".join(f for f in NOTE_FIELDS)
    await w.call("/crm/v8/Notes", "GET", "/Notes", [notes], params={"fields": every})
    await w.call(f"{pid}/Notes", "GET", f"/Leads/{a}/Notes", [related], params={"fields": every})
    await w.call("/crm/v8/Notes/{note_id}", "GET", f"/Notes/{nid}", [note_id])
    await w.call("/crm/v8/Notes", "PUT", "/Notes", [notes], json={"data": [{"id": nid, "Note_Content": "C!"}]})
    await w.call("/crm/v8/Notes/{note_id}", "PUT", f"/Notes/{nid}", [note_id], json={"data": [{"Note_Content": "C!!"}]})
    await w.call("/crm/v8/Notes/{note_id}", "DELETE", f"/Notes/{nid}", [note_id])
    await w.call("/crm/v8/Notes", "DELETE", "/Notes", [notes], params={"ids": n2["data"][0]["details"]["id"]})

    users = await w.call(
        "/crm/v8/users", "GET", "/users", [("users.json", "/crm/v8/users")], params={"type": "AllUsers"}
    )
    await w.call(
        "/crm/v8/users/{user_id}", "GET", f"/users/{users['users'][0]['id']}", [("users.json", "/crm/v8/users/{user}")]
    )
    await w.call("/crm/v8/org", "GET", "/org", [("org.json", "/crm/v8/org")])
    await w.call("/crm/v8/settings/modules", "GET", "/settings/modules", [("modules.json", "/crm/v8/settings/modules")])
    await w.call(
        "/crm/v8/settings/modules/{api_name}",
        "GET",
        "/settings/modules/Contacts",
        [("modules.json", "/crm/v8/settings/modules/{api_name}")],
    )
    await w.call(
        "/crm/v8/settings/fields",
        "GET",
        "/settings/fields",
        [("fields.json", "/crm/v8/settings/fields")],
        params={"module": "Deals"},
    )

    acc = (await api.post("/crm/v8/Accounts", json={"data": [{"Account_Name": "Rel"}]})).json()["data"][0]["details"][
        "id"
    ]
    con = (await api.post("/crm/v8/Contacts", json={"data": [{"Last_Name": "Rel"}]})).json()["data"][0]["details"]["id"]
    rel = ("related_records.json", "/crm/v8/{module_api_name}/{record_id}/{related_list_api_name}")
    rel_id = (
        "related_records.json",
        "/crm/v8/{module_api_name}/{record_id}/{related_list_api_name}/{related_record_id}",
    )
    lp = "/crm/v8/{module}/{record_id}/{related_list}"
    await w.call(f"{lp}/{{related_id}}", "PUT", f"/Accounts/{acc}/Contacts/{con}", [rel_id], json={"data": [{}]})
    await w.call(lp, "GET", f"/Accounts/{acc}/Contacts", [rel], params={"fields": "Last_Name"})
    await w.call(f"{lp}/{{related_id}}", "GET", f"/Accounts/{acc}/Contacts/{con}", [rel_id])
    await w.call(f"{lp}/{{related_id}}", "DELETE", f"/Accounts/{acc}/Contacts/{con}", [rel_id])

    route = "/crm/v8/settings/custom_views"
    await w.call(route, "GET", "/settings/custom_views", [("custom_views.json", route)], params={"module": "Deals"})
    # Not validated yet: layouts.json requires some 90 members on every field of a section (more than
    # /settings/fields gives); the sandbox's layout is the module's fields in one section (see the report/issue 11).
    await w.call("/crm/v8/settings/layouts", "GET", "/settings/layouts", [], params={"module": "Deals"})
    await w.call(
        "/crm/v8/settings/related_lists",
        "GET",
        "/settings/related_lists",
        [("related_lists.json", "/crm/v8/settings/related_lists")],
        params={"module": "Accounts"},
    )

    await w.call(pid, "DELETE", f"/Leads/{b}", [rec_id])
    await w.call(p, "DELETE", "/Leads", [rec], params={"ids": a})
    await w.call(
        "/crm/v8/{module}/deleted",
        "GET",
        "/Leads/deleted",
        [("record.json", "/crm/v8/{module_api_name}/deleted")],
        params={"type": "all"},
    )

    await _walk_notifications(w)
    await _walk_settings_convert_and_bulk_read(w)
    missing = set(_served()) - w.hit
    assert not missing, f"CRM routes the walk never called: {sorted(missing)}"


async def _walk_notifications(w: Walker) -> None:
    route, spec = "/crm/v8/actions/watch", [("notifications.json", "/crm/v8/actions/watch")]
    condition = {
        "type": "field_selection",
        "module": {"api_name": "Deals"},
        "field_selection": {"group_operator": "or", "group": [{"field": {"api_name": "Stage"}}]},
    }
    channel = {
        "channel_id": "1000000068001",
        "events": ["Leads.all", "Deals.edit"],
        "notify_url": "https://example.com/notify",
        "token": "TOKEN_FOR_VERIFICATION",
        "notification_condition": [condition],
    }
    await w.call(route, "POST", "/actions/watch", spec, 201, json={"watch": [channel]})
    listed = await w.call(route, "GET", "/actions/watch", spec)
    assert len(listed["watch"]) == 2
    await w.call(route, "PUT", "/actions/watch", spec, json={"watch": [{**channel, "events": ["Deals.all"]}]})
    await w.call(
        route, "PATCH", "/actions/watch", spec, json={"watch": [{**channel, "events": ["Leads.create", "Deals.edit"]}]}
    )
    disable = {"channel_id": "1000000068001", "events": ["Leads.create"], "_delete_events": True}
    await w.call(route, "PATCH", "/actions/watch", spec, json={"watch": [disable]})
    await w.call(route, "DELETE", "/actions/watch", spec, params={"channel_ids": "1000000068001"})


async def _walk_settings_convert_and_bulk_read(w: Walker) -> None:
    modules, fields = "/crm/v8/settings/modules", "/crm/v8/settings/fields"
    leads = (await w.api.get(f"{modules}/Leads")).json()["modules"][0]
    profiles = [{"id": leads["profiles"][0]["id"]}]  # creating a module needs the profiles that may see it
    module = {"singular_label": "Walk Item", "plural_label": "Walk Items", "profiles": profiles}
    await w.call(modules, "POST", "/settings/modules", [("modules.json", modules)], json={"modules": [module]})
    field = {"field_label": "Code", "data_type": "text", "length": 64}
    await w.call(
        fields,
        "POST",
        "/settings/fields",
        [("fields.json", fields)],
        201,
        params={"module": "Walk_Items"},
        json={"fields": [field]},
    )

    made = await w.api.post(
        "/crm/v8/Leads", json={"data": [{"Last_Name": "Walk", "Company": "Walk Co", "Email": "walk@example.com"}]}
    )
    lead = made.json()["data"][0]["details"]["id"]
    convert = "/crm/v8/Leads/{lead_id}/actions/convert"
    await w.call(
        "/crm/v8/Leads/{record_id}/actions/convert",
        "POST",
        f"/Leads/{lead}/actions/convert",
        [("convert_lead.json", convert)],
        json={
            "data": [
                {
                    "overwrite": True,
                    "Deals": {"Deal_Name": "Walk deal", "Stage": "Qualification", "Closing_Date": "2026-12-31"},
                }
            ]
        },
    )

    read, spec = "/crm/bulk/v8/read", ("bulk_read.json", "/crm/bulk/v8/read")
    criteria = {"field": {"api_name": "Last_Name"}, "comparator": "starts_with", "value": "Walk"}
    job = {"query": {"module": {"api_name": "Leads"}, "fields": ["Last_Name"], "criteria": criteria}}
    created = await w.call(read, "POST", "/read", [spec], 201, base="/crm/bulk/v8", json=job)
    job_id = created["data"][0]["details"]["id"]

    def as_documented(body: Any) -> Any:
        # bulk_read.json's Query marks cvid, page and file_type required although Zoho's own examples leave them
        # out, and types the criteria's `value` as an object where Zoho's docs show plain values ("value": "Web")
        query = body["data"][0]["query"]
        query["criteria"] = {**query["criteria"], "type": None, "value": {}}
        body["data"][0]["query"] = {"cvid": None, "page": 1, "file_type": "ics", **query}
        return body

    job_url, job_spec = f"{read}/{{job_id}}", ("bulk_read.json", f"{read}/{{job_id}}")
    for _ in range(2):  # ADDED, IN PROGRESS: bulk_read.json requires a `result`, which only a finished job has
        await w.call(job_url, "GET", f"/read/{job_id}", [], base="/crm/bulk/v8")
    status = await w.call(job_url, "GET", f"/read/{job_id}", [job_spec], base="/crm/bulk/v8", adjust=as_documented)
    assert status["data"][0]["state"] == "COMPLETED"
    archive = await w.call(f"{read}/{{job_id}}/result", "GET", f"/read/{job_id}/result", [], base="/crm/bulk/v8")
    with zipfile.ZipFile(io.BytesIO(archive)) as unzipped:
        assert unzipped.namelist() == [f"{job_id}.csv"]


def _component(file: str, name: str) -> dict[str, Any]:
    return {"$ref": f"{OAS_URL}{file}#/components/schemas/{name}"}


def _check(body: Any, schema: dict[str, Any]) -> None:
    errors = list(Draft7Validator(schema, registry=_registry()).iter_errors(body))
    leaves = [leaf for e in errors for leaf in _leaves(e)]
    assert not errors, "\n".join(f"  at {list(e.absolute_path)}: {e.message[:300]}" for e in leaves[:10])


@pytest.mark.parametrize(
    "query",
    [
        "select Last_Name from Leads",  # WHERE is mandatory
        "select id from Leads where id > 0 and Last_Name is not null and Email is not null",  # brackets in pairs
        "select id from Leads where id > 0 limit 0",
        "select id from Leads where id > 0 limit 2001",
    ],
)
async def test_coql_refusals_match_zoho_openapi(api: httpx.AsyncClient, query: str) -> None:
    response = await api.post("/crm/v8/coql", json={"select_query": query})
    assert response.status_code == 400
    # coql.json documents its 400 answers as one of these exception shapes.
    shapes = ["Syntax_Exception", "Limit_Exceeded_Exception", "Invalid_Query_Exception"]
    _check(response.json(), {"anyOf": [_component("coql.json", s) for s in shapes]})


async def test_record_refusals_match_zoho_openapi(api: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """Refusals on the record routes: the top-level and per-row error shapes of record.json's API_Exception."""
    exception = _component("record.json", "API_Exception")
    rows = {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": exception}}}
    put = await api.put("/crm/v8/Leads/404", json={"data": [{"Company": "X"}]})
    delete = await api.delete("/crm/v8/Leads/404")
    for answer in (put, delete):  # an unknown id in the URL: record.json's top-level API_Exception
        assert answer.status_code == 400 and "data" not in answer.json()
        _check(answer.json(), {"allOf": [exception, {"required": ["code", "details", "message", "status"]}]})
    in_body = await api.put("/crm/v8/Leads", json={"data": [{"id": "404", "Company": "X"}]})
    assert in_body.status_code == 400
    _check(in_body.json(), rows)  # an unknown id in the body: that row's error
    token = (await client.post("/__sandbox/tokens", json={"scope": "ZohoCRM.settings.ALL"})).json()["access_token"]
    scoped = await client.get(
        "/crm/v8/Leads", params={"fields": "Last_Name"}, headers={"Authorization": f"Zoho-oauthtoken {token}"}
    )
    assert scoped.status_code == 401
    # record.json's message enum lacks the scope wording; share_records.json's exception schema has both.
    _check(scoped.json(), _component("share_records.json", "Share_Record_API_Exception"))
    await api.post("/__sandbox/seed", json={"module": "Leads", "count": 3})
    token_page = (await api.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 1})).json()["info"]
    both = await api.get(
        "/crm/v8/Leads", params={"fields": "Last_Name", "page": 1, "page_token": token_page["next_page_token"]}
    )
    assert both.status_code == 400
    ambiguity = dict(_documents()["record_count.json"]["components"]["schemas"]["Ambiguity_API_Exception"])
    # The OAS words only the cvid-vs-search ambiguity; the code, status and details shape are what must match.
    ambiguity["properties"] = {k: v for k, v in ambiguity["properties"].items() if k != "message"}
    _check(both.json(), ambiguity)


async def test_notification_refusals_match_zoho_openapi(api: httpx.AsyncClient) -> None:
    """notifications.json words a refused channel as a `watch` list of common.json's errors: MANDATORY_NOT_FOUND,
    INVALID_DATA (with api_name and json_path), and NOT_SUBSCRIBED for a channel that is not there."""
    channel = {"channel_id": "1000000068001", "events": ["Leads.all"], "notify_url": "https://example.com/n"}
    refusals = {
        "MandatoryWrapper": {**channel, "notify_url": None},
        "InvalidValueWrapper": {**channel, "token": "t" * 51},
    }
    for wrapper, item in refusals.items():
        answer = await api.post("/crm/v8/actions/watch", json={"watch": [item]})
        assert answer.status_code == 400
        _check(answer.json(), _component("notifications.json", wrapper))
    gone = await api.delete("/crm/v8/actions/watch", params={"channel_ids": "1000000068001"})
    assert gone.status_code == 400
    _check(gone.json(), _component("notifications.json", "InvalidParamWrapper"))
