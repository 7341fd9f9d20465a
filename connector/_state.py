"""What a Connector keeps between calls: per-connection state, bounded, and the pooled HTTP clients.

Per connection: its token source (which also remembers the organization ids found for it), pacing budget,
concurrency cap in this process and the account's shared limits (`_limits`). States
are keyed by the connection's identity (`Connection.cache_key`: a digest of client, user, hosts, store and tokens),
never by secret values, and kept in a small LRU: a process that sees ten thousand short-lived connections holds a few
hundred states, not ten thousand. HTTP clients are not per connection: every call goes through one pooled client
(one per event loop for async), so connections to the same host share connections and file descriptors stay flat.
Token stores are not per connection either: connections naming the same store (the default SQLite file, one Redis,
one database) share one opened store, so ten thousand users' connections hold one store's files and sockets.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from connector._limits import AccountLimits
from connector._ratelimit import Budget
from connector._tls import LazyCAContext
from connector.auth.session import TokenSource
from connector.connection import Connection

if TYPE_CHECKING:
    import asyncio

    from connector.auth.stores.base import TokenStore

__all__ = ["Clients", "ConnectionState", "States", "Stores"]

MAX_STATES = 256
MAX_STORES = 32  # distinct token store URLs kept open for new connections; a connection's state keeps its own
K = TypeVar("K")
V = TypeVar("V")
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass
class ConnectionState:
    connection: Connection
    tokens: TokenSource
    budget: Budget
    semaphore: threading.BoundedSemaphore
    limits: AccountLimits
    async_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def async_semaphore(self) -> asyncio.Semaphore:
        import asyncio  # only async callers pay for it

        loop = asyncio.get_running_loop()
        semaphore = self.async_semaphores.get(loop)
        if semaphore is None:
            semaphore = self.async_semaphores[loop] = asyncio.Semaphore(self.connection.policy.max_concurrency)
        return semaphore


class _Lru(Generic[K, V]):
    """A bounded, thread-safe LRU: the least recently used entry goes first when it is full."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                value = self._entries[key] = make()
                while len(self._entries) > self._limit:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return value

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[V]:
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class States(_Lru[tuple[Any, ...], ConnectionState]):
    """The connection states, by the connection's identity."""

    def __init__(self, limit: int = MAX_STATES) -> None:
        super().__init__(limit)

    def state(self, connection: Connection, make: Callable[[Connection], ConnectionState]) -> ConnectionState:
        return self.get(connection.cache_key, lambda: make(connection))


class Stores(_Lru[str, "TokenStore"]):
    """The opened token stores of one Connector, by what names them: the URL and the environment `open_store`
    reads (the encryption key, the home directory, the python: switch). A store dropped from the LRU stays open for
    as long as a connection state still holds it. memory: is never shared: each connection that names it keeps its
    own, as before."""

    _ENV = (
        "ZOHO_CONNECTOR_TOKEN_KEY",
        "ZOHO_CONNECTOR_HOME",
        "XDG_DATA_HOME",
        "HOME",
        "ZOHO_CONNECTOR_ALLOW_PYTHON_STORES",
    )

    def __init__(self, allow_python_stores: bool | None, limit: int = MAX_STORES) -> None:
        super().__init__(limit)
        self._allow_python_stores = allow_python_stores

    def open(self, url: str | None) -> TokenStore:
        from connector.auth.stores import open_store

        def opened() -> TokenStore:
            return open_store(url, allow_python_stores=self._allow_python_stores)

        if url is not None and url.strip().lower().startswith("memory:"):
            return opened()
        naming = [url, self._allow_python_stores, *(os.environ.get(name) for name in self._ENV)]
        key = hashlib.sha256(json.dumps(naming).encode("utf-8", "surrogatepass")).hexdigest()  # no secret as a key
        return self.get(key, opened)


class Clients:
    """The pooled HTTP clients of one Connector: one for blocking calls, one per event loop for async calls."""

    def __init__(self, transport: httpx.BaseTransport | None, async_transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._tls: LazyCAContext | None = None
        self._tls_lock = threading.Lock()  # not _lock: sync() holds that while it asks for the context

    def _verify(self) -> LazyCAContext:
        """One verifying TLS context for the sync and async clients, its CAs read only if a call is https."""
        with self._tls_lock:
            if self._tls is None:
                self._tls = LazyCAContext()
            return self._tls

    def sync(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        transport=self._transport, verify=self._verify(), timeout=DEFAULT_TIMEOUT, limits=POOL_LIMITS
                    )
        return self._client

    def async_(self) -> httpx.AsyncClient:
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = httpx.AsyncClient(
                transport=self._async_transport, verify=self._verify(), timeout=DEFAULT_TIMEOUT, limits=POOL_LIMITS
            )
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        import asyncio

        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()
