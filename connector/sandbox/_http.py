"""Response helpers shared by the Accounts, CRM, Books and admin handlers."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connector.sandbox.state import SandboxState


class BadBody(Exception):
    """The request body is not the JSON the endpoint expects."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def no_content() -> Response:
    """Zoho's empty answer: HTTP 204 with no body at all."""
    return Response(status_code=204)


def crm_error(code: str, message: str, details: dict[str, Any] | None = None, status: int = 400) -> JSONResponse:
    """CRM's error shape: {"code", "details", "message", "status": "error"}."""
    return JSONResponse(
        {"code": code, "details": details or {}, "message": message, "status": "error"}, status_code=status
    )


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise BadBody("empty body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(str(exc)) from exc


def base_url(request: Request, state: SandboxState) -> str:
    """This server's own URL, which Zoho would call api_domain and accounts-server.

    Built from the configured base URL or the address the server is bound to (ASGI `server`), never from the
    client's Host header: a spoofed Host must not steer where a client sends its next token.
    """
    if state.options.base_url:
        return state.options.base_url.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    server = request.scope.get("server")
    if not server:
        return f"{scheme}://127.0.0.1"
    host, port = str(server[0]), server[1]
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in {("http", 80), ("https", 443)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def now_of(request: Request) -> float:
    clock = request.app.state.clock
    return float(clock())
