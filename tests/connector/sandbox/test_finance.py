"""Books v3: organization_id everywhere, envelopes named per kind, page_context, parent paths, JSONString."""

from __future__ import annotations

import json

import httpx
import pytest

from connector.sandbox import BOOKS_ORG_ID
from connector.sandbox.finance import DEFAULT_ORG_IDS, names, parse_path

pytestmark = pytest.mark.anyio
ORG = {"organization_id": BOOKS_ORG_ID}


async def test_organizations_needs_no_organization_id(api: httpx.AsyncClient) -> None:
    body = (await api.get("/books/v3/organizations")).json()
    assert (body["code"], body["message"]) == (0, "success")
    assert body["organizations"][0]["organization_id"] == "10234695"
    assert body["organizations"][0]["is_default_org"] is True
    one = (await api.get(f"/books/v3/organizations/{BOOKS_ORG_ID}")).json()
    assert one["organization"]["name"] == "Sandbox Books"


async def test_organization_id_is_required(api: httpx.AsyncClient) -> None:
    missing = await api.get("/books/v3/invoices")
    assert missing.status_code == 400
    assert missing.json()["code"] == 6041
    wrong = await api.get("/books/v3/invoices", params={"organization_id": "1"})
    assert wrong.json()["message"] == "This user is not associated with the CompanyID/CompanyName:1."


async def _customer(api: httpx.AsyncClient, name: str = "Acme") -> str:
    created = await api.post("/books/v3/contacts", params=ORG, json={"contact_name": name})
    assert created.status_code == 201
    cid: str = created.json()["contact"]["contact_id"]
    return cid


async def test_invoice_lifecycle(api: httpx.AsyncClient) -> None:
    cid = await _customer(api)
    line = {"name": "Widget", "rate": 20.3, "quantity": 2}
    created = await api.post(
        "/books/v3/invoices", params=ORG, json={"customer_id": cid, "line_items": [line], "total": 1}
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["code"], body["message"]) == (0, "The invoice has been created.")
    invoice = body["invoice"]
    iid = invoice["invoice_id"]
    # The total a client sends is ignored: Zoho derives it from the line items.
    assert (invoice["invoice_number"], invoice["status"], invoice["total"]) == ("INV-00001", "draft", 40.6)
    assert invoice["created_time"].endswith("+0000")
    got = (await api.get(f"/books/v3/invoices/{iid}", params=ORG)).json()
    assert got == {"code": 0, "message": "success", "invoice": invoice}
    put = (
        await api.put(
            f"/books/v3/invoices/{iid}", params=ORG, json={"line_items": [{**line, "rate": 25}], "invoice_id": "x"}
        )
    ).json()
    assert (put["message"], put["invoice"]["total"], put["invoice"]["balance"], put["invoice"]["invoice_id"]) == (
        "Invoice information has been updated.",
        50,
        50,
        iid,
    )
    sent = (await api.post(f"/books/v3/invoices/{iid}/status/sent", params=ORG)).json()
    assert sent["code"] == 0
    assert (await api.get(f"/books/v3/invoices/{iid}", params=ORG)).json()["invoice"]["status"] == "sent"
    deleted = (await api.delete(f"/books/v3/invoices/{iid}", params=ORG)).json()
    assert deleted == {"code": 0, "message": "The invoice has been deleted."}
    gone = await api.get(f"/books/v3/invoices/{iid}", params=ORG)
    assert (gone.status_code, gone.json()) == (404, {"code": 1002, "message": "Invoice does not exist."})


async def test_pagination_and_filters(api: httpx.AsyncClient) -> None:
    seeded = await api.post("/__sandbox/seed", json={"books_kind": "contacts", "count": 5})
    assert seeded.json()["total"] == 5
    await api.post("/books/v3/contacts", params=ORG, json={"contact_name": "A&B=C #1"})
    page = (await api.get("/books/v3/contacts", params={**ORG, "per_page": 4})).json()
    assert len(page["contacts"]) == 4
    assert page["page_context"]["has_more_page"] is True
    assert (page["page_context"]["page"], page["page_context"]["per_page"]) == (1, 4)
    last = (await api.get("/books/v3/contacts", params={**ORG, "per_page": 4, "page": 2})).json()
    assert (len(last["contacts"]), last["page_context"]["has_more_page"]) == (2, False)
    exact = (await api.get("/books/v3/contacts", params={**ORG, "contact_name": "A&B=C #1"})).json()
    assert [c["contact_name"] for c in exact["contacts"]] == ["A&B=C #1"]
    contains = (await api.get("/books/v3/contacts", params={**ORG, "contact_name_contains": "b=c"})).json()
    assert len(contains["contacts"]) == 1
    default = (await api.get("/books/v3/contacts", params=ORG)).json()
    assert default["page_context"]["per_page"] == 200


async def test_parent_paths(api: httpx.AsyncClient) -> None:
    contact = (await api.post("/books/v3/contacts", params=ORG, json={"contact_name": "Acme"})).json()["contact"]
    cid = contact["contact_id"]
    person = await api.post(f"/books/v3/contacts/{cid}/contactpersons", params=ORG, json={"first_name": "Jo"})
    assert person.status_code == 201
    cp = person.json()["contact_person"]
    assert cp["contact_id"] == cid
    listed = (await api.get(f"/books/v3/contacts/{cid}/contactpersons", params=ORG)).json()
    assert [p["contact_person_id"] for p in listed["contact_persons"]] == [cp["contact_person_id"]]
    flat = await api.post("/books/v3/contacts/contactpersons", params=ORG, json={"contact_id": cid, "first_name": "Al"})
    assert flat.status_code == 201
    assert len((await api.get(f"/books/v3/contacts/{cid}/contactpersons", params=ORG)).json()["contact_persons"]) == 2
    one = await api.get(f"/books/v3/contacts/{cid}/contactpersons/{cp['contact_person_id']}", params=ORG)
    assert one.json()["contact_person"]["first_name"] == "Jo"
    orphan = await api.get("/books/v3/contacts/123/contactpersons", params=ORG)
    assert (orphan.status_code, orphan.json()["message"]) == (404, "Contact does not exist.")
    project = (await api.post("/books/v3/projects", params=ORG, json={"project_name": "P"})).json()["project"]
    task = await api.post(f"/books/v3/projects/{project['project_id']}/tasks", params=ORG, json={"task_name": "Design"})
    assert task.json()["message"] == "The task has been added."
    assert task.json()["task"]["project_id"] == project["project_id"]


async def test_two_segment_kinds(api: httpx.AsyncClient) -> None:
    tax = (
        await api.post("/books/v3/settings/taxes", params=ORG, json={"tax_name": "VAT", "tax_percentage": 20})
    ).json()
    assert tax["tax"]["tax_id"]
    listed = (await api.get("/books/v3/settings/taxes", params=ORG)).json()
    assert [t["tax_name"] for t in listed["taxes"]] == ["VAT"]
    rule = (await api.post("/books/v3/bankaccounts/rules", params=ORG, json={"rule_name": "r"})).json()
    assert "rule_id" in rule["rule"]
    got = await api.get(f"/books/v3/settings/taxes/{tax['tax']['tax_id']}", params=ORG)
    assert got.json()["tax"]["tax_name"] == "VAT"


async def test_jsonstring_form_and_bad_json(api: httpx.AsyncClient) -> None:
    form = await api.post("/books/v3/items", params=ORG, data={"JSONString": json.dumps({"name": "Widget", "rate": 3})})
    assert form.json()["item"]["name"] == "Widget"
    bad = await api.post("/books/v3/items", params=ORG, content=b"{nope", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["code"]) == (400, 4)
    method = await api.put("/books/v3/items", params=ORG, json={})
    assert method.status_code == 405


def test_names_table_and_fallback() -> None:
    assert names("invoices") == ("invoice", "invoices", "invoice_id")
    assert names("contactpersons") == ("contact_person", "contact_persons", "contact_person_id")
    assert names("settings/taxes") == ("tax", "taxes", "tax_id")
    assert names("widgets") == ("widget", "widgets", "widget_id")
    assert names("categories") == ("category", "categories", "category_id")


def test_parse_path() -> None:
    target = parse_path("projects/8/tasks/9")
    assert target is not None
    assert (target.parents, target.kind, target.id) == ([("projects", "8")], "tasks", "9")
    assert parse_path("1/2") is None
    status = parse_path("invoices/5/status/void")
    assert status is not None
    assert (status.kind, status.id, status.action) == ("invoices", "5", "status/void")


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("contacts", {"company_name": "No name"}, "Required field contact_name is missing."),
        ("contacts", {"contact_name": "  "}, "Required field contact_name is missing."),
        ("invoices", {"line_items": [{"rate": 1}]}, "Required field customer_id is missing."),
        ("invoices", {"customer_id": "{cid}"}, "Required field line_items is missing."),
        ("invoices", {"customer_id": "{cid}", "line_items": []}, "Required field line_items is missing."),
        ("invoices", {"customer_id": "404", "line_items": [{"rate": 1}]}, "Invalid value passed for customer_id"),
        (
            "invoices",
            {"customer_id": "{cid}", "line_items": [{"rate": "ten"}]},
            "Invalid value passed for line_items[0].rate",
        ),
    ],
)
async def test_documents_missing_required_fields_are_refused(
    api: httpx.AsyncClient, kind: str, body: dict[str, object], message: str
) -> None:
    cid = await _customer(api)
    filled = {k: (cid if v == "{cid}" else v) for k, v in body.items()}
    before = (await api.get(f"/books/v3/{kind}", params=ORG)).json()
    response = await api.post(f"/books/v3/{kind}", params=ORG, json=filled)
    assert (response.status_code, response.json()) == (400, {"code": 4, "message": message})
    after = (await api.get(f"/books/v3/{kind}", params=ORG)).json()
    assert after == before  # nothing was stored


async def test_invoice_amounts_are_computed_like_zoho(api: httpx.AsyncClient) -> None:
    cid = await _customer(api)
    lines = [
        {"name": "A", "rate": 100, "quantity": 3, "discount": "10%", "tax_percentage": 20},  # 270, tax 54
        {"name": "B", "rate": "12.50", "quantity": 2, "discount": 5},  # 20
        {"name": "C", "rate": 7},  # quantity defaults to 1
    ]
    doc = {"customer_id": cid, "line_items": lines, "discount": 17, "shipping_charge": 3, "sub_total": 1, "balance": 1}
    invoice = (await api.post("/books/v3/invoices", params=ORG, json=doc)).json()["invoice"]
    assert [i["item_total"] for i in invoice["line_items"]] == [270, 20, 7]
    assert (invoice["sub_total"], invoice["discount_total"], invoice["tax_total"]) == (297, 17, 54)
    assert (invoice["total"], invoice["balance"]) == (337, 337)
    iid = invoice["invoice_id"]
    blanked = await api.put(f"/books/v3/invoices/{iid}", params=ORG, json={"customer_id": ""})
    assert (blanked.status_code, blanked.json()["code"]) == (400, 4)
    renamed = await api.put(f"/books/v3/invoices/{iid}", params=ORG, json={"reference_number": "R-1"})
    assert renamed.json()["invoice"]["total"] == 337  # recomputed from the stored line items, unchanged


async def test_contact_update_need_not_repeat_the_name(api: httpx.AsyncClient) -> None:
    cid = await _customer(api)
    updated = await api.put(f"/books/v3/contacts/{cid}", params=ORG, json={"website": "acme.example"})
    assert updated.json()["contact"]["contact_name"] == "Acme"


# --- the other Finance apps ------------------------------------------------------------------------------------

WHERE = {
    "/inventory/v1": ({"organization_id": DEFAULT_ORG_IDS["inventory"]}, {}),
    "/invoice/v3": ({}, {"X-com-zoho-invoice-organizationid": DEFAULT_ORG_IDS["invoice"]}),
    "/billing/v1": ({}, {"X-com-zoho-subscriptions-organizationid": DEFAULT_ORG_IDS["billing"]}),
    "/subscriptions/v1": ({}, {"X-com-zoho-subscriptions-organizationid": DEFAULT_ORG_IDS["billing"]}),
}


@pytest.mark.parametrize("base", sorted(WHERE))
async def test_each_app_reads_the_organization_where_zoho_does(api: httpx.AsyncClient, base: str) -> None:
    params, headers = WHERE[base]
    right = await api.get(f"{base}/contacts", params=params, headers=headers)
    assert right.status_code == 200 and right.json()["page_context"]["per_page"] == 200
    org = next(iter({**params, **headers}.values()))
    # The same id in the other place is a request without an organization.
    moved_params = {} if params else {"organization_id": org}
    moved_headers = {} if headers else {"X-com-zoho-invoice-organizationid": org}
    wrong = await api.get(f"{base}/contacts", params=moved_params, headers=moved_headers)
    assert (wrong.status_code, wrong.json()["code"]) == (400, 6041)


async def test_expense_takes_either_place_but_not_two_ids(api: httpx.AsyncClient) -> None:
    org = DEFAULT_ORG_IDS["expense"]
    header = "X-com-zoho-expense-organizationid"
    assert (await api.get("/expense/v1/trips", params={"organization_id": org})).status_code == 200
    assert (await api.get("/expense/v1/trips", headers={header: org})).status_code == 200
    both = await api.get("/expense/v1/trips", params={"organization_id": org}, headers={header: org})
    assert both.status_code == 200
    clash = await api.get("/expense/v1/trips", params={"organization_id": org}, headers={header: BOOKS_ORG_ID})
    assert clash.json()["code"] == 6041


async def test_an_app_knows_only_its_own_organizations(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/inventory/v1/organizations")).json()["organizations"]
    assert [o["organization_id"] for o in listed] == [DEFAULT_ORG_IDS["inventory"]]
    books_id_in_inventory = await api.get("/inventory/v1/items", params=ORG)
    assert books_id_in_inventory.json()["code"] == 6041


async def test_every_answer_carries_the_rate_limit_headers(api: httpx.AsyncClient) -> None:
    first = await api.get("/books/v3/contacts", params=ORG)
    second = await api.get("/books/v3/contacts/1", params=ORG)  # an error answer carries them too
    assert second.status_code == 404
    assert first.headers["X-Rate-Limit-Limit"] == "10000"
    assert int(first.headers["X-Rate-Limit-Remaining"]) - 1 == int(second.headers["X-Rate-Limit-Remaining"])
    assert 0 < int(second.headers["X-Rate-Limit-Reset"]) <= 86_400


async def test_json_string_form_field_and_raw_json_in_another_app(api: httpx.AsyncClient) -> None:
    org = {"organization_id": DEFAULT_ORG_IDS["inventory"]}
    form = await api.post("/inventory/v1/items", params=org, data={"JSONString": json.dumps({"name": "Bolt"})})
    raw = await api.post("/inventory/v1/items", params=org, json={"name": "Nut"})
    assert (form.status_code, raw.status_code) == (201, 201)
    missing = await api.post("/inventory/v1/items", params=org, json={"rate": 1})
    assert (missing.status_code, missing.json()["message"]) == (400, "Required field name is missing.")


async def test_statuses_emails_and_pdfs(api: httpx.AsyncClient) -> None:
    cid = await _customer(api, "Docs")
    created = await api.post(
        "/books/v3/estimates", params=ORG, json={"customer_id": cid, "line_items": [{"rate": 10, "quantity": 3}]}
    )
    eid = created.json()["estimate"]["estimate_id"]
    accepted = await api.post(f"/books/v3/estimates/{eid}/status/accepted", params=ORG)
    assert accepted.json()["message"] == "Estimate status has been changed to accepted."
    billed = await api.post(f"/books/v3/estimates/{eid}/status/billed", params=ORG)  # a purchase order status
    assert (billed.status_code, billed.json()["code"]) == (404, 5)
    no_to = await api.post(f"/books/v3/estimates/{eid}/email", params=ORG, json={"subject": "Hi"})
    assert no_to.json()["message"] == "Required field to_mail_ids is missing."
    mailed = await api.post(f"/books/v3/estimates/{eid}/email", params=ORG, json={"to_mail_ids": ["a@b.co"]})
    assert mailed.json() == {"code": 0, "message": "Your estimate has been sent."}
    pdf = await api.get(f"/books/v3/estimates/{eid}", params={**ORG, "accept": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-1.4")
    assert pdf.headers["content-disposition"] == 'attachment; filename="EST-00001.pdf"'
    assert b"total 30.0" in pdf.content
