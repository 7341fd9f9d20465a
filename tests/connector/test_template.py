"""The request template language: the shared fixtures, the loader's checks, and the rules end to end."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError
from connector._template import (
    MISSING,
    FilePart,
    Rendered,
    TemplateError,
    evaluate,
    expand_path,
    expression_inputs,
    path_inputs,
    render,
)
from connector.manifest import bundled_manifest
from tests.conftest import BOOKS, CRM, ORG

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def _cases(kind: str = "template") -> list[Any]:
    """The fixture cases of one kind: `template` (a request) or `output` (result.output from an answer)."""
    cases = []
    for file in sorted(FIXTURES.glob("*.json")):
        for case in json.loads(file.read_text(encoding="utf-8"))["cases"]:
            if kind in case:
                cases.append(pytest.param(case, id=f"{file.stem}: {case['name']}"))
    return cases


def _as_fixture(rendered: Rendered) -> dict[str, Any]:
    """A rendered request in the fixtures' language-neutral form: empty parts are left out."""
    out: dict[str, Any] = {
        "method": rendered.method,
        "path": rendered.path,
        "query": [[k, v] for k, v in rendered.query],
    }
    if rendered.headers:
        out["headers"] = rendered.headers
    if rendered.json is not MISSING:
        out["body"] = rendered.json
    if rendered.content is not None:
        out["content"] = rendered.content.decode("utf-8")
    if rendered.form is not None:
        out["form"] = rendered.form
    if rendered.files is not None:
        out["files"] = [_file_part(f) for f in rendered.files]
    return out


def _file_part(part: FilePart) -> dict[str, Any]:
    assert isinstance(part.content, bytes)  # JSON inputs never stream from disk
    contents = {"text": part.content.decode()} if part.content_type == "text/plain" else {"base64": _b64(part.content)}
    return {"field": part.field, "filename": part.filename, "contentType": part.content_type} | contents


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_there_are_fixtures_for_every_construct() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in FIXTURES.glob("*.json"))
    constructs = ["{+", "[/", "$input", "$join", "$translate", "$merge", "$files", "$names", '"error"']
    constructs.append("json_form_field")
    for construct in constructs:
        assert construct in text, construct
    assert len(_cases()) >= 40 and len(_cases("output")) >= 8
    assert any("url" in c.values[0]["expect"] for c in _cases())


def test_the_spec_defines_every_construct() -> None:
    """docs/template-language.md is the language's definition: each construct the issue lists has its rule there."""
    spec = (FIXTURES.parents[2] / "docs" / "template-language.md").read_text(encoding="utf-8")
    for term in (
        "`{name}`",  # placeholders
        "**Reserved expansion**",
        "An optional part",
        "`{$input: name}`",
        "`$join`",
        "`{$merge: [e1, e2, …]}`",
        "`{$files: e, $names: n}`",
        "percent-encoded",  # encoding rules
        "### Values as text",
        "the dot-segment rule",
        "## Errors",
        "## Fixtures",
    ):
        assert term in spec, term


@pytest.mark.parametrize("case", _cases())
def test_fixture(case: dict[str, Any]) -> None:
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(TemplateError) as caught:
            render(case["template"], case["inputs"])
        assert caught.value.input == expect["error"]["input"], str(caught.value)
        assert expect["error"].get("contains", "") in caught.value.reason
        return
    rendered = render(case["template"], case["inputs"])
    assert _as_fixture(rendered) == {k: v for k, v in expect.items() if k != "url"}
    if "url" in expect:  # the query string as sent: encoding belongs to the HTTP client, so ask it
        sent = httpx.Request(rendered.method, f"https://api.example{rendered.path}", params=tuple(rendered.query))
        assert sent.url.raw_path.decode("ascii") == expect["url"]


@pytest.mark.parametrize("case", _cases("output"))
def test_output_fixture(case: dict[str, Any]) -> None:
    from connector import automations
    from connector._output import problems

    expect = case["expect"]
    if "invalid" in expect:
        assert any(expect["invalid"] in p for p in problems(case["output"]))
        return
    assert problems(case["output"]) == []
    if "error" in expect:
        with pytest.raises(automations.AutomationError, match=re.escape(expect["error"]["contains"])):
            automations.resolve(case["output"], {"answer": case["answer"]})
        return
    assert automations.resolve(case["output"], {"answer": case["answer"]}) == expect["value"]


# --- what the manifest loader relies on ---------------------------------------------------------------------------


def test_path_inputs_split_always_and_optional() -> None:
    assert path_inputs("[/{+p}/{pid}]/{+t}/{id}") == ({"t", "id"}, {"p", "pid"})


@pytest.mark.parametrize("template", ["[/{p}", "/{p}]", "[/[{p}]]", "/{p", "/{a-b}", "/{}"])
def test_malformed_path_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        path_inputs(template)


def test_expression_inputs_and_unknown_operators() -> None:
    assert expression_inputs({"data": [{"$merge": [{"$input": "a"}, {"$input": "b"}]}]}) == {"a", "b"}
    with pytest.raises(TemplateError, match=r"\$inptu"):
        expression_inputs({"$inptu": "a"})


@pytest.mark.parametrize(
    "expr",
    [
        {"$translate": {"a": "b"}},  # nothing to translate
        {"$input": "x", "$translate": {}},
        {"$input": "x", "$translate": ["a", "b"]},
        {"$input": "x", "$translate": {"a": {"nested": 1}}},
        {"$input": "x", "$translate": {"a": ["b"]}},
    ],
)
def test_a_malformed_translate_makes_the_action_file_invalid(expr: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"\$translate"):
        expression_inputs({"sort_order": expr})


def test_translate_names_only_its_input() -> None:
    table = {"ascending": "A", "$input": "not an input"}  # the table's keys are values, never operators
    assert expression_inputs({"$input": "sortOrder", "$translate": table}) == {"sortOrder"}


def test_evaluate_on_its_own() -> None:
    inputs = {"kv": [{"key": "x", "value": 1}], "obj": {"y": 2, "x": 3}}
    assert evaluate({"$input": "absent"}, inputs) is MISSING
    assert evaluate({"$merge": [{"$input": "obj"}, {"$input": "kv"}]}, inputs) == {"y": 2, "x": 1}
    files = evaluate({"$files": {"$input": "kv"}, "$names": {"z": "ignored"}}, inputs)
    assert files == {"x": {"content": 1, "filename": "x"}}


def test_error_text_names_the_input_but_not_a_header_value() -> None:
    secret = "Bearer s3cr3t\r\nX-Injected: 1"
    with pytest.raises(TemplateError) as caught:
        render({"method": "GET", "path": "/x", "headers": {"Authorization": {"$input": "auth"}}}, {"auth": secret})
    assert caught.value.input == "auth" and "s3cr3t" not in str(caught.value)


# --- end to end: the runner refuses before anything is sent -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "inputs", "bad"),
    [
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": "."}, "recordId"),
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": ".."}, "recordId"),
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": "%2E%2e"}, "recordId"),
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": "1\r\n"}, "recordId"),
        (
            "booksRemoveRecord",
            {"recordType": "contactpersons", "recordId": "..", "parentRecordType": "contacts", "parentRecordId": "123"},
            "recordId",
        ),
        (
            "booksRemoveRecord",
            {"recordType": "invoices", "recordId": "9", "parentRecordType": "contacts", "parentRecordId": "."},
            "parentRecordId",
        ),
        ("booksRemoveRecord", {"recordType": "invoices", "recordId": "%2e"}, "recordId"),
        # Unicode look-alikes a normalizing proxy or server folds to dots (NFKC), and overlong UTF-8
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": "\uff0e"}, "recordId"),
        ("crmUpdateRecord", {"recordType": "Leads", "recordId": "\u2025", "fieldValues": {"A": 1}}, "recordId"),
        (
            "crmAddAttachment",
            {"recordType": "Leads", "recordId": "\u2024", "file": {"base64": "eA=="}, "fileName": "a.txt"},
            "recordId",
        ),
        (
            "booksRemoveRecord",
            {
                "recordType": "contactpersons",
                "recordId": "\uff0e\uff0e",
                "parentRecordType": "contacts",
                "parentRecordId": "1",
            },
            "recordId",
        ),
        ("crmRemoveRecord", {"recordType": "Leads", "recordId": "%c0%ae%c0%ae"}, "recordId"),
        ("crmRawRequest", {"url": "/Leads/1/%2e%2e", "method": "DELETE"}, "url"),
        ("crmRawRequest", {"url": "//evil.example/crm/v8/Leads"}, "url"),
    ],
)
def test_a_removal_never_reaches_another_endpoint(
    key: str, inputs: dict[str, str], bad: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run(key, inputs, connection=connection)
    assert [v.input for v in caught.value.violations] == [bad]
    assert httpx_mock.get_requests() == []


def test_a_good_removal_builds_the_exact_request(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    """The control for the test above: the same actions with good ids go where they should."""
    httpx_mock.add_response(method="DELETE", url=f"{CRM}/Leads/...", json={"data": []})
    httpx_mock.add_response(
        method="DELETE", url=f"{BOOKS}/contacts/123/contactpersons/7?organization_id={ORG}", json={"code": 0}
    )
    connector.run("crmRemoveRecord", {"recordType": "Leads", "recordId": "..."}, connection=connection)
    books = {"recordType": "contactpersons", "recordId": "7", "parentRecordType": "contacts", "parentRecordId": "123"}
    connector.run("booksRemoveRecord", books, connection=connection)
    assert [r.url.raw_path for r in httpx_mock.get_requests()] == [
        b"/crm/v8/Leads/...",
        f"/books/v3/contacts/123/contactpersons/7?organization_id={ORG}".encode(),
    ]


@pytest.mark.parametrize("value", ["abc\r\nX-Injected: 1", "abc\n", "Müller", "名前"])
def test_a_bad_header_value_is_an_input_error_not_a_crash_or_a_retry(
    value: str, connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    inputs = {"url": "/Leads", "headers": [{"key": "X-Trace", "value": value}], "maxRetries": 3}
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmRawRequest", inputs, connection=connection)
    assert [v.input for v in caught.value.violations] == ["headers"]
    assert value not in str(caught.value)
    assert httpx_mock.get_requests() == []


def test_bad_file_contents_name_their_input(connector: Connector, connection: dict[str, Any]) -> None:
    inputs = {"url": "/files", "method": "POST", "fileData": [{"key": "f", "value": {"base64": "%%%"}}]}
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmRawRequest", inputs, connection=connection)
    assert [v.input for v in caught.value.violations] == ["fileData"]


# --- every action, present and future: derived from the manifest ---------------------------------------------------

DOT_SEGMENTS = [".", "..", "%2e", "%2E%2e", "%252e%252e", "%c0%ae%c0%ae", "\uff0e\uff0e", "\u2025", ".\u200b"]


def _path_inputs_of_every_action() -> list[tuple[str, str]]:
    found = []
    for key, action in sorted(bundled_manifest().actions.items()):
        always, optional = path_inputs(action.request["path"])
        found += [(key, name) for name in sorted(always | optional)]
    return found


@pytest.mark.parametrize(("key", "name"), _path_inputs_of_every_action())
def test_no_path_input_of_any_action_can_be_a_dot_segment(key: str, name: str) -> None:
    """Issue 8.1 for every action the manifest lists, now and later: each path input, given a dot segment in any
    encoding, is refused by the template language itself, naming that input; the same path with plain values
    expands (so the refusal is the dots', not the test's)."""
    template = bundled_manifest().actions[key].request["path"]
    always, optional = path_inputs(template)

    def value(input_name: str, text: str) -> str:
        return f"/{text}" if template.startswith(f"{{+{input_name}}}") else text  # a leading {+url} starts with /

    plain = {n: value(n, "x1") for n in always | optional}
    assert expand_path(template, plain).startswith("/")
    for dots in DOT_SEGMENTS:
        with pytest.raises(TemplateError) as caught:
            expand_path(template, {**plain, name: value(name, dots)})
        assert caught.value.input == name, (dots, str(caught.value))
