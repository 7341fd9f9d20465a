"""One engine-protocol request in, one response out, for the long-lived workers (`invoke --lines`, `serve`).

A Worker keeps its connectors for its whole life, so tokens, HTTP connections and rate-limit state are reused from
one request to the next. A request with `"engine": true` (or a worker started with engine mode) runs without local
retries; the two modes are two connectors, each with the connection's own concurrency cap.

Every failure becomes the protocol's error response, the request's `id` included when it had one: a connector
error keeps its classification, and anything unexpected (a bug) is an `internal_error` whose message names the
exception, scrubbed of secrets, while the traceback goes to the `connector` logger.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from connector import _fastschema
from connector._redact import redact_text
from connector.errors import ConnectorError

if TYPE_CHECKING:
    from connector.runner import Connector

__all__ = ["Request", "Worker", "parse_request", "request_id"]

log = logging.getLogger("connector.worker")


def request_id(value: Any) -> str | int | None:
    """The id a request carries, even when the request is otherwise broken (so its error finds it)."""
    if isinstance(value, Mapping):
        found = value.get("id")
        if isinstance(found, str) or (isinstance(found, int) and not isinstance(found, bool)):
            return found
    return None


class Request(NamedTuple):
    """A checked invoke request (the fields of connector.protocol.InvokeRequest)."""

    action: str
    inputs: dict[str, Any] | None
    connection: dict[str, Any] | str
    engine: bool = False
    id: str | int | None = None


@cache
def request_schema() -> dict[str, Any]:
    """The published request schema, schemas/protocol/request.json, as shipped with the package."""
    from connector.manifest import data_root

    found: dict[str, Any] = json.loads((data_root() / "schemas" / "protocol" / "request.json").read_text("utf-8"))
    return found


def parse_request(value: Any) -> Request:
    """The request checked against schemas/protocol/request.json. A valid request is judged without pydantic
    (connector._fastschema: a certain "valid" that never says valid where the schema refuses), so a one-request
    `invoke` process starts as fast as `run`; anything else goes to the pydantic model the schema is generated
    from (connector.protocol), which refuses it and names every offending field."""
    ident = value.get("id") if isinstance(value, Mapping) else None
    plain_id = ident is None or isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool))
    if plain_id and _fastschema.decide(request_schema(), value) is True:
        return Request(
            action=value["action"],
            inputs=value.get("inputs"),
            connection=value["connection"],
            engine=value.get("engine", False),
            id=ident,
        )
    from connector.protocol import parse_request as checked  # pydantic: only for a request the schema may refuse

    request = checked(value)
    return Request(request.action, request.inputs, request.connection, request.engine, request.id)


class Worker:
    """Runs protocol requests on connectors kept for the worker's life. Thread-safe."""

    def __init__(self, *, engine: bool = False, **connector_options: Any) -> None:
        self._engine = engine
        self._options = connector_options
        self._connectors: dict[bool, Connector] = {}
        self._lock = threading.Lock()

    def connector(self, engine: bool) -> Connector:
        mode = engine or self._engine
        with self._lock:
            found = self._connectors.get(mode)
            if found is None:
                from connector.runner import Connector

                found = self._connectors[mode] = Connector.load(engine_mode=mode, **self._options)
            return found

    def parse(self, value: Any) -> Request:
        return parse_request(value)

    def handle(self, value: Any) -> dict[str, Any]:
        """The response to one request (already parsed from JSON): run with the blocking API."""
        ident = request_id(value)
        try:
            request = self.parse(value)
            connector = self.connector(request.engine)
            result = connector.run(request.action, request.inputs or {}, connection=request.connection)
        except Exception as exc:  # every failure is an answer; the worker carries on
            return error_response(exc, ident)
        return ok_response(result, ident)

    async def ahandle(self, value: Any) -> dict[str, Any]:
        """The response to one request, with the async API (for a server's event loop)."""
        ident = request_id(value)
        try:
            request = self.parse(value)
            connector = self.connector(request.engine)
            result = await connector.arun(request.action, request.inputs or {}, connection=request.connection)
        except Exception as exc:  # every failure is an answer; the worker carries on
            return error_response(exc, ident)
        return ok_response(result, ident)

    def close(self) -> None:
        with self._lock:
            connectors, self._connectors = list(self._connectors.values()), {}
        for connector in connectors:
            connector.close()

    async def aclose(self) -> None:
        with self._lock:
            connectors, self._connectors = list(self._connectors.values()), {}
        for connector in connectors:
            await connector.aclose()
            connector.close()


def ok_response(result: Mapping[str, Any], ident: str | int | None) -> dict[str, Any]:
    return {**({"id": ident} if ident is not None else {}), "ok": True, **result}


def error_response(exc: BaseException, ident: str | int | None) -> dict[str, Any]:
    if isinstance(exc, ConnectorError):
        error = exc.to_dict()
    else:
        log.error("unexpected %s while running a request", type(exc).__name__, exc_info=_scrubbed(exc))
        error = {
            "error": {
                "type": "internal_error",
                "message": f"unexpected {type(exc).__name__}: {redact_text(str(exc))} (the worker's log has the "
                "traceback)",
                "retryable": False,
                "retry_after": None,
                "may_have_acted": True,  # nothing says how far it got
            }
        }
    return {**({"id": ident} if ident is not None else {}), "ok": False, **error}


def _scrubbed(exc: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    """The exception for the log, its text scrubbed of secrets (the traceback's frames carry no values)."""
    clean = RuntimeError(f"{type(exc).__name__}: {redact_text(str(exc))}")
    return (RuntimeError, clean, exc.__traceback__)
