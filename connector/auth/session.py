"""Hands out a valid access token for a connection, refreshing through the token store one worker at a time.

The token of a connection is cached in memory; the store is read only when that copy is near expiry, and a refresh
runs under the store's lock after re-reading it (`refresh.ensure_fresh`), so threads, processes and machines that
share a store make one token-endpoint call between them. A token Zoho refused (401) is refreshed once, unless
another worker has replaced it meanwhile. Async callers refresh over an httpx.AsyncClient; only store I/O goes to
worker threads.

What a stored token remembers is not trusted blindly: the connection's own accounts URL wins over the one saved
with the token (after a change of region or override), except for a login that Zoho's multi-DC entry point
(accounts.zoho.com) sent to another data centre, whose token belongs to that data centre's accounts server; and an
accounts server or API domain that is not one of Zoho's hosts (nor the connection's overrides) is never used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

import httpx

from connector.auth import oauth
from connector.auth.stores.base import TokenStore
from connector.auth.tokens import Token
from connector.connection import Connection, check_base_url
from connector.connection import entry_accounts as region_entry_accounts
from connector.connection import zoho_hosts as region_hosts
from connector.errors import AuthenticationError, ConnectionConfigError

__all__ = ["DEFAULT_USER", "REFRESH_MARGIN_SECONDS", "TokenSource"]

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300.0  # refresh five minutes before Zoho would refuse the token
DEFAULT_USER = "default"  # the store's user_name for a connection that names none and brings no refresh token
ORG_LOCK_TIMEOUT = 60.0


class TokenSource:
    def __init__(
        self,
        connection: Connection,
        *,
        token_path: str,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        allow_python_stores: bool | None = None,
        zoho_accounts: Collection[str] | None = None,
        zoho_hosts: Collection[str] | None = None,
        entry_accounts: Collection[str] | None = None,
        open_store: Callable[[str | None], TokenStore] | None = None,
    ) -> None:
        """`zoho_accounts`: Zoho's accounts base URLs, `zoho_hosts`: every Zoho host name, `entry_accounts`: the
        accounts base URLs that are multi-DC entry points (all default to the bundled region table).
        `allow_python_stores` is passed to `open_store`. `open_store(url)` opens the token store (a Connector
        passes its shared one, so connections naming the same store share it); default: a store of its own."""
        self.connection = connection
        self.token_path = token_path
        self.clock = clock
        self._transport = transport
        self._async_transport = async_transport
        self._allow_python_stores = allow_python_stores
        self._open_store = open_store
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._store: TokenStore | None = None
        self._orgs: dict[str, str] = {}  # organization ids of a connection with nowhere to store them
        given = zoho_accounts is not None and zoho_hosts is not None and entry_accounts is not None
        accounts, hosts, entries = ((), (), ()) if given else _zoho_defaults()
        self._zoho_accounts = frozenset(a.rstrip("/") for a in (zoho_accounts or accounts))
        self._entry_accounts = frozenset(a.rstrip("/") for a in (entry_accounts or entries))
        own = {urlsplit(connection.accounts_url).hostname, urlsplit(connection.api_domain).hostname}
        self._trusted_hosts = frozenset(zoho_hosts or hosts) | {h for h in own if h}
        if connection.access_token and not connection.refresh_token:
            expires = connection.expires_in
            self._token = Token(
                access_token=connection.access_token,
                expires_at=clock() + expires if expires is not None else float("inf"),
                api_domain=None,
            )

    # -- where tokens go ---------------------------------------------------------------------------------------

    @property
    def api_domain(self) -> str | None:
        """The API domain Zoho named for this token (it wins over the region's default), if it can be trusted: one
        of Zoho's hosts or the connection's, and from the data centre the connection refreshes at."""
        token = self._token
        if token is None or not token.api_domain:
            return None
        if token.accounts_url and self.accounts_url_for(token) != token.accounts_url.rstrip("/"):
            return None  # the connection moved to another data centre: the token's API domain is stale too
        return self._trusted("api_domain", token.api_domain)

    def accounts_url_for(self, token: Token) -> str:
        """The accounts server to refresh (or revoke) `token` at: the connection's, unless the connection is Zoho's
        multi-DC entry point and the token was issued by another of Zoho's data centres."""
        c = self.connection
        remembered = (token.accounts_url or "").rstrip("/")
        if not remembered or remembered == c.accounts_url:
            return c.accounts_url
        entry = c.accounts_url in self._zoho_accounts and c.accounts_url in self._entry_accounts
        if entry and remembered in self._zoho_accounts:
            return remembered
        if remembered not in self._zoho_accounts:
            log.warning("ignoring the stored token's accounts server %s: not one of Zoho's", _host(remembered))
        return c.accounts_url

    def vet(self, token: Token) -> Token:
        """`token` (a token answer merged over a stored token) without an API domain that cannot be trusted."""
        if token.api_domain and self._trusted("api_domain", token.api_domain) is None:
            log.warning("ignoring the API domain %s of a token: not one of Zoho's hosts", _host(token.api_domain))
            return token.replace(api_domain=None)
        return token

    def _trusted(self, name: str, url: str) -> str | None:
        try:
            return check_base_url(name, url, trusted_hosts=self._trusted_hosts)
        except ConnectionConfigError:
            return None

    # -- access tokens -----------------------------------------------------------------------------------------

    def get(self, failed: str | None = None) -> str:
        token = self._token
        if token is not None and failed is None and token.is_fresh(self.clock(), self._margin()):
            return str(token.access_token)
        with self._lock:
            token = self._fresh(failed)
            self._token = token
            return str(token.access_token)

    async def aget(self, failed: str | None = None) -> str:
        """`get` for async code: a refresh goes over an httpx.AsyncClient (`async_transport`) on the caller's loop;
        store reads, writes and lock waits run in worker threads."""
        token = self._token
        if token is not None and failed is None and token.is_fresh(self.clock(), self._margin()):
            return str(token.access_token)
        token = self._static(failed) if not self._can_refresh() else await self.astored_token(failed=failed)
        self._token = token
        return str(token.access_token)

    @property
    def uses_store(self) -> bool:
        """Whether this connection's tokens live in its token store (not a bare access token)."""
        return self._can_refresh()

    def limits_key(self) -> str:
        """What identifies the account whose limits this connection's calls count against, never a secret: the
        stored token's id, which every worker sharing the store reads, else a digest of the connection's client,
        user and token."""
        token = self._token
        if token is not None and token.id:
            return f"token:{token.id}"
        c = self.connection
        parts = [c.accounts_url, c.client_id, c.user_name, c.refresh_token or c.access_token]
        return "connection:" + hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogatepass")).hexdigest()

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

        stored = self._stored_or_seed()
        if force:
            failed = stored.access_token or ""
        return ensure_fresh(
            self.store,
            self.probe(),
            self.refresh_with,
            now=self.clock,
            margin=REFRESH_MARGIN_SECONDS,
            force_if_access_token=failed,
        )

    async def astored_token(self, *, failed: str | None = None, force: bool = False) -> Token:
        """`stored_token` for async code (see `aget`)."""
        import anyio.to_thread

        from connector.auth.refresh import aensure_fresh

        stored = await anyio.to_thread.run_sync(self._stored_or_seed)
        if force:
            failed = stored.access_token or ""
        return await aensure_fresh(
            self.store,
            self.probe(),
            self.arefresh_with,
            now=self.clock,
            margin=REFRESH_MARGIN_SECONDS,
            force_if_access_token=failed,
        )

    def _stored_or_seed(self) -> Token:
        """The stored token; a connection that brings its refresh token stores it on first use."""
        store = self.store
        probe = self.probe()
        stored = store.find_token(probe)
        if stored is not None:
            return stored
        if not self.connection.refresh_token:
            who = self.connection.user_name or self.connection.client_id
            raise AuthenticationError(
                f"no token stored for {who}: connect first with `zoho-connector auth login`", reason="no_token"
            )
        from connector.auth.refresh import flight_key, token_lock

        # Under the token's lock, and only if still absent: a second first call (another task, thread or worker)
        # that seeded after the first one had refreshed would overwrite the fresh token and refresh again.
        with token_lock(store, flight_key(probe), timeout=60.0):
            return store.find_token(probe) or store.save_token(probe)

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
            if self._open_store is not None:
                self._store = self._open_store(self.connection.token_store)
            else:
                from connector.auth.stores import open_store

                self._store = open_store(self.connection.token_store, allow_python_stores=self._allow_python_stores)
        return self._store

    def _refresh_request(self, stored: Token) -> httpx.Request:
        c = self.connection
        if not stored.refresh_token:
            raise AuthenticationError("the stored token has no refresh token: reconnect", reason="no_refresh_token")
        return oauth.refresh_request(
            self.accounts_url_for(stored),
            self.token_path,
            client_id=str(stored.client_id or c.client_id),
            client_secret=str(stored.client_secret or c.client_secret),
            refresh_token=stored.refresh_token,
        )

    def _refreshed(self, stored: Token, response: httpx.Response, accounts_url: str) -> Token:
        new = oauth.parse_token_response(response, grant="refresh_token", now=self.clock(), base=stored)
        return self.vet(new.replace(accounts_url=accounts_url))

    def refresh_with(self, stored: Token) -> Token:
        """Call Zoho's token endpoint with the stored refresh token; the new token is merged over `stored`."""
        request = self._refresh_request(stored)
        return self._refreshed(stored, oauth.send(request, self._transport), self.accounts_url_for(stored))

    async def arefresh_with(self, stored: Token) -> Token:
        """`refresh_with` over an httpx.AsyncClient: the event loop keeps running while Zoho answers."""
        request = self._refresh_request(stored)
        response = await oauth.asend(request, self._async_transport)
        return self._refreshed(stored, response, self.accounts_url_for(stored))

    # -- organization ids --------------------------------------------------------------------------------------

    def organization_id(self, product: str) -> str | None:
        """The organization id remembered for `product` ("books", "inventory", …) with this connection's token."""
        token = self._token
        if token is None and self._can_refresh():
            token = self.store.find_token(self.probe())
        if token is not None and product in token.organization_ids:
            return token.organization_ids[product]
        return self._orgs.get(product)

    def remember_organization_id(self, product: str, organization_id: str) -> None:
        """Save `organization_id` for `product` with the stored token, under the token's lock (so a concurrent
        refresh is neither lost nor overwritten). A connection with nothing stored keeps it in memory."""
        from connector.auth.refresh import flight_key, token_lock

        self._orgs[product] = organization_id
        if not self._can_refresh():
            return
        store = self.store
        probe = self.probe()
        stored = store.find_token(probe)
        if stored is None:
            return
        with token_lock(store, flight_key(stored), ORG_LOCK_TIMEOUT):
            current = store.find_token_by_id(stored.id) if stored.id else store.find_token(probe)
            if current is None:
                return
            if current.organization_ids.get(product) != organization_id:
                current = store.save_token(
                    current.replace(organization_ids={**current.organization_ids, product: organization_id})
                )
        with self._lock:
            if self._token is None or self._token.id == current.id:
                self._token = current

    async def aorganization_id(self, product: str) -> str | None:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.organization_id, product)

    async def aremember_organization_id(self, product: str, organization_id: str) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.remember_organization_id, product, organization_id)


@functools.cache
def _zoho_defaults() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Zoho's accounts servers, hosts and multi-DC entry accounts servers from the bundled region table."""
    from connector.manifest import bundled_manifest

    accounts: set[str] = set()
    hosts: set[str] = set()
    entries: set[str] = set()
    for definition in bundled_manifest().connections.values():
        accounts |= {r["accounts"].rstrip("/") for r in definition.regions.values()}
        entries |= region_entry_accounts(definition)
        hosts |= region_hosts(definition)
    return frozenset(accounts), frozenset(hosts), frozenset(entries)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
