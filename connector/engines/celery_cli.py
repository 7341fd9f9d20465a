"""`zoho-connector celery …`: a Celery worker and beat for the connector, and enqueueing from the shell.

    zoho-connector celery worker --connections FILE [celery worker options…]
    zoho-connector celery beat --automations PATH [PATH…] --connection NAME [celery beat options…]
    zoho-connector celery run FILE [--connection NAME] [--trigger JSON|@file] [--timeout SECONDS]
    zoho-connector celery call KEY --inputs JSON|@file [--connection NAME] [--timeout SECONDS]

`worker` and `beat` are `celery -A connector.engines.celery worker|beat` with the connector's checks first (a
worker without a connections file could run nothing; beat checks every automation file). `run` enqueues an
automation and `call` one action, then print the result as JSON, or the error as JSON on stderr with the exit code
`zoho-connector run` would give. Broker, backend and queue come from ZOHO_CELERY_BROKER, ZOHO_CELERY_BACKEND and
ZOHO_CELERY_QUEUE (see connector.engines.celery).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from connector._json_input import argument
from connector.errors import ConnectionConfigError, ConnectorError, InputValidationError, Violation
from connector.named_connections import ENV as CONNECTIONS_ENV

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "worker":
        return _worker(rest)
    if command == "beat":
        return _beat(rest)
    if command in ("run", "call"):
        return _enqueue(command, rest)
    raise InputValidationError(
        "celery", [Violation("(command)", "", f"unknown command {command!r}: use worker, beat, run or call")]
    )


def _wants_help(args: Sequence[str]) -> bool:
    """`-h`/`--help` among a command's arguments: show the usage, whatever else is missing."""
    return any(arg in ("-h", "--help") for arg in args)


def _worker(rest: list[str]) -> int:
    if _wants_help(rest):
        print("usage: zoho-connector celery worker --connections FILE [celery worker options…]\n")
        from connector.engines.celery import app

        app.worker_main(["worker", "--help"])
        return 0
    if not os.environ.get(CONNECTIONS_ENV):
        raise ConnectionConfigError(
            "a worker resolves connection names from a connections file: "
            f"pass --connections FILE or set {CONNECTIONS_ENV}"
        )
    from connector.engines.celery import app

    app.worker_main(["worker", *rest])
    return 0


def _beat(rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="zoho-connector celery beat", add_help=False)
    parser.add_argument("--automations", nargs="+", default=[])
    parser.add_argument("--connection")
    args, celery_args = parser.parse_known_args(rest)
    from connector.engines.celery import app, beat_schedule

    if _wants_help(rest):
        print(
            "usage: zoho-connector celery beat --automations PATH [PATH…] --connection NAME [celery beat options…]\n"
            "  --automations PATH…  automation files or folders to schedule (default: $ZOHO_CELERY_AUTOMATIONS)\n"
            "  --connection NAME    the connection's name in the workers' connections file ($ZOHO_CONNECTION)\n"
        )
        app.start(["beat", "--help"])
        return 0
    paths = args.automations or [p for p in os.environ.get("ZOHO_CELERY_AUTOMATIONS", "").split(os.pathsep) if p]
    connection = args.connection or os.environ.get("ZOHO_CONNECTION") or ""
    if not paths:
        raise InputValidationError(
            "celery beat", [Violation("--automations", "", "expected automation files or folders to schedule")]
        )
    app.conf.beat_schedule = beat_schedule(paths, connection)
    for name, entry in app.conf.beat_schedule.items():
        print(f"{name}: {entry['schedule']}", file=sys.stderr)
    app.start(["beat", *celery_args])
    return 0


def _enqueue(command: str, rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"zoho-connector celery {command}")
    if command == "run":
        parser.add_argument("file", help="an automation file (YAML or JSON)")
        parser.add_argument(
            "--trigger",
            help="the trigger's output the steps read as ${trigger.…}: JSON or @file (without it, a poll automation "
            "polls its trigger from the state its last run saved)",
        )
    else:
        parser.add_argument("key", help="an action key, e.g. crmGetRecord")
        parser.add_argument("--inputs", default="{}", help="the action's inputs: JSON or @file")
    parser.add_argument("--connection", help="a connection NAME in the workers' connections file ($ZOHO_CONNECTION)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the result (600)")
    args = parser.parse_args(rest)
    connection = args.connection or os.environ.get("ZOHO_CONNECTION")
    if not connection:
        raise ConnectionConfigError("no connection: pass --connection NAME or set ZOHO_CONNECTION")
    from celery.exceptions import TimeoutError as CeleryTimeout

    from connector.engines.celery import automation_document, failure, run_action, run_automation

    if command == "run":
        document = automation_document(args.file)
        trigger = argument("--trigger", args.trigger, want_object=True) if args.trigger else None
        result = run_automation.apply_async((document, connection, trigger))
    else:
        payload = {"action": args.key, "inputs": argument("--inputs", args.inputs), "connection": connection}
        result = run_action.apply_async((payload,))
    try:
        value = result.get(timeout=args.timeout)
    except CeleryTimeout:
        error = {"type": "timeout", "message": f"no result in {args.timeout:g} s; task {result.id} may still run"}
        _print({"error": error}, sys.stderr)
        return 1
    except Exception as exc:
        failed = failure(exc)
        if failed is None:
            raise
        _print({"error": failed}, sys.stderr)
        return _exit_code(failed.get("type"))
    _print(value, sys.stdout)
    return 0


def _exit_code(kind: Any) -> int:
    """The exit code `zoho-connector run` gives for an error of this type."""
    stack: list[type[ConnectorError]] = [ConnectorError]
    while stack:
        cls = stack.pop()
        if cls.kind == kind:
            return cls.exit_code
        stack.extend(cls.__subclasses__())
    return 1


def _print(value: Mapping[str, Any] | Any, stream: Any) -> None:
    json.dump(value, stream, ensure_ascii=False)
    stream.write("\n")
