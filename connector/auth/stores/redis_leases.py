"""Shared limits (base.LeaseStore) for the Redis store.

A name's slots are a sorted set `P:slots:<name>` of lease ids scored by their expiry in milliseconds on the Redis
server's clock (TIME, read inside the scripts, so machines with skewed clocks agree). Taking a slot is one Lua
script, atomic on the server: drop expired members, count, add. Values are plain keys `P:value:<name>` with a
PX expiry.
"""

from __future__ import annotations

from typing import Any

from connector.auth.stores.leases import new_lease_id

__all__ = ["RedisLeases"]

# KEYS[1] the sorted set; ARGV: limit, ttl ms, lease id. The set itself lives as long as its longest lease.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
# KEYS[1] the sorted set; ARGV: lease id, ttl ms. A lease past its expiry is not revived: it may be counted free.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""


class RedisLeases:
    def __init__(self, client: Any, prefix: str) -> None:
        self._r = client
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    def acquire_slot(self, name: str, limit: int, ttl: float) -> str | None:
        lease = new_lease_id()
        taken = self._acquire(keys=[self._slots(name)], args=[int(limit), _ms(ttl), lease])
        return lease if taken else None

    def renew_slot(self, name: str, lease: str, ttl: float) -> bool:
        return bool(self._renew(keys=[self._slots(name)], args=[lease, _ms(ttl)]))

    def release_slot(self, name: str, lease: str) -> None:
        self._r.zrem(self._slots(name), lease)

    def get_value(self, name: str) -> str | None:
        value = self._r.get(f"{self._prefix}:value:{name}")
        return None if value is None else bytes(value).decode("utf-8")

    def set_value(self, name: str, value: str, ttl: float) -> None:
        self._r.set(f"{self._prefix}:value:{name}", value.encode("utf-8"), px=_ms(ttl))

    def _slots(self, name: str) -> str:
        return f"{self._prefix}:slots:{name}"


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
