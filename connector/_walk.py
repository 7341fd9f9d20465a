"""Driving a paginated action page after page, with the pager of its action.

A walk that fails midway raises the failure with `progress`: the records handed out before it and the query
parameters (page or page_token) that resume the walk at the page that failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from connector.errors import ConnectorError
from connector.strategies import Pager

__all__ = ["Fetch", "apages", "pages"]

Overrides = Mapping[str, Any] | None
Fetch = Callable[[Overrides], tuple[Any, Mapping[str, str]]]  # one page's data and response headers
AFetch = Callable[[Overrides], Awaitable[tuple[Any, Mapping[str, str]]]]


def pages(pager: Pager, fetch: Fetch) -> Iterator[Any]:
    overrides: Overrides = pager.first() or None
    delivered = 0
    while True:
        try:
            page, headers = fetch(overrides)
            following = pager.advance(page, headers)
        except ConnectorError as exc:
            exc.progress = {"delivered": delivered, "resume": pager.resume()}
            raise
        yield page
        delivered += len(pager.records(page))
        if following is None:
            return
        overrides = following


async def apages(pager: Pager, fetch: AFetch) -> AsyncIterator[Any]:
    overrides: Overrides = pager.first() or None
    delivered = 0
    while True:
        try:
            page, headers = await fetch(overrides)
            following = pager.advance(page, headers)
        except ConnectorError as exc:
            exc.progress = {"delivered": delivered, "resume": pager.resume()}
            raise
        yield page
        delivered += len(pager.records(page))
        if following is None:
            return
        overrides = following
