"""Turn Zoho's answer into the action's data, or into the right error with Zoho's code, message and details.

The product's envelope (`connector.strategies.envelopes`) reads Zoho's code, message and details; this module
only decides which error an answer is. HTTP 204 (or an empty body) is the action's `when_empty`, or a NotFoundError
for actions that fetch one record by id. Anything Zoho echoes into an error is scrubbed of secrets first.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from connector._flow import SINK_BYTES, Reply, auth_failed
from connector.errors import (
    BadResponseError,
    ConnectorError,
    NotFoundError,
    RateLimitedError,
    TransientError,
    ZohoAPIError,
)

if TYPE_CHECKING:
    from connector._flow import CallPolicy

__all__ = ["error_for", "interpret", "request_id"]

# Where a request id is looked for when the product's envelope names no headers of its own.
_REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id")


def interpret(
    reply: Reply,
    policy: CallPolicy,
    *,
    when_empty: Any = None,
    empty_is_not_found: bool = False,
    response_type: str = "json",
) -> Any:
    """The data of a successful reply; raises the matching ConnectorError otherwise."""
    response, outcome = reply.response, reply.outcome
    if outcome.kind != "ok":
        raise error_for(reply, policy)
    if SINK_BYTES in response.extensions:  # a download: the body went to the caller's file
        return _file_metadata(response, response.extensions[SINK_BYTES])
    if response.status_code in (204, 304) or not response.content:
        if empty_is_not_found:
            raise NotFoundError(
                status=response.status_code,
                code=None,
                message="no record with this id (Zoho answered with no content)",
                request_id=request_id(response, policy.envelope),
            )
        return when_empty if when_empty is not None else {}
    if response_type == "binary":
        encoded = base64.b64encode(response.content).decode("ascii")
        return {"base64": encoded, **_file_metadata(response, len(response.content))}
    if response_type == "text" or reply.body is None:
        return response.text
    return reply.body


def error_for(reply: Reply, policy: CallPolicy) -> ConnectorError:
    from connector._redact import redact_text, redact_value, sent_secrets

    known = sent_secrets(reply.response.request)  # the token sent, scrubbed wherever the answer echoes it
    response, outcome, body = reply.response, reply.outcome, redact_value(reply.body, known)
    code, message, details = policy.envelope.error(body)
    retryable = policy.retryable(outcome)
    if outcome.kind == "auth":
        return auth_failed(reply)
    if outcome.kind == "throttled":
        wait = f"; retry after {outcome.retry_after:.0f}s" if outcome.retry_after is not None else ""
        return RateLimitedError(
            f"Zoho is throttling calls (HTTP {response.status_code} {code or ''}){wait}".replace(" )", ")"),
            retry_after=outcome.retry_after,
            status=response.status_code,
        )
    if outcome.kind == "bad_response":
        kind = response.headers.get("content-type") or "no content type"
        return BadResponseError(
            f"Zoho answered HTTP {response.status_code} with a body that is not valid JSON ({kind}, "
            f"{len(response.content):,} bytes) from {response.request.url.host}",
            status=response.status_code,
            retryable=retryable,
            may_have_acted=outcome.may_have_acted,
        )
    if outcome.kind == "transient":
        return TransientError(
            f"Zoho answered HTTP {response.status_code} {code or ''}".rstrip()
            + f": {message or response.reason_phrase} ({response.request.url.host})",
            status=response.status_code,
            retry_after=outcome.retry_after,
            retryable=retryable,
            may_have_acted=outcome.may_have_acted,
        )
    error = NotFoundError if response.status_code == 404 else ZohoAPIError
    return error(
        status=response.status_code,
        code=code,
        message=message
        or (None if body is not None else redact_text(response.text, known)[:500] or response.reason_phrase),
        details=details,
        request_id=request_id(response, policy.envelope),
        response=body,
        may_have_acted=outcome.may_have_acted,
    )


def _file_metadata(response: Any, size: int) -> dict[str, Any]:
    return {
        "contentType": response.headers.get("content-type", "application/octet-stream"),
        "fileName": _filename(response.headers.get("content-disposition")),
        "size": size,
    }


def request_id(response: Any, envelope: Any) -> str | None:
    """The request id the product put in the answer's headers, from the headers its envelope names."""
    names = getattr(envelope, "request_id_headers", _REQUEST_ID_HEADERS)
    return next((response.headers[h] for h in names if h in response.headers), None)


def _filename(disposition: str | None) -> str | None:
    if not disposition:
        return None
    from email.message import Message  # rare: only file answers carry a Content-Disposition

    message = Message()
    message["content-disposition"] = disposition
    name = message.get_filename()
    return str(name) if name else None
