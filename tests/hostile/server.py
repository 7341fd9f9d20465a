"""A local HTTP server that misbehaves on purpose: raw sockets, so it can lie in ways a real framework would not.

Each test routes `(method, path)` to a handler that gets the parsed request and the socket. A handler returns a
`Reply` (written in one send, so Nagle never delays it), or writes to the socket itself through `Wire` and
returns None: trickling bodies, endless chunked bodies, or closing without an answer. Every connection closes after
one exchange, so no pooled connection is ever reused behind a test's back.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["HostileServer", "Reply", "Request", "Wire"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    body: Any = field(default_factory=dict)  # dict/list → JSON; str/bytes → sent as they are
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json;charset=UTF-8"

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode()
        else:
            payload = json.dumps(self.body).encode()
        head = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        if self.content_type:
            head.append(f"Content-Type: {self.content_type}")
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        head += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
        return "\r\n".join(head).encode() + payload


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found", 429: "Too Many"}


class Wire:
    """The raw socket of one exchange, for handlers that answer byte by byte."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping
        self.sent = 0

    def send(self, data: bytes) -> bool:
        """False once the client has gone away (or the server is stopping)."""
        if self.stopping.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def head(self, status: int = 200, headers: dict[str, str] | None = None) -> bool:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines += ["Connection: close", "", ""]
        return self.send("\r\n".join(lines).encode())


Handler = Callable[[Request, Wire], Reply | None]


class HostileServer:
    """Serves on 127.0.0.1 from a background thread until `close()`; counts every request it reads."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self.bytes_sent: list[int] = []  # per raw (Wire) exchange, once the exchange has ended
        self.exchange_ended = threading.Event()  # set as each raw exchange is counted
        self._lock = threading.Lock()
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def on(self, method: str, path: str, handler: Handler | Reply) -> None:
        """Route `method path` (path without query) to a handler, or to one fixed reply."""
        if isinstance(handler, Reply):
            fixed = handler
            self.routes[method, path] = lambda _request, _wire: fixed
        else:
            self.routes[method, path] = handler

    def sent_once_ended(self, timeout: float = 5.0) -> list[int]:
        """bytes_sent once the server thread has finished its exchange: it may still be writing into a socket the
        client has just closed when the call returns."""
        self.exchange_ended.wait(timeout)
        return list(self.bytes_sent)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if (method in (None, r.method)) and (path in (None, r.path)))

    def counts(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter((r.method, r.path) for r in self.requests)

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- one exchange ------------------------------------------------------------------------------------------

    def _handle(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)
        try:
            request = _read_request(sock)
        except (OSError, ValueError):
            return
        if request is None:
            return
        with self._lock:
            self.requests.append(request)
        handler = self.routes.get((request.method, request.path))
        wire = Wire(sock, self.stopping)
        if handler is None:
            reply: Reply | None = Reply({"code": "INVALID_URL_PATTERN", "message": "no route"}, status=404)
        else:
            reply = handler(request, wire)
        if reply is not None:
            wire.send(reply.encode())
        else:
            with self._lock:
                self.bytes_sent.append(wire.sent)
            self.exchange_ended.set()
        with contextlib.suppress(OSError):  # the client may have gone already
            sock.shutdown(socket.SHUT_RDWR)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers, rest[:length])
