"""Running the sandbox: blocking `serve`, `serve_in_thread` for tests, and `main` for `zoho-connector sandbox`.

Starlette and uvicorn are imported only when a server is built, so `zoho-connector sandbox --help` and argument
errors stay fast and never load them.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from connector.connection import is_loopback
from connector.sandbox.faults import FAULT_KINDS, JSON_KEYS, FaultConfig
from connector.sandbox.seed import seed_records
from connector.sandbox.state import EDITION_CONCURRENCY, SandboxState

if TYPE_CHECKING:
    from starlette.applications import Starlette


def _bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so port 0 resolves to a real port we can print and hand out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it every answer
    # with a body waits ~40 ms on Nagle and delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before the URL is printed: a client that connects at once (a benchmark on a busy machine) is queued
    # until uvicorn accepts, rather than refused because uvicorn has not called listen() yet.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Starlette) -> Any:
    import uvicorn

    # The app writes Date from its own (injectable) clock: see app.DateHeader.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, date_header=False)
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
    from connector.sandbox.app import create_app

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
    from starlette.applications import Starlette

    from connector.sandbox.app import create_app

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


ADMIN_HELP = """\
admin API (no token needed; for tests, benchmarks and demos):
  GET|DELETE /__sandbox/stats   requests per "METHOD path", token grants and errors, injected faults,
                                natural 429s ("throttled"), records per module, live tokens; DELETE clears
  GET|POST|DELETE /__sandbox/faults
                                show, replace or clear the faults. JSON keys are the fault flags above without
                                the dashes: {"fail_next": 2, "fail_kind": "429", "retry_after": 7},
                                {"fail_for_seconds": 30, "fault_targets": ["crm"]}, {"fail_rate_5xx": 0.1}, ...
                                plus the actions {"expire_access_tokens": true} and
                                {"revoke_refresh_token": "<token>"}
  POST /__sandbox/tokens        {"scope": "...", "client_id": "..."} -> a refresh and access token pair at once,
                                with every scope unless "scope" is given
  POST /__sandbox/grant-code    {"scope": "...", "expires_in": 180} -> a self-client grant code
  POST /__sandbox/seed          {"module": "Leads", "count": 1000} (CRM),
                                {"books_kind": "invoices", "count": 50, "organization_id": "..."} (Books) or
                                {"store_kind": "transactions", "count": 100} (the Partner Store)
  POST /__sandbox/modules       {"api_name": "Projects", "fields": [{"api_name": "Name", "data_type": "text"}]}
                                (Zoho's own POST /crm/v8/settings/modules and /settings/fields work too)
  GET|POST /__sandbox/store     the Partner Store: {"page_headers": "none"}, {"order": "newest_first"},
                                {"add": {"kind": "transactions", "count": 5}} (dated by the sandbox clock),
                                {"update": {"kind": "commissions", "id": "...", "fields": {"status": "requested"}}}
  GET|POST /__sandbox/options   show or switch {"modified_since": "exclusive"|"inclusive"}
  POST /__sandbox/reset         back to the seeded world (keeps registered clients)
  POST /__sandbox/save          write the state to --data now
  GET /__sandbox/notifications/channels
                                every CRM notification subscription, with "expired" and "deliverable"
  GET /__sandbox/notifications/deliveries?since=N&channel_id=...&wait=S
                                the notifications POSTed to loopback notify URLs (payload, status or error);
                                wait=S first waits up to S seconds until every one so far is sent
  POST /__sandbox/notifications/expire
                                {"channel_id": "...", "module": "Leads", "in_seconds": 0} expires a channel early

OAuth: GET /oauth/v2/auth is a consent page that auto-approves every request at once and redirects back with a
code; tokens carry the scopes that were asked for, and calls outside them get Zoho's scope errors.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zoho-connector sandbox",
        description="A local emulator of Zoho Accounts, CRM v8 and Books v3, as strict as Zoho about scopes, "
        "limits and required fields.",
        epilog=ADMIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only unless --allow-remote)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument("--data", help="JSON file to load at start and save at shutdown")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--client-id", help="register this OAuth client id (besides the default 1000.SANDBOXCLIENT)")
    p.add_argument("--client-secret", default="sandbox-secret", help="secret for --client-id")
    p.add_argument(
        "--token-error-status", type=int, choices=(200, 400), help="HTTP status of Accounts errors (default 200)"
    )
    p.add_argument(
        "--edition",
        choices=tuple(EDITION_CONCURRENCY),
        help="CRM edition, which caps concurrent calls (free 5 ... ultimate 25; default enterprise, 20)",
    )
    p.add_argument("--max-concurrent", type=int, help="cap concurrent CRM calls at N instead of the edition's cap")
    p.add_argument(
        "--modified-since",
        choices=("exclusive", "inclusive"),
        help="whether If-Modified-Since keeps a record modified at exactly that instant (Zoho does not say; "
        "default exclusive)",
    )
    p.add_argument("--seed", action="append", default=[], metavar="MODULE=N", help="seed N records, e.g. Leads=1000")
    p.add_argument(
        "--write-connections",
        metavar="FILE",
        help="once listening, write a connections file naming one connection, `sandbox` (a refresh token of every "
        "scope, tokens kept in a SQLite store beside FILE), for workers and engines: --connections FILE",
    )
    f = p.add_argument_group("faults (also POST /__sandbox/faults, same names with underscores)")
    f.add_argument("--fail-rate-429", type=float, default=0.0, help="fraction of API calls answered 429")
    f.add_argument("--fail-rate-5xx", type=float, default=0.0, help="fraction of API calls answered 5xx")
    f.add_argument("--fail-rate-throttle", type=float, default=0.0, help="fraction answered with CRM's 400 throttle")
    f.add_argument("--fail-next", type=int, default=0, help="answer the next N API calls with --fail-kind")
    f.add_argument("--fail-for-seconds", type=float, help="answer every API call with --fail-kind for S seconds")
    f.add_argument("--fail-kind", choices=FAULT_KINDS, default="429")
    f.add_argument("--retry-after", type=int, help="Retry-After seconds on injected 429s and 5xx (none by default)")
    f.add_argument("--status-5xx", type=int, default=500, help="status of injected 5xx answers")
    f.add_argument(
        "--slow-ms",
        type=float,
        default=0.0,
        help="answer every API call this many milliseconds after it arrived (its response time)",
    )
    f.add_argument(
        "--slow-reply-ms", type=float, default=0.0, help="hold every answer back this long after the call was handled"
    )
    f.add_argument("--fault-targets", default="crm,books", help="products to break: crm,books,accounts")
    f.add_argument("--fault-seed", type=int, help="seed for the random fault draws")
    return p


def write_connections(path: str | os.PathLike[str], url: str, state: SandboxState) -> None:
    """A connections file (name → connection) for the sandbox at `url`, private to its owner: one connection,
    `sandbox`, holding a new refresh token of every scope; its tokens go to a SQLite store beside the file, so every
    worker given the file shares them (and the account's limits)."""
    import json
    from pathlib import Path

    from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, accounts
    from connector.sandbox.scopes import ALL_SCOPES

    file = Path(path).resolve()
    refresh = accounts.new_refresh_token(state, DEFAULT_CLIENT_ID, ALL_SCOPES, time.time())
    connection = {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": refresh.token,
        "accounts_url": url,
        "api_domain": url,
        "store_url": f"{url}/api/v1/partner",
        "token_store": f"sqlite:///{file.with_suffix('.tokens.db')}",
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump({"sandbox": connection}, out, indent=2)
        out.write("\n")
    os.chmod(file, 0o600)  # an existing file keeps its mode on open: the file holds a secret


def fault_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The fault flags as the JSON body POST /__sandbox/faults takes (the same names)."""
    return {key: getattr(args, key) for key in JSON_KEYS if getattr(args, key) is not None}


def main(argv: list[str] | None = None) -> int:
    """`zoho-connector sandbox …`: 0 after a clean shutdown, 2 for bad arguments or a broken install."""
    args = _parser().parse_args(argv)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("the sandbox needs starlette and uvicorn: pip install --force-reinstall zoho-connector", file=sys.stderr)
        return 2
    if not args.allow_remote and not is_loopback(args.host):
        print(f"refusing to listen on {args.host} without --allow-remote", file=sys.stderr)
        return 2
    try:
        faults = FaultConfig.from_json(fault_flags(args), time.time())
    except ValueError as exc:
        print(f"bad fault flags: {exc}", file=sys.stderr)
        return 2
    state = SandboxState.load_or_new(args.data)
    if args.client_id:
        state.add_client(args.client_id, args.client_secret)
    if args.token_error_status:
        state.options.token_error_status = args.token_error_status
    if args.edition:
        state.options.edition = args.edition
    if args.max_concurrent is not None:
        state.options.max_concurrent = args.max_concurrent
    if args.modified_since:
        state.options.modified_since = args.modified_since
    for spec in args.seed:
        module, _, count = spec.partition("=")
        if state.module(module) is None or not count.isdigit():
            print(f"bad --seed {spec!r}: use MODULE=N with a known module", file=sys.stderr)
            return 2
        seed_records(state, module, int(count), time.time())

    def announce(url: str) -> None:
        if args.write_connections:  # before the URL: whoever waits for the URL finds the file written
            write_connections(args.write_connections, url, state)
        print(url, flush=True)

    try:
        serve(args.host, args.port, args.data, faults, state=state, allow_remote=args.allow_remote, announce=announce)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0
