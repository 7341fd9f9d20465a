"""Delivering notifications: Zoho's POSTs to each channel's notify URL, made in the background, in order.

`NotifyMiddleware` collects a CRM request's record changes (changes.collecting) and hands them to the app's
`Outbox` just before the answer starts, so a client that reads the answer and then asks the admin API already finds
the deliveries queued. The outbox sends them one at a time, in order, from a task of its own, each with a short
timeout (Options.notify_timeout), and logs every one: the request that changed the records never waits for them.

Only loopback notify URLs (127.0.0.0/8, ::1, localhost) are called: the sandbox must not become a way to make
requests to other hosts. A channel with another URL is accepted, as Zoho accepts it, and its notifications are
logged as not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.connection import is_loopback
from connector.sandbox import changes
from connector.sandbox.state import JSON, SandboxState

NOT_LOOPBACK = "not delivered: the sandbox delivers only to loopback notify URLs (127.0.0.1, ::1, localhost)"


def deliverable(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


@dataclass
class _Job:
    channel_id: str
    module: str
    operation: str
    url: str
    payload: JSON


class Outbox:
    """Queued deliveries and the log of those made. One worker task runs while there is work, so nothing lingers
    on an idle event loop; `wait_idle` lets a test know every delivery so far has been made, without sleeping."""

    def __init__(self, timeout: Callable[[], float], transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.log: list[JSON] = []
        self._timeout = timeout
        self._transport = transport  # tests may route deliveries through a mock transport
        self._queue: deque[_Job] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._sending = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Deliveries queued or under way."""
        return len(self._queue) + self._sending

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def publish(self, state: SandboxState, recorded: list[changes.Change], now: float) -> None:
        for sub, payload in changes.notifications(state, recorded, now):
            self._queue.append(_Job(sub.channel_id, sub.module, str(payload["operation"]), sub.notify_url, payload))
        if self._queue and self._worker is None:
            self._idle.clear()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="sandbox-notifications")

    async def wait_idle(self, seconds: float) -> bool:
        """True once every queued delivery has been made; False if that takes longer than `seconds`."""
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def clear(self) -> None:
        self._queue.clear()
        self.log.clear()

    async def aclose(self) -> None:
        self._queue.clear()
        worker = self._worker
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _work(self) -> None:
        try:
            while self._queue:  # checked again after the client closes: work may have come meanwhile
                async with httpx.AsyncClient(transport=self._transport, trust_env=False) as client:
                    while self._queue:
                        job = self._queue.popleft()
                        self._sending = True
                        self.log.append(await self._deliver(client, job))
                        self._sending = False
        finally:
            self._sending = False
            self._worker = None
            self._idle.set()

    async def _deliver(self, client: httpx.AsyncClient, job: _Job) -> JSON:
        entry: JSON = {
            "index": len(self.log),
            "channel_id": job.channel_id,
            "module": job.module,
            "operation": job.operation,
            "notify_url": job.url,
            "delivered": False,
            "status": None,
            "error": None,
            "payload": job.payload,
        }
        if not deliverable(job.url):
            entry["error"] = NOT_LOOPBACK
            return entry
        timeout = self._timeout()
        try:
            response = await client.post(job.url, json=job.payload, timeout=timeout)
        except httpx.TimeoutException:
            entry["error"] = f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            entry.update(delivered=True, status=response.status_code)
        return entry


class NotifyMiddleware:
    """Publishes the record changes of each CRM request to the outbox when its answer starts (or when it ends
    without one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/crm/"):
            await self.app(scope, receive, send)
            return
        app_state: Any = scope["app"].state

        def publish(recorded: list[changes.Change]) -> None:
            if recorded:
                app_state.outbox.publish(app_state.sandbox, list(recorded), float(app_state.clock()))
                recorded.clear()

        with changes.collecting() as recorded:

            async def send_after_publishing(message: Message) -> None:
                if message["type"] == "http.response.start":
                    publish(recorded)
                await send(message)

            try:
                await self.app(scope, receive, send_after_publishing)
            finally:
                publish(recorded)
