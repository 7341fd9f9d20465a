"""Turn Zoho's answer into the action's data, or into the right error with Zoho's code, message and details.

CRM: `data`/`info`; HTTP 204 means nothing matched (the action's `when_empty`); 207 carries per-record results,
which are returned as they are so the caller sees which rows failed. Finance apps (Books, …): `code`/`message`
plus the entity; a non-zero `code` is an error even with HTTP 200.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from email.message import Message
from typing import Any

from connector._flow import Reply, auth_failed
from connector._retry import zoho_code
from connector.errors import ConnectorError, RateLimitedError, TransientError, ZohoAPIError

__all__ = ["interpret"]

_REQUEST_ID_HEADERS = ("x-request-id", "x-zoho-request-id", "x-correlation-id")


def interpret(reply: Reply, *, when_empty: Any = None, response_type: str = "json") -> Any:
    """The data of a successful reply; raises the matching ConnectorError otherwise."""
    response, outcome = reply.response, reply.outcome
    if outcome.kind != "ok":
        raise error_for(reply)
    if response.status_code == 204 or not response.content:
        return when_empty if when_empty is not None else {}
    if response_type == "binary":
        return {
            "base64": base64.b64encode(response.content).decode("ascii"),
            "contentType": response.headers.get("content-type", "application/octet-stream"),
            "fileName": _filename(response.headers.get("content-disposition")),
        }
    if response_type == "text" or reply.body is None:
        return response.text
    return reply.body


def error_for(reply: Reply) -> ConnectorError:
    response, outcome, body = reply.response, reply.outcome, reply.body
    code, message = zoho_code(body)
    if outcome.kind == "auth":
        return auth_failed(reply)
    if outcome.kind == "throttled":
        wait = f"; retry after {outcome.retry_after:.0f}s" if outcome.retry_after is not None else ""
        return RateLimitedError(
            f"Zoho is throttling calls (HTTP {response.status_code} {code or ''}){wait}".replace(" )", ")"),
            retry_after=outcome.retry_after,
            status=response.status_code,
        )
    if outcome.kind == "transient":
        return TransientError(
            f"Zoho answered HTTP {response.status_code} {code or ''}".rstrip()
            + f": {message or response.reason_phrase}",
            status=response.status_code,
            retry_after=outcome.retry_after,
        )
    return ZohoAPIError(
        status=response.status_code,
        code=code,
        message=message or (None if body is not None else _text(response)),
        details=_details(body),
        request_id=next((response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None),
        response=body,
    )


def _text(response: Any) -> str:
    """A non-JSON error body, shortened and scrubbed: whatever a proxy echoes must not carry a token out."""
    from connector._redact import redact_text

    return redact_text(response.text[:500]) or str(response.reason_phrase)


def _details(body: Any) -> Any:
    if not isinstance(body, Mapping):
        return None
    if "details" in body:
        return body["details"]
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0].get("details")
    return None


def _filename(disposition: str | None) -> str | None:
    if not disposition:
        return None
    message = Message()
    message["content-disposition"] = disposition
    name = message.get_filename()
    return str(name) if name else None
