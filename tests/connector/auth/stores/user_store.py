"""A user-written TokenStore, loaded by the contract tests through a `python:` URL."""

from __future__ import annotations

from connector.auth.stores.memory import MemoryStore


class UserStore(MemoryStore):
    """What a user would write: any class with the six methods and `lock`, built with no arguments."""


class NotAStore:
    def find_token(self) -> None:
        """Has one method of the protocol only."""


class BrokenStore(MemoryStore):
    def __init__(self) -> None:
        raise RuntimeError("no database configured")
