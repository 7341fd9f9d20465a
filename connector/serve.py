"""`zoho-connector serve`: the engine protocol over HTTP, for engines in other languages (Starlette + uvicorn).

    POST /actions/{key}   {"inputs", "connection", "engine"?, "id"?} → the protocol's response (schemas/protocol/)
    GET  /actions         the manifest's actions: key, label, description, product, safety
    GET  /actions/{key}   one action, with its input schema
    GET  /schemas         the protocol's JSON Schemas by name → their URLs
    GET  /schemas/{name}.json
                          request, response and error (schemas/protocol/), and body: what POST /actions/{key}
                          takes (the request without `action`, which the URL names)
    GET  /health          {"ok": true, "version", "actions"}

The HTTP status says what the body's `ok`/`error.type` says, for clients that look only at the status:

    200  ok
    400  invalid_input (the body, the request or the inputs; nothing was sent to Zoho); 413 a body over the limit
    404  not_found (Zoho says the record does not exist), or an unknown action key (type invalid_input)
    401  authentication_error (Zoho refused the connection's credentials)
    403  connection_error (the connection cannot be used as given: incomplete, unknown name, …)
    502  zoho_error, pagination_error, and a transient failure that must not be retried (a write may have acted)
    503  anything retryable (rate_limited, transient, …), with Retry-After in whole seconds when Zoho said when
    500  manifest_error, internal_error

Bound to 127.0.0.1 unless --host says otherwise: the server has no authentication of its own, and a connection
named in a request is one of the operator's (--connections FILE). Requests and answers are not logged; the access
log (off unless --access-log) holds method, path and status only.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from connector._dispatch import Worker, error_response
from connector.errors import InputValidationError, Violation

__all__ = ["STATUS", "app", "main", "protocol_schemas", "status_of"]

MAX_BODY_BYTES = 64 * 1024 * 1024

STATUS = {
    "invalid_input": 400,
    "not_found": 404,
    "authentication_error": 401,
    "connection_error": 403,
    "zoho_error": 502,
    "pagination_error": 502,
    "transient": 502,  # reached only when not retryable
    "bad_response": 502,
    "rate_limited": 503,
    "manifest_error": 500,
    "internal_error": 500,
}


def status_of(response: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers that say what a protocol response says."""
    if response["ok"]:
        return 200, {}
    error = response["error"]
    if error["retryable"]:
        after = error.get("retry_after")
        return 503, ({"Retry-After": str(math.ceil(after))} if after is not None else {})
    if error["type"] == "invalid_input" and any(v["input"] == "(action)" for v in error.get("violations", [])):
        return 404, {}
    return STATUS.get(error["type"], 500), {}


def protocol_schemas() -> dict[str, dict[str, Any]]:
    """The engine protocol's JSON Schemas as served: the checked-in request, response and error schemas
    (schemas/protocol/, generated from connector/protocol.py), and `body`, the request without `action`."""
    from connector.manifest import data_root

    folder = data_root() / "schemas" / "protocol"
    found = {name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8")) for name in _SCHEMAS}
    body = json.loads(json.dumps(found["request"]))
    body["properties"].pop("action")
    body["required"] = [name for name in body.get("required", []) if name != "action"]
    body["description"] = "The body of POST /actions/{key}: one request, without `action` (the URL names it)."
    found["body"] = body
    return found


_SCHEMAS = ("request", "response", "error")


def app(worker: Worker) -> Any:
    """The Starlette application, answering with `worker`'s connectors."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connector import __version__

    def manifest() -> Any:
        return worker.connector(False).manifest

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "version": __version__, "actions": len(manifest().actions)})

    async def actions(request: Request) -> JSONResponse:
        return JSONResponse([_summary(action) for action in sorted(manifest().actions.values(), key=lambda a: a.key)])

    async def describe(request: Request) -> JSONResponse:
        key = request.path_params["key"]
        action = manifest().actions.get(key)
        if action is None:
            return JSONResponse(error_response(_unknown(manifest(), key), None), status_code=404)
        return JSONResponse({**_summary(action), "input_schema": action.input_schema})

    async def run(request: Request) -> JSONResponse:
        key = request.path_params["key"]
        try:
            value = await _body(request)
        except InputValidationError as exc:
            status = 413 if isinstance(exc, _TooLarge) else 400
            return JSONResponse(error_response(exc, None), status_code=status)
        response = await worker.ahandle({**value, "action": key})
        status, headers = status_of(response)
        return JSONResponse(response, status_code=status, headers=headers)

    published: dict[str, dict[str, Any]] = {}

    def schemas() -> dict[str, dict[str, Any]]:
        if not published:
            published.update(protocol_schemas())
        return published

    async def schema_index(request: Request) -> JSONResponse:
        return JSONResponse({name: f"/schemas/{name}.json" for name in schemas()})

    async def schema(request: Request) -> JSONResponse:
        file = request.path_params["file"]
        name = file.removesuffix(".json")
        if not file.endswith(".json") or name not in schemas():
            known = ", ".join(f"{n}.json" for n in schemas())
            error = InputValidationError(file, [Violation("(schema)", "", f"no schema {file!r}; known: {known}")])
            return JSONResponse(error_response(error, None), status_code=404)
        return JSONResponse(schemas()[name], media_type="application/schema+json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await worker.aclose()

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/actions", actions, methods=["GET"]),
            Route("/actions/{key}", describe, methods=["GET"]),
            Route("/actions/{key}", run, methods=["POST"]),
            Route("/schemas", schema_index, methods=["GET"]),
            Route("/schemas/{file}", schema, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _summary(action: Any) -> dict[str, Any]:
    return {
        "key": action.key,
        "label": action.label,
        "description": action.description,
        "product": action.product,
        "safety": action.safety,
    }


def _unknown(manifest: Any, key: str) -> InputValidationError:
    try:
        manifest.action(key)
    except KeyError as exc:
        return InputValidationError(key, [Violation("(action)", "", str(exc.args[0]))])
    raise AssertionError(key)


class _TooLarge(InputValidationError):
    """A body over MAX_BODY_BYTES (answered 413, not read further)."""

    def __init__(self) -> None:
        super().__init__("the request body", [Violation("(request)", "", f"larger than {MAX_BODY_BYTES} bytes")])


async def _body(request: Any) -> dict[str, Any]:
    """The request body: a JSON object without `action` (the URL names it)."""
    from connector._json_input import loads

    subject = "the request body"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise InputValidationError(subject, [Violation("(request)", "", "not UTF-8 text")]) from None
    value = loads(subject, "(request)", text)
    if not isinstance(value, dict):
        raise InputValidationError(subject, [Violation("(request)", "", "must be a JSON object")])
    if "action" in value:
        raise InputValidationError(
            subject, [Violation("action", "/action", "the URL names the action (POST /actions/{key}): remove it")]
        )
    return value


# --- the command ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zoho-connector serve", description="Serve the engine protocol over HTTP: POST /actions/{key}."
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port, printed at start)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--engine", action="store_true", help="no local retries for any request")
    parser.add_argument("--access-log", action="store_true", help="log method, path and status of each request")
    args = parser.parse_args(list(argv))

    import uvicorn

    if not _is_loopback(args.host):
        sys.stderr.write(
            f"warning: serving on {args.host}: the server has no authentication of its own; anyone who reaches "
            "it can run actions with the connections it knows\n"
        )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it every answer waits
    # ~40 ms on Nagle and delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    worker = Worker(engine=args.engine)
    config = uvicorn.Config(
        app(worker),
        log_level="info" if args.access_log else "warning",
        access_log=args.access_log,
        server_header=False,
        lifespan="on",
    )
    sys.stdout.write(json.dumps({"listening": f"http://{shown}:{port}"}) + "\n")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn shut down gracefully, then re-raised Ctrl-C
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
