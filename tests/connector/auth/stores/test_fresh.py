"""One helper makes and removes the stores that tests and benchmarks run against (kinds.fresh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.auth.stores import open_store
from connector.auth.stores.leases import leases_of
from connector.auth.tokens import Token
from tests.connector.auth.stores import kinds
from tests.servers import require

BENCH = Path(__file__).resolve().parents[4] / "bench"


def test_the_benchmarks_use_the_suites_store_helper() -> None:
    import bench.engine_limits
    import bench.shared_limits
    import bench.token_stores

    assert vars(bench.token_stores)["fresh"] is kinds.fresh
    assert vars(bench.engine_limits)["store_url"] is bench.shared_limits.store_url
    for path in BENCH.glob("*.py"):  # the cleanup is the store's own, not a second copy reaching into a client
        assert "._r." not in path.read_text(encoding="utf-8"), path.name


def test_a_bench_store_lives_in_its_own_folder(tmp_path: Path) -> None:
    from bench.shared_limits import store_url

    with store_url("sqlite", tmp_path) as first, store_url("sqlite-unshared", tmp_path) as second:
        assert first and second and first != second
        open_store(first).save_token(Token(user_name="a", refresh_token="r", client_id="c", client_secret="s"))
        assert open_store(second).get_tokens() == []


@pytest.mark.server
def test_a_fresh_redis_store_leaves_no_key_behind(tmp_path: Path) -> None:
    require(*kinds.SERVERS["redis"])
    import redis

    with kinds.fresh("redis", tmp_path, tag="fresh") as kind:
        store = open_store(kind.url)
        store.save_token(Token(user_name="a", refresh_token="r", client_id="c", client_secret="s"))
        leases = leases_of(store)
        assert leases is not None and leases.acquire_slot("slot", 2, 30.0)
        leases.set_value("cursor", "1", 30.0)
        with store.lock("k"):
            pass
        prefix = kind.url.split("prefix=")[1]
        client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
        assert list(client.scan_iter(match=f"{prefix}:*"))
    assert list(client.scan_iter(match=f"{prefix}:*")) == []
    client.close()
