"""Build the HTTP request of an action from its declared template and the validated inputs.

`prepare` renders everything that depends on the inputs alone (`_template.render`), once per call;
`Prepared.build` adds what may change between attempts and pages: the access token, the API domain, the
organization id and the page parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import httpx

from connector import _template
from connector._template import MISSING
from connector.auth.tokens import HEADER_SAFE
from connector.errors import AuthenticationError, ConnectionConfigError, InputValidationError, Violation
from connector.manifest import Action, Product
from connector.strategies.pagers import BODY

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
    files: list[tuple[str, tuple[str, bytes | IO[bytes], str]]] | None  # file objects are streamed
    timeout: httpx.Timeout
    auth_header: str  # the scheme word the connection definition names (oauth.authorization_header)

    def build(
        self,
        token: str,
        api_domain: str,
        organization: OrganizationPlacement | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        params = list(self.params)
        body = self.json
        if overrides:  # pagination replaces (or, with None, removes) query parameters, and members of a JSON body
            members = overrides.get(BODY)
            if isinstance(members, Mapping) and isinstance(body, Mapping):
                body = {**body, **members}
            query = {k: v for k, v in overrides.items() if k != BODY}
            kept = [(k, v) for k, v in params if k not in query]
            params = kept + [(k, str(v)) for k, v in query.items() if v is not None]
        headers = dict(self.headers)
        if organization is not None:
            from connector.strategies import ORGANIZATIONS

            if not HEADER_SAFE.fullmatch(organization.value):
                raise ConnectionConfigError(
                    "organization_id may hold only visible ASCII characters (no spaces, line breaks or accents): "
                    "it travels in a query parameter or header; nothing was sent"
                )
            ORGANIZATIONS[organization.convention].place(organization.name, organization.value, params, headers)
        if not HEADER_SAFE.fullmatch(token):  # a stored token, or one a token endpoint answered
            raise AuthenticationError(
                "the access token holds characters an Authorization header cannot carry (spaces, line breaks, "
                "accents); nothing was sent: give a valid access_token or reconnect",
                reason="bad_token",
            )
        headers["Authorization"] = f"{self.auth_header} {token}"
        return httpx.Request(
            self.method,
            api_domain + self.path,
            params=params,
            headers=headers,
            json=body if body is not MISSING else None,
            content=self.content,
            data=self.data,
            files=self.files,
            extensions={"timeout": self.timeout.as_dict()},
        )


def _full_path(action: Action, product: Product, path: str) -> str:
    """The path under the API domain: under the product's base, except a raw path (a template that is one
    `{+name}`) on another base of the product, taken from the domain's root as written: one under the product's
    root segment (`/crm/bulk/v8/…` for `/crm/v8`) or on an older base it lists (`/subscriptions/v1`)."""
    template = action.request["path"]
    if template.startswith("{+") and template.endswith("}") and template.count("{") == 1:
        root = "/" + product.base_path.strip("/").split("/")[0] + "/"
        elsewhere = [root, *(base + "/" for base in product.alternate_bases)]
        if any(path.startswith(base) or path + "/" == base for base in elsewhere):
            return path
    return product.base_path + path


def prepare(
    action: Action,
    product: Product,
    inputs: Mapping[str, Any],
    *,
    auth_header: str,
    timeout: httpx.Timeout,
) -> Prepared:
    try:
        rendered = _template.render(action.request, inputs)
    except _template.TemplateError as exc:
        raise InputValidationError(action.key, [Violation(exc.input or "(inputs)", "", exc.reason)]) from None
    files = [(f.field, (f.filename, f.content, f.content_type)) for f in rendered.files or ()] or None
    return Prepared(
        method=rendered.method,
        path=_full_path(action, product, rendered.path),
        params=list(rendered.query),
        headers=dict(rendered.headers),
        json=rendered.json,
        content=rendered.content,
        data=rendered.form,
        files=files,
        timeout=timeout,
        auth_header=auth_header,
    )
