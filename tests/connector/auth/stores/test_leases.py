"""The LeaseStore contract (base.py) on every store that implements it: slots up to a limit, leases that expire
and renew, values with an expiry; across threads and spawned processes, and a holder killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.auth.stores.base import LeaseStore
from connector.auth.stores.encrypted import EncryptedStore
from connector.auth.stores.leases import leases_of
from connector.auth.tokens import Token
from tests.connector.auth.stores.kinds import Kind, kind_params, prepared
from tests.connector.auth.stores.workers import hold_slots, take_slot_and_hang

LEASING = ("file", "sqlite", "mariadb", "postgresql", "redis", "encrypted-sqlite")
TOKEN = Token(user_name="ops@example.com", client_id="cid", client_secret="cs", refresh_token="rt", access_token="at")


@pytest.fixture(params=kind_params(LEASING))
def leasing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kind]:
    with prepared(request.param, tmp_path) as kind:
        yield kind


@pytest.fixture
def leases(leasing: Kind) -> LeaseStore:
    found = leases_of(leasing.open())
    assert found is not None
    return found


def name() -> str:
    return uuid.uuid4().hex  # the runtime's names are 64-character digests; any short ASCII name will do


@pytest.mark.parametrize("kind_name", kind_params(("memory", "python")))
def test_memory_and_a_plain_python_store_offer_no_leases(kind_name: str, tmp_path: Path) -> None:
    with prepared(kind_name, tmp_path) as kind:
        assert leases_of(kind.open()) is None


def test_an_encrypted_store_passes_leases_to_the_store_it_wraps(tmp_path: Path) -> None:
    with prepared("encrypted-sqlite", tmp_path) as kind:
        store = kind.open()
        assert isinstance(store, EncryptedStore)
        inner: object = store.inner
        assert leases_of(store) is inner


def test_slots_are_handed_out_up_to_the_limit(leases: LeaseStore) -> None:
    a, b = name(), name()
    taken = [leases.acquire_slot(a, 3, 30) for _ in range(3)]
    assert None not in taken and len(set(taken)) == 3
    assert leases.acquire_slot(a, 3, 30) is None
    assert leases.acquire_slot(a, 4, 30) is not None  # a caller with a larger cap may take one more
    assert leases.acquire_slot(b, 1, 30) is not None  # names are independent
    leases.release_slot(a, taken[0] or "")
    leases.release_slot(a, taken[0] or "")  # twice: no error
    leases.release_slot(a, "no-such-lease")
    assert leases.acquire_slot(a, 4, 30) is not None
    assert leases.acquire_slot(a, 4, 30) is None


class Late(Exception):
    """A step landed after the window it had to land in: the machine was too busy for this TTL to tell anything."""


def on_time(scenario: Callable[[float], None], ttls: tuple[float, ...] = (0.4, 1.6, 6.4)) -> None:
    """Run a scenario whose steps must land within windows of `ttl` seconds of real time (the stores expire by
    their own clocks, Redis's and the databases' included, so no fake clock reaches them): first with a short TTL,
    again with longer ones when a busy machine made a step late. A late step proves nothing either way; an
    on-time step that finds the wrong answer fails the test."""
    for ttl in ttls:
        try:
            scenario(ttl)
            return
        except Late:
            continue
    raise AssertionError(f"every step was late, even with a {ttls[-1]} s TTL")


def within(start: float, ttl: float) -> None:
    if time.monotonic() - start >= ttl:
        raise Late


def test_a_lease_expires_and_frees_its_slot(leases: LeaseStore) -> None:
    def scenario(ttl: float) -> None:
        slot, start = name(), time.monotonic()
        lease = leases.acquire_slot(slot, 1, ttl)
        second = leases.acquire_slot(slot, 1, ttl)
        within(start, ttl)
        assert lease is not None and second is None
        time.sleep(ttl * 1.5)
        assert leases.renew_slot(slot, lease, 10) is False  # too late: it may be someone else's now
        assert leases.acquire_slot(slot, 1, 10) is not None

    on_time(scenario)


def test_renewing_keeps_a_lease_alive(leases: LeaseStore) -> None:
    def scenario(ttl: float) -> None:
        slot, before = name(), time.monotonic()
        lease = leases.acquire_slot(slot, 1, ttl)
        first_expiry = time.monotonic() + ttl  # at the latest (and at the earliest before + ttl)
        assert lease is not None
        time.sleep(ttl / 2)
        renewing = time.monotonic()  # the renewed lease lives at least until renewing + ttl
        renewed = leases.renew_slot(slot, lease, ttl)
        within(before, ttl)
        assert renewed
        time.sleep(max(0.0, first_expiry - time.monotonic()) + ttl / 8)  # past the first expiry
        taken = leases.acquire_slot(slot, 1, 10)
        within(renewing, ttl)
        assert taken is None  # still held: the renewal counts
        leases.release_slot(slot, lease)
        assert leases.renew_slot(slot, lease, 10) is False
        assert leases.acquire_slot(slot, 1, 10) is not None

    on_time(scenario)


def test_values_are_replaced_and_expire(leases: LeaseStore) -> None:
    def scenario(ttl: float) -> None:
        key = name()
        assert leases.get_value(key) is None
        leases.set_value(key, '{"remaining":10}', 30)
        start = time.monotonic()
        leases.set_value(key, '{"remaining":9}', ttl)
        value = leases.get_value(key)
        within(start, ttl)
        assert value == '{"remaining":9}'
        time.sleep(ttl * 1.5)
        assert leases.get_value(key) is None

    on_time(scenario)


def test_threads_never_hold_more_than_the_limit(leases: LeaseStore) -> None:
    slot, limit = name(), 3
    guard = threading.Lock()
    held = [0, 0]
    full = threading.Event()  # the limit was reached once: holders wait for it, so reaching it is not left to luck

    def run() -> None:
        for _ in range(15):
            lease = None
            while lease is None:
                lease = leases.acquire_slot(slot, limit, 30)
                if lease is None:
                    time.sleep(0.001)
            with guard:
                held[0] += 1
                held[1] = max(held)
                if held[0] == limit:
                    full.set()
            full.wait(30)
            time.sleep(0.001)
            with guard:
                held[0] -= 1
            leases.release_slot(slot, lease)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert held == [0, limit]


def test_slots_and_values_leave_the_tokens_alone(leasing: Kind) -> None:
    store = leasing.open()
    stored = store.save_token(TOKEN)
    leases = leases_of(store)
    assert leases is not None
    slot = name()
    lease = leases.acquire_slot(slot, 2, 30)
    leases.set_value(slot, "{}", 30)
    assert store.get_tokens() == [stored]
    store.delete_tokens()
    assert leases.acquire_slot(slot, 2, 30) is not None and leases.acquire_slot(slot, 2, 30) is None
    assert lease is not None and leases.get_value(slot) == "{}"
    assert store.get_tokens() == []


@pytest.mark.slow
def test_spawned_processes_never_hold_more_than_the_limit(leasing: Kind) -> None:
    context = multiprocessing.get_context("spawn")
    held, results = context.Array("i", [0, 0]), context.Queue()
    slot, limit = name(), 4
    args = (leasing.url, leasing.env, slot, limit, 4, 10, held, results)
    workers = [context.Process(target=hold_slots, args=args) for _ in range(4)]
    for worker in workers:
        worker.start()
    taken = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert taken == [40] * 4
    assert [held[0], held[1]] == [0, limit]  # someone always waited, and never more than the limit held at once


@pytest.mark.slow
def test_a_holder_killed_with_sigkill_frees_its_slot_when_the_lease_ends(leasing: Kind) -> None:
    store = leasing.open()
    stored = store.save_token(TOKEN)
    leases = leases_of(store)
    assert leases is not None
    context = multiprocessing.get_context("spawn")

    def scenario(ttl: float) -> None:
        slot, ready, taking = name(), context.Event(), context.Value("d", 0.0)
        args = (leasing.url, leasing.env, slot, ttl, ready, taking)
        holder = context.Process(target=take_slot_and_hang, args=args)
        holder.start()
        try:
            assert ready.wait(60)
            taken_by_then = time.monotonic()  # the lease was taken before now: it ends by taken_by_then + ttl
            os.kill(holder.pid or 0, signal.SIGKILL)
            holder.join(10)
            assert holder.exitcode == -signal.SIGKILL
            still = leases.acquire_slot(slot, 1, 30)
            within(taking.value, ttl)  # (the lease lasts at least until taking + ttl)
            assert still is None  # the dead worker's lease still counts ...
            lease, refused = None, taken_by_then
            while lease is None:
                assert time.monotonic() - taken_by_then < ttl + 10, "the dead worker's slot was never freed"
                trying = time.monotonic()
                lease = leases.acquire_slot(slot, 1, 30)
                if lease is None:
                    refused = trying
                    time.sleep(0.05)
            # ... until its lease ends, not longer: no try begun once it had ended was refused, however slow
            assert refused < taken_by_then + ttl + 0.1, f"refused {refused - taken_by_then:.2f} s on, TTL {ttl} s"
        finally:
            if holder.is_alive():
                holder.kill()

    on_time(scenario, (1.5, 6.0))
    assert store.get_tokens() == [stored]
