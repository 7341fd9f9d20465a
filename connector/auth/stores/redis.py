"""A token store in Redis (redis-py), shared by every machine that reaches the server.

Layout under the key prefix P (`zoho-connector:oauthtoken` unless `?prefix=` says otherwise):
`P:tok:<id>` a hash of the token's non-null fields, `P:ids` the set of ids, and `P:idx:<kind>:<digest>` → id for
each match key (user name, access token, refresh/grant token with client). An upsert reads the candidates under
WATCH and writes in MULTI/EXEC, retrying if another writer touched any of them. `lock(key)` is
`SET P:lock:<name> <random> NX PX <ttl>`, renewed while held and released only by its owner (a Lua check-and-del).
Shared limits are sorted sets of leases `P:slots:<name>` and keys `P:value:<name>` (redis_leases.py).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from connector.auth.stores._common import lock_name, require, safe_url
from connector.auth.stores.redis_leases import RedisLeases
from connector.auth.stores.schema import (
    check_id,
    check_token,
    find_match,
    from_row,
    keys_of,
    plan_upsert,
    saved_id,
    to_row,
)
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError, TransientError

__all__ = ["RedisStore"]

_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")  # no glob characters: the prefix goes into SCAN patterns
_INDEXES = ("user", "access", "refresh", "grant")  # Keys fields after id_key, in order
_ATTEMPTS = 100

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class RedisStore:
    """Tokens in Redis at `url` (`redis://host:6379/0`, `rediss://…`; `?prefix=` and `?lock_ttl=` seconds)."""

    def __init__(self, url: str) -> None:
        redis = require("redis", "redis")
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.prefix = params.pop("prefix", "zoho-connector:oauthtoken")
        if not _PREFIX.match(self.prefix):
            raise ConnectionConfigError("invalid Redis key prefix: use letters, digits and _ . : - (at most 100)")
        try:
            self._lock_ttl = float(params.pop("lock_ttl", "60"))
        except ValueError:
            raise ConnectionConfigError("lock_ttl must be a number of seconds") from None
        self._safe = safe_url(url)
        self._errors: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._watch_error: type[Exception] = redis.exceptions.WatchError
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))
        try:
            self._r: Any = redis.Redis.from_url(clean, socket_timeout=30, socket_connect_timeout=10)
        except ValueError:
            raise ConnectionConfigError(f"token_store: invalid Redis URL {self._safe}") from None
        self._release = self._r.register_script(_RELEASE)
        self._renew = self._r.register_script(_RENEW)
        self._leases = RedisLeases(self._r, self.prefix)

    # -- the six methods ---------------------------------------------------------------------------------------

    def find_token(self, token: Token) -> Token | None:
        check_token(token)
        with self._guard():
            return find_match(token, self._candidates(self._r, token))

    def save_token(self, token: Token) -> Token:
        check_token(token)
        index = self._index_keys(token)
        with self._guard():
            for _ in range(_ATTEMPTS):
                with self._r.pipeline() as pipe:
                    try:
                        watched = [k for k in index if k] + ([self._tok(token.id)] if token.id else [])
                        if watched:  # nothing to watch: a token without match keys is always inserted
                            pipe.watch(*watched)
                        rows = self._candidates(pipe, token) if watched else []
                        if rows:
                            pipe.watch(*[self._tok(r.id or "") for r in rows])
                        match = plan_upsert(token, rows)
                        stored = token.replace(id=saved_id(token, match))
                        pipe.multi()
                        if match is not None:
                            for key in self._index_keys(match):
                                if key:
                                    pipe.delete(key)
                        self._write(pipe, stored)
                        pipe.execute()
                        return stored
                    except self._watch_error:
                        continue
        raise TransientError("the Redis token store stayed too busy to save a token; try again")

    def delete_token(self, id: str) -> None:
        check_id(id)
        with self._guard():
            for _ in range(_ATTEMPTS):
                with self._r.pipeline() as pipe:
                    try:
                        pipe.watch(self._tok(id))
                        row = self._read(pipe, id)
                        if row is None:
                            return
                        index = [k for k in self._index_keys(row) if k]
                        if index:
                            pipe.watch(*index)
                        owned = [
                            k for k, v in zip(index, pipe.mget(index) if index else [], strict=True) if v == id.encode()
                        ]
                        pipe.multi()
                        pipe.delete(self._tok(id), *owned)
                        pipe.srem(self._ids, id)
                        pipe.execute()
                        return
                    except self._watch_error:
                        continue
        raise TransientError("the Redis token store stayed too busy to delete a token; try again")

    def get_tokens(self) -> list[Token]:
        with self._guard():
            ids = [i.decode() for i in self._r.smembers(self._ids)]
            return self._read_many(self._r, ids)

    def delete_tokens(self) -> None:
        with self._guard():
            for pattern in (f"{self.prefix}:tok:*", f"{self.prefix}:idx:*"):
                batch: list[Any] = []
                for key in self._r.scan_iter(match=pattern, count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        self._r.delete(*batch)
                        batch.clear()
                if batch:
                    self._r.delete(*batch)
            self._r.delete(self._ids)

    def drop(self) -> None:
        """Delete every key under the prefix: tokens, indexes, locks, limits and values (tests, uninstall)."""
        with self._guard():
            batch: list[Any] = []
            for key in self._r.scan_iter(match=f"{self.prefix}:*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    self._r.delete(*batch)
                    batch.clear()
            if batch:
                self._r.delete(*batch)

    def find_token_by_id(self, id: str) -> Token | None:
        check_id(id)
        with self._guard():
            return self._read(self._r, id)

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30.0) -> Iterator[None]:
        name = f"{self.prefix}:lock:{lock_name(self.prefix, key)}"
        owner = secrets.token_hex(16)
        ttl_ms = max(int(self._lock_ttl * 1000), 1000)
        deadline = time.monotonic() + timeout
        delay = 0.002
        with self._guard():
            while not self._r.set(name, owner, nx=True, px=ttl_ms):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"lock not acquired within {timeout:g} s")
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
        # Renew at a third of the expiry so a long refresh keeps the lock; a dead holder's lock still expires.
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl_ms / 3000):
                with contextlib.suppress(*self._errors):
                    if not self._renew(keys=[name], args=[owner, ttl_ms]):
                        return

        renewer = threading.Thread(target=renew, name="zoho-connector-lock-renewal", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with self._guard():
                self._release(keys=[name], args=[owner])

    # -- shared limits (base.LeaseStore): redis_leases.py --------------------------------------------------------

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        with self._guard():
            return self._leases.acquire_slot(name, limit, ttl)

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        with self._guard():
            return self._leases.renew_slot(name, lease, ttl)

    def release_slot(self, name: str, lease: str) -> None:
        with self._guard():
            self._leases.release_slot(name, lease)

    def get_value(self, name: str) -> str | None:
        with self._guard():
            return self._leases.get_value(name)

    def set_value(self, name: str, value: str, ttl: float) -> None:
        with self._guard():
            self._leases.set_value(name, value, ttl)

    def close(self) -> None:
        self._r.close()

    # -- internals ---------------------------------------------------------------------------------------------

    @property
    def _ids(self) -> str:
        return f"{self.prefix}:ids"

    def _tok(self, id: str) -> str:
        return f"{self.prefix}:tok:{id}"

    def _index_keys(self, token: Token) -> list[str | None]:
        digests = keys_of(token)[1:]
        return [f"{self.prefix}:idx:{kind}:{d}" if d else None for kind, d in zip(_INDEXES, digests, strict=True)]

    def _candidates(self, client: Any, token: Token) -> list[Token]:
        index = [k for k in self._index_keys(token) if k]
        ids = {v.decode() for v in (client.mget(index) if index else []) if v is not None}
        if token.id:
            ids.add(token.id)
        return self._read_many(client, sorted(ids))

    def _read(self, client: Any, id: str) -> Token | None:
        return _decode(client.hgetall(self._tok(id)))

    def _read_many(self, client: Any, ids: list[str]) -> list[Token]:
        if client is self._r:
            pipe = client.pipeline(transaction=False)
            for i in ids:
                pipe.hgetall(self._tok(i))
            found = pipe.execute()
        else:  # a pipeline in WATCH mode runs each command at once
            found = [client.hgetall(self._tok(i)) for i in ids]
        return [t for t in map(_decode, found) if t is not None]

    def _write(self, pipe: Any, token: Token) -> None:
        id = token.id or ""
        fields = {f: _encode(v) for f, v in to_row(token).items() if v is not None}
        pipe.delete(self._tok(id))
        pipe.hset(self._tok(id), mapping=fields)
        for key in self._index_keys(token):
            if key:
                pipe.set(key, id)
        pipe.sadd(self._ids, id)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as e:
            raise TransientError(f"cannot reach the Redis token store {self._safe}: {type(e).__name__}") from None


def _encode(value: Any) -> bytes:
    if isinstance(value, float | int):
        return repr(float(value)).encode()
    return str(value).encode("utf-8")


def _decode(data: dict[bytes, bytes]) -> Token | None:
    if not data:
        return None
    try:
        return from_row({k.decode(): v.decode("utf-8") for k, v in data.items()})
    except (UnicodeDecodeError, ValueError):
        raise ConnectionConfigError("a token in the Redis token store is not a token record") from None
