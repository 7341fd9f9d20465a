"""Product behaviour lives in strategies chosen by the manifest: the runtime names no product, and a made-up
product with its own envelope, header organization id and header pagination runs with one registration."""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, ZohoAPIError
from connector.errors import ManifestError
from connector.strategies import ENVELOPES, register
from connector.strategies.envelopes import ErrorFields, Verdict
from tests.conftest import ACCESS_TOKEN, BOOKS, CRM, ORG

RUNTIME = Path(__file__).resolve().parents[2] / "connector"
# Where product knowledge belongs, and why. Everything else under connector/ is the generic runtime.
PRODUCT_HOMES = {
    "strategies": "product behaviour, registered under the names the manifest uses",
    "sandbox": "the local emulator of Zoho's APIs: it plays the products, so it names them",
}
# Product names, matched as words (crm_base, crmGetRecord and CRM all name CRM; a token store is no Partner Store).
PRODUCT_NAMES = {"crm", "books", "finance", "inventory", "billing", "expense", "invoice", "partner", "coql"}
WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# Keys, headers, schemes and hosts of Zoho's answers and requests, found anywhere in a name or a string.
PRODUCT_KEYS = re.compile(
    r"page_token|per_page|has_more_page|page_context|more_records|is_default_org|\"organizations\"|www\."
    r"|zohoapis|accounts\.zoho|store\.zoho|x-zoho|JSONString|zoho-oauthtoken|x-com-zoho|api-credits"
    r"|\bzoho(?:cloud)?\.(?:com\.au|com\.cn|com|eu|in|jp|sa|ca|uk)\b",
    re.IGNORECASE,
)
# Members of Zoho's answers and plans that are ordinary words: a string literal that is exactly one of them is the
# runtime reading (or writing) Zoho's shape. CRM's lists put their paging under "info"; CRM's editions set the
# concurrency cap. (`organization_id` is not here: it is the connector's own x-role and connection field.)
PRODUCT_MEMBERS = {
    "info",
    "free",
    "standard",
    "professional",
    "enterprise",
    "ultimate",
}
# Text for people, never compared by code: argparse help and descriptions, JSON Schema descriptions and examples.
# A string passed as one of these keywords may name a product (`examples=["crmGetRecord"]`); nothing else may.
DOC_KEYWORDS = {"help", "description", "examples"}


def _code_strings_and_names(source: str) -> list[tuple[int, str]]:
    """The code's tokens (line, text) without comments, docstrings (any bare string statement: module, class,
    function and attribute docstrings) and the values of DOC_KEYWORDS arguments."""
    docs: set[tuple[int, int]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docs.add((node.value.lineno, node.value.col_offset))
        if isinstance(node, ast.keyword) and node.arg in DOC_KEYWORDS:
            for part in ast.walk(node.value):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    docs.add((part.lineno, part.col_offset))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        (t.start[0], t.string)
        for t in tokens
        if t.type != tokenize.COMMENT and not (t.type == tokenize.STRING and t.start in docs)
    ]


def _product_words(text: str) -> list[str]:
    named = [w for w in WORDS.findall(text) if w.lower() in PRODUCT_NAMES]
    members = [_literal(text)] if _literal(text) in PRODUCT_MEMBERS else []
    return named + [m.group(0) for m in PRODUCT_KEYS.finditer(text)] + members


def _literal(token: str) -> str | None:
    """The value of a plain string literal token (no f-string), else None."""
    if not re.match(r"^[rRbBuU]*['\"]", token):
        return None
    try:
        value = ast.literal_eval(token)
    except (SyntaxError, ValueError):
        return None
    return value if isinstance(value, str) else None


# A word that is one of PRODUCT_MEMBERS by coincidence, where it means something else: (file, word) → why.
NOT_PRODUCT_MEMBERS = {("serve.py", "info"): "uvicorn's log level"}


def test_the_generic_runtime_names_no_product() -> None:
    offenders = []
    for path in sorted(RUNTIME.rglob("*.py")):
        relative = path.relative_to(RUNTIME)
        if relative.parts[0] in PRODUCT_HOMES:
            continue
        for line, text in _code_strings_and_names(path.read_text(encoding="utf-8")):
            words = [w for w in _product_words(text) if (relative.as_posix(), w) not in NOT_PRODUCT_MEMBERS]
            offenders += [f"{relative}:{line}: {word}" for word in words]
    assert offenders == []


def test_the_scan_covers_every_package_of_the_runtime() -> None:
    """auth/, auth/stores/, engines/ and the command line are runtime too: the scan reads them."""
    scanned = {p.relative_to(RUNTIME).parent.as_posix() for p in RUNTIME.rglob("*.py")}
    assert {".", "auth", "auth/stores", "engines"} <= scanned
    assert {p.name for p in RUNTIME.glob("*cli*.py")} >= {"cli.py", "poll_cli.py", "webhook_cli.py"}


def test_the_product_name_scan_sees_what_it_must() -> None:
    source = (
        '"""CRM and Books, in a docstring."""\n'
        "crm_base = 1  # Books, in a comment\n"
        'x = call("crmGetRecord", help="Zoho CRM")\n'
        'h = "x-zoho-request-id"\n'
        'f = {"JSONString": 1}\n'
        'class A:\n    b: int\n    """Finance, in an attribute docstring."""\n'
    )
    found = [(line, word) for line, text in _code_strings_and_names(source) for word in _product_words(text)]
    assert found == [(2, "crm"), (3, "crm"), (4, "x-zoho"), (5, "JSONString")]
    assert _product_words("partner_store token_store accounts.zoho.com") == ["partner", "accounts.zoho"]
    assert _product_words('r"(Zoho-oauthtoken|Bearer)"') == ["Zoho-oauthtoken"]
    assert _product_words('"X-com-zoho-invoice-organizationid"') == ["invoice", "X-com-zoho"]
    assert _product_words('("x-api-credits-remaining",)') == ["api-credits"]
    assert _product_words('"https://accounts.zoho.eu"') == ["accounts.zoho"]
    assert _product_words('"https://zoho.com.au/x"') == ["zoho.com.au"] and _product_words('"zohocloud.ca"')
    assert _product_words('"info"') == ["info"] and _product_words('"enterprise"') == ["enterprise"]
    assert _product_words("log.info") == [] and _product_words('f"info"') == []  # a name; an f-string is text
    assert _product_words('"zoho.run_action"') == [] and _product_words('"zoho-connector"') == []
    assert set(PRODUCT_HOMES) <= {p.name for p in RUNTIME.iterdir() if p.is_dir()}


@pytest.mark.parametrize(
    ("environment", "host"), [("production", "www"), ("sandbox", "sandbox"), ("developer", "developer")]
)
def test_the_environment_moves_crm_calls_only(
    connector: Connector, httpx_mock: HTTPXMock, environment: str, host: str
) -> None:
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_id": ORG, "environment": environment}
    httpx_mock.add_response(url=f"https://{host}.zohoapis.eu/crm/v8/Leads/1", json={"data": [{"id": "1"}]})
    httpx_mock.add_response(url=f"{BOOKS}/invoices/2?organization_id={ORG}", json={"code": 0, "invoice": {}})
    connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)
    connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "2"}, connection=connection)


# --- organization ids -------------------------------------------------------------------------------------------


def test_a_callers_organization_id_wins(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{BOOKS}/invoices?organization_id=777", json={"code": 0, "invoices": []})
    connector.run(
        "booksRawRequest",
        {"url": "/invoices", "method": "GET", "queryParams": {"organization_id": "777"}},
        connection=connection,
    )
    request = httpx_mock.get_requests()[0]
    assert request.url.params.get_list("organization_id") == ["777"]


def test_organization_precedence_input_then_connection_map_then_connection(
    connector: Connector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"code": 0, "invoice": {}}, is_reusable=True)
    connection = {
        "region": "eu",
        "access_token": ACCESS_TOKEN,
        "organization_id": "1",
        "organization_ids": {"books": "2"},
    }
    get = {"recordType": "invoices", "recordId": "9"}
    connector.run("booksGetRecord", {**get, "organizationId": "3"}, connection=connection)
    connector.run("booksGetRecord", get, connection=connection)
    connector.run("booksGetRecord", get, connection={**connection, "organization_ids": {}})
    sent = [r.url.params["organization_id"] for r in httpx_mock.get_requests()]
    assert sent == ["3", "2", "1"]


def test_the_default_organization_is_discovered_once(connector: Connector, httpx_mock: HTTPXMock) -> None:
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    httpx_mock.add_response(
        url=f"{BOOKS}/organizations",
        json={"code": 0, "organizations": [{"organization_id": "5"}, {"organization_id": "6", "is_default_org": True}]},
    )
    httpx_mock.add_response(
        url=f"{BOOKS}/invoices/1?organization_id=6", json={"code": 0, "invoice": {}}, is_reusable=True
    )
    for _ in range(3):
        connector.run("booksGetRecord", {"recordType": "invoices", "recordId": "1"}, connection=connection)
    assert len(httpx_mock.get_requests()) == 4


def test_books_and_inventory_on_one_connection_keep_their_own_organization_ids(
    connector: Connector, httpx_mock: HTTPXMock
) -> None:
    """One organization id per product per account: each product discovers its own, once, and keeps it."""
    inventory = "https://www.zohoapis.eu/inventory/v1"
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    for base, org in ((BOOKS, "5"), (inventory, "8")):
        listing = {"code": 0, "organizations": [{"organization_id": org, "is_default_org": True}]}
        httpx_mock.add_response(url=f"{base}/organizations", json=listing)
        httpx_mock.add_response(
            url=f"{base}/items/1?organization_id={org}", json={"code": 0, "item": {}}, is_reusable=True
        )
    get = {"recordType": "items", "recordId": "1"}
    for _ in range(2):
        connector.run("booksGetRecord", get, connection=connection)
        connector.run("inventoryGetRecord", get, connection=connection)
    sent = [(r.url.path.split("/")[1], r.url.params.get("organization_id")) for r in httpx_mock.get_requests()]
    assert sent == [
        ("books", None),
        ("books", "5"),
        ("inventory", None),
        ("inventory", "8"),
        ("books", "5"),
        ("inventory", "8"),
    ]
    explicit = {**connection, "organization_ids": {"books": "5", "inventory": "8"}, "access_token": "other"}
    connector.run("inventoryGetRecord", get, connection=explicit)  # explicit ids: nothing to discover
    assert httpx_mock.get_requests()[-1].url.params["organization_id"] == "8"


@pytest.mark.parametrize("organizations", ["abc", [1], [{"name": "no id"}]])
def test_a_malformed_organizations_answer_is_a_typed_error(
    connector: Connector, httpx_mock: HTTPXMock, organizations: Any
) -> None:
    httpx_mock.add_response(url=f"{BOOKS}/organizations", json={"code": 0, "organizations": organizations})
    from connector.errors import BadResponseError

    with pytest.raises(BadResponseError, match="organizations"):
        connector.run(
            "booksGetRecord",
            {"recordType": "invoices", "recordId": "1"},
            connection={"region": "eu", "access_token": ACCESS_TOKEN},
        )


# --- a made-up product ------------------------------------------------------------------------------------------

WIDGETS_PRODUCT = """\
  widgets:
    label: Widget Store
    base_path: /widgets/v1
    envelope: widget
    organization:
      convention: header
      name: X-Widget-Org
      discover: {path: /orgs, list: orgs, id: key, default: primary}
"""

LIST_WIDGETS = """\
key: widgetsList
label: Widgets - List
description: Every widget
product: widgets
connection: zohoOAuth
inputs: schemas/actions/widgets/list.json
safety: read
request:
  method: GET
  path: /widgets
  query:
    page: {$input: page}
    per_page: {$input: per_page}
pagination:
  pager: header
example_output:
  data: [{sku: A1}]
"""

LIST_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page": {"$ref": "../../common.json#/$defs/page"},
        "per_page": {"$ref": "../../common.json#/$defs/perPage", "default": 2},
        "fetchAll": {"$ref": "../../common.json#/$defs/fetchAll"},
    },
}


class WidgetEnvelope:
    """Answers are bare arrays; an error is {"fault": {"reason": …}} with any status."""

    def classify(self, status: int, body: Any) -> Verdict | None:
        return "error" if isinstance(body, dict) and "fault" in body else None

    def error(self, body: Any) -> ErrorFields:
        fault = body.get("fault") if isinstance(body, dict) else None
        return ErrorFields("FAULT", str(fault["reason"])) if isinstance(fault, dict) else ErrorFields()


@pytest.fixture
def widgets(tree: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(ENVELOPES, "widget", WidgetEnvelope())
    manifest = (tree / "manifest.yaml").read_text()
    manifest = manifest.replace("products:\n", "products:\n" + WIDGETS_PRODUCT, 1)
    (tree / "manifest.yaml").write_text(
        manifest.replace("\nactions:\n", "\nactions:\n  - actions/widgets/list.yaml\n", 1)
    )
    (tree / "actions/widgets").mkdir()
    (tree / "actions/widgets/list.yaml").write_text(LIST_WIDGETS)
    (tree / "schemas/actions/widgets").mkdir()
    (tree / "schemas/actions/widgets/list.json").write_text(json.dumps(LIST_SCHEMA))
    return tree


def test_a_made_up_product_runs_end_to_end(widgets: Path, httpx_mock: HTTPXMock) -> None:
    base = "https://www.zohoapis.eu/widgets/v1"
    httpx_mock.add_response(url=f"{base}/orgs", json={"orgs": [{"key": "o1"}, {"key": "o2", "primary": True}]})
    httpx_mock.add_response(url=f"{base}/widgets?page=1&per_page=2", json=[{"sku": "A"}, {"sku": "B"}])
    httpx_mock.add_response(
        url=f"{base}/widgets?page=2&per_page=2", json=[{"sku": "C"}, {"sku": "D"}], headers={"X-Total-Pages": "3"}
    )
    httpx_mock.add_response(url=f"{base}/widgets?page=3&per_page=2", json=[{"sku": "E"}])
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}
    with Connector.load(widgets) as connector:
        result = connector.run("widgetsList", {"fetchAll": True}, connection=connection)
    assert result == {"data": [{"sku": s} for s in "ABCDE"]}
    assert {r.headers.get("X-Widget-Org") for r in httpx_mock.get_requests()[1:]} == {"o2"}


def test_a_made_up_products_errors_come_from_its_envelope(widgets: Path, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"fault": {"reason": "no widgets today"}})
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_ids": {"widgets": "o9"}}
    with Connector.load(widgets) as connector, pytest.raises(ZohoAPIError, match="no widgets today") as caught:
        connector.run("widgetsList", {}, connection=connection)
    assert caught.value.code == "FAULT"
    assert httpx_mock.get_requests()[0].headers["X-Widget-Org"] == "o9"


def test_a_made_up_products_request_id_and_details_come_from_its_envelope(
    widgets: Path, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Zoho's header and Zoho's `details` member mean nothing to this product: only what its envelope names is read.
    body = {"fault": {"reason": "no"}, "details": {"zoho": "shaped"}}
    httpx_mock.add_response(json=body, headers={"X-Zoho-Request-Id": "z-1"})
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_ids": {"widgets": "o9"}}
    with Connector.load(widgets) as connector, pytest.raises(ZohoAPIError) as caught:
        connector.run("widgetsList", {}, connection=connection)
    assert caught.value.request_id is None and caught.value.details is None
    monkeypatch.setattr(WidgetEnvelope, "request_id_headers", ("x-widget-trace",), raising=False)
    httpx_mock.add_response(json=body, headers={"X-Zoho-Request-Id": "z-1", "X-Widget-Trace": "w-1"})
    with Connector.load(widgets) as connector, pytest.raises(ZohoAPIError) as caught:
        connector.run("widgetsList", {}, connection=connection)
    assert caught.value.request_id == "w-1"


EXPORT_WIDGETS = """\
key: widgetsExport
label: Widgets - Export
description: Every widget, through an export job
product: widgets
connection: zohoOAuth
inputs: schemas/actions/widgets/export.json
safety: read
request:
  method: POST
  path: /exports
job:
  id: export.key
  status: /exports/{id}
  state: state
  done: [ready]
  failed: [broken]
  result: /exports/{id}/file
  format: zip_csv
  records: widgets
  summary: export
example_output:
  data: {widgets: [{sku: A1}], export: {count: 1, jobs: [J1]}}
"""


def _zipped_csv(text: str) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("widgets.csv", text)
    return buffer.getvalue()


def test_a_made_up_products_export_job_answers_in_the_members_its_action_names(
    widgets: Path, httpx_mock: HTTPXMock
) -> None:
    """The job runtime names no member of an answer: the rows and the walk's summary go where the action says."""
    (widgets / "actions/widgets/export.yaml").write_text(EXPORT_WIDGETS)
    (widgets / "schemas/actions/widgets/export.json").write_text(json.dumps({"type": "object", "properties": {}}))
    manifest = (widgets / "manifest.yaml").read_text()
    (widgets / "manifest.yaml").write_text(
        manifest.replace("\nactions:\n", "\nactions:\n  - actions/widgets/export.yaml\n", 1)
    )
    base = "https://www.zohoapis.eu/widgets/v1"
    httpx_mock.add_response(method="POST", url=f"{base}/exports", json={"export": {"key": "J1"}})
    httpx_mock.add_response(url=f"{base}/exports/J1", json={"state": "ready"})
    httpx_mock.add_response(url=f"{base}/exports/J1/file", content=_zipped_csv("sku\nA\nB\n"))
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_ids": {"widgets": "o9"}}
    with Connector.load(widgets) as connector:
        result = connector.run("widgetsExport", {}, connection=connection)
    assert result == {"data": {"widgets": [{"sku": "A"}, {"sku": "B"}], "export": {"count": 2, "jobs": ["J1"]}}}


def test_the_allowance_headers_a_product_reads_are_its_envelopes(
    widgets: Path, connector: Connector, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zoho's API-credits header is read for Zoho's products (their envelopes name it), not for every product."""
    from connector.errors import RateLimitedError

    spent = {"X-API-Credits-Remaining": "0"}
    connection = {"region": "eu", "access_token": ACCESS_TOKEN, "organization_ids": {"widgets": "o9"}}
    httpx_mock.add_response(url=f"{CRM}/Leads/1", json={"data": [{"id": "1"}]}, headers=spent)
    connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)
    with pytest.raises(RateLimitedError, match="0 calls left"):
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)

    httpx_mock.add_response(json=[{"sku": "A"}], headers=spent, is_reusable=True)
    with Connector.load(widgets) as widget_connector:
        for _ in range(2):  # the header means nothing to this product
            widget_connector.run("widgetsList", {}, connection=connection)
    monkeypatch.setattr(WidgetEnvelope, "remaining_headers", ("x-api-credits-remaining",), raising=False)
    with Connector.load(widgets) as widget_connector:
        widget_connector.run("widgetsList", {}, connection=connection)
        with pytest.raises(RateLimitedError):
            widget_connector.run("widgetsList", {}, connection=connection)


def test_an_unregistered_strategy_fails_at_load(tree: Path) -> None:
    manifest = (tree / "manifest.yaml").read_text().replace("envelope: finance", "envelope: financial")
    (tree / "manifest.yaml").write_text(manifest)
    with pytest.raises(ManifestError, match="unknown envelope 'financial'; registered: bare, crm, finance"):
        Connector.load(tree)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "host: crm_environment  #",
            "host: crm_env  #",
            "unknown host 'crm_env'; registered: api, crm_environment, store",
        ),
        (
            "convention: query_and_header",
            "convention: both",
            "unknown organization 'both'; registered: header, none, query, query_and_header",
        ),
    ],
    ids=["host", "organization-convention"],
)
def test_an_unregistered_host_or_convention_fails_at_load(tree: Path, old: str, new: str, problem: str) -> None:
    manifest = (tree / "manifest.yaml").read_text()
    assert old in manifest
    (tree / "manifest.yaml").write_text(manifest.replace(old, new, 1))
    with pytest.raises(ManifestError, match=re.escape(problem)):
        Connector.load(tree)


def test_strategy_names_are_enums_of_the_registered_strategies() -> None:
    """The models type every strategy name as an enum of the registered names: the published meta-schemas list the
    built-in ones for engines in other languages, and a product that registers its own extends the enum."""
    from pydantic import ValidationError

    from connector.models import meta_schemas, validator
    from connector.strategies import BUILT_IN, registry

    schemas = meta_schemas()
    defs = schemas["manifest"]["$defs"]
    assert defs["ProductFile"]["properties"]["envelope"]["enum"] == BUILT_IN["envelope"]
    assert defs["ProductFile"]["properties"]["host"]["enum"] == BUILT_IN["host"]
    assert defs["Organization"]["properties"]["convention"]["enum"] == BUILT_IN["organization"]
    assert schemas["action"]["$defs"]["Pagination"]["properties"]["pager"]["enum"] == BUILT_IN["pager"]
    assert schemas["trigger"]["$defs"]["Webhook"]["properties"]["channel"]["enum"] == BUILT_IN["channel"]
    assert schemas["options"]["properties"]["schema"]["enum"] == BUILT_IN["field_schema"]
    assert {"crm", "finance", "bare"} <= set(BUILT_IN["envelope"]) and registry() == BUILT_IN

    product = {"label": "Widgets", "base_path": "/w", "envelope": "widget"}
    manifest: dict[str, Any] = {"key": "w", "label": "W", "description": "W", "version": "1.0.0"}
    manifest |= {"connections": ["c.yaml"], "products": {"widgets": product}, "actions": []}
    with pytest.raises(ValidationError, match="Input should be 'bare', 'crm' or 'finance'"):
        validator("manifest").validate_python(manifest)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ENVELOPES, "widget", WidgetEnvelope())
        validator("manifest").validate_python(manifest)
        assert validator("manifest").json_schema()["$defs"]["ProductFile"]["properties"]["envelope"]["enum"] == [
            "bare",
            "crm",
            "finance",
            "widget",
        ]
    with pytest.raises(ValidationError):  # unregistered again: refused again
        validator("manifest").validate_python(manifest)


def test_a_strategy_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(ENVELOPES, "crm", ENVELOPES["crm"])


# --- the Finance apps' organization conventions and older bases ---------------------------------------------------

API = "https://www.zohoapis.eu"


def test_expense_sends_the_organization_in_both_places(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"code": 0, "trip": {}})
    connector.run("expenseGetRecord", {"recordType": "trips", "recordId": "1"}, connection=connection)
    request = httpx_mock.get_requests()[0]
    assert str(request.url) == f"{API}/expense/v1/trips/1?organization_id={ORG}"
    assert request.headers["X-com-zoho-expense-organizationid"] == ORG


def test_a_callers_own_expense_header_fills_the_query_too_and_nothing_is_looked_up(
    connector: Connector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"code": 0, "trips": []})
    connection = {"region": "eu", "access_token": ACCESS_TOKEN}  # no organization: a lookup would be needed
    headers = {"x-com-zoho-expense-organizationid": "77"}
    connector.run("expenseRawRequest", {"url": "/trips", "headers": headers}, connection=connection)
    [request] = httpx_mock.get_requests()
    assert request.url.params.get_list("organization_id") == ["77"]
    assert request.headers.get_list("X-com-zoho-expense-organizationid") == ["77"]


@pytest.mark.parametrize(
    ("product", "header"),
    [("invoice", "X-com-zoho-invoice-organizationid"), ("billing", "X-com-zoho-subscriptions-organizationid")],
)
def test_header_apps_send_the_organization_as_a_header_only(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, product: str, header: str
) -> None:
    httpx_mock.add_response(json={"code": 0, "contact": {}})
    connector.run(f"{product}GetRecord", {"recordType": "contacts", "recordId": "1"}, connection=connection)
    request = httpx_mock.get_requests()[0]
    assert "organization_id" not in request.url.params and request.headers[header] == ORG


def test_billing_raw_requests_on_the_old_base_are_sent_as_written(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"code": 0, "customers": []}, is_reusable=True)
    connector.run("billingRawRequest", {"url": "/subscriptions/v1/customers"}, connection=connection)
    connector.run("billingRawRequest", {"url": "/customers"}, connection=connection)
    connector.run("billingRawRequest", {"url": "/subscriptions/1"}, connection=connection)  # a resource, not a base
    sent = [r.url.path for r in httpx_mock.get_requests()]
    assert sent == ["/subscriptions/v1/customers", "/billing/v1/customers", "/billing/v1/subscriptions/1"]


def test_crm_errors_are_read_per_record_and_per_notification_channel() -> None:
    crm = ENVELOPES["crm"]
    row = {"code": "NOT_SUBSCRIBED", "details": {"channel_id": "7"}, "message": "not subscribed", "status": "error"}
    assert crm.error({"watch": [row]}) == ("NOT_SUBSCRIBED", "not subscribed", {"channel_id": "7"})
    assert crm.error({"data": [row]}).code == "NOT_SUBSCRIBED"
    assert crm.error({"code": "INVALID_DATA", "message": "invalid data", "watch": [row]}).code == "INVALID_DATA"
    assert crm.error({"watch": [{"channel_id": "7"}]}).code is None
