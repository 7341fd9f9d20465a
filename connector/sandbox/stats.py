"""Counters that tests and benchmarks read from GET /__sandbox/stats to see what a client really sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # "GET /crm/v8/Leads" -> calls
    token_grants: Counter[str] = field(default_factory=Counter)  # grant_type -> access tokens minted
    token_errors: Counter[str] = field(default_factory=Counter)  # Accounts error code -> times answered
    faults: Counter[str] = field(default_factory=Counter)  # injected fault kind -> times answered
    throttled: Counter[str] = field(default_factory=Counter)  # natural limit ("concurrency") -> 429s answered
    peak_in_flight: int = 0  # the most CRM calls the server held at once (its own count, for concurrency checks)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests_total": sum(self.requests.values()),
            "requests": dict(self.requests),
            "token_grants_total": sum(self.token_grants.values()),
            "token_grants": dict(self.token_grants),
            "token_errors": dict(self.token_errors),
            "faults_injected": dict(self.faults),
            "throttled": dict(self.throttled),
            "peak_in_flight": self.peak_in_flight,
        }

    def clear(self) -> None:
        self.requests.clear()
        self.token_grants.clear()
        self.token_errors.clear()
        self.faults.clear()
        self.throttled.clear()
        self.peak_in_flight = 0
