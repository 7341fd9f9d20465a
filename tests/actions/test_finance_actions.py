"""The Finance actions at the transport (issue 13): one set of record actions per app with Books' input keys, the
list filters by Zoho's names, every kind/status pair of booksMarkStatus, the organization id's precedence and place
per app, and the record kinds offered as suggestions checked against the notes."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError
from connector.manifest import bundled_manifest
from tests.conftest import ACCESS_TOKEN

API = "https://www.zohoapis.eu"
APPS = ("books", "inventory", "invoice", "expense", "billing")
RECORD_ACTIONS = ("CreateRecord", "GetRecord", "GetRecords", "UpdateRecord", "RemoveRecord", "RawRequest")
BASES = {
    "books": "/books/v3",
    "inventory": "/inventory/v1",
    "invoice": "/invoice/v3",
    "expense": "/expense/v1",
    "billing": "/billing/v1",
}
# Where each app reads the organization id (zoho-api.md §4-5): query parameter, header, or (Expense, whose docs
# disagree) both.
QUERY = "organization_id"
HEADERS = {
    "invoice": "X-com-zoho-invoice-organizationid",
    "expense": "X-com-zoho-expense-organizationid",
    "billing": "X-com-zoho-subscriptions-organizationid",
}
IN_QUERY = {"books", "inventory", "expense"}


def _schema(key: str) -> dict[str, Any]:
    return bundled_manifest().action(key).input_schema


def _placed(request: httpx.Request, app: str) -> set[str]:
    """Every organization id the request carries, after checking it travels only where the app reads it."""
    found = set(request.url.params.get_list(QUERY))
    assert bool(found) == (app in IN_QUERY), (app, str(request.url))
    header = HEADERS.get(app)
    for name in {*HEADERS.values()} - {header}:
        assert name not in request.headers, (app, name)
    if header:
        assert header in request.headers, (app, header)
        found.add(request.headers[header])
    return found


# --- one set of record actions per app, with Books' input keys ---------------------------------------------------


@pytest.mark.parametrize(("app", "verb"), list(itertools.product(APPS[1:], RECORD_ACTIONS)))
def test_each_app_has_books_record_actions_with_the_same_input_keys(app: str, verb: str) -> None:
    theirs, books = _schema(f"{app}{verb}"), _schema(f"books{verb}")
    assert list(theirs["properties"]) == list(books["properties"])
    assert theirs.get("required") == books.get("required")
    assert theirs.get("dependentRequired") == books.get("dependentRequired")
    assert bundled_manifest().action(f"{app}{verb}").product == app


def test_every_finance_action_takes_an_organization_id() -> None:
    finance = [a for a in bundled_manifest().actions.values() if a.product in APPS]
    assert len(finance) == 5 * 6 + 3  # the record actions of five apps, and Books' email, status and PDF
    for action in finance:
        assert action.input_schema["properties"]["organizationId"].get("x-role") == "organization_id", action.key


# --- list filters -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(("given", "sent"), [("ascending", "A"), ("descending", "D"), ("A", "A"), ("D", "D")])
def test_list_filters_reach_zoho_by_their_names(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, app: str, given: str, sent: str
) -> None:
    httpx_mock.add_response(json={"code": 0, "invoices": [], "page_context": {"has_more_page": False}})
    inputs = {
        "recordType": "invoices",
        "searchText": "Zylker",
        "filterBy": "Status.Unpaid",
        "sortColumn": "created_time",
        "sortOrder": given,
        "searchFields": [{"key": "customer_name_contains", "value": "Zyl"}],
        "per_page": 50,
    }
    connector.run(f"{app}GetRecords", inputs, connection=connection)
    [request] = httpx_mock.get_requests()
    assert request.url.path == f"{BASES[app]}/invoices"
    params = {k: v for k, v in request.url.params.multi_items() if k != QUERY}
    assert params == {
        "customer_name_contains": "Zyl",
        "search_text": "Zylker",
        "filter_by": "Status.Unpaid",
        "sort_column": "created_time",
        "sort_order": sent,
        "page": "1",
        "per_page": "50",
    }


@pytest.mark.parametrize("bad", ["asc", "Descending", "d", "down"])
def test_a_sort_order_that_is_neither_word_nor_letter_is_refused(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, bad: str
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run("booksGetRecords", {"recordType": "invoices", "sortOrder": bad}, connection=connection)
    assert [v.input for v in caught.value.violations] == ["sortOrder"]
    assert httpx_mock.get_requests() == []


# --- booksMarkStatus: the statuses Books offers per kind, and nothing else -----------------------------------------

# Books API v3 (zoho-api.md §4 and the issue): POST /{kind}/{id}/status/{status}.
STATUSES = {
    "invoices": {"sent", "draft", "void"},
    "estimates": {"sent", "accepted", "declined"},
    "salesorders": {"open", "void"},
    "purchaseorders": {"open", "billed", "cancelled"},
    "bills": {"open", "void"},
    "creditnotes": {"open", "draft", "void"},
    "retainerinvoices": {"sent", "draft", "void"},
    "vendorcredits": {"open", "void"},
}
EVERY_STATUS = sorted(set().union(*STATUSES.values()))
OFFERED = [(kind, status) for kind, statuses in STATUSES.items() for status in sorted(statuses)]
REFUSED = [(kind, status) for kind in STATUSES for status in EVERY_STATUS if status not in STATUSES[kind]]


def test_the_schema_and_the_sandbox_offer_exactly_these_kinds_and_statuses() -> None:
    from connector.sandbox.finance import STATUSES as SANDBOX

    assert {kind: set(statuses) for kind, statuses in SANDBOX.items()} == STATUSES
    properties = _schema("booksMarkStatus")["properties"]
    assert set(properties["recordType"]["enum"]) == set(STATUSES)
    assert sorted(properties["status"]["enum"]) == EVERY_STATUS


@pytest.mark.parametrize(("kind", "status"), OFFERED)
def test_every_status_books_offers_is_sent_to_its_url(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, kind: str, status: str
) -> None:
    httpx_mock.add_response(json={"code": 0, "message": f"Status has been changed to {status}."})
    inputs = {"recordType": kind, "recordId": "982000000567114", "status": status}
    connector.run("booksMarkStatus", inputs, connection=connection)
    [request] = httpx_mock.get_requests()
    assert request.method == "POST"
    assert request.url.path == f"/books/v3/{kind}/982000000567114/status/{status}"


@pytest.mark.parametrize(("kind", "status"), REFUSED)
def test_a_pair_books_lacks_is_an_input_error_and_nothing_is_sent(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, kind: str, status: str
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run("booksMarkStatus", {"recordType": kind, "recordId": "1", "status": status}, connection=connection)
    [violation] = caught.value.violations
    assert violation.input == "status"
    assert all(s in violation.message for s in STATUSES[kind]), violation.message  # says what the kind takes
    assert httpx_mock.get_requests() == []


def test_the_issues_own_example_is_refused(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    assert ("invoices", "accepted") in REFUSED and len(OFFERED) + len(REFUSED) == len(STATUSES) * len(EVERY_STATUS)


# --- organization ids: precedence and place, per app ---------------------------------------------------------------


def _serve(discovered: str) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/organizations"):
            orgs = [{"organization_id": "5"}, {"organization_id": discovered, "is_default_org": True}]
            return httpx.Response(200, json={"code": 0, "message": "success", "organizations": orgs})
        return httpx.Response(200, json={"code": 0, "message": "success", "invoice": {}})

    return answer


@pytest.mark.parametrize("app", APPS)
def test_organization_precedence_input_map_connection_then_discovered(
    connector: Connector, httpx_mock: HTTPXMock, app: str
) -> None:
    """The action's organizationId, then the connection's organization_ids entry for this app, then its
    organization_id, then this app's default organization, looked up once on this app's own base."""
    other = next(a for a in APPS if a != app)
    httpx_mock.add_callback(_serve(discovered=f"6{app}"), is_reusable=True)
    full = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_id": "1", "organization_ids": {app: "2"}}
    without_entry = {**full, "organization_ids": {other: "9"}}
    bare = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_ids": {other: "9"}}
    get = {"recordType": "invoices", "recordId": "7"}
    for inputs, connection in [
        ({**get, "organizationId": "3"}, full),
        (get, full),
        (get, without_entry),
        (get, bare),
        (get, bare),  # the discovered id is remembered
    ]:
        connector.run(f"{app}GetRecord", inputs, connection=connection)
    requests = httpx_mock.get_requests()
    lookups = [r for r in requests if r.url.path.endswith("/organizations")]
    assert [r.url.path for r in lookups] == [f"{BASES[app]}/organizations"]
    assert QUERY not in lookups[0].url.params and not any(h in lookups[0].headers for h in HEADERS.values())
    calls = [r for r in requests if r not in lookups]
    assert [r.url.path for r in calls] == [f"{BASES[app]}/invoices/7"] * 5
    assert [_placed(r, app) for r in calls] == [{"3"}, {"2"}, {"1"}, {f"6{app}"}, {f"6{app}"}]


# --- Books' record kinds as suggestions: valid paths only ----------------------------------------------------------

# Books API v3 paths (zoho-api.md §4, "Resources" and "settings", and the module index of Zoho's own Books OpenAPI
# documents): kinds addressed flat, and kinds addressed under a parent's id (`/{parent}/{id}/{kind}`).
BOOKS_FLAT = {
    *("bankaccounts", "bankaccounts/rules", "banktransactions", "basecurrencyadjustment", "bills", "chartofaccounts"),
    *("chartofaccounts/transactions", "contacts", "contacts/contactpersons", "creditnotes", "creditnotes/refunds"),
    *("customerpayments", "employees", "estimates", "expenses", "fixedassets", "fixedassettypes", "invoices"),
    *("items", "journals", "locations", "organizations", "projects", "projects/timeentries", "purchaseorders"),
    *("recurringbills", "recurringexpenses", "recurringinvoices", "reportingtags", "retainerinvoices"),
    *("salesorders", "salesreceipts", "users", "vendorcredits", "vendorcredits/refunds", "vendorpayments"),
    *(f"{kind}/templates" for kind in ("creditnotes", "estimates", "invoices", "purchaseorders", "salesorders")),
    "retainerinvoices/templates",
    *(f"settings/{s}" for s in ("preferences", "taxes", "taxgroups", "currencies", "units", "openingbalances")),
    *(f"settings/{s}" for s in ("autoreminders", "manualreminders", "taxauthorities", "taxexemptions")),
}
BOOKS_CHILDREN = {
    "bills": {"comments", "payments", "credits"},
    "contacts": {"contactpersons", "comments", "address", "refunds"},
    "creditnotes": {"comments", "invoices", "refunds", "emailhistory"},
    "customerpayments": {"refunds"},
    "estimates": {"comments"},
    "expenses": {"comments"},
    "fixedassets": {"comments"},
    "invoices": {"comments", "payments", "creditsapplied", "credits"},
    "journals": {"comments"},
    "projects": {"tasks", "users", "comments", "invoices"},
    "purchaseorders": {"comments"},
    "recurringbills": {"comments"},
    "recurringexpenses": {"comments", "expenses"},
    "recurringinvoices": {"comments"},
    "retainerinvoices": {"comments"},
    "salesorders": {"comments"},
    "settings/currencies": {"exchangerates"},
    "vendorcredits": {"comments", "bills", "refunds"},
    "vendorpayments": {"refunds"},
}
# What the notes name explicitly (zoho-api.md §4): each must be offered.
NOTES_FLAT = {
    *("contacts", "invoices", "estimates", "salesorders", "purchaseorders", "bills", "creditnotes", "projects"),
    *("customerpayments", "vendorpayments", "vendorcredits", "expenses", "recurringinvoices", "recurringexpenses"),
    *("items", "journals", "chartofaccounts", "bankaccounts", "bankaccounts/rules", "banktransactions"),
    *("basecurrencyadjustment", "users", "organizations", "contacts/contactpersons", "projects/timeentries"),
    *(f"settings/{s}" for s in ("preferences", "taxes", "taxgroups", "currencies", "units", "openingbalances")),
    *(f"settings/{s}" for s in ("autoreminders", "manualreminders")),
}
NOTES_NESTED = {
    ("contacts", "contactpersons"),
    ("contacts", "comments"),
    ("contacts", "refunds"),
    ("invoices", "comments"),
    ("invoices", "payments"),
    ("invoices", "creditsapplied"),
    ("estimates", "comments"),
    ("salesorders", "comments"),
    ("purchaseorders", "comments"),
    ("bills", "comments"),
    ("bills", "payments"),
    ("creditnotes", "comments"),
    ("creditnotes", "invoices"),
    ("creditnotes", "refunds"),
    ("creditnotes", "emailhistory"),
    ("projects", "tasks"),
    ("projects", "users"),
    ("projects", "comments"),
    ("projects", "invoices"),
}


def _suggestions(input_name: str) -> set[str]:
    prop = _schema("booksGetRecords")["properties"][input_name]
    return set(prop["x-suggestions"])


def _under() -> dict[str, set[str]]:
    by = _schema("booksGetRecords")["properties"]["recordType"]["x-suggestions-by"]
    assert by["input"] == "parentRecordType"
    return {parent: set(kinds) for parent, kinds in by["values"].items()}


def test_every_suggested_books_kind_is_a_path_books_serves() -> None:
    """Alone, recordType offers the kinds Books serves flat; with a parent, the kinds under that parent."""
    kinds, parents, under = _suggestions("recordType"), _suggestions("parentRecordType"), _under()
    assert kinds <= BOOKS_FLAT, kinds - BOOKS_FLAT
    assert parents == set(under) and parents <= set(BOOKS_CHILDREN), parents - set(BOOKS_CHILDREN)
    for parent in parents:
        assert under[parent] == BOOKS_CHILDREN[parent], parent


def test_every_kind_the_notes_name_is_suggested() -> None:
    kinds, parents, under = _suggestions("recordType"), _suggestions("parentRecordType"), _under()
    assert kinds >= NOTES_FLAT, NOTES_FLAT - kinds
    assert kinds >= BOOKS_FLAT, BOOKS_FLAT - kinds
    assert {p for p, _ in NOTES_NESTED} <= parents
    assert all(kind in under[parent] for parent, kind in NOTES_NESTED)


@pytest.mark.parametrize("verb", ["CreateRecord", "GetRecord", "GetRecords", "UpdateRecord", "RemoveRecord"])
def test_every_books_record_action_offers_the_same_kinds(verb: str) -> None:
    properties = _schema(f"books{verb}")["properties"]
    assert set(properties["recordType"]["x-suggestions"]) == _suggestions("recordType")
    assert (
        properties["recordType"]["x-suggestions-by"]
        == _schema("booksGetRecords")["properties"]["recordType"]["x-suggestions-by"]
    )
    assert set(properties["parentRecordType"]["x-suggestions"]) == _suggestions("parentRecordType")


def test_options_offer_the_kinds_under_the_parent_given(connector: Connector, connection: dict[str, Any]) -> None:
    """What a form shows: the flat kinds, then, once a parent is picked, only the kinds Books has under it."""
    flat = connector.options("booksGetRecords", "recordType", {}, connection=connection)
    assert {c["value"] for c in flat} == _suggestions("recordType") and "tasks" not in {c["value"] for c in flat}
    tasks = connector.options("booksGetRecords", "recordType", {"parentRecordType": "projects"}, connection=connection)
    assert {c["value"] for c in tasks} == BOOKS_CHILDREN["projects"]


@pytest.mark.parametrize(("parent", "kind"), sorted(NOTES_NESTED))
def test_a_kind_under_its_parent_is_sent_to_the_nested_path(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, parent: str, kind: str
) -> None:
    httpx_mock.add_response(json={"code": 0, kind: [], "page_context": {"has_more_page": False}})
    inputs = {"recordType": kind, "parentRecordType": parent, "parentRecordId": "460000000026049"}
    connector.run("booksGetRecords", inputs, connection=connection)
    [request] = httpx_mock.get_requests()
    assert request.url.path == f"/books/v3/{parent}/460000000026049/{kind}"


@pytest.mark.parametrize(
    "kind", ["settings/taxes", "settings/currencies", "bankaccounts/rules", "projects/timeentries"]
)
def test_a_two_segment_kind_is_sent_flat(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, kind: str
) -> None:
    httpx_mock.add_response(json={"code": 0, "page_context": {"has_more_page": False}})
    connector.run("booksGetRecords", {"recordType": kind}, connection=connection)
    assert httpx_mock.get_requests()[0].url.path == f"/books/v3/{kind}"
