"""Token operations for one connection: authorize, exchange a code, refresh, revoke, and what the store holds.

The flows are Zoho's (../shared/notes/zoho-api.md §1): the consent page on the region's accounts server, the code
exchanged on the accounts server the redirect names (`accounts-server`, checked against the region table so a
forged redirect cannot make us send the client secret elsewhere), self-client codes exchanged without a
redirect_uri, and revoke. Tokens land in the connection's token store, keyed by `user_name` ("default" if unset).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

from connector.auth import oauth
from connector.auth.session import DEFAULT_USER, TokenSource
from connector.auth.stores.base import TokenStore
from connector.auth.tokens import Token
from connector.connection import Connection, entry_accounts, is_loopback, zoho_hosts
from connector.errors import AuthenticationError, ConnectionConfigError
from connector.manifest import ConnectionDef

__all__ = ["Account", "Redirect", "wait_for_redirect"]


class Account:
    def __init__(
        self,
        connection: Connection,
        definition: ConnectionDef,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        allow_python_stores: bool | None = None,
    ) -> None:
        self.connection = connection
        self.definition = definition
        self.clock = clock
        self._transport = transport
        self.tokens = TokenSource(
            connection,
            token_path=definition.oauth["token_path"],
            clock=clock,
            transport=transport,
            allow_python_stores=allow_python_stores,
            zoho_accounts={r["accounts"] for r in definition.regions.values()},
            zoho_hosts=zoho_hosts(definition),
            entry_accounts=entry_accounts(definition),
        )

    @property
    def store(self) -> TokenStore:
        return self.tokens.store

    @property
    def user_name(self) -> str:
        return self.connection.user_name or DEFAULT_USER

    def _client_credentials(self) -> tuple[str, str]:
        c = self.connection
        if not (c.client_id and c.client_secret):
            raise ConnectionConfigError("this needs the connection's client_id and client_secret")
        return c.client_id, c.client_secret

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        client_id, _ = self._client_credentials()
        return oauth.authorize_url(
            self.connection.accounts_url,
            self.definition.oauth["authorize_path"],
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=self.connection.scopes,
            state=state,
        )

    def exchange_code(
        self, code: str, *, redirect_uri: str | None, accounts_server: str | None = None, location: str | None = None
    ) -> Token:
        """Exchange an authorization code (redirect_uri=None for a self-client code) and store the tokens, on the
        accounts server the redirect named (`accounts-server`, else the data centre its `location` names)."""
        client_id, client_secret = self._client_credentials()
        if not accounts_server and location:
            from connector.connection import resolve_region

            accounts_server = self.definition.regions[resolve_region(self.definition, location)]["accounts"]
        accounts = self._trusted_accounts_server(accounts_server)
        request = oauth.code_request(
            accounts,
            self.definition.oauth["token_path"],
            client_id=client_id,
            client_secret=client_secret,
            code=code,
            redirect_uri=redirect_uri,
        )
        base = Token(
            user_name=self.user_name,
            client_id=client_id,
            client_secret=client_secret,
            redirect_url=redirect_uri,
            accounts_url=accounts,
        )
        token = oauth.parse_token_response(self._send(request), grant="authorization_code", now=self.clock(), base=base)
        token = self.tokens.vet(token)
        if not token.refresh_token:
            raise AuthenticationError(
                "Zoho returned no refresh token: ask for access_type=offline (and prompt=consent to get a new one)",
                reason="no_refresh_token",
            )
        return self.store.save_token(token)

    def stored(self) -> Token | None:
        return self.store.find_token(self.tokens.probe())

    def refresh(self) -> Token:
        """A new access token now, whatever the current one's expiry (one worker at a time, via the store)."""
        self._client_credentials()
        return self.tokens.stored_token(force=True)

    def revoke(self) -> None:
        """Revoke the refresh token at Zoho (which kills its access tokens) and forget it locally."""
        stored = self._require_stored()
        if stored.refresh_token:
            request = oauth.revoke_request(
                self.tokens.accounts_url_for(stored),
                self.definition.oauth["revoke_path"],
                token=stored.refresh_token,
            )
            oauth.parse_revoke_response(self._send(request))
        if stored.id:
            self.store.delete_token(stored.id)

    def _require_stored(self) -> Token:
        stored = self.stored()
        if stored is None:
            raise AuthenticationError(
                f"no token stored for {self.connection.user_name or self.connection.client_id or 'this connection'}: "
                "run `zoho-connector auth login` first",
                reason="no_token",
            )
        return stored

    def _trusted_accounts_server(self, named: str | None) -> str:
        """The accounts server the redirect named, if it is one of Zoho's (or the configured override)."""
        if not named:
            return self.connection.accounts_url
        named = named.rstrip("/")
        trusted = {r["accounts"] for r in self.definition.regions.values()} | {self.connection.accounts_url}
        if named not in trusted:
            raise AuthenticationError(
                f"the redirect named an accounts server that is not Zoho's ({urlsplit(named).hostname}); "
                "refusing to send the client secret there",
                reason="untrusted_accounts_server",
            )
        return named

    def _send(self, request: httpx.Request) -> httpx.Response:
        return oauth.send(request, self._transport)


@dataclass(frozen=True)
class Redirect:
    code: str
    accounts_server: str | None
    location: str | None


REQUEST_TIMEOUT = 10.0  # seconds the login listener waits for one connection's request


def wait_for_redirect(redirect_uri: str, state: str, *, timeout: float = 300.0) -> Redirect:
    """Serve the loopback redirect URI until Zoho's redirect for this login arrives (or `timeout` seconds pass),
    and return what it carried.

    A request without this login's `state` (a forged or stale redirect, another tab) is answered with an error page
    and ignored: one stray request must not abort the login.
    """
    parts = urlsplit(redirect_uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not is_loopback(host):
        raise ConnectionConfigError("the login listener runs only on a loopback redirect URI (http://127.0.0.1:PORT/…)")
    received: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # a connection that sends nothing (or half a request) is dropped, not waited on

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != (parts.path or "/"):
                self.send_error(404)
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if done.is_set() or not hmac.compare_digest(query.get("state", "").encode(), state.encode()):
                self._answer(400, b"This request does not belong to the login in progress: ignored.")
                return
            received.update(query)
            done.set()
            ok = "code" in received and "error" not in received
            self._answer(
                200 if ok else 400, b"Connected to Zoho. You can close this window." if ok else b"Authorization failed."
            )

        def _answer(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            return

    # One thread per connection: a client that connects and then stalls must not keep the real redirect (or the
    # timeout's shutdown) waiting behind it.
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if not done.wait(timeout):
            raise AuthenticationError("no redirect from Zoho arrived in time; run login again", reason="login_timeout")
    finally:
        server.shutdown()
        server.server_close()
    if "error" in received:
        raise AuthenticationError(f"Zoho did not grant access ({received['error'][:100]})", reason="access_denied")
    if "code" not in received:
        raise AuthenticationError("Zoho's redirect carried no authorization code", reason="no_code")
    return Redirect(
        code=received["code"], accounts_server=received.get("accounts-server"), location=received.get("location")
    )
