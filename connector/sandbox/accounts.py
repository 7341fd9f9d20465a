"""Zoho Accounts: authorization codes, token exchange and refresh with Zoho's limits, and revocation."""

from __future__ import annotations

import html
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from connector.sandbox._http import base_url, json_response, now_of, state_of
from connector.sandbox.state import AccessToken, GrantCode, RefreshToken, SandboxState

THROTTLE_DESCRIPTION = "Token creation throttle limit reached. Please reuse the valid tokens you currently have."


class TokenError(Exception):
    """An Accounts error answered as {"error": code[, "error_description": ...]}."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


def _token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


def issue_code(
    state: SandboxState,
    client_id: str,
    scope: str,
    now: float,
    *,
    redirect_uri: str | None = None,
    self_client: bool = False,
    offline: bool = True,
    ttl: float | None = None,
) -> GrantCode:
    """A single-use grant code; self-client codes live 3 minutes by default, web codes 2."""
    if client_id not in state.clients:
        raise TokenError("invalid_client")
    opts = state.options
    lifetime = ttl if ttl is not None else (opts.self_client_code_ttl if self_client else opts.code_ttl)
    code = GrantCode(
        code=f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}",
        client_id=client_id,
        scope=scope,
        redirect_uri=redirect_uri,
        expires_at=now + lifetime,
        self_client=self_client,
        offline=offline,
    )
    state.codes[code.code] = code
    return code


def _check_client(state: SandboxState, client_id: str, client_secret: str) -> None:
    client = state.clients.get(client_id)
    if client is None or not secrets.compare_digest(client.client_secret, client_secret):
        raise TokenError("invalid_client")


def _active_access(state: SandboxState, refresh: str, now: float) -> list[AccessToken]:
    return sorted(
        (
            t
            for t in state.access_tokens.values()
            if t.refresh_token == refresh and not t.revoked and t.expires_at > now
        ),
        key=lambda t: t.created_at,
    )


def mint_access(state: SandboxState, rt: RefreshToken, now: float) -> AccessToken:
    """One more access token for `rt`, enforcing the 10-per-10-minutes throttle and the 15 active tokens cap."""
    opts = state.options
    rt.grants = [t for t in rt.grants if t > now - opts.token_request_window]
    if len(rt.grants) >= opts.token_requests_per_window:
        raise TokenError("Access Denied", THROTTLE_DESCRIPTION)
    rt.grants.append(now)
    token = AccessToken(
        token=_token(),
        refresh_token=rt.token,
        client_id=rt.client_id,
        user_id=rt.user_id,
        scope=rt.scope,
        created_at=now,
        expires_at=now + opts.access_token_ttl,
    )
    state.access_tokens[token.token] = token
    active = _active_access(state, rt.token, now)
    for old in active[: max(0, len(active) - opts.max_access_tokens_per_refresh)]:
        old.revoked = True
    return token


def new_refresh_token(state: SandboxState, client_id: str, scope: str, now: float) -> RefreshToken:
    """A refresh token for the sandbox user; the 21st for the same user and client revokes the oldest."""
    rt = RefreshToken(token=_token(), client_id=client_id, user_id=state.current_user_id, scope=scope, created_at=now)
    state.refresh_tokens[rt.token] = rt
    mine = sorted(
        (
            t
            for t in state.refresh_tokens.values()
            if t.client_id == client_id and t.user_id == rt.user_id and not t.revoked
        ),
        key=lambda t: t.created_at,
    )
    for old in mine[: max(0, len(mine) - state.options.max_refresh_tokens_per_client)]:
        revoke_refresh(state, old)
    return rt


def revoke_refresh(state: SandboxState, rt: RefreshToken) -> None:
    """Revoking a refresh token kills every access token minted from it."""
    rt.revoked = True
    for t in state.access_tokens.values():
        if t.refresh_token == rt.token:
            t.revoked = True


def _token_body(access: AccessToken, api_domain: str, refresh: str | None, ttl: float) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": access.token}
    if refresh is not None:
        body["refresh_token"] = refresh
    body.update(api_domain=api_domain, token_type="Bearer", expires_in=int(ttl))  # noqa: S106
    return body


def exchange(state: SandboxState, form: dict[str, str], now: float, api_domain: str) -> tuple[str, dict[str, Any]]:
    """Answer POST /oauth/v2/token; returns the grant type for the stats and Zoho's JSON."""
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        _check_client(state, form.get("client_id", ""), form.get("client_secret", ""))
        code = state.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at <= now or code.client_id != form.get("client_id"):
            raise TokenError("invalid_code")
        if not code.self_client and code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
            raise TokenError("invalid_redirect_uri")
        code.used = True
        ttl = state.options.access_token_ttl
        if not code.offline:
            access = AccessToken(
                token=_token(),
                refresh_token=None,
                client_id=code.client_id,
                user_id=state.current_user_id,
                scope=code.scope,
                created_at=now,
                expires_at=now + ttl,
            )
            state.access_tokens[access.token] = access
            return grant_type, _token_body(access, api_domain, None, ttl)
        rt = new_refresh_token(state, code.client_id, code.scope, now)
        return grant_type, _token_body(mint_access(state, rt, now), api_domain, rt.token, ttl)
    if grant_type == "refresh_token":
        _check_client(state, form.get("client_id", ""), form.get("client_secret", ""))
        found = state.refresh_tokens.get(form.get("refresh_token", ""))
        if found is None or found.revoked or found.client_id != form.get("client_id"):
            raise TokenError("invalid_code")
        access = mint_access(state, found, now)
        return grant_type, _token_body(access, api_domain, None, state.options.access_token_ttl)
    raise TokenError("unsupported_grant_type")


def authenticate(state: SandboxState, header: str | None, now: float) -> AccessToken | None:
    """The live access token behind an `Authorization: Zoho-oauthtoken …` header, or None.

    Zoho accepts only its own scheme: `Bearer …` (what generic OAuth clients send) is an invalid token there.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme != "Zoho-oauthtoken":
        return None
    token = state.access_tokens.get(value.strip())
    if token is None or token.revoked or token.expires_at <= now:
        return None
    return token


def revoke(state: SandboxState, token: str) -> bool:
    rt = state.refresh_tokens.get(token)
    if rt is not None and not rt.revoked:
        revoke_refresh(state, rt)
        return True
    access = state.access_tokens.get(token)
    if access is not None and not access.revoked:
        access.revoked = True
        return True
    return False


def expire_access_tokens(state: SandboxState, now: float) -> int:
    """Make every live access token expire now; returns how many were live."""
    live = [t for t in state.access_tokens.values() if not t.revoked and t.expires_at > now]
    for t in live:
        t.expires_at = now
    return len(live)


# HTTP ----------------------------------------------------------------------------------------------------------------


def _error(request: Request, exc: TokenError) -> JSONResponse:
    request.app.state.stats.token_errors[exc.error] += 1
    return json_response(exc.body(), status=state_of(request).options.token_error_status)


CONSENT_PAGE = (
    "<!doctype html><title>Zoho sandbox consent</title>"
    "<p>This is the Zoho sandbox's consent page. It auto-approves every request at once, with the scopes that "
    "were asked for, and redirects back to <code>{redirect}</code>.</p>"
)


async def authorize(request: Request) -> Response:
    """Consent screen stand-in: it auto-approves at once and redirects back like Zoho does after "Accept".

    The redirect carries a short page saying so, for whoever looks at it in a browser.
    """
    state, q = state_of(request), request.query_params
    redirect_uri = q.get("redirect_uri")
    if q.get("response_type", "code") != "code":
        return _error(request, TokenError("unsupported_response_type"))
    if not redirect_uri:
        return _error(request, TokenError("invalid_redirect_uri"))
    try:
        code = issue_code(
            state,
            q.get("client_id", ""),
            q.get("scope", ""),
            now_of(request),
            redirect_uri=redirect_uri,
            offline=q.get("access_type", "offline") != "online",
        )
    except TokenError as exc:
        return _error(request, exc)
    params = {"code": code.code, "location": "us", "accounts-server": base_url(request, state)}
    if "state" in q:
        params["state"] = q["state"]
    parts = urlsplit(redirect_uri)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    target = urlunsplit(parts._replace(query=query))
    page = CONSENT_PAGE.format(redirect=html.escape(urlunsplit(parts._replace(query=""))))
    return HTMLResponse(page, status_code=302, headers={"Location": target})


async def token(request: Request) -> Response:
    """Parameters may come form-encoded in the body (as the SDK sends them) or in the query string."""
    state = state_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    params = {**dict(request.query_params), **form}
    try:
        grant_type, body = exchange(state, params, now_of(request), base_url(request, state))
    except TokenError as exc:
        return _error(request, exc)
    request.app.state.stats.token_grants[grant_type] += 1
    return json_response(body)


async def revoke_endpoint(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    value = request.query_params.get("token") or form.get("token", "")
    if not revoke(state_of(request), value):
        return json_response({"error": "invalid_token"}, status=400)
    return json_response({"status": "success"})


routes = [
    Route("/oauth/v2/auth", authorize, methods=["GET"]),
    Route("/oauth/v2/token", token, methods=["POST"]),
    Route("/oauth/v2/token/revoke", revoke_endpoint, methods=["POST"]),
]
