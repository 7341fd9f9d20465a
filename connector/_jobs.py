"""Asynchronous export jobs: create a job, poll it with backoff, download its result file, stream its records.

An action with a `job:` section (connector.models.Job) is run here instead of as one request: its request creates
the job; the status path is read until the job's state is one of `done` (waiting `poll_seconds`, doubled each time
up to `poll_max_seconds`, at most `timeout_seconds` in all, on the injected clock and sleep); the result is streamed
to a temporary file (never into memory) and read as a ZIP holding one CSV, row by row. When the status says there
is more (`more`), the next job starts from its cursor (`next_cursor` into `cursor_input`), replacing the input with
the `page` role. Memory stays flat however many rows: one row is held at a time.

A walk that fails after delivering rows raises with `progress`: the rows delivered and the cursor that resumes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import IO, Any

import httpx

from connector import _flow, _template
from connector._plan import Call
from connector.errors import BadResponseError, ConnectorError, TransientError, ZohoAPIError
from connector.models import Job

__all__ = ["JobStream", "dig", "records"]

Drive = Callable[[Call, "_flow.Flow[_flow.Reply]"], "_flow.Reply"]
MakeCall = Callable[[Mapping[str, Any]], Call]

CSV_FIELD_LIMIT = 16 * 1024 * 1024  # a long text area in one cell is still one row


def dig(value: Any, path: str) -> Any:
    """The member at a dotted path (`data.0.details.id`); None when any step is missing."""
    for part in path.split(".") if path else []:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def records(
    make_call: MakeCall,
    inputs: Mapping[str, Any],
    drive: Drive,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    jobs: list[str] | None = None,
) -> Iterator[dict[str, str]]:
    """Every record of every job the inputs call for, one at a time. `jobs` collects the job ids."""
    values = dict(inputs)
    delivered = 0
    while True:
        call = make_call(values)
        spec = call.action.job
        assert spec is not None
        try:
            job_id, status = _run_job(call, spec, drive, sleep, clock)
            if jobs is not None:
                jobs.append(job_id)
            for row in _download(call, spec, job_id, drive):
                delivered += 1
                yield row
        except ConnectorError as exc:
            if delivered and exc.progress is None:
                cursor = spec.get("cursor_input")
                resume = {cursor: values[cursor]} if cursor and values.get(cursor) else {}
                exc.progress = {"delivered": delivered, "resume": resume}
            raise
        if not call.role("fetch_all") or not _more(spec, status):
            return
        values = _next_inputs(call, spec, status, values)


def _more(spec: Job, status: Any) -> bool:
    return bool(spec.get("more") and dig(status, spec["more"]) is True)


def _next_inputs(call: Call, spec: Job, status: Any, values: dict[str, Any]) -> dict[str, Any]:
    cursor_input = spec.get("cursor_input")
    cursor = dig(status, spec.get("next_cursor", ""))
    if not cursor_input or not isinstance(cursor, str) or not cursor or cursor == values.get(cursor_input):
        raise BadResponseError(
            f"{call.action.key}: the job says more records follow but gives no new cursor to continue with"
        )
    page_input = call.action.inputs_with_role("page")
    return {**{k: v for k, v in values.items() if k != page_input}, cursor_input: cursor}


def _get(call: Call, path_template: str, job_id: str, sink: IO[bytes] | None = None) -> _flow.Flow[_flow.Reply]:
    """A GET of one of the job's paths, on the action's product, with its retry policy as a read."""
    path = call.product.base_path + _template.render({"method": "GET", "path": path_template}, {"id": job_id}).path
    prepared = dataclasses.replace(
        call.prepared, method="GET", path=path, params=[], headers={}, json=None, content=None, data=None, files=None
    )
    policy = dataclasses.replace(call.policy, safety="read")
    if sink is not None:
        policy = dataclasses.replace(policy, sink=sink, expects_json=False)

    def build(token: str) -> httpx.Request:
        return prepared.build(token, call.api_domain())

    return _flow.exchange(policy, build)


def _run_job(
    call: Call, spec: Job, drive: Drive, sleep: Callable[[float], None], clock: Callable[[], float]
) -> tuple[str, Any]:
    """Create the job and wait until it is done; returns its id and last status answer."""
    created = call.data(drive(call, call.flow(None)))
    job_id = dig(created, spec["id"])
    if not isinstance(job_id, str | int) or isinstance(job_id, bool) or str(job_id) == "":
        raise BadResponseError(f"{call.action.key}: the answer to creating the job holds no job id at {spec['id']}")
    job_id = str(job_id)
    wait = float(spec.get("poll_seconds", 1.0))
    longest = float(spec.get("poll_max_seconds", 30.0))
    deadline = clock() + float(spec.get("timeout_seconds", 3600.0))
    while True:
        status = call.data(drive(call, _get(call, spec["status"], job_id)))
        state = dig(status, spec["state"])
        if state in spec["done"]:
            return job_id, status
        if state in spec["failed"]:
            message = f"{call.action.key}: job {job_id} ended in state {state}"
            raise ZohoAPIError(status=200, code=str(state), message=message, details=status)
        if clock() + wait > deadline:
            raise TransientError(
                f"{call.action.key}: job {job_id} is still {state} after {spec.get('timeout_seconds', 3600.0)} s",
                retryable=True,
            )
        sleep(wait)
        wait = min(wait * 2, longest)


def _download(call: Call, spec: Job, job_id: str, drive: Drive) -> Iterator[dict[str, str]]:
    import tempfile  # zipfile, csv and tempfile only when a job has a result: not on every run's import path

    with tempfile.TemporaryFile(prefix="connector-job-") as sink:
        drive(call, _get(call, spec["result"], job_id, sink))
        sink.seek(0)
        yield from _zip_csv_rows(call.action.key, sink)


def _zip_csv_rows(key: str, file: IO[bytes]) -> Iterator[dict[str, str]]:
    import csv
    import io
    import zipfile

    csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise BadResponseError(f"{key}: the job's result is not a ZIP file") from None
    with archive:
        members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
        if len(members) != 1:
            raise BadResponseError(f"{key}: the job's result holds {len(members)} CSV files, not one")
        with archive.open(members[0]) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                yield from csv.DictReader(text)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise BadResponseError(f"{key}: the job's CSV cannot be read: {exc}") from None


class JobStream:
    """A job action handed out record by record, with the same face as runner.Stream (the CLI writes it as it
    comes). The answer's members are the job spec's: the rows under `records`, what the walk did under `summary`."""

    def __init__(self, rows: Iterator[dict[str, str]], jobs: list[str], spec: Job) -> None:
        self._rows = rows
        self._jobs = jobs
        self._summary_member = spec["summary"]
        self.records_member = spec["records"]
        self.count = 0

    def records(self) -> Generator[dict[str, str], None, None]:
        for row in self._rows:
            self.count += 1
            yield row

    def summary(self) -> dict[str, Any]:
        return {self._summary_member: {"count": self.count, "jobs": list(self._jobs)}}
