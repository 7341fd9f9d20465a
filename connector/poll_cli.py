"""`zoho-connector poll KEY --inputs … --connection … --state FILE`: what a poll trigger finds changed.

Prints one JSON record a line, oldest change first. FILE holds the trigger's state between runs: a missing file
means the first poll. It is rewritten only after every record was written and flushed, atomically (a temporary
file in the same folder, mode 0600, renamed over it), so a poll that fails, or whose reader goes away mid-output,
leaves the old state and the next run hands the same records out again: none is lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "read_state", "write_state"]


def main(argv: Sequence[str] | None = None) -> int:
    from connector._json_input import argument
    from connector.cli import _connection_argument, _logging_to_stderr
    from connector.runner import Connector

    parser = argparse.ArgumentParser(
        prog="zoho-connector poll",
        description="Print what a poll trigger finds changed since its state file, one JSON record a line, then "
        "rewrite the state file. A missing state file is the first poll.",
    )
    parser.add_argument("key", help="the trigger (zoho-connector triggers lists them)")
    parser.add_argument("--inputs", default="{}", help="the trigger's inputs as JSON, or @file")
    parser.add_argument(
        "--connection", help="connection as JSON, @file or a name in --connections FILE (default: $ZOHO_CONNECTION)"
    )
    parser.add_argument("--state", required=True, metavar="FILE", help="where the trigger's state is kept")
    parser.add_argument("--engine", action="store_true", help="no local retries: report retryable failures at once")
    args = parser.parse_args(argv)

    inputs = argument("--inputs", args.inputs)
    connection = _connection_argument(args.connection)
    path = Path(args.state)
    state = read_state(path)
    with _logging_to_stderr(), Connector.load(engine_mode=args.engine) as connector:
        result = connector.poll(args.key, inputs, state, connection=connection)
    for record in result["records"]:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()  # a reader gone away raises here, before the state moves on
    write_state(path, result["state"])
    return 0


def read_state(path: Path) -> Any:
    """The state a previous poll wrote, or None when the file does not exist (the first poll)."""
    from connector.errors import InputValidationError, Violation

    def bad(problem: str) -> InputValidationError:
        return InputValidationError("--state", [Violation("--state", "", f"{path}: {problem}")])

    if not path.parent.is_dir():
        raise bad("its folder does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise bad(f"cannot read it: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise bad("not the JSON a previous poll wrote (delete it to start again from now)") from None


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Replace the state file atomically: readers see the old state or the new one, never a part."""
    from connector.errors import InputValidationError, Violation

    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    except OSError as exc:
        problem = f"{path}: cannot write the new state next to it: {exc.strerror}"
        raise InputValidationError("--state", [Violation("--state", "", problem)]) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state, out, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
