"""The engine protocol of `zoho-connector invoke`, as pydantic models: the published contract with engines.

    request   {"action", "inputs", "connection", "engine"?, "id"?}        on stdin
    response  {"ok": true, "data": …} | {"ok": false, "error": {…}}       on stdout (with the request's "id")

`invoke --lines` reads one request per line and answers in the order calls complete: the "id" a request carries
comes back on its response. `serve` takes the same request over HTTP (the action in the URL).

The JSON Schemas in `schemas/protocol/` are generated from these models and checked in, so engines in any language
can validate against them; a test fails when they drift. Regenerate them with

    python -m connector.protocol --write

The error models mirror `ConnectorError.to_dict()` kind by kind (`type` tells which). Importing this module imports
pydantic, which costs a cold start: `invoke`, `invoke --lines` and `serve` check a request against the checked-in
request.json first (`connector._dispatch.parse_request`) and import this module only for a request that schema may
refuse, to word its violations; `run` and `import connector` never do.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from connector.errors import InputValidationError, Violation

__all__ = [
    "ErrorPayload",
    "ErrorResponse",
    "InvokeRequest",
    "Response",
    "SuccessResponse",
    "parse_request",
    "schemas",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Strict(BaseModel):
    # Strict: the schema says boolean, so "true" is not one; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)


# --- request ---------------------------------------------------------------------------------------------------


RequestId = Annotated[
    str | int,
    Field(
        description="Chosen by the caller and returned on the response, so that answers given out of order "
        "(`invoke --lines`) find their request."
    ),
]


class InvokeRequest(_Strict):
    """One action to run."""

    model_config = ConfigDict(title="Invoke request")

    action: str = Field(min_length=1, description="The action's key, e.g. crmGetRecord (`zoho-connector actions`).")
    inputs: dict[str, Any] | None = Field(
        default=None, description="The action's inputs, as its input schema describes them; null means none."
    )
    connection: dict[str, Any] | str = Field(
        description="The connection, as schemas/connections/zoho-oauth.json describes it (region, client, tokens), "
        "or its name in the worker's connections file ($ZOHO_CONNECTIONS), so that no secret travels in a request."
    )
    engine: bool = Field(
        default=False,
        description="No local retries: a retryable failure is reported at once, with retry_after, for the engine "
        "to retry.",
    )
    id: RequestId | None = None


# --- errors ----------------------------------------------------------------------------------------------------


class Progress(_Strict):
    """How far a failed Fetch All got, and the query parameters that resume it."""

    delivered: int = Field(ge=0)
    resume: dict[str, Any]


class _Error(_Strict):
    message: str
    retryable: bool = Field(description="The same call may succeed later; the engine may retry it.")
    retry_after: float | None = Field(description="Seconds to wait before retrying, when known.")
    may_have_acted: bool = Field(description="The request may have changed something in Zoho before it failed.")
    progress: Progress | None = Field(default=None, description="Fetch All only: records delivered, and how to resume.")


class ViolationModel(_Strict):
    model_config = ConfigDict(title="Violation")

    input: str = Field(description='The input\'s name, or "(inputs)", "(action)", "(connection)", "(request)".')
    pointer: str = Field(description="JSON pointer to the offending value; empty for the whole value.")
    message: str


class InvalidInput(_Error):
    """The request, the inputs or the connection do not match their schema; nothing was sent to Zoho."""

    type: Literal["invalid_input"]
    subject: str
    violations: list[ViolationModel]


class ManifestProblem(_Error):
    """A data file of the connector is broken."""

    type: Literal["manifest_error"]
    file: str
    problem: str


class ConnectionProblem(_Error):
    """The connection cannot be used as configured."""

    type: Literal["connection_error"]


class AuthenticationFailed(_Error):
    """Zoho Accounts refused a token request or a token."""

    type: Literal["authentication_error"]
    reason: str


class RateLimited(_Error):
    type: Literal["rate_limited"]
    status: int | None


class Transient(_Error):
    """A network failure, a timeout, a 5xx, or (bad_response) a 2xx whose body is not the JSON expected."""

    type: Literal["transient", "bad_response"]
    status: int | None


class PaginationProblem(_Error):
    type: Literal["pagination_error"]
    code: str


class ZohoProblem(_Error):
    """Zoho answered with an error (not_found: the record or path does not exist)."""

    type: Literal["zoho_error", "not_found"]
    status: int
    code: str | None
    zoho_message: str | None
    details: Any
    request_id: str | None


class WebhookProblem(_Error):
    """A webhook callback was refused: forged (wrong token or channel), stale (outside the channel's life) or
    malformed."""

    type: Literal["webhook_rejected"]
    reason: Literal["forged", "stale", "malformed"]


class InternalError(_Error):
    """Something failed inside the connector itself (a bug); the message names the exception, the worker's log
    has the details. A long-lived worker (`invoke --lines`, `serve`) answers so and carries on."""

    type: Literal["internal_error"]


ErrorPayload = Annotated[
    InvalidInput
    | ManifestProblem
    | ConnectionProblem
    | AuthenticationFailed
    | RateLimited
    | Transient
    | PaginationProblem
    | ZohoProblem
    | WebhookProblem
    | InternalError,
    Field(discriminator="type"),
]


# --- responses -------------------------------------------------------------------------------------------------


class SuccessResponse(_Strict):
    model_config = ConfigDict(title="Invoke success")

    id: RequestId | None = None
    ok: Literal[True]
    data: Any = Field(description="Zoho's answer, as `run` returns it under data.")


class ErrorResponse(_Strict):
    model_config = ConfigDict(title="Invoke error")

    id: RequestId | None = None
    ok: Literal[False]
    error: ErrorPayload


class Response(RootModel[SuccessResponse | ErrorResponse]):
    model_config = ConfigDict(title="Invoke response")


# --- validation and export -------------------------------------------------------------------------------------


def parse_request(value: Any) -> InvokeRequest:
    """The request as a model, or InputValidationError naming every offending field."""
    try:
        return InvokeRequest.model_validate(value)
    except ValidationError as exc:
        found: dict[str, Violation] = {}
        for error in exc.errors(include_url=False, include_input=False):
            violation = _violation(error)
            seen = found.get(violation.input)
            if seen is not None:  # one error per member of a union (the connection or its name): one sentence
                violation = Violation(
                    violation.input, f"/{violation.input}", f"{seen.message} or {violation.message[8:]}"
                )
            found[violation.input] = violation
        raise InputValidationError("the invoke request", list(found.values())) from None


# pydantic's messages, in the words of someone who wrote JSON
_MESSAGES = {
    "missing": "is required",
    "model_type": "the request must be a JSON object",
    "dict_type": "must be a JSON object",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "extra_forbidden": f"unknown field; expected one of: {', '.join(InvokeRequest.model_fields)}",
}


def _violation(error: Any) -> Violation:
    location = [str(part) for part in error["loc"]]
    field = location[0] if location else "(request)"
    message = _MESSAGES.get(error["type"], str(error["msg"]))
    return Violation(field, "/" + "/".join(location) if location else "", message)


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas as they are checked in under schemas/protocol/, by file stem."""
    models: dict[str, type[BaseModel]] = {
        "request": InvokeRequest,
        "response": Response,
        "error": ErrorResponse,
    }
    return {name: {"$schema": SCHEMA_DIALECT, **model.model_json_schema()} for name, model in models.items()}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m connector.protocol --write [DIR]` writes the schemas (default: schemas/protocol of this source
    tree); `python -m connector.protocol NAME` prints one of request, response, error."""
    args = list(sys.argv[1:] if argv is None else argv)
    all_schemas = schemas()
    if args[:1] == ["--write"]:
        folder = Path(args[1]) if len(args) > 1 else Path(__file__).resolve().parent.parent / "schemas" / "protocol"
        folder.mkdir(parents=True, exist_ok=True)
        for name, schema in all_schemas.items():
            (folder / f"{name}.json").write_text(render(schema), encoding="utf-8")
        return 0
    if len(args) == 1 and args[0] in all_schemas:
        sys.stdout.write(render(all_schemas[args[0]]))
        return 0
    sys.stderr.write(f"usage: python -m connector.protocol --write [DIR] | {' | '.join(all_schemas)}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
