"""`python:` token stores for the shared-limits tests: one whose leases fail like an unreachable server."""

from __future__ import annotations

from connector.auth.stores.memory import MemoryStore
from connector.errors import TransientError


class DownLeaseStore(MemoryStore):
    """Tokens in memory; every lease or value call fails as a store whose server stopped answering."""

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        raise TransientError("cannot reach the token store")

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        raise TransientError("cannot reach the token store")

    def release_slot(self, name: str, lease: str) -> None:
        raise TransientError("cannot reach the token store")

    def get_value(self, name: str) -> str | None:
        raise TransientError("cannot reach the token store")

    def set_value(self, name: str, value: str, ttl: float) -> None:
        raise TransientError("cannot reach the token store")
