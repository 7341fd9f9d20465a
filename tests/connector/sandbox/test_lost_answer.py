"""The `lost` fault: the call is carried out, then the answer is cut off — the one failure where a write may have
acted, which an engine must never retry into a duplicate."""

from __future__ import annotations

import httpx
import pytest

from connector import Connector
from connector.errors import TransientError
from connector.sandbox.server import serve_in_thread
from tests.e2e.connections import with_access_token


def test_a_create_whose_answer_is_lost_was_carried_out_and_is_reported_may_have_acted() -> None:
    with serve_in_thread() as sandbox, Connector.load(engine_mode=True) as connector:
        connection = with_access_token(sandbox)
        before = httpx.get(f"{sandbox}/__sandbox/stats").json()["records"].get("Leads", 0)
        httpx.post(f"{sandbox}/__sandbox/faults", json={"fail_next": 1, "fail_kind": "lost"}).raise_for_status()
        with pytest.raises(TransientError) as caught:
            connector.run(
                "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Lost"}}, connection=connection
            )
        assert (caught.value.may_have_acted, caught.value.retryable) == (True, False)
        stats = httpx.get(f"{sandbox}/__sandbox/stats").json()
        assert stats["faults_injected"] == {"lost": 1}
        assert stats["records"]["Leads"] == before + 1  # the create happened although its answer never came
        found = connector.run(
            "crmSearchRecords", {"recordType": "Leads", "criteria": "(Last_Name:equals:Lost)"}, connection=connection
        )
        assert [r["Last_Name"] for r in found["data"]["data"]] == ["Lost"]
