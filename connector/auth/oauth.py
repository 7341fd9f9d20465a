"""Zoho Accounts OAuth 2.0, sans I/O: build each token request, and read each answer into a Token or an error.

Parameters always travel in the POST body (form-encoded), never in the URL, so no proxy or access log ever holds a
secret. Zoho's three token failures that other SDKs report alike are told apart here, each saying what to do:

    invalid_code     the refresh token was revoked, or evicted by Zoho's 20-refresh-tokens-per-user cap → reconnect
                     (for a code grant: the code expired or was used already → generate a new one)
    Access Denied    token creation is throttled (≤10 per refresh token per 10 minutes; Zoho may say so with
                     HTTP 200); `access_denied` is the same for more than 10 grant-code or token requests in 10
                     minutes (HTTP 200 or 400) → wait, and reuse the tokens you have
    invalid_client   the client id or secret is wrong, or the client lives in another data centre
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from connector._tls import LazyCAContext
from connector.auth.tokens import HEADER_SAFE, Token
from connector.errors import AuthenticationError

__all__ = [
    "TOKEN_TIMEOUT",
    "asend",
    "authorize_url",
    "code_request",
    "new_state",
    "parse_revoke_response",
    "parse_token_response",
    "refresh_request",
    "revoke_request",
    "send",
]

# Every token call has a timeout: a hung Accounts server must not hang a worker holding the refresh lock.
TOKEN_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
TOKEN_DEADLINE = 20.0  # seconds for a whole token answer, however slowly it trickles in
MAX_TOKEN_ANSWER = 1024 * 1024  # a token answer is well under 1 KB
THROTTLE_RETRY_AFTER = 60.0  # Zoho counts 10 tokens per rolling 10 minutes; one minute usually frees a slot
DEFAULT_LIFETIME = 3600.0  # Zoho's access tokens live an hour
MAX_LIFETIME = 86_400.0


def new_state() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def authorize_url(
    accounts_url: str,
    authorize_path: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: str,
    state: str,
    access_type: str = "offline",
    prompt: str = "consent",
) -> str:
    """The consent page URL. `scopes` is space-separated as users type it; Zoho wants commas."""
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": ",".join(scopes.split()),
        "access_type": access_type,
        "prompt": prompt,
        "state": state,
    }
    return f"{accounts_url}{authorize_path}?{urlencode(query)}"


def _post(url: str, form: Mapping[str, str]) -> httpx.Request:
    return httpx.Request(
        "POST",
        url,
        data=dict(form),
        headers={"Accept": "application/json"},
        extensions={"timeout": TOKEN_TIMEOUT.as_dict()},
    )


def code_request(
    accounts_url: str, token_path: str, *, client_id: str, client_secret: str, code: str, redirect_uri: str | None
) -> httpx.Request:
    """Exchange an authorization code. A self-client grant code is exchanged without redirect_uri."""
    form = {"grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret, "code": code}
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    return _post(f"{accounts_url}{token_path}", form)


def refresh_request(
    accounts_url: str, token_path: str, *, client_id: str, client_secret: str, refresh_token: str
) -> httpx.Request:
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    return _post(f"{accounts_url}{token_path}", form)


def revoke_request(accounts_url: str, revoke_path: str, *, token: str) -> httpx.Request:
    return _post(f"{accounts_url}{revoke_path}", {"token": token})


def send(request: httpx.Request, transport: httpx.BaseTransport | None = None) -> httpx.Response:
    """Send one Accounts request (on a short-lived client: token calls are rare) with the token timeout, which
    bounds the whole answer, body included, as its size is bounded; the CA bundle is read only if the Accounts
    server is https (the sandbox's is not)."""
    deadline = time.monotonic() + TOKEN_DEADLINE
    with httpx.Client(transport=transport, verify=LazyCAContext(), timeout=TOKEN_TIMEOUT) as client:
        try:
            response = client.send(request, stream=True)
            try:
                body = _Bounded(request, deadline)
                for chunk in response.iter_bytes():
                    body.add(chunk)
                response._content = body.content()  # what Response.read() itself stores
            finally:
                response.close()
            return response
        except httpx.TransportError as exc:
            raise _unreachable(request, exc) from None
        except httpx.DecodingError:
            raise _undecodable(request) from None


async def asend(request: httpx.Request, transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:
    """`send` for async code: the event loop keeps running while Zoho answers."""
    deadline = time.monotonic() + TOKEN_DEADLINE
    async with httpx.AsyncClient(transport=transport, verify=LazyCAContext(), timeout=TOKEN_TIMEOUT) as client:
        try:
            response = await client.send(request, stream=True)
            try:
                body = _Bounded(request, deadline)
                async for chunk in response.aiter_bytes():
                    body.add(chunk)
                response._content = body.content()
            finally:
                await response.aclose()
            return response
        except httpx.TransportError as exc:
            raise _unreachable(request, exc) from None
        except httpx.DecodingError:
            raise _undecodable(request) from None


class _Bounded:
    """A token answer's body, refused past MAX_TOKEN_ANSWER bytes or past the deadline: a trickling or endless
    accounts server cannot hold a refresh (and every call waiting on it) for longer than the token timeout."""

    def __init__(self, request: httpx.Request, deadline: float) -> None:
        self.request = request
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if time.monotonic() > self.deadline:
            raise httpx.ReadTimeout(f"no complete answer in {TOKEN_DEADLINE:g}s", request=self.request)
        if self.size > MAX_TOKEN_ANSWER:
            raise AuthenticationError(
                f"Zoho Accounts at {self.request.url.host} answered with more than {MAX_TOKEN_ANSWER:,} bytes; "
                "nothing was stored",
                reason="bad_token_response",
                retryable=True,
            )
        self.chunks.append(chunk)

    def content(self) -> bytes:
        return b"".join(self.chunks)


def _unreachable(request: httpx.Request, exc: httpx.TransportError) -> AuthenticationError:
    return AuthenticationError(
        f"could not reach Zoho Accounts at {request.url.host} ({type(exc).__name__})",
        reason="accounts_unreachable",
        retryable=True,
    )


def _undecodable(request: httpx.Request) -> AuthenticationError:
    return AuthenticationError(
        f"Zoho Accounts at {request.url.host} answered with a body its Content-Encoding cannot decode; "
        "nothing was stored",
        reason="bad_token_response",
        retryable=True,
    )


def parse_token_response(response: httpx.Response, *, grant: str, now: float, base: Token) -> Token:
    """The new token (merged over `base`), or an AuthenticationError saying which failure and what to do.

    `grant` is "refresh_token" or "authorization_code": the same Zoho error means different things for each.
    """
    body = _body(response)
    if response.status_code < 400 and "access_token" in body:
        malformed = [
            name
            for name in ("access_token", "refresh_token", "api_domain")
            if (name == "access_token" or body.get(name) is not None)
            and not (isinstance(body.get(name), str) and body[name])
        ]
        if malformed:
            raise AuthenticationError(
                f"Zoho Accounts at {_host(response)} answered with a token of the wrong shape "
                f"({', '.join(malformed)} is not a string); nothing was stored",
                reason="bad_token_response",
            )
        if not HEADER_SAFE.fullmatch(body["access_token"]):
            raise AuthenticationError(
                f"Zoho Accounts at {_host(response)} answered with an access token an HTTP header cannot carry "
                "(spaces, line breaks or accents); nothing was stored",
                reason="bad_token_response",
            )
        return base.replace(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or base.refresh_token or "") or None,
            api_domain=str(body.get("api_domain") or base.api_domain or "") or None,
            expires_at=now + _lifetime(body),
            grant_token=None,
        )
    raise token_error(response.status_code, body, grant=grant, host=_host(response))


def _host(response: httpx.Response) -> str | None:
    try:
        return response.request.url.host
    except RuntimeError:  # a response built without its request (tests)
        return None


def _lifetime(body: Mapping[str, Any]) -> float:
    """Seconds the new access token lives. Legacy answers carry expires_in_sec, and then expires_in is in
    milliseconds. A value that is not a positive finite number ("abc", -5, NaN) means the default hour; an
    implausibly long one is capped at a day, so a broken answer cannot make a token look valid for years."""
    seconds = "expires_in_sec" in body
    raw = body.get("expires_in_sec") if seconds else body.get("expires_in")
    try:
        lifetime = float(raw) if isinstance(raw, int | float | str) and not isinstance(raw, bool) else math.nan
    except ValueError:
        lifetime = math.nan
    if not math.isfinite(lifetime) or lifetime <= 0:
        return DEFAULT_LIFETIME
    if not seconds and lifetime > MAX_LIFETIME:
        lifetime /= 1000
    return min(lifetime, MAX_LIFETIME)


def token_error(status: int, body: Mapping[str, Any], *, grant: str, host: str | None = None) -> AuthenticationError:
    from connector._redact import redact_text

    # What the accounts server calls the error goes into the message and `reason`: scrubbed and kept short.
    error = redact_text(str(body.get("error") or body.get("code") or "").strip())[:100]
    description = str(body.get("error_description") or body.get("message") or "")
    lowered = f"{error} {description}".lower().replace("_", " ")
    if lowered.startswith("access denied") or "throttle" in lowered or "too many requests" in lowered:
        return AuthenticationError(
            "Zoho is throttling token requests for this refresh token (at most 10 new access tokens per 10 "
            "minutes): wait a minute, and let workers share tokens through one token store instead of each "
            "refreshing on its own",
            reason="token_throttled",
            retryable=True,
            retry_after=THROTTLE_RETRY_AFTER,
        )
    if error == "invalid_code" and grant == "refresh_token":
        return AuthenticationError(
            "Zoho no longer accepts this refresh token (invalid_code): it was revoked, or evicted because the user "
            "created more than 20 refresh tokens for this client. Reconnect: run `zoho-connector auth login`",
            reason="refresh_token_revoked",
        )
    if error == "invalid_code":
        return AuthenticationError(
            "Zoho refused the authorization code (invalid_code): it expired (web codes live 2 minutes, self-client "
            "codes 3 by default) or was already used. Generate a new code and exchange it at once",
            reason="grant_code_invalid",
        )
    at = f" at {host}" if host else ""
    if error == "invalid_client":
        return AuthenticationError(
            f"Zoho Accounts{at} does not know this client (invalid_client): check the client id and secret, and that "
            "the connection's region is the data centre the client and account live in (multi-DC must be enabled "
            "for the client in the API console to use other data centres)",
            reason="invalid_client",
        )
    if error == "invalid_redirect_uri":
        return AuthenticationError(
            "the redirect URI does not match one registered for the client in the Zoho API console",
            reason="invalid_redirect_uri",
        )
    detail = f" ({error})" if error else ""
    if status >= 500 or status == 429:  # the server's trouble, not the configuration's
        return AuthenticationError(
            f"Zoho Accounts{at} failed the token request with HTTP {status}{detail}; try again shortly",
            reason=error or "accounts_unavailable",
            retryable=True,
            retry_after=THROTTLE_RETRY_AFTER if status == 429 else None,
        )
    hint = "" if error else ": check the connection's region and accounts_url"
    return AuthenticationError(
        f"Zoho Accounts{at} refused the token request with HTTP {status}{detail}{hint}",
        reason=error or "token_request_failed",
    )


def parse_revoke_response(response: httpx.Response) -> None:
    body = _body(response)
    if response.status_code >= 400 or body.get("status") not in (None, "success"):
        raise AuthenticationError(
            f"Zoho did not revoke the token (HTTP {response.status_code}): it is unknown or already revoked",
            reason="revoke_failed",
        )


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
