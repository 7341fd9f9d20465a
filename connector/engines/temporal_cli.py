"""`zoho-connector temporal …`: a worker, and starting or scheduling an automation file on Temporal.

    zoho-connector temporal worker --task-queue Q --connections FILE [--address HOST:PORT --namespace NS]
    zoho-connector temporal start FILE [--connection NAME] [--trigger JSON] [--id ID] [--no-wait]
    zoho-connector temporal schedule FILE [--connection NAME] [--id ID]

The address and namespace default to $TEMPORAL_ADDRESS (else localhost:7233) and $TEMPORAL_NAMESPACE (else
default). The Temporal SDK can crash while the interpreter shuts down after a command has finished
(temporalio/sdk-python#300), so once a client has connected the process ends with `os._exit` and the command's
own exit code, after flushing its output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector._json_input import argument
from connector.errors import ConnectionConfigError, ConnectorError, InputValidationError, Violation
from connector.named_connections import ENV

__all__ = ["main"]

CONNECTION_HELP = (
    "the connection's NAME in the workers' connections file (default: $ZOHO_CONNECTION, else the only one in "
    "--connections FILE, or the one named default)"
)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if not getattr(args, "command", None):
        _parser().print_help(sys.stderr)
        return 2
    try:
        import connector.engines.temporal  # noqa: F401 - the SDK's absence is reported before anything starts
    except ImportError as exc:
        print(json.dumps({"error": {"type": "connection_error", "message": str(exc)}}), file=sys.stderr)
        return 3
    prepared = args.prepare(args)  # argument and file errors, before any connection is made
    code = asyncio.run(_guarded(args, prepared))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _guarded(args: argparse.Namespace, prepared: Any) -> int:
    """The command's exit code; failures printed as JSON on stderr like every other command's."""
    try:
        code: int = await args.handler(args, prepared)
        return code
    except ConnectorError as exc:
        return _fail(exc)
    except RuntimeError as exc:  # the SDK's "failed client connect", "namespace not found", …
        return _fail(ConnectionConfigError(f"Temporal at {args.address} (namespace {args.namespace}): {exc}"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoho-connector temporal", description="Run automations on Temporal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def server_options(p: argparse.ArgumentParser) -> None:
        address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
        namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
        queue = os.environ.get("ZOHO_TEMPORAL_TASK_QUEUE", "zoho-connector")
        p.add_argument("--address", default=address, help=f"the Temporal frontend, HOST:PORT (default {address})")
        p.add_argument("--namespace", default=namespace, help=f"the Temporal namespace (default {namespace})")
        p.add_argument("--task-queue", default=queue, help=f"the task queue workers poll (default {queue})")

    p = sub.add_parser("worker", help="run a worker: the automation workflow and its activities (zoho.run_action, …)")
    server_options(p)
    p.add_argument("--concurrency", type=int, default=8, help="activities run at once (threads; default 8)")
    p.set_defaults(handler=_worker, prepare=_prepare_worker)

    p = sub.add_parser("start", help="run an automation file's workflow and print its result")
    p.add_argument("file")
    server_options(p)
    p.add_argument("--connection", help=CONNECTION_HELP)
    p.add_argument("--trigger", help="the trigger's data the steps read as ${trigger…}, JSON or @file")
    p.add_argument("--options", help='workflow options, JSON or @file (e.g. {"heartbeat_seconds": 30})')
    p.add_argument("--id", help="the workflow id (default: zoho-automation-NAME-<random>)")
    p.add_argument("--no-wait", action="store_true", help="print the workflow id and return without waiting")
    p.set_defaults(handler=_start, prepare=_prepare_start)

    p = sub.add_parser(
        "schedule", help="create or replace the Temporal Schedule of an automation's cron (a schedule's, or a poll's)"
    )
    p.add_argument("file")
    server_options(p)
    p.add_argument("--connection", help=CONNECTION_HELP)
    p.add_argument("--options", help="workflow options, JSON or @file")
    p.add_argument("--id", help="the schedule id (default: zoho-automation-NAME)")
    p.set_defaults(handler=_schedule, prepare=_prepare_start)
    return parser


# --- preparing: every check that needs no server ---------------------------------------------------------------


def _prepare_worker(args: argparse.Namespace) -> Any:
    from connector.named_connections import load_connections

    path = os.environ.get(ENV)
    if not path:
        raise ConnectionConfigError(f"the worker needs --connections FILE (or {ENV}=FILE)")
    names = sorted(load_connections(path))
    if args.concurrency < 1:
        raise _bad("--concurrency", "expected a positive number")
    return names


def _prepare_start(args: argparse.Namespace) -> dict[str, Any]:
    from connector.engines import temporal

    try:
        source = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad("FILE", f"cannot read {args.file}: {exc.strerror}") from None
    connection = args.connection or os.environ.get("ZOHO_CONNECTION")
    if not connection and os.environ.get(ENV):
        from connector.automation_cli import _default_connection

        connection = _default_connection()  # as `automation run`: the file's only one, or the one named default
    if not connection:
        raise _bad("--connection", "expected a connection NAME (or set ZOHO_CONNECTION, or pass --connections FILE)")
    if connection.startswith(("{", "@")):
        message = "expected a connection NAME: the workers hold the settings, a workflow's history must not"
        raise _bad("--connection", message)
    automation = temporal.checked_automation(source, args.file)  # deploy-time validation, before anything starts
    if args.command == "schedule":
        temporal.cron_of(automation)
    trigger = _object_option("--trigger", getattr(args, "trigger", None))
    options = _object_option("--options", args.options)
    problems = temporal.option_problems(options)
    if problems:
        raise InputValidationError("--options", [Violation("--options", "", problem) for problem in problems])
    file = Path(args.file).name
    return {"source": source, "connection": connection, "trigger": trigger, "options": options, "file": file}


# --- commands --------------------------------------------------------------------------------------------------


async def _connect(args: argparse.Namespace) -> Any:
    from temporalio.client import Client

    return await Client.connect(args.address, namespace=args.namespace)


async def _worker(args: argparse.Namespace, names: list[str]) -> int:
    from connector.engines.temporal import running_worker

    client = await _connect(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, task_queue=args.task_queue, max_concurrent_activities=args.concurrency):
        print(
            f"worker on task queue {args.task_queue!r} at {args.address} (namespace {args.namespace}); "
            f"connections: {', '.join(names) or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    return 0


async def _start(args: argparse.Namespace, prepared: dict[str, Any]) -> int:
    from temporalio.client import WorkflowFailureError

    from connector.engines.temporal import start_automation

    client = await _connect(args)
    handle = await start_automation(
        client,
        prepared["source"],
        prepared["connection"],
        task_queue=args.task_queue,
        workflow_id=args.id,
        trigger=prepared["trigger"],
        options=prepared["options"],
        file=prepared["file"],
    )
    if args.no_wait:
        print(json.dumps({"workflow_id": handle.id, "run_id": handle.result_run_id}))
        return 0
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        error = {"type": getattr(cause, "type", None) or "workflow_failed", "message": str(cause or exc)}
        details = getattr(cause, "details", None)
        if details:
            error["details"] = list(details)
        print(json.dumps({"error": error, "workflow_id": handle.id}, ensure_ascii=False, default=str), file=sys.stderr)
        return 4
    print(json.dumps(result, ensure_ascii=False))
    return 0


async def _schedule(args: argparse.Namespace, prepared: dict[str, Any]) -> int:
    from connector.engines.temporal import schedule_automation

    client = await _connect(args)
    sid = await schedule_automation(
        client,
        prepared["source"],
        prepared["connection"],
        task_queue=args.task_queue,
        schedule_id=args.id,
        options=prepared["options"],
        file=prepared["file"],
    )
    print(json.dumps({"schedule_id": sid}))
    return 0


def _object_option(flag: str, value: str | None) -> Any:
    return None if value is None else argument(flag, value, want_object=True)


def _bad(flag: str, message: str) -> InputValidationError:
    return InputValidationError(flag, [Violation(flag, "", message)])


def _fail(exc: ConnectorError) -> int:
    print(json.dumps(exc.to_dict(), ensure_ascii=False), file=sys.stderr)
    return exc.exit_code
