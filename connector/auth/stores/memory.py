"""A token store in a dict: for tests and single-process scripts. Tokens are gone when the process ends."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

from connector.auth.stores.locks import KeyedLocks
from connector.auth.stores.schema import check_id, check_token, find_match, plan_upsert, saved_id
from connector.auth.tokens import Token

__all__ = ["MemoryStore"]


class MemoryStore:
    """Tokens by id in a dict, guarded by one lock; `lock(key)` is a per-key threading lock (one process only).

    Values are checked like every other store's, so code tested against it behaves the same on a real store."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._guard = threading.Lock()
        self._locks = KeyedLocks()

    def find_token(self, token: Token) -> Token | None:
        check_token(token)
        with self._guard:
            return find_match(token, self._tokens.values())

    def save_token(self, token: Token) -> Token:
        check_token(token)
        with self._guard:
            match = plan_upsert(token, self._tokens.values())
            stored = token.replace(id=saved_id(token, match), organization_ids=dict(token.organization_ids))
            self._tokens[stored.id or ""] = stored
            return stored

    def delete_token(self, id: str) -> None:
        with self._guard:
            self._tokens.pop(check_id(id), None)

    def get_tokens(self) -> list[Token]:
        with self._guard:
            return list(self._tokens.values())

    def delete_tokens(self) -> None:
        with self._guard:
            self._tokens.clear()

    def find_token_by_id(self, id: str) -> Token | None:
        with self._guard:
            return self._tokens.get(check_id(id))

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        return self._locks.hold(key, timeout)
