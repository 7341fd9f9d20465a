"""Build the HTTP request of an action from its declared template and the validated inputs.

`prepare` renders everything that depends on the inputs alone, once per call; `Prepared.build` adds what may change
between attempts and pages (the access token, the API domain, the organization id, the page parameters).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from connector import _template
from connector._template import MISSING
from connector.errors import InputValidationError, Violation
from connector.manifest import Action, Product

__all__ = ["OrganizationPlacement", "Prepared", "prepare"]


@dataclass(frozen=True)
class OrganizationPlacement:
    convention: str  # a name in connector.strategies.ORGANIZATIONS
    name: str  # the query parameter or header
    value: str


@dataclass(frozen=True)
class Prepared:
    """Everything of the request but the access token, which may change between attempts."""

    method: str
    path: str  # product base path + action path; the API domain is known only once a token is
    params: Sequence[tuple[str, str | int | float | bool | None]]
    headers: dict[str, str]
    json: Any
    content: bytes | None
    data: dict[str, str] | None
    files: list[tuple[str, tuple[str, bytes, str]]] | None
    timeout: httpx.Timeout
    auth_header: str  # "Zoho-oauthtoken"

    def build(
        self,
        token: str,
        api_domain: str,
        organization: OrganizationPlacement | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        params = list(self.params)
        if overrides:  # pagination replaces (or, with None, removes) query parameters
            kept = [(k, v) for k, v in params if k not in overrides]
            params = kept + [(k, str(v)) for k, v in overrides.items() if v is not None]
        headers = dict(self.headers)
        if organization is not None:
            from connector.strategies import ORGANIZATIONS

            ORGANIZATIONS[organization.convention].place(organization.name, organization.value, params, headers)
        headers["Authorization"] = f"{self.auth_header} {token}"
        request = httpx.Request(
            self.method,
            api_domain + self.path,
            params=params,
            headers=headers,
            json=self.json if self.json is not MISSING else None,
            content=self.content,
            data=self.data,
            files=self.files,
            extensions={"timeout": self.timeout.as_dict()},
        )
        return request


def prepare(
    action: Action,
    product: Product,
    inputs: Mapping[str, Any],
    *,
    auth_header: str,
    timeout: httpx.Timeout,
) -> Prepared:
    spec = action.request
    try:
        method = _template.expand_path(spec["method"], inputs).upper()
        path = _template.expand_path(spec["path"], inputs)
    except _template.TemplateError as exc:
        raise InputValidationError(action.key, [Violation("(inputs)", "", str(exc))]) from None
    params = [(k, _query_value(v)) for k, v in _template.pairs(_evaluate(spec.get("query"), inputs)) if v is not None]
    headers = {k: str(v) for k, v in _template.pairs(_evaluate(spec.get("headers"), inputs))}
    body = _evaluate(spec.get("body"), inputs)
    form = _evaluate(spec.get("form"), inputs)
    try:
        files = _files(_evaluate(spec.get("files"), inputs))
    except (ValueError, TypeError, KeyError) as exc:  # binascii.Error included
        raise InputValidationError(action.key, [Violation("(files)", "", f"file contents: {exc}")]) from None
    content = None
    if isinstance(body, str | bytes):  # a raw text body is sent as is
        content, body = (body.encode() if isinstance(body, str) else body), MISSING
    data = {k: _form_value(v) for k, v in _template.pairs(form)} if form is not MISSING else None
    if (files is not None or data is not None) and body is not MISSING:
        # a form cannot carry a JSON body too: send it as the JSONString field, as Zoho's Finance APIs accept
        data = {**(data or {}), "JSONString": _json_text(body)}
        body = MISSING
    return Prepared(
        method=method,
        path=product.base_path + path,
        params=params,
        headers=headers,
        json=body,
        content=content,
        data=data,
        files=files,
        timeout=timeout,
        auth_header=auth_header,
    )


def _evaluate(expr: Any, inputs: Mapping[str, Any]) -> Any:
    return MISSING if expr is None else _template.evaluate(expr, inputs)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _form_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return _json_text(value)
    return _query_value(value)


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _files(value: Any) -> list[tuple[str, tuple[str, bytes, str]]] | None:
    if value is MISSING or not value:
        return None
    parts = []
    for field, part in _template.pairs(value):
        spec = part if isinstance(part, Mapping) and "content" in part else {"content": part}
        content, content_type = file_bytes(spec["content"])
        filename = str(spec.get("filename") or field)
        parts.append((field, (filename, content, content_type)))
    return parts


def file_bytes(content: Any) -> tuple[bytes, str]:
    """Contents of a file input: text, bytes, or {"base64": …, "contentType": …}."""
    if isinstance(content, bytes):
        return content, "application/octet-stream"
    if isinstance(content, Mapping):
        encoded = content.get("base64")
        if not isinstance(encoded, str):
            raise ValueError('binary contents need "base64": a base64 string')
        return base64.b64decode(encoded, validate=True), str(content.get("contentType", "application/octet-stream"))
    return str(content).encode("utf-8"), "text/plain"
