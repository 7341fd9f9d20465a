"""A minimal loopback Zoho CRM stand-in for benchmarks: fast, stateless, and honest about page limits."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PER_PAGE = 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Zoho serves
    total_records = 0

    def setup(self) -> None:
        super().setup()
        # one segment per answer: without this, Nagle + delayed ACK add ~40 ms to every keep-alive call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")  # crm, v8, Module[, id]
        self.server.requests += 1  # type: ignore[attr-defined]
        body: dict[str, object]
        if len(parts) == 4:
            body = {"data": [{"id": parts[3], "Last_Name": "Doe", "Email": "doe@example.com"}]}
        else:
            body = self._page(query)
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _page(self, query: dict[str, str]) -> dict[str, object]:
        per_page = int(query.get("per_page", PER_PAGE))
        start = int(query["page_token"]) if "page_token" in query else (int(query.get("page", 1)) - 1) * per_page
        total = self.total_records
        rows = [
            {"id": str(5394166000000000000 + i), "Last_Name": f"Lead {i}"}
            for i in range(start, min(total, start + per_page))
        ]
        more = start + per_page < total
        info: dict[str, object] = {"per_page": per_page, "count": len(rows), "more_records": more}
        if more and start + per_page >= 2000:
            info["next_page_token"] = str(start + per_page)
        return {"data": rows, "info": info}


@contextmanager
def serve(total_records: int = 0) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    handler = type("Handler", (_Handler,), {"total_records": total_records})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
