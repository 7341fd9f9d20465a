"""The allowance guard: what Zoho's rate-limit headers do to later calls, whatever they contain."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector._ratelimit import DEFAULT_WINDOW, MAX_WAIT, Budget
from connector.errors import RateLimitedError

NOW = 1_800_000_000.0


def spent(headers: dict[str, str], min_calls_remaining: int = 1) -> Budget:
    budget = Budget(min_calls_remaining=min_calls_remaining)
    budget.after_response(headers, NOW)
    return budget


def refusal(budget: Budget, now: float = NOW) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        budget.before_call(now)
    return caught.value


def test_remaining_zero_without_a_reset_expires_after_the_default_window() -> None:
    """Issue 8.7: this used to refuse every later call for the life of the process."""
    budget = spent({"X-RateLimit-Remaining": "0"})
    error = refusal(budget)
    assert error.retry_after == DEFAULT_WINDOW == 60.0 and "no reset time" in error.message
    assert refusal(budget, NOW + 59.5).retry_after == 1.0  # rounded up: never a zero wait
    assert budget.before_call(NOW + DEFAULT_WINDOW) == 0.0  # a probe call goes out
    budget.after_response({"X-RateLimit-Remaining": "0"}, NOW + 61)  # and its answer re-arms the guard
    assert refusal(budget, NOW + 61).retry_after == 60.0


def test_a_reset_in_seconds_sets_when_calls_resume() -> None:
    budget = spent({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "600"}, min_calls_remaining=3)
    error = refusal(budget)
    assert error.retry_after == 600.0 and "resets in 600s" in error.message
    assert error.to_dict()["error"]["retry_after"] == 600.0
    assert budget.before_call(NOW + 600) == 0.0


@pytest.mark.parametrize(
    ("reset", "retry_after"),
    [
        pytest.param(str(int(NOW) + 90), 90.0, id="unix-seconds"),
        pytest.param(str(int(NOW) * 1000 + 90_000), 90.0, id="unix-milliseconds"),
        pytest.param(str(int(NOW) - 5), DEFAULT_WINDOW, id="past-timestamp"),
        pytest.param("0", DEFAULT_WINDOW, id="zero"),
        pytest.param("10000000", MAX_WAIT, id="months-away"),
        pytest.param("9" * 400, MAX_WAIT, id="huge-int"),
        pytest.param("30.5", 31.0, id="fraction"),
    ],
)
def test_reset_forms_and_extremes(reset: str, retry_after: float) -> None:
    assert refusal(spent({"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})).retry_after == retry_after


@pytest.mark.parametrize("garbage", ["", " ", "soon", "-1", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1_0"])
def test_garbage_reset_falls_back_to_the_default_window(garbage: str) -> None:
    error = refusal(spent({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": garbage}))
    assert error.retry_after == DEFAULT_WINDOW
    json.dumps(error.to_dict(), allow_nan=False)


@pytest.mark.parametrize("garbage", ["", "many", "-1", "-0.5", "nan", "inf", "-inf", "1e400", "0x10", "٣"])
def test_garbage_remaining_is_ignored(garbage: str) -> None:
    budget = spent({"X-RateLimit-Remaining": garbage, "X-RateLimit-Reset": "600"})
    assert budget.remaining is None and budget.before_call(NOW) == 0.0


def test_a_huge_remaining_means_plenty() -> None:
    budget = spent({"X-RateLimit-Remaining": "9" * 5000}, min_calls_remaining=1000)
    assert budget.before_call(NOW) == 0.0


def test_books_rate_limit_headers_are_read() -> None:
    """Zoho Books sends X-Rate-Limit-Limit/-Remaining/-Reset (seconds from now, as pyzohoapi reads them)."""
    budget = spent({"X-Rate-Limit-Limit": "1000", "X-Rate-Limit-Remaining": "1", "X-Rate-Limit-Reset": "3600"}, 2)
    error = refusal(budget)
    assert error.retry_after == 3600.0 and "1 of 1000 calls left" in error.message


def test_without_rate_limit_headers_nothing_is_held() -> None:
    budget = Budget(min_calls_remaining=5)
    budget.after_response({"Content-Type": "application/json"}, NOW)
    assert budget.before_call(NOW) == 0.0


def test_a_later_count_without_reset_does_not_inherit_an_old_reset() -> None:
    budget = spent({"X-RateLimit-Remaining": "100", "X-RateLimit-Reset": "80000"})
    budget.after_response({"X-RateLimit-Remaining": "0"}, NOW + 10)
    assert refusal(budget, NOW + 10).retry_after == DEFAULT_WINDOW


def test_a_repeated_header_is_read_conservatively() -> None:
    """httpx joins repeated headers with commas: the lower count and the later reset win."""
    error = refusal(spent({"X-RateLimit-Remaining": "5, 0", "X-RateLimit-Reset": "10, 20"}))
    assert error.retry_after == 20.0


def test_intercall_delay_spaces_calls() -> None:
    budget = Budget(intercall_delay=1.5)
    assert [budget.before_call(NOW), budget.before_call(NOW), budget.before_call(NOW + 1)] == [0.0, 1.5, 2.0]


HEADER_NAMES = st.sampled_from(
    [
        "X-RateLimit-Remaining",
        "x-ratelimit-reset",
        "X-RateLimit-Limit",
        "X-Rate-Limit-Remaining",
        "X-Rate-Limit-Reset",
        "X-Rate-Limit-Limit",
        "X-API-CREDITS-REMAINING",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e400", "", "9" * 400, "1" + "0" * 20, "0.0001"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@given(
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=7),
    later=st.floats(min_value=0, max_value=2 * MAX_WAIT),
    min_calls_remaining=st.integers(min_value=0, max_value=10),
)
def test_no_header_can_crash_wedge_or_break_json(
    headers: dict[str, str], later: float, min_calls_remaining: int
) -> None:
    budget = Budget(min_calls_remaining=min_calls_remaining)
    budget.after_response(headers, NOW)
    for now in (NOW, NOW + later):
        try:
            wait = budget.before_call(now)
        except RateLimitedError as error:
            assert error.retry_after is not None and 1 <= error.retry_after <= MAX_WAIT
            json.dumps(error.to_dict(), allow_nan=False)
        else:
            assert wait == 0.0
    budget.after_response(headers, NOW + later)
    assert budget.before_call(NOW + later + MAX_WAIT) == 0.0  # never held longer than a day
    assert budget.reset_at is None or math.isfinite(budget.reset_at)


# --- the allowance shared between workers (Budget.share, through a store's value) --------------------------------


class Shelf:
    """A SharedValue in a dict: what a token store's get_value/set_value keep for every worker."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.ttl: float | None = None
        self.writes = 0

    def get(self) -> str | None:
        return self.value

    def put(self, value: str, ttl: float) -> None:
        self.value, self.ttl, self.writes = value, ttl, self.writes + 1


def test_a_spent_allowance_seen_by_one_worker_stops_the_others_at_once() -> None:
    shelf = Shelf()
    first, second = Budget(shared=True), Budget(shared=True)
    second.share(shelf, NOW)  # the second worker has already looked: nothing known
    first.after_response({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600"}, NOW + 5)
    assert first.share_due(NOW + 5)  # spent: tell the others now, not in a second
    first.share(shelf, NOW + 5)
    assert shelf.ttl == 3600.0  # kept as long as the count holds
    assert second.share_due(NOW + 6)
    second.share(shelf, NOW + 6)
    error = refusal(second, NOW + 6)
    assert error.retry_after == 3599.0 and "it resets in" in error.message


def test_the_newer_observation_wins() -> None:
    shelf = Shelf()
    old, new = Budget(shared=True), Budget(shared=True)
    old.after_response({"X-RateLimit-Remaining": "0"}, NOW)
    old.share(shelf, NOW)
    new.after_response({"X-RateLimit-Remaining": "4000"}, NOW + 2)  # a later answer: the allowance is back
    new.share(shelf, NOW + 2)
    assert new.remaining == 4000 and new.before_call(NOW + 2) == 0.0
    old.share(shelf, NOW + 3)
    assert old.remaining == 4000 and old.before_call(NOW + 3) == 0.0


def test_sharing_is_due_once_a_second_and_writes_only_news() -> None:
    shelf = Shelf()
    budget = Budget(shared=True)
    assert budget.share_due(NOW)
    budget.share(shelf, NOW)
    assert not budget.share_due(NOW + 0.5) and budget.share_due(NOW + 1.0)
    budget.after_response({"X-RateLimit-Remaining": "900"}, NOW + 1)
    budget.share(shelf, NOW + 1)
    budget.share(shelf, NOW + 2)  # nothing new since
    assert shelf.writes == 1
    assert not Budget().share_due(NOW)  # a budget of one process never shares
    budget.share(None, NOW + 3)  # the account turned out not to be shared: never due again
    assert not budget.share_due(NOW + 100)


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[]",
        '{"remaining": "many", "observed_at": 1}',
        '{"remaining": -1, "observed_at": 1900000000}',
        '{"remaining": 1e400, "observed_at": 1900000000}',
        '{"remaining": 0}',
        '{"remaining": 0, "observed_at": NaN}',
    ],
)
def test_a_damaged_shared_value_is_ignored(stored: str) -> None:
    shelf = Shelf()
    shelf.value = stored
    budget = Budget(shared=True)
    budget.share(shelf, NOW)
    assert budget.remaining is None and budget.before_call(NOW) == 0.0
