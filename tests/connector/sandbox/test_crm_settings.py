"""Custom modules and fields through the settings API (crm-oas modules.json and fields.json): created as asked,
listed by the metadata endpoints, usable by records and upserts, answered in Zoho's shapes, strict on bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.connector.sandbox.test_oas_conformance import OAS_DIR, _validate

pytestmark = pytest.mark.anyio
MODULES = "/crm/v8/settings/modules"
FIELDS = "/crm/v8/settings/fields"


async def _admin_profile(api: httpx.AsyncClient) -> str:
    leads = (await api.get(f"{MODULES}/Leads")).json()["modules"][0]
    return str(leads["profiles"][0]["id"])


async def _module(api: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    profiles = [{"id": await _admin_profile(api)}]
    body = {"singular_label": "Store Deal", "plural_label": "Store Deals", "profiles": profiles}
    return await api.post(MODULES, json={"modules": [{**body, **extra}]})


async def test_a_module_is_created_listed_and_takes_records(api: httpx.AsyncClient) -> None:
    response = await _module(api)
    assert response.status_code == 200, response.text
    row = response.json()["modules"][0]
    assert (row["code"], row["status"], row["message"]) == ("SUCCESS", "success", "module created")
    listed = {m["api_name"]: m for m in (await api.get(MODULES)).json()["modules"]}
    module = listed["Store_Deals"]  # the API name derived from the plural label
    assert (module["id"], module["singular_label"], module["generated_type"]) == (
        row["details"]["id"],
        "Store Deal",
        "custom",
    )
    names = [f["api_name"] for f in (await api.get(FIELDS, params={"module": "Store_Deals"})).json()["fields"]]
    assert names[0] == "Name" and "Email" not in names
    made = await api.post("/crm/v8/Store_Deals", json={"data": [{"Name": "first"}]})
    assert made.status_code == 201


async def test_an_api_name_can_be_given(api: httpx.AsyncClient) -> None:
    assert (await _module(api, api_name="Partner_Deals")).status_code == 200
    assert (await api.get(f"{MODULES}/Partner_Deals")).status_code == 200


async def test_fields_are_created_unique_and_upserts_match_on_them(api: httpx.AsyncClient) -> None:
    await _module(api)
    fields = [
        {"field_label": "Store Id", "data_type": "text", "length": 64, "unique": {"casesensitive": "false"}},
        {"field_label": "Store Payload", "data_type": "textarea", "textarea": {"type": "large"}},
        {"field_label": "Amount", "data_type": "double"},
    ]
    for field in fields:
        response = await api.post(FIELDS, params={"module": "Store_Deals"}, json={"fields": [field]})
        assert response.status_code == 201, response.text
        assert response.json()["fields"][0]["status"] == "success"
    listed = {f["api_name"]: f for f in (await api.get(FIELDS, params={"module": "Store_Deals"})).json()["fields"]}
    assert listed["Store_Id"]["unique"] == {"casesensitive": "false"} and listed["Store_Id"]["length"] == 64
    assert listed["Store_Payload"]["textarea"] == {"type": "large"} and listed["Store_Payload"]["length"] == 32_000
    assert listed["Store_Id"]["custom_field"] is True

    def body(amount: float) -> dict[str, Any]:
        return {"data": [{"Name": "x", "Store_Id": "7", "Amount": amount}], "duplicate_check_fields": ["Store_Id"]}

    first = (await api.post("/crm/v8/Store_Deals/upsert", json=body(1.5))).json()["data"][0]
    second = (await api.post("/crm/v8/Store_Deals/upsert", json=body(2.5))).json()["data"][0]
    assert (first["action"], second["action"]) == ("insert", "update")
    assert first["details"]["id"] == second["details"]["id"]
    dup = await api.post("/crm/v8/Store_Deals", json={"data": [{"Name": "y", "Store_Id": "7"}]})
    assert dup.json()["data"][0]["code"] == "DUPLICATE_DATA"


@pytest.mark.parametrize(
    ("field", "code", "api_name"),
    [
        ({"data_type": "text", "length": 10}, "MANDATORY_NOT_FOUND", "field_label"),
        ({"field_label": "A"}, "MANDATORY_NOT_FOUND", "data_type"),
        ({"field_label": "A", "data_type": "text"}, "MANDATORY_NOT_FOUND", "length"),
        ({"field_label": "A", "data_type": "text", "length": 256}, "INVALID_DATA", "length"),
        ({"field_label": "A", "data_type": "colour"}, "INVALID_DATA", "data_type"),
        ({"field_label": "A", "data_type": "textarea", "textarea": {"type": "huge"}}, "INVALID_DATA", "textarea"),
        ({"field_label": "A", "data_type": "double", "unique": {"casesensitive": "false"}}, "INVALID_DATA", "unique"),
        ({"field_label": "Last Name", "data_type": "text", "length": 10}, "DUPLICATE_DATA", "field_label"),
    ],
)
async def test_bad_fields_are_refused_like_zoho(
    api: httpx.AsyncClient, field: dict[str, Any], code: str, api_name: str
) -> None:
    response = await api.post(FIELDS, params={"module": "Leads"}, json={"fields": [field]})
    assert response.status_code == 400
    row = response.json()["fields"][0]
    assert (row["status"], row["code"], row["details"]["api_name"]) == ("error", code, api_name)


async def test_bad_modules_are_refused_like_zoho(api: httpx.AsyncClient) -> None:
    missing = await api.post(MODULES, json={"modules": [{"singular_label": "X", "plural_label": "Xs"}]})
    assert missing.status_code == 400
    assert missing.json()["modules"][0]["details"] == {"api_name": "profiles", "json_path": "$.modules[0].profiles"}
    bad_profile = await _module(api, profiles=[{"id": "1"}])
    assert bad_profile.json()["modules"][0]["code"] == "INVALID_DATA"
    assert (await _module(api)).status_code == 200
    again = await _module(api)
    assert again.status_code == 400 and again.json()["modules"][0]["code"] == "DUPLICATE_DATA"
    no_body = await api.post(MODULES, json={})
    assert no_body.json()["code"] == "MANDATORY_NOT_FOUND"
    unknown = await api.post(FIELDS, params={"module": "Nope"}, json={"fields": [{"field_label": "A"}]})
    assert unknown.json()["code"] == "INVALID_MODULE"


async def test_creating_needs_the_settings_scope(client: httpx.AsyncClient) -> None:
    token = (await client.post("/__sandbox/tokens", json={"scope": "ZohoCRM.modules.ALL"})).json()
    client.headers["Authorization"] = f"Zoho-oauthtoken {token['access_token']}"
    response = await client.post(FIELDS, params={"module": "Leads"}, json={"fields": [{"field_label": "A"}]})
    assert (response.status_code, response.json()["code"]) == (401, "OAUTH_SCOPE_MISMATCH")


@pytest.mark.skipif(not OAS_DIR.is_dir(), reason=f"Zoho's CRM OpenAPI files are not at {OAS_DIR}")
async def test_answers_match_zoho_openapi(api: httpx.AsyncClient) -> None:
    created = await _module(api)
    _validate(created.json(), "modules.json", "/crm/v8/settings/modules", "post", created.status_code)
    field = {"field_label": "Store Id", "data_type": "text", "length": 64}
    made = await api.post(FIELDS, params={"module": "Store_Deals"}, json={"fields": [field]})
    _validate(made.json(), "fields.json", "/crm/v8/settings/fields", "post", made.status_code)
