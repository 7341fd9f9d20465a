"""The TokenStore protocol: the six methods of Zoho's SDKs, plus the lock that makes refresh single-flight.

Upsert rule of `save_token` (Zoho's SDK rule, made strict): a saved token replaces the stored row that matches it
by, in order, (1) user_name, (2) access_token, (3) refresh_token or grant_token together with client_id and
client_secret, (4) id; otherwise it is inserted with a new id. A store never holds two rows for one match.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from connector.auth.tokens import Token

__all__ = ["TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    def find_token(self, token: Token) -> Token | None:
        """The stored token matching `token` by the upsert rule, or None."""
        ...

    def save_token(self, token: Token) -> Token:
        """Insert or update by the upsert rule; returns the stored token, with its id."""
        ...

    def delete_token(self, id: str) -> None:
        """Delete the token with this id (no error when absent)."""
        ...

    def get_tokens(self) -> list[Token]:
        """Every stored token."""
        ...

    def delete_tokens(self) -> None:
        """Delete every token."""
        ...

    def find_token_by_id(self, id: str) -> Token | None:
        """The token with this id, or None."""
        ...

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        """An exclusive lock named `key`, held across threads, processes and (for shared stores) machines.

        Used around "re-read the token, refresh if still stale, save" so that only one worker calls Zoho's token
        endpoint. Raises TimeoutError when not acquired within `timeout` seconds.
        """
        ...
