"""`zoho-connector invoke --lines`: a long-lived worker on stdin/stdout, for engines in other languages.

One JSON request per line on stdin (the protocol of connector/protocol.py, schemas/protocol/), one JSON response
per line on stdout. Requests run concurrently on a pool of threads sharing one connector (tokens, HTTP connections
and rate-limit state are reused), so responses come back in the order calls complete: each carries its request's
`id`. A line that is not a valid request gets an error response (with its id when it had a readable one, and its
line number in the message) and the stream goes on; blank lines are skipped. At end of input the calls in flight
finish, their responses are written, and the worker exits 0.

At most twice the pool's size of requests are read ahead, so a fast writer does not fill memory with work.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from connector._dispatch import Worker, error_response
from connector.errors import InputValidationError, Violation

__all__ = ["DEFAULT_CONCURRENCY", "serve_lines"]

DEFAULT_CONCURRENCY = 8


def serve_lines(
    lines: Iterable[bytes], out: IO[str], worker: Worker, *, concurrency: int = DEFAULT_CONCURRENCY
) -> bool:
    """Answer every request line; False when the reader of `out` went away (the remaining lines are not run)."""
    write_lock = threading.Lock()
    backlog = threading.BoundedSemaphore(concurrency * 2)
    closed = threading.Event()

    def write(response: dict[str, Any]) -> None:
        try:
            text = json.dumps(response, ensure_ascii=False, allow_nan=False)
        except ValueError:  # NaN in an answer: JSON has none; say so rather than write invalid JSON
            text = json.dumps(error_response(ValueError("the answer holds a number JSON cannot carry"), None))
        with write_lock:
            if closed.is_set():
                return
            try:
                out.write(text + "\n")
                out.flush()
            except UnicodeEncodeError:  # a lone surrogate in Zoho's text: escaped instead
                out.write(json.dumps(response, ensure_ascii=True) + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):  # ValueError: the stream was closed under us
                closed.set()

    def answer(number: int, raw: bytes) -> None:
        try:
            write(_respond(worker, number, raw))
        finally:
            backlog.release()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invoke") as pool:
        try:
            for number, raw in enumerate(lines, start=1):
                if closed.is_set():
                    break
                if not raw.strip():
                    continue
                backlog.acquire()
                pool.submit(answer, number, raw)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return not closed.is_set()


def _respond(worker: Worker, number: int, raw: bytes) -> dict[str, Any]:
    from connector._json_input import loads

    subject = f"the invoke request on line {number}"
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputValidationError(subject, [Violation("(request)", "", f"not UTF-8 text: {exc.reason}")]) from None
        value = loads(subject, "(request)", text)
    except InputValidationError as exc:
        return error_response(exc, None)
    response = worker.handle(value)
    if not response["ok"] and response["error"]["type"] == "invalid_input" and "id" not in response:
        response["error"]["message"] = f"line {number}: {response['error']['message']}"
    return response
