"""Hands out a valid access token for a connection, refreshing through the token store one worker at a time.

The token of a connection is cached in memory; the store is read only when that copy is near expiry, and a refresh
runs under the store's lock after re-reading it (`refresh.ensure_fresh`), so threads, processes and machines that
share a store make one token-endpoint call between them. A token Zoho refused (401) is refreshed once, unless
another worker has replaced it meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from connector.auth import oauth
from connector.auth.stores.base import TokenStore
from connector.auth.tokens import Token
from connector.connection import Connection
from connector.errors import AuthenticationError, ConnectionConfigError

__all__ = ["DEFAULT_USER", "REFRESH_MARGIN_SECONDS", "TokenSource"]

REFRESH_MARGIN_SECONDS = 300.0  # refresh five minutes before Zoho would refuse the token
DEFAULT_USER = "default"  # the store's user_name for a connection that names none and brings no refresh token


class TokenSource:
    def __init__(
        self,
        connection: Connection,
        *,
        token_path: str,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.token_path = token_path
        self.clock = clock
        self._transport = transport
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._store: TokenStore | None = None
        if connection.access_token and not connection.refresh_token:
            expires = connection.expires_in
            self._token = Token(
                access_token=connection.access_token,
                expires_at=clock() + expires if expires is not None else float("inf"),
                api_domain=None,
            )

    @property
    def api_domain(self) -> str | None:
        """The API domain Zoho named in the last token answer (it wins over the region's default)."""
        return self._token.api_domain if self._token else None

    def get(self, failed: str | None = None) -> str:
        token = self._token
        if token is not None and failed is None and token.is_fresh(self.clock(), self._margin()):
            return str(token.access_token)
        with self._lock:
            token = self._fresh(failed)
            self._token = token
            return str(token.access_token)

    async def aget(self, failed: str | None = None) -> str:
        token = self._token
        if token is not None and failed is None and token.is_fresh(self.clock(), self._margin()):
            return str(token.access_token)
        import anyio.to_thread  # only async callers pay for it

        # Store I/O and the token call block; run them off the event loop.
        return await anyio.to_thread.run_sync(self.get, failed)

    def _margin(self) -> float:
        return REFRESH_MARGIN_SECONDS if self._can_refresh() else 0.0

    def _can_refresh(self) -> bool:
        c = self.connection
        static = bool(c.access_token and not c.refresh_token)  # a given access token is used as it is
        return bool(c.client_id and c.client_secret) and not static

    def _fresh(self, failed: str | None) -> Token:
        if not self._can_refresh():
            return self._static(failed)
        return self.stored_token(failed=failed)

    def stored_token(self, *, failed: str | None = None, force: bool = False) -> Token:
        """The connection's token from the store, refreshed (once, across workers) when stale, when it is the
        access token Zoho just refused (`failed`), or when `force`d."""
        from connector.auth.refresh import ensure_fresh

        store = self.store
        probe = self.probe()
        stored = store.find_token(probe)
        if stored is None:
            if not self.connection.refresh_token:
                who = self.connection.user_name or self.connection.client_id
                raise AuthenticationError(
                    f"no token stored for {who}: connect first with `zoho-connector auth login`",
                    reason="no_token",
                )
            stored = store.save_token(probe)
        if force:
            failed = stored.access_token or ""
        return ensure_fresh(
            store,
            probe,
            self.refresh_with,
            now=self.clock,
            margin=REFRESH_MARGIN_SECONDS,
            force_if_access_token=failed,
        )

    def _static(self, failed: str | None) -> Token:
        token = self._token
        if token is None or not token.access_token:
            raise ConnectionConfigError("the connection has no access token and cannot get one")
        if failed is not None:
            raise AuthenticationError(
                "Zoho refused the access token and the connection has no refresh token to get a new one: "
                "give refresh_token, client_id and client_secret, or a new access_token",
                reason="token_rejected",
            )
        if not token.is_fresh(self.clock()):
            raise AuthenticationError(
                "the connection's access token has expired (they live one hour) and there is no refresh token",
                reason="token_expired",
            )
        return token

    def probe(self) -> Token:
        """What identifies this connection's token in the store."""
        c = self.connection
        return Token(
            user_name=c.user_name or (None if c.refresh_token else DEFAULT_USER),
            client_id=c.client_id,
            client_secret=c.client_secret,
            refresh_token=c.refresh_token,
            accounts_url=c.accounts_url,
        )

    @property
    def store(self) -> TokenStore:
        if self._store is None:
            from connector.auth.stores import open_store

            self._store = open_store(self.connection.token_store)
        return self._store

    def refresh_with(self, stored: Token) -> Token:
        """Call Zoho's token endpoint with the stored refresh token; the new token is merged over `stored`."""
        c = self.connection
        if not stored.refresh_token:
            raise AuthenticationError("the stored token has no refresh token: reconnect", reason="no_refresh_token")
        request = oauth.refresh_request(
            stored.accounts_url or c.accounts_url,
            self.token_path,
            client_id=str(stored.client_id or c.client_id),
            client_secret=str(stored.client_secret or c.client_secret),
            refresh_token=stored.refresh_token,
        )
        response = oauth.send(request, self._transport)
        return oauth.parse_token_response(response, grant="refresh_token", now=self.clock(), base=stored)
