"""Many connections in one process: open file descriptors and memory stay flat however many distinct connections
(here: distinct access tokens) a long-lived worker serves.

    python -m bench.connections

Per-connection state lives in a bounded LRU keyed by identity, every call shares one pooled HTTP client, and
connections naming one token store share it, so 10,000 connections cost what a few hundred do: with 10,000 access
tokens, and with 10,000 users' refresh tokens in one SQLite store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from bench._sandbox import sandbox_process
from connector import Connector
from tests.e2e.connections import refreshing


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def many_connections(total: int = 10_000, every: int = 2_000) -> list[dict[str, float]]:
    with sandbox_process() as base, Connector.load() as connector, httpx.Client(timeout=30) as admin:
        return _calls(connector, total, every, _connection(admin, base), lambda: _connection(admin, base))


def many_users_one_store(total: int = 10_000, every: int = 2_000) -> list[dict[str, float]]:
    """`total` users' refresh-token connections, all keeping their tokens in one SQLite store (the default
    store's kind): each call refreshes and saves a token, and the store is opened once, not once per user."""
    with (
        sandbox_process() as base,
        tempfile.TemporaryDirectory() as tmp,
        Connector.load() as connector,
        httpx.Client(timeout=30) as admin,
    ):
        store = f"sqlite:///{tmp}/tokens.db"
        return _calls(connector, total, every, _connection(admin, base), lambda: refreshing(base, store))


def _calls(
    connector: Connector, total: int, every: int, first: dict[str, object], each: Callable[[], dict[str, object]]
) -> list[dict[str, float]]:
    """`total` crmGetRecord calls, each on the connection `each()` makes; open fds and RSS every `every` calls."""
    lead = connector.run(
        "crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Bench"}}, connection=first
    )["data"]["data"][0]["details"]["id"]
    inputs = {"recordType": "Leads", "recordId": lead}
    rows = []
    for done in range(1, total + 1):
        connector.run("crmGetRecord", inputs, connection=each())
        if done % every == 0:
            rows.append({"connections": done, "open_fds": _fds(), "rss_mib": round(_rss_mib(), 1)})
    return rows


def _connection(admin: httpx.Client, base: str) -> dict[str, object]:
    token = admin.post(f"{base}/__sandbox/tokens", json={}).json()["access_token"]
    return {"access_token": token, "expires_in": 3600, "accounts_url": base, "api_domain": base}


def main() -> None:
    print(f"{'connections':>12} {'open fds':>9} {'RSS MiB':>8}   (each its own access token)")
    for row in many_connections():
        print(f"{row['connections']:>12,} {row['open_fds']:>9} {row['rss_mib']:>8}")
    print(f"{'connections':>12} {'open fds':>9} {'RSS MiB':>8}   (each its own refresh token, one SQLite store)")
    for row in many_users_one_store():
        print(f"{row['connections']:>12,} {row['open_fds']:>9} {row['rss_mib']:>8}")


if __name__ == "__main__":
    main()
