"""A wrapper store that encrypts the secret fields (tokens.SECRET_FIELDS) with Fernet before any store sees them,
and authenticates the whole record.

Design: each secret is stored as `zcenc2:<key id>:<HMAC-SHA256 of the value>:<record MAC>:<Fernet token>`. The
record MAC is an HMAC over a canonical serialization of every field but the id (accounts_url, api_domain,
expires_at, user_name, client_id, organization_ids, … and the secrets' plain values), so whoever can write the
store but lacks the key cannot change a plain column, for instance point accounts_url at their own listener to
collect the refresh token and client secret: reading such a row is a TokenIntegrityError. Fernet is randomized
(the same secret encrypts differently each time), so the inner store can no longer match rows by secret; the
wrapper applies the upsert rule itself, comparing the HMAC digests (keyed from the Fernet key, so they reveal
nothing without it), and then saves through the inner store by the matched id. Lookups therefore read every row
(fine for token tables, which hold a row per user), and a save runs under the inner store's lock so that two
writers cannot both decide to insert. The key id makes a wrong key a clear error instead of silently matching
nothing. Rows stored before encryption was enabled (all secrets plain, or `zcenc1` values from before the record
MAC) are read as they are and sealed on their next save; a row mixing sealed and unsealed secrets is refused.
A row that holds no secret at all carries no MAC: there is nothing in it to steal or to redirect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from contextlib import AbstractContextManager
from typing import Any

from connector.auth.stores._common import require
from connector.auth.stores.base import TokenStore
from connector.auth.stores.schema import check_id, check_token, find_match, plan_upsert, to_row
from connector.auth.tokens import SECRET_FIELDS, Token
from connector.errors import ConnectionConfigError

__all__ = ["KEY_ENV", "EncryptedStore", "TokenIntegrityError"]

KEY_ENV = "ZOHO_CONNECTOR_TOKEN_KEY"
_PREFIX = "zcenc2"
_LEGACY_PREFIX = "zcenc1"  # before the record MAC: <key id>:<value HMAC>:<Fernet token>
_UPSERT_LOCK = "zoho-connector:encrypted-store:upsert"
_WRONG_KEY = (
    f"{KEY_ENV} does not match the key the stored tokens were encrypted with "
    "(or the stored data is damaged); set the original key"
)


class TokenIntegrityError(ConnectionConfigError):
    """A stored token was changed by someone without the encryption key: it is not used."""

    def __init__(self, id: str | None) -> None:
        super().__init__(
            f"the stored token {id or ''} fails its integrity check: a field (such as accounts_url or api_domain) "
            f"was changed by someone without {KEY_ENV}; refusing to use it. Check who can write the token store, "
            "delete the token (`zoho-connector auth tokens delete ID`) and connect again"
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
        self._record_key = hmac.new(secret, b"zoho-connector token record v1", hashlib.sha256).digest()
        self._key_id = hmac.new(self._mac_key, b"key id", hashlib.sha256).hexdigest()[:12]

    # -- the six methods ---------------------------------------------------------------------------------------

    def find_token(self, token: Token) -> Token | None:
        check_token(token)
        pairs = self._views()
        match = find_match(self._digests(token, stored=False), [view for _, view in pairs])
        return next((self._open(row) for row, view in pairs if view is match), None)

    def save_token(self, token: Token) -> Token:
        check_token(token)
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
        found = self.inner.find_token_by_id(check_id(id))
        return None if found is None else self._open(found)

    def lock(self, key: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        return self.inner.lock(key, timeout)

    # -- internals ---------------------------------------------------------------------------------------------

    def _mac(self, field: str, value: str) -> str:
        data = f"{field}\0{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def _record_mac(self, token: Token) -> str:
        """The HMAC of every field but the id, the secrets in plain text, in one canonical JSON form."""
        row = to_row(token)
        del row["id"]
        data = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        return hmac.new(self._record_key, data, hashlib.sha256).hexdigest()

    def _seal(self, token: Token) -> Token:
        record = self._record_mac(token)
        changes: dict[str, Any] = {}
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            if value is not None:
                secret = self._fernet.encrypt(value.encode("utf-8")).decode()
                changes[f] = f"{_PREFIX}:{self._key_id}:{self._mac(f, value)}:{record}:{secret}"
        return token.replace(**changes)

    def _parts(self, value: str) -> tuple[str, str | None, str] | None:
        """(value HMAC, record MAC or None for a legacy value, Fernet token) of a sealed value; None for plain
        text. A value sealed under another key is an error."""
        prefix = value.split(":", 1)[0]
        if prefix == _PREFIX:
            parts = value.split(":", 4)
            if len(parts) == 5 and parts[1] == self._key_id:
                return parts[2], parts[3], parts[4]
        elif prefix == _LEGACY_PREFIX:
            parts = value.split(":", 3)
            if len(parts) == 4 and parts[1] == self._key_id:
                return parts[2], None, parts[3]
        else:
            return None
        raise ConnectionConfigError(_WRONG_KEY)

    def _open(self, token: Token) -> Token:
        changes: dict[str, Any] = {}
        records: set[str | None] = set()
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            if value is None:
                continue
            parts = self._parts(value)
            records.add(None if parts is None else parts[1])
            if parts is not None:
                try:
                    changes[f] = self._fernet.decrypt(parts[2].encode()).decode("utf-8")
                except (self._invalid, UnicodeDecodeError):
                    raise ConnectionConfigError(_WRONG_KEY) from None
        opened = token.replace(**changes)
        sealed = {r for r in records if r is not None}
        if sealed and (len(records) != 1 or not hmac.compare_digest(sealed.pop(), self._record_mac(opened))):
            raise TokenIntegrityError(token.id)
        return opened

    def _digests(self, token: Token, *, stored: bool) -> Token:
        """`token` with each secret replaced by its keyed digest: what the upsert rule compares."""
        changes: dict[str, Any] = {}
        for f in SECRET_FIELDS:
            value = getattr(token, f)
            if value is not None:
                parts = self._parts(value) if stored else None
                changes[f] = parts[0] if parts is not None else self._mac(f, value)
        return token.replace(**changes)

    def _views(self) -> list[tuple[Token, Token]]:
        """Every stored row with its digest view."""
        return [(row, self._digests(row, stored=True)) for row in self.inner.get_tokens()]
