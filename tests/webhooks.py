"""A real loopback HTTP endpoint for tests that receive Zoho's notifications (the sandbox POSTs them here).

`Listener` runs a small threaded http.server on 127.0.0.1 and a free port, records every request and answers
with `status` (or never answers, `hang`, to exercise the sender's timeout). `wait_for(n)` blocks on a condition
until n requests have arrived, so no test sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Listener", "Received", "listening"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Listener:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.hang = threading.Event()  # set: accept requests but never answer them
        self._arrived = threading.Condition()
        self._release = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with listener._arrived:
                    listener.received.append(Received("POST", self.path, dict(self.headers), body))
                    listener._arrived.notify_all()
                if listener.hang.is_set():
                    listener._release.wait()
                    return
                self.send_response(listener.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def payloads(self) -> list[Any]:
        return [r.json() for r in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests, once they have arrived; AssertionError after `timeout` seconds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived within {timeout} s")
            return self.received[:count]

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def listening() -> Iterator[Listener]:
    listener = Listener()
    thread = threading.Thread(
        target=listener.server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-listener", daemon=True
    )
    thread.start()
    try:
        yield listener
    finally:
        listener.close()
        thread.join(5)
