"""The `zoho-connector` command line.

    zoho-connector actions                       the actions, as a table
    zoho-connector describe KEY                  an action's inputs: types, defaults, examples
    zoho-connector describe KEY --connection …   its input schema expanded from the account's metadata (JSON)
    zoho-connector options KEY INPUT             an input's choices from the account's metadata (JSON)
    zoho-connector run KEY --inputs JSON|@file --connection JSON|@file|NAME
    zoho-connector invoke                        one JSON request on stdin, one JSON response on stdout
    zoho-connector invoke --lines                one request per line, one response per line, concurrently
    zoho-connector serve --port N                the same protocol over HTTP: POST /actions/{key}
    zoho-connector automation validate|run FILE  check an automation file at deploy time, or run it here
    zoho-connector partner-store setup           create the CRM modules and fields the Partner Store sync writes
    zoho-connector docs                          a Markdown reference of every action and trigger
    zoho-connector triggers                      the triggers, as a table
    zoho-connector poll KEY --inputs … --connection … --state FILE
                                                 what a poll trigger finds changed, one JSON record a line
    zoho-connector auth …                        connect an account and manage its tokens
    zoho-connector sandbox                       a local emulator of Zoho Accounts, CRM and Books
    zoho-connector webhook listen --trigger KEY  subscribe, print each event as a JSON line, renew, unsubscribe
    zoho-connector celery worker|beat|run|call   the actions on Celery (pip install 'zoho-connector[celery]')
    zoho-connector temporal worker|start|schedule   automations on Temporal (the `temporal` extra)

`--connections FILE` (anywhere on the line, or $ZOHO_CONNECTIONS) names a JSON/YAML file of connections by name;
`--connection NAME` then picks one.

Results go to stdout as JSON; errors go to stderr as JSON, with an exit code per kind of failure. Output piped
into a reader that stops early (`| head`) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from connector import _json_input

if TYPE_CHECKING:
    from connector.runner import Connector

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    "ok": 0,
    "unexpected": 1,
    "invalid_input": 2,  # also a broken manifest or a bad command line
    "connection_or_auth": 3,
    "zoho_error": 4,
    "transient_or_rate_limited": 5,
    "broken_pipe": 141,  # the reader of stdout went away (`| head`): what a process killed by SIGPIPE exits with
}


# Subcommands with parsers of their own, imported only when used: (help, module with main(argv) -> int). A product's
# own commands are registered in connector.strategies.COMMANDS, read only when the command is not one of these.
EXTENSIONS = {
    "auth": ("connect a Zoho account and manage its tokens", "connector.auth.cli"),
    "sandbox": ("serve a local emulator of Zoho Accounts and the product APIs", "connector.sandbox"),
    "webhook": ("receive a webhook trigger's events (webhook listen)", "connector.webhook_cli"),
    "celery": ("actions and automations on Celery: worker, beat, run, call", "connector.engines.celery_cli"),
    "automation": ("check an automation file at deploy time, or run it here", "connector.automation_cli"),
    "serve": ("serve the engine protocol over HTTP (POST /actions/{key})", "connector.serve"),
    "temporal": ("run automations on Temporal: worker, start, schedule", "connector.engines.temporal_cli"),
    "poll": ("print what a poll trigger finds changed, one JSON record a line", "connector.poll_cli"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from connector.errors import ConnectorError

    try:
        _take_connections_file(argv)
        extensions = EXTENSIONS if argv and argv[0] in EXTENSIONS else _extensions()
        if argv and argv[0] in extensions:
            from importlib import import_module

            code: int = import_module(extensions[argv[0]][1]).main(argv[1:])
            return code
        parser = _parser(extensions)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help(sys.stderr)
            return EXIT_CODES["invalid_input"]
        code = args.handler(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below rather than at interpreter exit
        return code
    except ConnectorError as exc:
        _print_error(exc.to_dict())
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CODES["broken_pipe"]


def _extensions() -> dict[str, tuple[str, str]]:
    """The generic subcommands and those the product strategies register (their package is loaded by any command
    that runs an action, so reading it here costs those nothing)."""
    from connector.strategies import COMMANDS

    return {**EXTENSIONS, **COMMANDS}


def _parser(extensions: dict[str, tuple[str, str]] = EXTENSIONS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoho-connector", description="Zoho CRM, Books and Finance actions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("actions", help="list the actions")
    p.set_defaults(handler=_actions)

    p = sub.add_parser("triggers", help="list the triggers")
    p.set_defaults(handler=_triggers)

    p = sub.add_parser("describe", help="show an action's or trigger's inputs (actions with --connection: expanded)")
    p.add_argument("key")
    p.add_argument("--inputs", default="{}", help="inputs the expansion depends on (e.g. recordType), JSON or @file")
    p.add_argument("--connection", help="expand from this account's metadata: connection as JSON, @file or NAME")
    p.add_argument("--refresh", action="store_true", help="fetch the metadata again instead of using the cache")
    p.set_defaults(handler=_describe)

    p = sub.add_parser("options", help="list the choices of an input ([{value, label}] as JSON)")
    p.add_argument("key")
    p.add_argument("input", help="the input, or INPUT/KEY for the values under one key (e.g. fieldValues/Stage)")
    p.add_argument("--inputs", default="{}", help="inputs the choices depend on, JSON or @file")
    p.add_argument(
        "--connection", help="connection as JSON, @file or a name in --connections FILE (default: $ZOHO_CONNECTION)"
    )
    p.add_argument("--refresh", action="store_true", help="fetch the metadata again instead of using the cache")
    p.set_defaults(handler=_options)

    p = sub.add_parser("run", help="run an action and print its result as JSON")
    p.add_argument("key")
    p.add_argument("--inputs", default="{}", help="inputs as JSON, or @file")
    p.add_argument(
        "--connection", help="connection as JSON, @file or a name in --connections FILE (default: $ZOHO_CONNECTION)"
    )
    p.add_argument("--engine", action="store_true", help="no local retries: report retryable failures at once")
    p.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="INPUT=PATH",
        help="a file input streamed from PATH (e.g. --file file=report.pdf); repeatable",
    )
    p.add_argument("--output", metavar="FILE", help="stream a file answer (a download) into FILE; prints its metadata")
    p.set_defaults(handler=_run)

    p = sub.add_parser("invoke", help="read {action, inputs, connection} on stdin, write one JSON response")
    p.add_argument("--engine", action="store_true", help="no local retries: report retryable failures at once")
    p.add_argument(
        "--lines",
        action="store_true",
        help="a long-lived worker: one request per line, one response per line (with the request's id), "
        "concurrently, until end of input",
    )
    p.add_argument("--concurrency", type=int, default=8, metavar="N", help="--lines: requests run at once (default 8)")
    p.set_defaults(handler=_invoke)

    p = sub.add_parser("docs", help="print a Markdown reference of every action and trigger")
    p.set_defaults(handler=_docs)

    for name, (text, _) in extensions.items():
        sub.add_parser(name, help=text, add_help=False)  # listed in --help; dispatched before parsing
    return parser


# --- commands --------------------------------------------------------------------------------------------------


def _manifest() -> Any:
    from connector.manifest import bundled_manifest

    return bundled_manifest()


def _actions(args: argparse.Namespace) -> int:
    actions = _manifest().actions.values()
    _print_table(
        [("KEY", "LABEL", "SAFETY")] + [(a.key, a.label, a.safety) for a in sorted(actions, key=lambda a: a.key)]
    )
    return 0


def _triggers(args: argparse.Namespace) -> int:
    triggers = _manifest().triggers.values()
    _print_table([("KEY", "LABEL", "KIND")] + [(t.key, t.label, t.kind) for t in sorted(triggers, key=lambda t: t.key)])
    return 0


def _print_table(rows: list[tuple[str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _describe(args: argparse.Namespace) -> int:
    from connector._docs import describe_action, describe_trigger
    from connector.errors import InputValidationError, Violation

    trigger = _manifest().triggers.get(args.key)
    if trigger is not None:
        print(describe_trigger(trigger))
        return 0
    if args.connection:
        from connector.runner import Connector

        inputs = _json_input.argument("--inputs", args.inputs)
        connection = _connection_argument(args.connection)
        with Connector.load(metadata_dir=_metadata_dir()) as connector:
            schema = connector.describe(args.key, inputs, connection=connection, refresh=args.refresh)
        json.dump(schema, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    try:
        action = _manifest().action(args.key)
    except KeyError as exc:
        raise InputValidationError(args.key, [Violation("(action)", "", str(exc.args[0]))]) from None
    print(describe_action(action))
    return 0


def _metadata_dir() -> Path:
    """Where `options` and `describe` keep account metadata between runs: the connector's cache directory
    ($ZOHO_CONNECTOR_CACHE_DIR, else $XDG_CACHE_HOME/zoho-connector, as the manifest's cache)."""
    from connector.manifest import _cache_dir

    return _cache_dir() / "metadata"


def _options(args: argparse.Namespace) -> int:
    from connector.runner import Connector

    inputs = _json_input.argument("--inputs", args.inputs)
    connection = _connection_argument(args.connection)
    with Connector.load(metadata_dir=_metadata_dir()) as connector:
        choices = connector.options(args.key, args.input, inputs, connection=connection, refresh=args.refresh)
    json.dump(choices, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _docs(args: argparse.Namespace) -> int:
    from connector._docs import reference

    print(reference(_manifest()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from connector.runner import Connector

    inputs = _json_input.argument("--inputs", args.inputs)
    if args.file:
        inputs = {**inputs, **_file_arguments(args.file)} if isinstance(inputs, dict) else inputs
    connection = _connection_argument(args.connection)
    with _logging_to_stderr(), Connector.load(engine_mode=args.engine) as connector:
        action = connector.actions.get(args.key)  # an unknown key is reported by run()
        if args.output:
            result = connector.download(args.key, inputs, connection=connection, to=args.output)
            json.dump(result, sys.stdout, ensure_ascii=False)
        elif action is not None and (
            action.job is not None or (action.pagination and _truthy(inputs, action.inputs_with_role("fetch_all")))
        ):
            _stream_fetch_all(connector, args.key, inputs, connection, sys.stdout)
        else:
            json.dump(connector.run(args.key, inputs, connection=connection), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    """The engine protocol (`connector.protocol`, schemas/protocol/*.json): {"action", "inputs", "connection",
    "engine"?} in; {"ok": true, "data"} or {"ok": false, "error"} out. The exit code says the same as for `run`."""
    from connector.errors import ConnectorError
    from connector.runner import Connector

    if args.lines:
        return _invoke_lines(args)
    ident = None
    try:
        from connector._dispatch import parse_request, request_id  # against schemas/protocol/request.json

        value = _json_input.loads("the invoke request", "(request)", sys.stdin.read())
        ident = request_id(value)
        request = parse_request(value)
        with Connector.load(engine_mode=args.engine or request.engine) as connector:
            result = connector.run(request.action, request.inputs or {}, connection=request.connection)
    except ConnectorError as exc:
        _respond({**({"id": ident} if ident is not None else {}), "ok": False, **exc.to_dict()})
        return exc.exit_code
    _respond({**({"id": ident} if ident is not None else {}), "ok": True, **result})
    return 0


def _invoke_lines(args: argparse.Namespace) -> int:
    from connector._dispatch import Worker
    from connector.errors import InputValidationError, Violation
    from connector.lines import serve_lines

    if args.concurrency < 1:
        raise InputValidationError("--concurrency", [Violation("--concurrency", "", "expected a number from 1")])
    worker = Worker(engine=args.engine)
    try:
        complete = serve_lines(sys.stdin.buffer, sys.stdout, worker, concurrency=args.concurrency)
    finally:
        worker.close()
    if not complete:
        _silence_stdout()
        return EXIT_CODES["broken_pipe"]
    return 0


# --- helpers ---------------------------------------------------------------------------------------------------


def _stream_fetch_all(connector: Connector, key: str, inputs: Mapping[str, Any], connection: Any, out: IO[str]) -> None:
    """Write Fetch All's answer record by record, so memory stays flat however many records there are."""
    stream = connector.stream(key, inputs, connection=connection)
    records = stream.records()
    first = next(records, None)  # the first page tells where the records live
    member = stream.records_member
    out.write('{"data": ' + ("[" if member is None else "{" + json.dumps(member) + ": ["))
    if first is not None:
        out.write(json.dumps(first, ensure_ascii=False))
        for record in records:
            out.write("," + json.dumps(record, ensure_ascii=False))
    out.write("]")
    summary = stream.summary()
    if member is not None:
        for name, value in summary.items():
            out.write(f", {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}")
        out.write("}")
    out.write("}")


def _truthy(inputs: Any, name: str | None) -> bool:
    value = inputs.get(name) if name and isinstance(inputs, Mapping) else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def _file_arguments(values: list[str]) -> dict[str, Path]:
    from connector.errors import InputValidationError, Violation

    files = {}
    for value in values:
        name, _, path = value.partition("=")
        if not name or not path:
            raise InputValidationError("--file", [Violation("--file", "", f"expected INPUT=PATH, got {value!r}")])
        if not Path(path).is_file():
            raise InputValidationError("--file", [Violation(name, "", f"no such file: {path}")])
        files[name] = Path(path)
    return files


def _connection_argument(value: str | None) -> Any:
    """A connection as JSON, @file, or a name in the connections file (--connections FILE or $ZOHO_CONNECTIONS)."""
    from connector.errors import ConnectionConfigError

    value = value or os.environ.get("ZOHO_CONNECTION")
    if not value:
        raise ConnectionConfigError("no connection: pass --connection @connection.json or set ZOHO_CONNECTION")
    if _CONNECTION_NAME.fullmatch(value):
        return value
    return _json_input.argument("--connection", value)


_CONNECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _take_connections_file(argv: list[str]) -> None:
    """`--connections FILE`, accepted before or after any command: connections are then given by name. It sets
    ZOHO_CONNECTIONS, so worker processes a command starts find the same file."""
    from connector.errors import InputValidationError, Violation

    for i, arg in enumerate(argv):
        if arg == "--":
            return
        if arg == "--connections" or arg.startswith("--connections="):
            value = arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            del argv[i : i + (1 if "=" in arg else 2)]
            if not value:
                raise InputValidationError("--connections", [Violation("--connections", "", "expected a FILE")])
            os.environ["ZOHO_CONNECTIONS"] = str(Path(value).resolve())
            return


@contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Debug Request and retry lines (already redacted) go to stderr while a command runs, leaving stdout to the JSON
    result; the handler leaves with the command, so a program calling main() many times never piles them up."""
    logger = logging.getLogger("connector")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _print_error(error: Mapping[str, Any]) -> None:
    json.dump(error, sys.stderr, ensure_ascii=False)
    sys.stderr.write("\n")


def _silence_stdout() -> None:
    """Point stdout at devnull, so that flushing what is left at exit does not fail again (the Python docs' advice
    for BrokenPipeError)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a caller (tests capture it): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _respond(response: Mapping[str, Any]) -> None:
    json.dump(response, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
