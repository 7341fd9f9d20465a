"""The COQL pager, the body-override hook and the generic max_records cap, without a network."""

from __future__ import annotations

import httpx
import pytest

from connector._request import Prepared
from connector.errors import PaginationError
from connector.strategies import PageLimits, PageStart
from connector.strategies.pagers import BODY, CoqlPager, CrmPager

QUERY = "select Name from Items where Name is not null"


def distinct(n: int, start: int, more: bool) -> dict[str, object]:
    return {"data": [{"id": str(start + i)} for i in range(n)], "info": {"count": n, "more_records": more}}


def test_coql_walk_rewrites_limit_and_offset() -> None:
    pager = CoqlPager(PageStart(), body={"select_query": QUERY})
    assert pager.single() == {}  # one call sends the query as written
    assert pager.first() == {BODY: {"select_query": f"{QUERY} limit 2000 offset 0"}}
    following = pager.advance(distinct(2000, 0, True), {})
    assert following == {BODY: {"select_query": f"{QUERY} limit 2000 offset 2000"}}
    assert pager.resume() == {"select_query": f"{QUERY} offset 2000"}  # every row from there, as asked
    assert pager.advance(distinct(10, 2000, False), {}) is None


def test_a_coql_resume_point_continues_the_whole_walk_not_one_page() -> None:
    """Run again with Fetch All, the resume point returns exactly the rows the failed walk had not delivered."""
    pager = CoqlPager(PageStart(), body={"select_query": f"{QUERY} limit 4500 offset 10"})
    pager.input_names = {"select_query": "query"}
    assert pager.resume() == {"query": f"{QUERY} limit 4500 offset 10"}  # nothing delivered: the query as given
    pager.advance(distinct(2000, 0, True), {})
    assert pager.resume() == {"query": f"{QUERY} limit 2500 offset 2010"}
    resumed = CoqlPager(PageStart(), body={"select_query": pager.resume()["query"]})
    assert resumed.first() == {BODY: {"select_query": f"{QUERY} limit 2000 offset 2010"}}
    assert resumed.advance(distinct(2000, 2010, True), {}) == {BODY: {"select_query": f"{QUERY} limit 500 offset 4010"}}

    unlimited = CoqlPager(PageStart(), body={"select_query": QUERY})
    for i in range(3):
        unlimited.advance(distinct(2000, i * 2000, True), {})
    rest = CoqlPager(PageStart(), body={"select_query": unlimited.resume()["select_query"]})
    assert rest.first() == {BODY: {"select_query": f"{QUERY} limit 2000 offset 6000"}}
    for i in range(3, 49):  # and it still stops at COQL's 100,000-row limit with the error, not quietly
        assert rest.advance(distinct(2000, i * 2000, True), {}) is not None
    with pytest.raises(PaginationError, match="100,000"):
        rest.advance(distinct(2000, 98000, True), {})


def test_coql_walk_keeps_the_query_offset_and_caps_at_its_limit() -> None:
    pager = CoqlPager(PageStart(), body={"select_query": f"{QUERY} LIMIT 2500 OFFSET 10;"})
    assert pager.first() == {BODY: {"select_query": f"{QUERY} limit 2000 offset 10"}}
    assert pager.advance(distinct(2000, 0, True), {}) == {BODY: {"select_query": f"{QUERY} limit 500 offset 2010"}}
    assert pager.advance(distinct(500, 2000, True), {}) is None  # the query's LIMIT is the whole answer


def test_coql_walk_stops_at_the_offset_limit_with_a_clear_error() -> None:
    walk = CoqlPager(PageStart(), body={"select_query": QUERY})
    for i in range(49):
        assert walk.advance(distinct(2000, i * 2000, True), {}) is not None
    with pytest.raises(PaginationError) as caught:
        walk.advance(distinct(2000, 98000, True), {})
    assert caught.value.code == "PAGINATION_LIMIT_EXCEEDED" and "100,000" in caught.value.message


def test_coql_comma_limit_is_refused_for_a_walk_only() -> None:
    pager = CoqlPager(PageStart(), body={"select_query": f"{QUERY} limit 10, 20"})
    assert pager.single() == {}
    with pytest.raises(PaginationError) as caught:
        pager.first()
    assert caught.value.code == "AMBIGUOUS_LIMIT"


def test_max_records_cap_is_an_error_not_a_short_answer() -> None:
    pager = CrmPager(PageStart(per_page=200), limits=PageLimits(max_records=400))
    assert pager.advance(distinct(200, 0, True), {}) == {"page": 2}
    with pytest.raises(PaginationError) as caught:
        pager.advance(distinct(200, 200, True), {})
    assert caught.value.code == "MAX_RECORDS" and "400" in caught.value.message


def test_max_records_reached_exactly_with_nothing_more_is_fine() -> None:
    pager = CrmPager(PageStart(per_page=200), limits=PageLimits(max_records=200))
    assert pager.advance(distinct(200, 0, False), {}) is None


def test_body_overrides_replace_members_of_the_json_body() -> None:
    prepared = Prepared(
        method="POST",
        path="/x",
        params=[("a", "1")],
        headers={},
        json={"select_query": "q", "include_meta": ["fields"]},
        content=None,
        data=None,
        files=None,
        timeout=httpx.Timeout(5),
        auth_header="Bearer",
    )
    request = prepared.build("t", "https://api.example", overrides={BODY: {"select_query": "q2"}, "a": "2"})
    assert request.read() == b'{"select_query":"q2","include_meta":["fields"]}'
    assert request.url.params["a"] == "2" and BODY not in request.url.params
    assert prepared.json == {"select_query": "q", "include_meta": ["fields"]}  # the prepared body is unchanged
