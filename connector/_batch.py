"""Many items in one action: the list input sent in chunks, each chunk one ordinary call, one result per item.

An action with `batch:` names its list input, the chunk size (the API's maximum) and the member of an answer that
holds one result per item. Every chunk is planned up front as a call of its own — the request template renders
with the list input holding just that chunk — so bad input is refused before anything is sent. Chunks then run
through the usual single retry loop (`_flow`) under the action's safety, concurrently but never more than the
connection's concurrency cap: a thread pool of at most that many workers, or tasks under the connection's async
semaphore (which every call of the connection shares).

Each item's result keeps its `index` in the input and, in input order:
  * what the answer says about it, split by the product's envelope (`results`), 207 partial failures included;
  * `status: "in_doubt"` with the `error` when its chunk may have reached the server (a timeout, a dropped
    connection, a 5xx, an answer that cannot be read): the chunk is not re-sent (re-sending could write twice);
  * `status: "error"` with the `error` when its chunk certainly did not act (safe to send those items again).
When no chunk got an answer about its items and none may have acted, the call as a whole failed (a bad token, an
unknown module, no network): the first chunk's error is raised instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.errors import BadResponseError, ConnectorError, ZohoAPIError

if TYPE_CHECKING:
    from connector._plan import Call
    from connector.models import Batch

__all__ = ["Chunks", "arun", "run"]

Result = dict[str, Any]
Settled = tuple[list[Result], ConnectorError | None]  # a chunk's results, and its error if it failed without acting


@dataclass(frozen=True)
class Chunk:
    start: int  # index of its first item in the whole list
    items: list[Any]
    call: Call


class Chunks:
    """An action's list input cut into planned calls, and the reading of their answers into per-item results."""

    def __init__(self, spec: Batch, values: Mapping[str, Any], plan: Callable[[dict[str, Any]], Call]) -> None:
        self.spec = spec
        name, size = spec["input"], spec["size"]
        items: list[Any] = list(values[name])
        self.chunks = [
            Chunk(start, items[start : start + size], plan({**values, name: items[start : start + size]}))
            for start in range(0, len(items), size)
        ]

    def combine(self, settled: list[Settled]) -> list[Result]:
        """Every chunk's results in input order; the first chunk's error when none was answered or may have acted."""
        results: list[Result] = []
        unanswered: list[ConnectorError] = []
        for entries, whole_failure in settled:
            results += entries
            if whole_failure is not None:
                unanswered.append(whole_failure)
        if unanswered and len(unanswered) == len(settled):
            raise unanswered[0]
        return results

    def settle(self, chunk: Chunk, data: Any, error: ConnectorError | None) -> Settled:
        """The chunk's results, and its error when the call failed as a whole without acting. Pure: each chunk is
        settled as soon as its answer arrives, while the others are still in flight, not all at the end."""
        if error is None:
            found = self._split(chunk.call, data)
            if found is not None and len(found) == len(chunk.items):
                return self._answered(chunk, found), None
            count = "no list of results" if found is None else f"{len(found)} results"
            error = BadResponseError(
                f"the answer holds {count} for {len(chunk.items)} items; which of them were written is unknown",
                retryable=False,
                may_have_acted=True,
            )
        elif isinstance(error, ZohoAPIError):
            found = self._split(chunk.call, error.response)  # every item refused: an error status, per item
            if found is not None and len(found) == len(chunk.items):
                return self._answered(chunk, found), None
        status = "in_doubt" if error.may_have_acted else "error"
        entries = [self._failed(chunk, offset, status, error) for offset in range(len(chunk.items))]
        return entries, None if error.may_have_acted else error

    def _split(self, call: Call, body: Any) -> list[Result] | None:
        member = self.spec.get("results")
        envelope: Any = call.policy.envelope
        if hasattr(envelope, "results"):
            found: list[Result] | None = envelope.results(body, member)
            return found
        rows = body.get(member) if member and isinstance(body, Mapping) else body
        if not isinstance(rows, list):
            return None
        return [dict(row) if isinstance(row, Mapping) else {"value": row} for row in rows]

    def _answered(self, chunk: Chunk, found: list[Result]) -> list[Result]:
        entries = []
        for offset, result in enumerate(found):
            entry = {"index": chunk.start + offset, **result}
            if entry.get("id") is None:
                entry["id"] = self._item_id(chunk.items[offset])
            entries.append(entry)
        return entries

    def _failed(self, chunk: Chunk, offset: int, status: str, error: ConnectorError) -> Result:
        zoho = error if isinstance(error, ZohoAPIError) else None
        return {
            "index": chunk.start + offset,
            "status": status,
            "code": zoho.code if zoho else None,
            "message": zoho.zoho_message if zoho else error.message,
            "details": zoho.details if zoho else None,
            "id": self._item_id(chunk.items[offset]),
            "error": error.to_dict()["error"],
        }

    def _item_id(self, item: Any) -> Any:
        if isinstance(item, str | int) and not isinstance(item, bool):
            return item
        member = self.spec.get("item_id")
        return item.get(member) if member and isinstance(item, Mapping) else None


def run(chunks: Chunks, send: Callable[[Call], Any]) -> list[Result]:
    """Every chunk through `send` (one call, blocking), at most the connection's concurrency cap at once (`send`
    holds the connection's semaphore too, which other calls share); results in input order."""

    def one(chunk: Chunk) -> Settled:
        try:
            data = send(chunk.call)
        except ConnectorError as exc:
            return chunks.settle(chunk, None, exc)
        return chunks.settle(chunk, data, None)

    if len(chunks.chunks) <= 1:
        return chunks.combine([one(chunk) for chunk in chunks.chunks])
    from concurrent.futures import ThreadPoolExecutor  # only many-item calls pay for it

    cap = chunks.chunks[0].call.connection.policy.max_concurrency
    with ThreadPoolExecutor(max_workers=max(1, min(cap, len(chunks.chunks)))) as pool:
        return chunks.combine(list(pool.map(one, chunks.chunks)))


async def arun(chunks: Chunks, send: Callable[[Call], Awaitable[Any]]) -> list[Result]:
    """The async twin: one task per chunk; `send` holds the connection's semaphore, which bounds them."""
    import asyncio

    async def one(chunk: Chunk) -> Settled:
        try:
            data = await send(chunk.call)
        except ConnectorError as exc:
            return chunks.settle(chunk, None, exc)
        return chunks.settle(chunk, data, None)

    return chunks.combine(list(await asyncio.gather(*(one(chunk) for chunk in chunks.chunks))))
