"""Running the sandbox: blocking `serve`, `serve_in_thread` for tests, and `main` for `zoho-connector sandbox`."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from connector.connection import is_loopback
from connector.sandbox.app import create_app
from connector.sandbox.faults import FaultConfig
from connector.sandbox.seed import seed_records
from connector.sandbox.state import SandboxState


def _bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so port 0 resolves to a real port we can print and hand out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it every answer
    # with a body waits ~40 ms on Nagle and delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Starlette) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    return uvicorn.Server(config)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data: str | os.PathLike[str] | None = None,
    faults: FaultConfig | None = None,
    *,
    state: SandboxState | None = None,
    allow_remote: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted; prints the bound URL first. `data` is loaded at start and saved at shutdown."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to listen on {host}: the sandbox has no real security; pass allow_remote=True")
    sandbox = state if state is not None else SandboxState.load_or_new(data)
    app = create_app(sandbox, faults=faults, data_path=data)
    sock = _bind(host, port)
    url = _url(sock)
    (announce or (lambda u: print(u, flush=True)))(url)
    _server(app).run(sockets=[sock])


@contextmanager
def serve_in_thread(
    app_or_state: Starlette | SandboxState | None = None,
    *,
    faults: FaultConfig | None = None,
    clock: Callable[[], float] = time.time,
    timeout: float = 10.0,
) -> Iterator[str]:
    """Uvicorn on 127.0.0.1 with a free port in a background thread; yields the base URL, then shuts down."""
    app = app_or_state if isinstance(app_or_state, Starlette) else create_app(app_or_state, faults=faults, clock=clock)
    sock = _bind("127.0.0.1", 0)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="zoho-sandbox", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        yield _url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zoho-connector sandbox", description="A local emulator of Zoho Accounts, CRM v8 and Books v3."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only unless --allow-remote)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument("--data", help="JSON file to load at start and save at shutdown")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--client-id", help="register this OAuth client id (besides the default 1000.SANDBOXCLIENT)")
    p.add_argument("--client-secret", default="sandbox-secret", help="secret for --client-id")
    p.add_argument("--token-error-status", type=int, choices=(200, 400), help="HTTP status of Accounts errors")
    p.add_argument("--seed", action="append", default=[], metavar="MODULE=N", help="seed N records, e.g. Leads=1000")
    f = p.add_argument_group("faults")
    f.add_argument("--fail-rate-429", type=float, default=0.0, help="fraction of API calls answered 429")
    f.add_argument("--fail-rate-5xx", type=float, default=0.0, help="fraction of API calls answered 5xx")
    f.add_argument("--fail-rate-throttle", type=float, default=0.0, help="fraction answered with CRM's 400 throttle")
    f.add_argument("--fail-next", type=int, default=0, help="answer the next N API calls with --fail-kind")
    f.add_argument("--fail-kind", choices=("429", "throttle", "5xx"), default="429")
    f.add_argument("--retry-after", type=int, help="Retry-After seconds on injected 429s (none by default)")
    f.add_argument("--status-5xx", type=int, default=500, help="status of injected 5xx answers")
    f.add_argument("--slow-ms", type=float, default=0.0, help="delay every API call by this many milliseconds")
    f.add_argument("--fault-seed", type=int, help="seed for the random fault draws")
    return p


def main(argv: list[str] | None = None) -> int:
    """`zoho-connector sandbox …`: 0 after a clean shutdown, 2 for bad arguments or a missing extra."""
    args = _parser().parse_args(argv)
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print("the sandbox needs the optional extra: pip install 'zoho-connector[sandbox]'", file=sys.stderr)
        return 2
    if not args.allow_remote and not is_loopback(args.host):
        print(f"refusing to listen on {args.host} without --allow-remote", file=sys.stderr)
        return 2
    faults = FaultConfig(
        kind=args.fail_kind,
        next_n=args.fail_next,
        rate_429=args.fail_rate_429,
        rate_5xx=args.fail_rate_5xx,
        rate_throttle=args.fail_rate_throttle,
        retry_after=args.retry_after,
        status_5xx=args.status_5xx,
        slow_ms=args.slow_ms,
        seed=args.fault_seed,
    )
    state = SandboxState.load_or_new(args.data)
    if args.client_id:
        state.add_client(args.client_id, args.client_secret)
    if args.token_error_status:
        state.options.token_error_status = args.token_error_status
    for spec in args.seed:
        module, _, count = spec.partition("=")
        if state.module(module) is None or not count.isdigit():
            print(f"bad --seed {spec!r}: use MODULE=N with a known module", file=sys.stderr)
            return 2
        seed_records(state, module, int(count), time.time())
    try:
        serve(args.host, args.port, args.data, faults, state=state, allow_remote=args.allow_remote)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0
