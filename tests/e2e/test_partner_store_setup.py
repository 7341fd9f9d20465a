"""`zoho-connector partner-store setup` against the sandbox, and the sync's deploy-time configuration: a copy of a
shipped automation with another CRM module and other field API names gets its module and fields from setup and is
synced there, by the Store's ids, exactly as the shipped one is.

What a user checks: `--dry-run` lists what setup would create and creates nothing; a second setup only reads; a
field found with another type is reported, not changed; names edited in a copy (`recordType`, the keys under `to:`,
`duplicateCheckFields`) are the ones set up and written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.manifest import data_root
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_refresh_token

SHIPPED = data_root() / "automations" / "partner-store"
MODULES = ["Store_Transactions", "Store_Subscriptions", "Store_Commissions"]


class Account:
    def __init__(self, base: str, connections: Path, connection: dict[str, Any]) -> None:
        self.base, self.connections, self.connection = base, connections, connection

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        code = main(["--connections", str(self.connections), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    def setup(self, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
        code, out, err = self.cli(capsys, "partner-store", "setup", "--connection", "partner", *argv)
        assert code == 0, err
        report: dict[str, Any] = json.loads(out)
        return report

    def writes(self) -> dict[str, int]:
        """Requests since the last call that are not reads or token grants (and forget them)."""
        requests = httpx.get(f"{self.base}/__sandbox/stats").json()["requests"]
        httpx.delete(f"{self.base}/__sandbox/stats")
        return {path: n for path, n in requests.items() if not path.startswith(("GET ", "POST /oauth/"))}

    def modules(self) -> set[str]:
        with Connector.load() as connector:
            listed = connector.run("crmListModules", {}, connection=self.connection)["data"]["modules"]
        return {m["api_name"] for m in listed}

    def fields(self, module: str) -> dict[str, dict[str, Any]]:
        with Connector.load() as connector:
            listed = connector.run("crmListFields", {"recordType": module}, connection=self.connection)["data"]
        return {f["api_name"]: f for f in listed["fields"]}


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    with serve_in_thread(SandboxState()) as base:
        connection = {**with_refresh_token(base, tmp_path), "store_url": f"{base}/api/v1/partner"}
        connections = tmp_path / "connections.json"
        connections.write_text(json.dumps({"partner": connection}))
        monkeypatch.delenv("ZOHO_CONNECTIONS", raising=False)
        monkeypatch.delenv("ZOHO_CONNECTION", raising=False)
        yield Account(base, connections, connection)


def test_a_dry_run_lists_what_setup_creates_and_a_second_setup_only_reads(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.writes()
    planned = account.setup(capsys, "--dry-run")
    assert planned["dry_run"] is True
    assert sorted((m["module"], m["created"]) for m in planned["modules"]) == sorted((n, True) for n in MODULES)
    transactions = next(m["fields_created"] for m in planned["modules"] if m["module"] == "Store_Transactions")
    assert {"Store_Id", "Store_Payload", "Transaction_Id", "Amount"} <= set(transactions)
    assert account.writes() == {} and not set(MODULES) & account.modules()  # nothing created

    made = account.setup(capsys)
    assert sorted(m["module"] for m in made["modules"] if m["created"]) == sorted(MODULES)
    assert sum(1 for path in account.writes() if path.startswith("POST /crm/v8/settings/")) == 2  # modules, fields
    fields = account.fields("Store_Transactions")
    assert fields["Store_Id"]["data_type"] == "text" and fields["Store_Id"]["unique"]  # what upserts match on
    assert fields["Store_Payload"]["data_type"] == "textarea" and fields["Amount"]["data_type"] == "double"

    again = account.setup(capsys)
    assert all(not m["created"] and m["fields_created"] == [] for m in again["modules"])
    assert account.writes() == {}  # the second run only read


RENAMED = {
    "name: partner-store-transactions": "name: partner-sales",
    "recordType: Store_Transactions": "recordType: Partner_Sales",
    "duplicateCheckFields: [Store_Id]": "duplicateCheckFields: [Sale_Key]",
    "          Store_Id: ${item.id}": "          Sale_Key: ${item.id}",
    "          Amount: ${item.amount?}": "          Sale_Amount: ${item.amount?}",
    '          Store_Payload: {$json: "${item}"}': '          Raw_JSON: {$json: "${item}"}',
}


def test_a_copy_with_other_module_and_field_names_is_set_up_and_synced_there(
    account: Account, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (SHIPPED / "transactions.yaml").read_text()
    for old, new in RENAMED.items():
        assert old in text, old
        text = text.replace(old, new)
    copy = tmp_path / "sales.yaml"
    copy.write_text(text)
    code, _, err = account.cli(capsys, "automation", "validate", str(copy))
    assert code == 0, err

    made = account.setup(capsys, "--automation", str(copy))
    assert [(m["module"], m["created"]) for m in made["modules"]] == [("Partner_Sales", True)]
    fields = account.fields("Partner_Sales")
    assert fields["Sale_Key"]["unique"] and fields["Raw_JSON"]["data_type"] == "textarea"
    assert fields["Sale_Amount"]["data_type"] == "double"
    assert not {"Store_Id", "Store_Payload", "Amount"} & set(fields)
    assert not set(MODULES) & account.modules()  # only what the copy writes

    httpx.post(f"{account.base}/__sandbox/store", json={"add": {"kind": "transactions", "count": 250}})
    state = tmp_path / "sales.state.json"
    for _ in range(2):  # the second run finds nothing new
        code, _, err = account.cli(capsys, "automation", "run", str(copy), "--state", str(state))
        assert code == 0, err
    with Connector.load() as connector:
        store = connector.run("storeListTransactions", {"fetchAll": True}, connection=account.connection)["data"]
        rows = list(
            connector.iter_records(
                "crmGetRecords",
                {"recordType": "Partner_Sales", "fields": ["Sale_Key", "Sale_Amount", "Raw_JSON"]},
                connection=account.connection,
            )
        )
    assert sorted(r["Sale_Key"] for r in rows) == sorted(t["id"] for t in store)  # each once, keyed by the Store id
    by_id = {t["id"]: t for t in store}
    for row in rows:
        assert json.loads(row["Raw_JSON"]) == by_id[row["Sale_Key"]]
        assert row["Sale_Amount"] == by_id[row["Sale_Key"]]["amount"]


def test_a_field_found_with_another_type_is_reported_not_changed(
    account: Account, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    account.setup(capsys)
    text = (SHIPPED / "transactions.yaml").read_text()
    copy = tmp_path / "amounts-as-payload.yaml"
    copy.write_text(text.replace('Store_Payload: {$json: "${item}"}', "Store_Payload: ${item.amount?}"))
    account.writes()
    report = account.setup(capsys, "--automation", str(copy))
    (module,) = report["modules"]
    assert module["warnings"] == ["Store_Payload is a textarea field; the sync writes double values"]
    assert account.writes() == {}
    assert account.fields("Store_Transactions")["Store_Payload"]["data_type"] == "textarea"
