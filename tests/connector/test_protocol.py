"""The engine protocol: the checked-in JSON Schemas match the models, and every real error fits the error schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connector.errors import (
    AuthenticationError,
    BadResponseError,
    ConnectionConfigError,
    ConnectorError,
    InputValidationError,
    ManifestError,
    NotFoundError,
    PaginationError,
    RateLimitedError,
    TransientError,
    Violation,
    WebhookRejected,
    ZohoAPIError,
)
from connector.protocol import ErrorResponse, InvokeRequest, Response, render, schemas

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "schemas" / "protocol"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((PROTOCOL / f"{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("name", ["request", "response", "error"])
def test_checked_in_schemas_match_the_models(name: str) -> None:
    checked_in = (PROTOCOL / f"{name}.json").read_text(encoding="utf-8")
    assert checked_in == render(schemas()[name]), (
        f"schemas/protocol/{name}.json is out of date with connector/protocol.py; "
        "regenerate it with `python -m connector.protocol --write`"
    )


def test_the_regeneration_command_writes_what_is_checked_in(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "connector.protocol", "--write", str(tmp_path)], check=True, cwd=ROOT)
    for name in ("request", "response", "error"):
        assert (tmp_path / f"{name}.json").read_bytes() == (PROTOCOL / f"{name}.json").read_bytes()


def _with_progress() -> ConnectorError:
    error = TransientError("Zoho answered HTTP 503", status=503)
    error.progress = {"delivered": 400, "resume": {"page_token": "abc"}}
    return error


EVERY_KIND: list[ConnectorError] = [
    ManifestError("actions/crm/get-record.yaml", "unknown key 'safty'"),
    InputValidationError("crmGetRecord", [Violation("recordId", "/recordId", "is required")]),
    ConnectionConfigError("unknown Zoho region 'mars'"),
    AuthenticationError("the refresh token was revoked: reconnect", reason="refresh_token_revoked"),
    RateLimitedError("Zoho throttled the call", retry_after=7.0, status=429),
    RateLimitedError("the daily allowance is spent"),
    TransientError("timed out"),
    TransientError("the connection dropped mid-write", retryable=False, may_have_acted=True),
    _with_progress(),
    BadResponseError("Zoho answered 200 with HTML", status=200),
    PaginationError("page token 'abc' came back twice", code="repeated_page"),
    ZohoAPIError(
        status=400,
        code="INVALID_DATA",
        message="invalid data",
        details={"api_name": "Email", "json_path": "$.data[0].Email"},
        request_id="r-1",
    ),
    ZohoAPIError(status=500, code=None, message=None, retryable=True, retry_after=2.0),
    NotFoundError(status=204, code=None, message=None),
    WebhookRejected("the callback's token or channel does not match the subscription", reason="forged"),
]


def _kinds(cls: type[ConnectorError]) -> set[str]:
    return {cls.kind} | {kind for sub in cls.__subclasses__() for kind in _kinds(sub)}


def test_the_examples_cover_every_error_kind() -> None:
    tree = {k for k in _kinds(ConnectorError) if k != "error"}  # the base's own kind is never raised
    assert tree == {error.kind for error in EVERY_KIND}


@pytest.mark.parametrize("error", EVERY_KIND, ids=lambda e: f"{e.kind}-{EVERY_KIND.index(e)}")
def test_every_real_error_fits_the_error_schema(error: ConnectorError) -> None:
    payload = {"ok": False, **error.to_dict()}
    assert list(validator("error").iter_errors(payload)) == []
    assert list(validator("response").iter_errors(payload)) == []
    assert ErrorResponse.model_validate(payload).error.type == error.kind


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"ok": False, "error": {"type": "oops", "message": "m"}}, "unknown type"),
        (
            {"ok": False, "error": {"type": "transient", "message": "m", "retry_after": None, "status": 503}},
            "no retryable",
        ),
        (
            {
                "ok": False,
                "error": {
                    "type": "rate_limited",
                    "message": "m",
                    "retryable": True,
                    "retry_after": 1,
                    "may_have_acted": False,
                    "status": 429,
                    "code": "TOO_MANY",
                },
            },
            "a field its kind does not have",
        ),
        ({"ok": True, "error": {}}, "ok with an error"),
    ],
)
def test_the_error_schema_refuses_what_the_runtime_never_sends(payload: dict[str, Any], why: str) -> None:
    assert list(validator("error").iter_errors(payload)), why


def test_success_responses_fit_the_response_schema() -> None:
    assert list(validator("response").iter_errors({"ok": True, "data": {"data": [{"id": "1"}]}})) == []
    assert list(validator("response").iter_errors({"ok": True})) != []  # data is always there
    assert Response.model_validate({"ok": True, "data": None}).root.ok is True


def test_the_request_schema() -> None:
    good = {"action": "crmGetRecord", "inputs": {"recordId": "1"}, "connection": {"access_token": "t"}}
    assert list(validator("request").iter_errors(good)) == []
    assert list(validator("request").iter_errors({**good, "engine": True, "inputs": None})) == []
    assert list(validator("request").iter_errors({**good, "connection": "eu"})) == []  # a name in the connections file
    for bad in ({**good, "engine": "yes"}, {**good, "connection": 3}, {**good, "input": {}}, {"action": "a"}):
        assert list(validator("request").iter_errors(bad)), bad
    assert InvokeRequest.model_validate(good).engine is False


_GOOD = {"action": "crmGetRecord", "inputs": {"recordId": "1"}, "connection": {"access_token": "t"}}


@pytest.mark.parametrize(
    "request_",
    [
        _GOOD,
        {**_GOOD, "engine": True, "inputs": None, "id": "r-1"},
        {**_GOOD, "connection": "eu", "id": 7},
        {"action": "a", "connection": ""},
        {**_GOOD, "engine": "yes"},
        {**_GOOD, "connection": 3},
        {**_GOOD, "input": {}},
        {**_GOOD, "action": ""},
        {**_GOOD, "id": True},
        {**_GOOD, "id": 1.0},
        {**_GOOD, "id": [1]},
        {**_GOOD, "inputs": [1]},
        {"action": "a"},
        [1, 2],
        None,
    ],
)
def test_the_cli_checks_a_request_against_the_published_schema_as_the_model_does(request_: Any) -> None:
    """`invoke` judges a request by schemas/protocol/request.json without pydantic when it is valid; what it
    accepts and refuses is exactly what the model (and so the published schema) accepts and refuses."""
    from pydantic import ValidationError

    from connector._dispatch import Request, parse_request

    try:
        model: InvokeRequest | None = InvokeRequest.model_validate(request_)
    except ValidationError:
        model = None
    if model is None:
        with pytest.raises(InputValidationError):
            parse_request(request_)
    else:
        assert list(validator("request").iter_errors(request_)) == []
        assert parse_request(request_) == Request(model.action, model.inputs, model.connection, model.engine, model.id)


def test_the_cli_reads_the_request_schema_that_is_checked_in() -> None:
    from connector._dispatch import request_schema

    assert request_schema() == schemas()["request"]


def test_the_readme_links_the_published_schemas_and_the_template_language() -> None:
    """Engines in other languages start from the README: its links reach the contract files, and none is dead."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", readme))
    for target in (
        "schemas/protocol/request.json",
        "schemas/protocol/response.json",
        "schemas/protocol/error.json",
        "schemas/meta",
        "docs/template-language.md",
        "tests/fixtures/templates",
    ):
        assert target in links, target
    assert [link for link in sorted(links) if not (ROOT / link.split("#")[0]).exists()] == []
