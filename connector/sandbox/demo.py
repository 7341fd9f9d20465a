"""The README's main job: a multi-step automation run through the connector against the bundled sandbox.

    python -m connector.sandbox.demo          (or: make demo)

Connects with OAuth (consent → redirect → code exchange → stored tokens), creates leads, attaches a file, runs a
COQL query, updates a lead, fetches every lead past 2,000 with a progress bar, runs a Books invoice flow, lists the
Partner Store's transactions, syncs the Partner Store into the CRM (the shipped automations, once; `make demo-sync`
tells the whole story), and cleans up — printing each step's result. Nothing leaves this machine.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from connector.auth.account import Account, wait_for_redirect
from connector.auth.oauth import new_state
from connector.connection import resolve_connection
from connector.runner import Connector
from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, serve_in_thread
from connector.sandbox.demo_sync import sync_once

__all__ = ["main", "run_demo"]

EXTRA_LEADS = 2_400  # enough to pass CRM's 2,000-row page-number limit


STORE_SCOPES = tuple(f"ZohoPayments.{kind}.READ" for kind in ("subscriptions", "transactions", "commissions", "leads"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect(base: str, token_store: str) -> dict[str, Any]:
    """The OAuth authorization-code flow, with this function playing the user's browser."""
    connection = {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "user_name": "demo@sandbox.test",
        "accounts_url": base,
        "api_domain": base,
        "token_store": token_store,
        "redirect_uri": f"http://127.0.0.1:{_free_port()}/callback",
        "store_url": f"{base}/api/v1/partner",  # the sandbox stands in for store.zoho.*
    }
    connector = Connector.load()
    definition = connector.manifest.connections["zohoOAuth"]
    # The default scopes plus the Partner Store's, which a partner account adds (README "Partner Store").
    connection["scopes"] = " ".join((definition.input_schema["properties"]["scopes"]["default"], *STORE_SCOPES))
    account = Account(resolve_connection(definition, connection), definition)
    state = new_state()
    url = account.authorize_url(redirect_uri=connection["redirect_uri"], state=state)
    browser = threading.Thread(target=_approve, args=(url,), daemon=True)
    browser.start()
    redirect = wait_for_redirect(connection["redirect_uri"], state, timeout=30)
    account.exchange_code(
        redirect.code,
        redirect_uri=connection["redirect_uri"],
        accounts_server=redirect.accounts_server,
        location=redirect.location,
    )
    return connection


def _approve(url: str) -> None:
    """The user's click on "Accept": follow the consent page's redirect to the local listener."""
    for _ in range(100):
        try:
            httpx.get(url, follow_redirects=True, timeout=10)
            return
        except httpx.ConnectError:  # the listener is not up yet
            time.sleep(0.05)


def run_demo(base: str, token_store: str, say: Callable[[str, Any], None]) -> dict[str, Any]:
    """Every step against the sandbox at `base`; returns a summary of what happened."""
    connection = connect(base, token_store)
    say("connected with OAuth; tokens stored in", token_store.split("://")[0])
    summary: dict[str, Any] = {}
    with Connector.load() as connector:

        def run(action: str, inputs: dict[str, Any]) -> Any:
            return connector.run(action, inputs, connection=connection)["data"]

        ids = []
        for name, company in (("Lovelace", "Analytical Engines"), ("Hopper", "COBOL Inc"), ("Turing", "Bletchley")):
            created = run(
                "crmCreateRecord",
                {
                    "recordType": "Leads",
                    "fieldValues": {"Last_Name": name, "Company": company, "Email": f"{name.lower()}@example.com"},
                },
            )
            ids.append(created["data"][0]["details"]["id"])
        say("created leads", ids)

        attached = run(
            "crmAddAttachment",
            {
                "recordType": "Leads",
                "recordId": ids[0],
                "fileName": "proposal.txt",
                "file": "Dear Ada, here is our proposal.",
            },
        )
        say("attached proposal.txt", attached["data"][0]["details"]["id"])

        found = run(
            "crmRunQuery",
            {
                "query": "select Last_Name, Email from Leads where Email like '%@example.com' "
                "order by Last_Name asc limit 10"
            },
        )
        say("COQL found", [row["Last_Name"] for row in found["data"]])

        updated = run(
            "crmUpdateRecord", {"recordType": "Leads", "recordId": ids[1], "fieldValues": {"Company": "Navy Computing"}}
        )
        say("updated lead", updated["data"][0]["code"])

        searched = run("crmSearchRecords", {"recordType": "Leads", "email": "hopper@example.com"})
        say("searched by email", [row["Last_Name"] for row in searched["data"]])

        upserted = run(
            "crmUpsertRecords",
            {
                "recordType": "Leads",
                "records": [
                    {"Last_Name": "Lovelace", "Email": "lovelace@example.com", "Company": "Babbage & Co"},
                    {"Last_Name": "Hamilton", "Email": "hamilton@example.com", "Company": "Apollo"},
                ],
                "duplicateCheckFields": ["Email"],
            },
        )
        say("bulk upsert (one update, one insert)", [entry["action"] for entry in upserted])
        ids.extend(entry["id"] for entry in upserted if entry["action"] == "insert")

        converted = run(
            "crmConvertLead",
            {"recordId": ids[2], "deal": {"Deal_Name": "Enigma follow-up", "Stage": "Qualification"}},
        )
        say(
            "converted a lead into",
            {kind: converted[kind] for kind in ("contactId", "accountId", "dealId") if converted[kind]},
        )
        ids.remove(ids[2])  # a converted lead is no longer there to clean up

        httpx.post(
            f"{base}/__sandbox/seed", json={"module": "Leads", "count": EXTRA_LEADS}, timeout=60
        ).raise_for_status()
        summary["fetched"] = _fetch_all(connector, connection, say)

        summary["invoice"] = _books(run, say)

        item = run(
            "inventoryCreateRecord", {"recordType": "items", "fieldValues": {"name": "Jacquard cards", "rate": 12}}
        )
        item_id = item["item"]["item_id"]
        stocked = run("inventoryGetRecords", {"recordType": "items", "fetchAll": True})
        say("Inventory: items in its own organization", len(stocked["items"]))
        run("inventoryRemoveRecord", {"recordType": "items", "recordId": item_id})

        transactions = run("storeListTransactions", {"fetchAll": True})
        say("Partner Store transactions", [t["transaction_type"] for t in transactions])
        summary["store_transactions"] = len(transactions)
        summary["partner_store_sync"] = sync_once(connector, connection, base, say)  # `make demo-sync`: the story

        for lead_id in ids:
            run("crmRemoveRecord", {"recordType": "Leads", "recordId": lead_id})
        say("cleaned up leads", len(ids))
    summary["leads"] = ids
    return summary


def _fetch_all(connector: Connector, connection: dict[str, Any], say: Callable[[str, Any], None]) -> int:
    inputs = {"recordType": "Leads", "fields": ["Last_Name"], "per_page": 200}
    total = 0
    with _progress("fetching every lead") as advance:
        for page in connector.iter_pages("crmGetRecords", inputs, connection=connection):
            count = len(page.get("data", [])) if isinstance(page, dict) else 0
            total += count
            advance(count)
    say("fetched every lead (page tokens past 2,000)", total)
    return total


def _books(run: Callable[[str, dict[str, Any]], Any], say: Callable[[str, Any], None]) -> str:
    contact = run(
        "booksCreateRecord", {"recordType": "contacts", "fieldValues": {"contact_name": "Analytical Engines"}}
    )
    contact_id = contact["contact"]["contact_id"]
    invoice = run(
        "booksCreateRecord",
        {
            "recordType": "invoices",
            "fieldValues": {
                "customer_id": contact_id,
                "line_items": [{"name": "Difference engine", "rate": 1200, "quantity": 1}],
            },
        },
    )
    invoice_id = invoice["invoice"]["invoice_id"]
    say("Books: created invoice", invoice_id)
    run(
        "booksUpdateRecord",
        {"recordType": "invoices", "recordId": invoice_id, "fieldValues": {"reference_number": "PO-1843"}},
    )
    sent = run("booksMarkStatus", {"recordType": "invoices", "recordId": invoice_id, "status": "sent"})
    say("Books: marked sent", sent["message"])
    listed = run("booksGetRecords", {"recordType": "invoices", "fetchAll": True})
    say("Books: invoices listed", len(listed["invoices"]))
    run("booksRemoveRecord", {"recordType": "invoices", "recordId": invoice_id})
    run("booksRemoveRecord", {"recordType": "contacts", "recordId": contact_id})
    say("Books: cleaned up invoice and contact", invoice_id)
    return str(invoice_id)


class _progress:
    """A rich progress bar when rich is installed, plain dots otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> Callable[[int], None]:
        try:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        except ImportError:
            return lambda n: print(".", end="", flush=True)
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self._bar.start()
        task = self._bar.add_task(self.label, total=None)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.stop()


def main() -> int:
    started = time.perf_counter()

    def say(step: str, result: Any) -> None:
        print(f"✔ {step}: {json.dumps(result, ensure_ascii=False)}")

    with tempfile.TemporaryDirectory() as home, serve_in_thread(SandboxState()) as base:
        print(f"Zoho sandbox at {base}")
        run_demo(base, f"sqlite:///{Path(home) / 'tokens.db'}", say)
    print(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
