"""A wrapper store that encrypts the secret fields (tokens.SECRET_FIELDS) with Fernet before any store sees them.

Design: each secret is stored as `zcenc1:<key id>:<HMAC-SHA256 of the value>:<Fernet token>`. Fernet is randomized
(the same secret encrypts differently each time), so the inner store can no longer match rows by secret; the
wrapper applies the upsert rule itself, comparing the HMAC digests (keyed from the Fernet key, so they reveal
nothing without it), and then saves through the inner store by the matched id. Lookups therefore read every row
(fine for token tables, which hold a row per user), and a save runs under the inner store's lock so that two
writers cannot both decide to insert. The key id makes a wrong key a clear error instead of silently matching
nothing. Values stored before encryption was enabled are read as plain text and encrypted on their next save.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from contextlib import AbstractContextManager
from typing import Any

from connector.auth.stores._common import find_match, plan_upsert, require
from connector.auth.stores.base import TokenStore
from connector.auth.tokens import SECRET_FIELDS, Token
from connector.errors import ConnectionConfigError

__all__ = ["KEY_ENV", "EncryptedStore"]

KEY_ENV = "ZOHO_CONNECTOR_TOKEN_KEY"
_PREFIX = "zcenc1"
_UPSERT_LOCK = "zoho-connector:encrypted-store:upsert"
_WRONG_KEY = (
    f"{KEY_ENV} does not match the key the stored tokens were encrypted with "
    "(or the stored data is damaged); set the original key"
)


class EncryptedStore:
    """`inner` with every secret Fernet-encrypted at rest. `key` is a Fernet key (url-safe base64 of 32 bytes)."""

    def __init__(self, inner: TokenStore, key: str | bytes) -> None:
        fernet = require("cryptography.fernet", "encryption")
        self.inner = inner
        raw_key = key.encode() if isinstance(key, str) else key
        try:
            self._fernet = fernet.Fernet(raw_key)
            secret = base64.urlsafe_b64decode(raw_key)
        except (ValueError, binascii.Error):
            raise ConnectionConfigError(
                f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64-encoded bytes); make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
        self._invalid: type[Exception] = fernet.InvalidToken
        self._mac_key = hmac.new(secret, b"zoho-connector token matching v1", hashlib.sha256).digest()
        self._key_id = hmac.new(self._mac_key, b"key id", hashlib.sha256).hexdigest()[:12]

    # -- the six methods ---------------------------------------------------------------------------------------

    def find_token(self, token: Token) -> Token | None:
        pairs = self._views()
        match = find_match(self._digests(token, stored=False), [view for _, view in pairs])
        return next((self._open(row) for row, view in pairs if view is match), None)

    def save_token(self, token: Token) -> Token:
        with self.inner.lock(_UPSERT_LOCK, timeout=60.0):
            pairs = self._views()
            match = plan_upsert(self._digests(token, stored=False), [view for _, view in pairs])
            sealed = self._seal(token)
            if match is not None:
                sealed = sealed.replace(id=match.id)  # the inner store then matches this row by id
            return self._open(self.inner.save_token(sealed))

    def delete_token(self, id: str) -> None:
        self.inner.delete_token(id)

    def get_tokens(self) -> list[Token]:
        return [self._open(t) for t in self.inner.get_tokens()]

    def delete_tokens(self) -> None:
        self.inner.delete_tokens()

    def find_token_by_id(self, id: str) -> Token | None:
        found = self.inner.find_token_by_id(id)
        return None if found is None else self._open(found)

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        return self.inner.lock(key, timeout)

    # -- internals ---------------------------------------------------------------------------------------------

    def _mac(self, field: str, value: str) -> str:
        data = f"{field}\0{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def _seal(self, token: Token) -> Token:
        changes: dict[str, Any] = {}
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            if value is not None:
                secret = self._fernet.encrypt(value.encode("utf-8", "surrogatepass")).decode()
                changes[f] = f"{_PREFIX}:{self._key_id}:{self._mac(f, value)}:{secret}"
        return token.replace(**changes)

    def _parts(self, value: str) -> list[str] | None:
        """The parts of a sealed value (None for plain text); a value sealed under another key is an error."""
        if not value.startswith(_PREFIX + ":"):
            return None
        parts = value.split(":", 3)
        if len(parts) != 4 or parts[1] != self._key_id:
            raise ConnectionConfigError(_WRONG_KEY)
        return parts

    def _open(self, token: Token) -> Token:
        changes: dict[str, Any] = {}
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            parts = None if value is None else self._parts(value)
            if parts is not None:
                try:
                    changes[f] = self._fernet.decrypt(parts[3].encode()).decode("utf-8", "surrogatepass")
                except self._invalid:
                    raise ConnectionConfigError(_WRONG_KEY) from None
        return token.replace(**changes)

    def _digests(self, token: Token, *, stored: bool) -> Token:
        """`token` with each secret replaced by its keyed digest: what the upsert rule compares."""
        changes: dict[str, Any] = {}
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            if value is not None:
                parts = self._parts(value) if stored else None
                changes[f] = parts[2] if parts is not None else self._mac(f, value)
        return token.replace(**changes)

    def _views(self) -> list[tuple[Token, Token]]:
        """Every stored row with its digest view."""
        return [(row, self._digests(row, stored=True)) for row in self.inner.get_tokens()]
