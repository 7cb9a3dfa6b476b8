"""Token buckets and concurrency slots shared by every process (Redis), with
an in-process fallback for the embedded demo (no ``REDIS_URL``: one process).

- :func:`take` takes one token from each of several buckets in one round
  trip and answers how long to wait when any is empty (nothing is taken
  then). A bucket holds ``burst`` tokens and refills at ``rate`` per second.
- :func:`slot_acquire` / :func:`slot_release` / :func:`slot_refresh` hold
  one of ``limit`` concurrency slots under a key; a slot not refreshed
  within its TTL lapses, so a crashed process cannot leak them.

Redis's own clock is used, so processes with skewed clocks agree.
"""

import time
from dataclasses import dataclass

from agenthub.redis import get_redis, redis_configured, script

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local state = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then
    wait = math.max(wait, (1 - tokens) / rate)
  end
  state[i] = tokens
end
if wait == 0 then
  for i, key in ipairs(KEYS) do
    local rate = tonumber(ARGV[2 * i - 1])
    local burst = tonumber(ARGV[2 * i])
    redis.call('HSET', key, 'tokens', state[i] - 1, 'ts', now)
    redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
  end
end
return tostring(wait)
"""

_SLOT_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) + 1)
return 1
"""

_SLOT_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 1)
end
return 1
"""


_ADMIT = """
-- KEYS: the buckets, then the slot set. ARGV: holder, limit, ttl, then a
-- rate and a burst per bucket. Takes a token from every bucket and a slot,
-- or nothing: "ok", "wait <seconds>" or "full".
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nbuckets = #KEYS - 1
local wait = 0
local state = {}
for i = 1, nbuckets do
  local rate = tonumber(ARGV[2 + 2 * i])
  local burst = tonumber(ARGV[3 + 2 * i])
  local v = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
  state[i] = tokens
end
if wait > 0 then return 'wait ' .. tostring(wait) end
local slots = KEYS[#KEYS]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  if redis.call('ZCARD', slots) >= limit then return 'full' end
  redis.call('ZADD', slots, now + ttl, ARGV[1])
  redis.call('EXPIRE', slots, ttl + 1)
end
for i = 1, nbuckets do
  local rate = tonumber(ARGV[2 + 2 * i])
  local burst = tonumber(ARGV[3 + 2 * i])
  redis.call('HSET', KEYS[i], 'tokens', state[i] - 1, 'ts', now)
  redis.call('EXPIRE', KEYS[i], math.ceil(burst / rate) + 1)
end
return 'ok'
"""


@dataclass(frozen=True)
class Admission:
    """What :func:`admit` decided: admitted, or the seconds to wait for a
    token, or no free slot."""

    ok: bool
    wait: float = 0.0
    full: bool = False


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    burst: int


class LocalBucket:
    """A token bucket in this process (one websocket connection's frames)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.ts = float(burst), time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.ts) * self.rate)
        self.ts = now
        if self.tokens < 1:
            return (1 - self.tokens) / self.rate
        self.tokens -= 1
        return 0.0


_local_buckets: dict[str, LocalBucket] = {}
_local_slots: dict[str, dict[str, float]] = {}


async def take(*buckets: Bucket) -> float:
    """Takes a token from every bucket, or none: 0 when allowed, else the
    seconds until one would be."""
    buckets = tuple(b for b in buckets if b.rate > 0)
    if not buckets:
        return 0.0
    if not redis_configured():
        waits = []
        for b in buckets:
            bucket = _local_buckets.setdefault(b.key, LocalBucket(b.rate, b.burst))
            bucket.rate, bucket.burst = b.rate, b.burst
            waits.append(bucket.take())
        return max(waits)
    args = [value for b in buckets for value in (b.rate, b.burst)]
    wait = await script(_TAKE)(keys=[f"agenthub:rl:{b.key}" for b in buckets], args=args)
    return float(wait)


_sync_scripts: dict[str, object] = {}


def take_sync(bucket: Bucket) -> float:
    """:func:`take` for one bucket from sync code (DRF's throttles), through
    the Django cache's Redis connection pool; in-process without Redis."""
    if bucket.rate <= 0:
        return 0.0
    if not redis_configured():
        local = _local_buckets.setdefault(bucket.key, LocalBucket(bucket.rate, bucket.burst))
        local.rate, local.burst = bucket.rate, bucket.burst
        return local.take()
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)  # a client on the cache's shared pool
    registered = _sync_scripts.get("take")
    if registered is None:
        registered = _sync_scripts["take"] = client.register_script(_TAKE)
    keys, args = [f"agenthub:rl:{bucket.key}"], [bucket.rate, bucket.burst]
    return float(registered(keys=keys, args=args, client=client))


async def slot_acquire(key: str, holder: str, *, limit: int, ttl: int) -> bool:
    if limit <= 0:
        return True
    if not redis_configured():
        now = time.monotonic()
        slots = {h: t for h, t in _local_slots.get(key, {}).items() if t > now}
        if len(slots) >= limit:
            _local_slots[key] = slots
            return False
        slots[holder] = now + ttl
        _local_slots[key] = slots
        return True
    return bool(await script(_SLOT_ACQUIRE)(keys=[f"agenthub:slots:{key}"], args=[holder, limit, ttl]))


async def slot_refresh(key: str, holder: str, *, ttl: int) -> None:
    if not redis_configured():
        if holder in _local_slots.get(key, {}):
            _local_slots[key][holder] = time.monotonic() + ttl
        return
    await script(_SLOT_REFRESH)(keys=[f"agenthub:slots:{key}"], args=[holder, ttl])


async def slot_release(key: str, holder: str) -> None:
    if not redis_configured():
        _local_slots.get(key, {}).pop(holder, None)
        return
    await get_redis().zrem(f"agenthub:slots:{key}", holder)


async def admit(buckets: tuple["Bucket", ...], slot_key: str, holder: str, *, limit: int, ttl: int) -> Admission:
    """A token from every bucket and one of ``limit`` slots, atomically and
    in one round trip: the start of a chat turn."""
    buckets = tuple(b for b in buckets if b.rate > 0)
    if not redis_configured():
        wait = await take(*buckets) if buckets else 0.0
        if wait:
            return Admission(ok=False, wait=wait)
        if not await slot_acquire(slot_key, holder, limit=limit, ttl=ttl):
            return Admission(ok=False, full=True)
        return Admission(ok=True)
    keys = [*(f"agenthub:rl:{b.key}" for b in buckets), f"agenthub:slots:{slot_key}"]
    args = [holder, max(limit, 0), ttl, *(value for b in buckets for value in (b.rate, b.burst))]
    answer = await script(_ADMIT)(keys=keys, args=args)
    answer = answer.decode() if isinstance(answer, bytes) else str(answer)
    if answer == "ok":
        return Admission(ok=True)
    if answer == "full":
        return Admission(ok=False, full=True)
    return Admission(ok=False, wait=float(answer.split()[1]))


def reset_local_state() -> None:
    """Forget in-process buckets and slots (tests)."""
    _local_buckets.clear()
    _local_slots.clear()
