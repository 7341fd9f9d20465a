"""`zoho-connector webhook listen`: receive a webhook trigger's events and print them as JSON lines.

    zoho-connector webhook listen --trigger crmRecordEvents --inputs '{"recordType": "Leads"}' \\
        --connection @conn.json --port 8765 [--host 127.0.0.1] [--public-url https://hooks.example.com/zoho]

It starts listening first, then subscribes (so no callback can arrive before someone listens), prints one JSON
event per line on stdout, renews the channel before it expires, and unsubscribes on Ctrl-C or SIGTERM. Zoho must be
able to reach the listener: behind a tunnel or a proxy, pass the address Zoho should call as --public-url.
Forged, stale and unreadable callbacks are answered 403, 410 and 400 and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from connector._json_input import argument
from connector.cli import _connection_argument
from connector.errors import WebhookRejected

__all__ = ["main"]

STATUS = {"forged": 403, "stale": 410, "malformed": 400}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="zoho-connector webhook", description="receive a webhook trigger's events")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("listen", help="subscribe, print each event as a JSON line, renew, unsubscribe on exit")
    p.add_argument("--trigger", required=True, help="a webhook trigger's key (zoho-connector triggers)")
    p.add_argument("--inputs", default="{}", help="the trigger's inputs as JSON, or @file")
    p.add_argument("--connection", help="connection as JSON, @file or a name in --connections FILE")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, required=True, help="port to listen on")
    p.add_argument("--public-url", help="the URL Zoho calls (default: http://HOST:PORT/)")
    args = parser.parse_args(argv)

    from connector.runner import Connector

    inputs = argument("--inputs", args.inputs)
    connection = _connection_argument(args.connection)
    with Connector.load() as connector:
        listener = Listener(connector, args.trigger, inputs, connection, args.public_url or _url(args.host, args.port))
        listener.serve(args.host, args.port)
    return 0


class Listener:
    """A subscription held open for as long as the server runs."""

    def __init__(
        self,
        connector: Any,
        trigger: str,
        inputs: Any,
        connection: Any,
        notify_url: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.connector = connector
        self.trigger = trigger
        self.inputs = inputs
        self.connection = connection
        self.notify_url = notify_url
        self.subscription: dict[str, Any] | None = None
        self._sleep = sleep  # with the connector's clock, all that tells the renewer the time

    def serve(self, host: str, port: int) -> None:
        """Bind, subscribe, serve until Ctrl-C or SIGTERM, unsubscribe. Callbacks that arrive between the
        subscription and the server's first accept wait in the socket's backlog: none is lost.

        Ctrl-C and SIGTERM only ask the server to stop, from before the subscription on: one that comes while Zoho
        is opening the channel lets the subscription finish, then the server stops at once and the channel is
        closed, rather than the process dying with a channel open for a day. Uvicorn takes both signals over while
        it runs and raises them again when it stops, to the same handler: the command then ends normally (exit 0)."""
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        from connector.sandbox.server import _bind

        sock = _bind(host, port)
        app = Starlette(routes=[Route("/{path:path}", self._callback, methods=["POST"])], lifespan=self._lifespan)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))

        def stop(signum: int, frame: Any) -> None:
            server.should_exit = True

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.subscription = self.connector.subscribe(
                self.trigger, self.inputs, connection=self.connection, notify_url=self.notify_url
            )
            try:
                _status({"event": "subscribed", **_public(self.subscription), "notify_url": self.notify_url})
                server.run(sockets=[sock])
            finally:
                self.connector.unsubscribe(self.subscription, connection=self.connection)
                _status({"event": "unsubscribed", "channel_id": self.subscription["channel_id"]})
        finally:
            sock.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        renewer = asyncio.create_task(self._renew_forever())
        try:
            yield
        finally:
            renewer.cancel()

    async def _renew_forever(self) -> None:
        """Renew the channel once its `renew_after` has come (an hour before it expires), by the connector's clock,
        the one the subscription's times were set by; a failed renewal is tried again a minute later."""
        from datetime import datetime

        from connector.errors import ConnectorError

        subscription = self.subscription
        while subscription is not None:
            due = datetime.fromisoformat(subscription["renew_after"]).timestamp()
            await self._sleep(max(0.0, due - self.connector._clock()))
            try:
                renewed: dict[str, Any] = await asyncio.to_thread(
                    self.connector.renew, subscription, connection=self.connection
                )
            except ConnectorError as exc:  # try again in a minute: the channel still has an hour to live
                _status({"event": "renew_failed", **exc.to_dict()})
                await self._sleep(60)
                continue
            self.subscription = subscription = renewed
            _status({"event": "renewed", **_public(renewed)})

    async def _callback(self, request: Any) -> Any:
        from starlette.responses import Response

        if self.subscription is None:
            return Response(status_code=503)
        body = await request.body()
        try:
            events = await asyncio.to_thread(
                self.connector.handle_webhook,
                self.subscription,
                dict(request.headers),
                body,
                connection=self.connection,
            )
        except WebhookRejected as exc:
            _status({"event": "rejected", "reason": exc.reason})
            return Response(status_code=STATUS[exc.reason])
        for event in events:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return Response(status_code=200)


def _status(message: dict[str, Any]) -> None:
    """Progress goes to stderr, leaving stdout to the events."""
    sys.stderr.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stderr.flush()


def _public(subscription: dict[str, Any]) -> dict[str, Any]:
    """What may be printed of a subscription: not its verification token."""
    return {"channel_id": subscription["channel_id"], "expires_at": subscription["expires_at"]}


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
