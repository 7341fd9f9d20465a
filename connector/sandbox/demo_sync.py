"""The Partner Store → CRM sync on the bundled sandbox, as a deployment runs it.

    python -m connector.sandbox.demo_sync          (or: make demo-sync)

Prepares the CRM (`partner-store setup`), gives the sandbox's Store a thousand new transactions, and runs the three
shipped automations (automations/partner-store/) the way `zoho-connector automation run FILE --state FILE` does:
poll a window, upsert it, keep the state, poll again. Then it shows what the next runs do: nothing to write when
nothing changed, only the new transactions and the subscriptions they touched when some arrive, commissions one day
behind (the sandbox's clock is moved forward two days), and a commission followed from open to requested.
Nothing leaves this machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from connector.automations import Automation, load_automation, run_automation
from connector.manifest import bundled_manifest, data_root
from connector.runner import Connector
from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxState, serve_in_thread
from connector.strategies.partner_store import plan, setup

__all__ = ["PartnerStoreSync", "main", "sync_once"]

KINDS = ("transactions", "subscriptions", "commissions")
Say = Callable[[str, Any], None]


class PartnerStoreSync:
    """The three automations with their poll states, kept between runs as `--state FILE` keeps them."""

    def __init__(self, connector: Connector, connection: Any, base: str) -> None:
        manifest = bundled_manifest()
        folder = data_root() / "automations" / "partner-store"
        self.automations: dict[str, Automation] = {
            kind: load_automation(folder / f"{kind}.yaml", manifest) for kind in KINDS
        }
        self.connector, self.connection, self.base = connector, connection, base
        self.states: dict[str, Any] = dict.fromkeys(KINDS)

    def setup(self) -> list[str]:
        report = setup(self.connector, plan(list(self.automations.values())), connection=self.connection)
        return [m["module"] for m in report["modules"] if m["created"]]

    def run(self) -> dict[str, int]:
        """One run of each automation; how many records each wrote."""
        written = {}
        for kind, automation in self.automations.items():
            counted = {"records": 0}

            def count(event: dict[str, Any], counted: dict[str, int] = counted) -> None:
                counted["records"] += event.get("records", 0) if "trigger" in event else 0

            def keep(state: Any, kind: str = kind) -> None:
                self.states[kind] = state

            run_automation(
                self.connector,
                automation,
                connection=self.connection,
                state=self.states[kind],
                on_step=count,
                on_state=keep,
            )
            written[automation.name] = counted["records"]
        return written

    def store(self, **change: Any) -> Any:
        response = httpx.post(f"{self.base}/__sandbox/store", json=change, timeout=60)
        response.raise_for_status()
        return response.json()

    def crm_writes(self) -> int:
        """Write requests the sandbox's CRM answered since the last call."""
        requests = httpx.get(f"{self.base}/__sandbox/stats", timeout=30).json()["requests"]
        httpx.delete(f"{self.base}/__sandbox/stats", timeout=30)
        return sum(n for path, n in requests.items() if path.split(" ")[0] != "GET" and "/crm/" in path)

    def crm_count(self, module: str) -> int:
        return int(httpx.get(f"{self.base}/__sandbox/stats", timeout=30).json()["records"].get(module, 0))


def sync_once(connector: Connector, connection: Any, base: str, say: Say) -> dict[str, int]:
    """The short version `make demo` runs: setup, then one run of each automation."""
    sync = PartnerStoreSync(connector, connection, base)
    say("Partner Store sync: created CRM modules", sync.setup())
    written = sync.run()
    say("Partner Store sync: records upserted by each automation", written)
    return written


def run_story(sync: PartnerStoreSync, advance_days: Callable[[int], None], say: Say) -> dict[str, Any]:
    say("partner-store setup: created CRM modules (and their fields)", sync.setup())
    sync.store(add={"kind": "transactions", "count": 1_000})
    sync.store(add={"kind": "commissions", "count": 5})
    sync.crm_writes()
    started = time.perf_counter()
    first = sync.run()
    say(f"first run, {time.perf_counter() - started:.1f}s: records upserted", first)
    say("  CRM upsert calls (100 records each)", sync.crm_writes())
    say("  commissions in the CRM (the 5 created today wait for the lag)", sync.crm_count("Store_Commissions"))

    second = sync.run()
    say("second run, nothing changed: records upserted", second)
    say("  CRM write calls", sync.crm_writes())

    new = sync.store(add={"kind": "transactions", "count": 5})["added"]
    touched = sorted({t["subscription_id"] for t in new})
    third = sync.run()
    say(f"5 new transactions on {len(touched)} subscriptions: records upserted (subscriptions they changed)", third)

    advance_days(2)
    commissions = sync.run()
    say("two days later: records upserted (the commissions created that day)", commissions)
    open_one = next(c for c in _store_commissions(sync) if c["status"] == "open")
    sync.store(update={"kind": "commissions", "id": open_one["id"], "fields": {"status": "requested"}})
    followed = sync.run()
    say(f"commission {open_one['id']} requested in the Store: records upserted", followed)
    totals = {m: sync.crm_count(m) for m in ("Store_Transactions", "Store_Subscriptions", "Store_Commissions")}
    say("in the CRM now", totals)
    return {"first": first, "second": second, "third": third, "commissions": commissions, "totals": totals}


def _store_commissions(sync: PartnerStoreSync) -> list[dict[str, Any]]:
    listed = sync.connector.run("storeListCommissions", {"fetchAll": True}, connection=sync.connection)["data"]
    return list(listed)


class _Clock:
    """Real time plus whole days the demo moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def main() -> int:
    started = time.perf_counter()

    def say(step: str, result: Any) -> None:
        print(f"✔ {step}: {json.dumps(result, ensure_ascii=False)}")

    clock = _Clock()
    with tempfile.TemporaryDirectory() as home, serve_in_thread(SandboxState(), clock=clock) as base:
        print(f"Zoho sandbox at {base} (its Partner Store at {base}/api/v1/partner)")
        tokens = httpx.post(f"{base}/__sandbox/tokens", json={}, timeout=30).json()
        connection = {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "refresh_token": tokens["refresh_token"],
            "accounts_url": base,
            "api_domain": base,
            "store_url": f"{base}/api/v1/partner",
            "token_store": f"sqlite:///{Path(home) / 'tokens.db'}",
        }

        def advance_days(days: int) -> None:
            clock.offset += days * 86_400

        with Connector.load(clock=clock) as connector:
            run_story(PartnerStoreSync(connector, connection, base), advance_days, say)
    print(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
