"""Many processes (spawned, each with threads) on one store: one refresh in all, no lost writes."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest

from connector.auth.refresh import ensure_fresh
from connector.auth.tokens import Token
from tests.connector.auth.stores.kinds import PERSISTENT, kind_params, prepared
from tests.connector.auth.stores.workers import NEW_ACCESS, CountingRefresh, contend, save_many, warm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    with multiprocessing.get_context("spawn").Pool(8) as p:
        p.map(warm, range(8), chunksize=1)
        yield p


@pytest.mark.parametrize("name", kind_params(PERSISTENT))
def test_16_threads_and_4_processes_make_one_refresh(name: str, pool: Pool, tmp_path: Path) -> None:
    counter = tmp_path / "refresh-calls"
    with prepared(name, tmp_path) as kind:
        store = kind.open()
        store.save_token(
            Token(
                user_name="shared",
                client_id="cid",
                client_secret="cs",
                refresh_token="rt",
                access_token="old",
                expires_at=0.0,
            )
        )
        start_at = time.time() + 0.5
        jobs = [pool.apply_async(contend, (kind.url, kind.env, "shared", str(counter), start_at, 4)) for _ in range(4)]
        local: list[str] = []
        refresh = CountingRefresh(str(counter))

        def run() -> None:
            local.append(ensure_fresh(store, Token(user_name="shared"), refresh, lock_timeout=60).access_token or "")

        threads = [threading.Thread(target=run) for _ in range(16)]
        time.sleep(max(start_at - time.time(), 0))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        remote = [job.get(timeout=60) for job in jobs]

        assert len({pid for pid, _ in remote}) == 4
        answers = local + [a for _, results in remote for a in results]
        assert len(answers) == 32 and set(answers) == {NEW_ACCESS}
        assert len(counter.read_text().splitlines()) == 1
        assert len(store.get_tokens()) == 1


@pytest.mark.parametrize("name", kind_params(PERSISTENT))
def test_8_processes_x_50_saves_lose_nothing(name: str, pool: Pool, tmp_path: Path) -> None:
    with prepared(name, tmp_path) as kind:
        pool.starmap(save_many, [(kind.url, kind.env, w, 50) for w in range(8)], chunksize=1)
        tokens = kind.open().get_tokens()
        assert len(tokens) == 400
        assert {t.user_name for t in tokens} == {f"user-{w}-{i}" for w in range(8) for i in range(50)}
        if name == "file":
            data = json.loads((tmp_path / "tokens.json").read_text())
            assert len(data["tokens"]) == 400
            assert not list(tmp_path.glob("*.tmp"))
