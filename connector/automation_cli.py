"""`zoho-connector automation …`: check an automation file at deploy time, or run it in this process.

    zoho-connector automation validate FILE…                    exit 0, or 2 with every problem listed
    zoho-connector automation run FILE --connections FILE [--connection NAME] [--state FILE] [--trigger JSON]
    zoho-connector automation list                               the automations shipped with the connector

`run` prints one JSON line per step ({"step", "action", "calls", "ok"}, or "error" when it failed), after a poll
the records it found ({"trigger", "records", "more"}), and a last line with the outcome. With a poll trigger,
`--state FILE` keeps the poll's state between runs: it is read before the run and replaced only when every step
succeeded, so a failed run sees the same records again. A poll that hands out what is new in windows (`more`) is
polled again within the run, and the state is replaced after each window whose steps succeeded. `--trigger`
gives what the trigger handed out (`{"records": [...]}`, JSON or @file): how a webhook automation runs here on the
events a listener received, or a poll automation on records chosen by hand (it then does not poll).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector.errors import ConnectionConfigError
from connector.poll_cli import read_state, write_state

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="zoho-connector automation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check automation files against the manifest (exit 2 listing every problem)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_validate)

    p = sub.add_parser("run", help="run an automation here, step by step, printing each step as a JSON line")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--connection",
        help="a name in --connections FILE (default: the file's only connection, or the one named default)",
    )
    p.add_argument("--state", metavar="FILE", help="poll triggers: where the poll's state is kept between runs")
    p.add_argument(
        "--trigger",
        metavar="JSON",
        help='what the trigger handed out, e.g. {"records": [...]}: JSON or @file (a webhook automation needs it)',
    )
    p.set_defaults(handler=_run)

    p = sub.add_parser("list", help="the automations shipped with the connector")
    p.set_defaults(handler=_list)

    args = parser.parse_args(list(argv))
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    code: int = args.handler(args)
    return code


def _validate(args: argparse.Namespace) -> int:
    from connector.automations import AutomationError, load_automation
    from connector.manifest import bundled_manifest

    manifest = bundled_manifest()
    worst = 0
    for file in args.files:
        try:
            automation = load_automation(file, manifest)
        except AutomationError as exc:
            _line(sys.stderr, exc.to_dict())
            worst = max(worst, exc.exit_code)
            continue
        steps = [step.name for step in automation.steps]
        _line(
            sys.stdout,
            {"ok": True, "file": file, "automation": automation.name, "trigger": automation.trigger, "steps": steps},
        )
    return worst


def _list(args: argparse.Namespace) -> int:
    from connector.manifest import bundled_manifest

    for name, file in sorted(bundled_manifest().automations.items()):
        _line(sys.stdout, {"automation": name, "file": file})
    return 0


def _run(args: argparse.Namespace) -> int:
    from connector._json_input import argument
    from connector.automations import StepFailed, load_automation, run_automation
    from connector.manifest import bundled_manifest
    from connector.runner import Connector

    automation = load_automation(args.file, bundled_manifest())
    trigger = argument("--trigger", args.trigger, want_object=True) if args.trigger else None
    connection = args.connection or _default_connection()
    state_file = Path(args.state) if args.state else None
    state = read_state(state_file) if state_file else None
    with Connector.load() as connector:
        try:
            outcome = run_automation(
                connector,
                automation,
                connection=connection,
                trigger=trigger,
                state=state,
                on_step=lambda event: _line(sys.stdout, event),
                # after each window of a poll that hands out what is new in windows: a run stopped later resumes here
                on_state=(lambda new: write_state(state_file, new)) if state_file is not None else None,
            )
        except StepFailed as exc:
            _line(sys.stderr, exc.to_dict())
            return exc.cause.exit_code
    if state_file is not None and outcome["state"] is not None:
        write_state(state_file, outcome["state"])
    steps = len(outcome["steps"])
    _line(sys.stdout, {"automation": automation.name, "ok": True, "ran": outcome["ran"], "steps": steps})
    return 0


def _default_connection() -> str:
    """The connections file's only connection, or the one named "default"."""
    from connector.named_connections import ENV, load_connections

    source = os.environ.get(ENV)
    if not source:
        raise ConnectionConfigError(
            "an automation runs with a connection by name: pass --connections FILE (and --connection NAME)"
        )
    names = sorted(load_connections(source))
    if len(names) == 1:
        return names[0]
    if "default" in names:
        return "default"
    raise ConnectionConfigError(
        f"the connections file has {len(names)} connections ({', '.join(names)}) and none is named default: "
        "pass --connection NAME"
    )


def _line(stream: Any, value: Any) -> None:
    stream.write(json.dumps(value, ensure_ascii=False) + "\n")
    stream.flush()
