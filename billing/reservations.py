"""Budget counters and reservations, atomically, in Redis (or in this process
for the embedded demo, which has no Redis).

Each budget period has three keys sharing one hash tag (so a Redis Cluster
keeps them on one node)::

    agenthub:budget:{<budget id>:<period>}     hash: spent, tokens, rc, rt, ready, gen
    agenthub:budget:{<budget id>:<period>}:r   zset: call id -> expiry (ms)
    agenthub:budget:{<budget id>:<period>}:a   hash: call id -> "units tokens"

``rc``/``rt`` are the money (in 1e-8 units) and tokens held by calls in
flight.  :func:`reserve` checks every blocking budget of a call and holds the
call's worst case in all of them in one script, or in none; :func:`settle`
replaces the hold with what the call cost.  A hold a crashed process never
settled expires.  A counter that is missing (Redis restarted, the key
expired) is rebuilt from the ledger by the caller (:func:`initialize`) and
the reservation retried.
"""

import threading
import time
import uuid
from dataclasses import dataclass

from agenthub.redis import redis_configured, script


@dataclass(frozen=True)
class Hold:
    """One budget's part of a reservation request."""

    key: str  # the period's hash key
    limit_units: int  # -1: no money limit
    limit_tokens: int  # -1: no token limit
    block: bool
    units: int
    tokens: int
    ttl: int  # seconds the counters live


@dataclass(frozen=True)
class Refusal:
    index: int  # which hold refused
    metric: str  # "amount" or "tokens"
    spent: int
    reserved: int


@dataclass(frozen=True)
class Settled:
    key: str
    spent: int  # after this call
    tokens: int
    counted: bool  # False when the counter was rebuilt meanwhile (the ledger had it)


def period_key(budget_id, period: str) -> str:
    return f"agenthub:budget:{{{budget_id}:{period}}}"


_RESERVE = """
local call, now, expires, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, n do
  local h, z, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('HEXISTS', h, 'ready') == 0 then return {'missing', i} end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do
    local held = redis.call('HGET', a, id)
    if held then
      local u, t = string.match(held, '(%-?%d+) (%-?%d+)')
      redis.call('HINCRBY', h, 'rc', -tonumber(u))
      redis.call('HINCRBY', h, 'rt', -tonumber(t))
      redis.call('HDEL', a, id)
    end
    redis.call('ZREM', z, id)
  end
  local b = 4 + (i - 1) * 6
  if ARGV[b + 3] == '1' and redis.call('HEXISTS', a, call) == 0 then
    local lim_u, lim_t = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
    local u, t = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
    local rc = tonumber(redis.call('HGET', h, 'rc') or '0')
    if lim_u >= 0 and (spent >= lim_u or spent + rc + u > lim_u) then
      return {'over', i, 'amount', spent, rc}
    end
    local tokens = tonumber(redis.call('HGET', h, 'tokens') or '0')
    local rt = tonumber(redis.call('HGET', h, 'rt') or '0')
    if lim_t >= 0 and (tokens >= lim_t or tokens + rt + t > lim_t) then
      return {'over', i, 'tokens', tokens, rt}
    end
  end
end
local gens = {}
for i = 1, n do
  local h, z, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local b = 4 + (i - 1) * 6
  if redis.call('HEXISTS', a, call) == 0 then
    local u, t = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    redis.call('HINCRBY', h, 'rc', u)
    redis.call('HINCRBY', h, 'rt', t)
    redis.call('HSET', a, call, u .. ' ' .. t)
    redis.call('ZADD', z, expires, call)
  end
  local ttl = tonumber(ARGV[b + 6])
  redis.call('EXPIRE', h, ttl)
  redis.call('EXPIRE', z, ttl)
  redis.call('EXPIRE', a, ttl)
  gens[i] = redis.call('HGET', h, 'gen')
end
return {'ok', unpack(gens)}
"""

_SETTLE = """
local call, n = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local h, z, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local b = 2 + (i - 1) * 3
  local u, t, gen = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), ARGV[b + 3]
  local counted = 0
  local held = redis.call('HGET', a, call)
  if held then
    local hu, ht = string.match(held, '(%-?%d+) (%-?%d+)')
    redis.call('HINCRBY', h, 'rc', -tonumber(hu))
    redis.call('HINCRBY', h, 'rt', -tonumber(ht))
    redis.call('HDEL', a, call)
    redis.call('ZREM', z, call)
  end
  if redis.call('HGET', h, 'gen') == gen then
    redis.call('HINCRBY', h, 'spent', u)
    redis.call('HINCRBY', h, 'tokens', t)
    counted = 1
  end
  out[#out + 1] = tonumber(redis.call('HGET', h, 'spent') or '0')
  out[#out + 1] = tonumber(redis.call('HGET', h, 'tokens') or '0')
  out[#out + 1] = counted
end
return out
"""

_INITIALIZE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'tokens', ARGV[2], 'rc', 0, 'rt', 0, 'ready', 1, 'gen', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


def _keys(holds) -> list[str]:
    return [name for hold in holds for name in (hold.key, f"{hold.key}:r", f"{hold.key}:a")]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Missing(Exception):
    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


async def reserve(call_id: str, holds: list[Hold], *, hold_seconds: float) -> tuple[Refusal | None, list[str]]:
    """Holds every budget's share of the call, or none.  Returns the refusal
    (None when held) and, when held, each counter's generation."""
    now_ms = int(time.time() * 1000)
    if not redis_configured():
        return _local.reserve(call_id, holds, now_ms, now_ms + int(hold_seconds * 1000))
    args: list = [call_id, now_ms, now_ms + int(hold_seconds * 1000), len(holds)]
    for hold in holds:
        args += [hold.limit_units, hold.limit_tokens, 1 if hold.block else 0, hold.units, hold.tokens, hold.ttl]
    answer = await script(_RESERVE)(keys=_keys(holds), args=args)
    status = _text(answer[0])
    if status == "missing":
        raise Missing(int(answer[1]) - 1)
    if status == "over":
        return Refusal(int(answer[1]) - 1, _text(answer[2]), int(answer[3]), int(answer[4])), []
    return None, [_text(g) for g in answer[1:]]


async def settle(call_id: str, holds: list[tuple[str, int, int, str]]) -> list[Settled]:
    """``holds``: (key, actual units, actual tokens, generation seen at
    reservation) per budget."""
    if not holds:
        return []
    if not redis_configured():
        return _local.settle(call_id, holds)
    args: list = [call_id, len(holds)]
    for _key, units, tokens, gen in holds:
        args += [units, tokens, gen]
    answer = await script(_SETTLE)(keys=_keys([Hold(k, 0, 0, False, 0, 0, 0) for k, *_ in holds]), args=args)
    return [
        Settled(key, int(answer[3 * i]), int(answer[3 * i + 1]), bool(int(answer[3 * i + 2])))
        for i, (key, *_rest) in enumerate(holds)
    ]


async def initialize(key: str, *, spent_units: int, tokens: int, ttl: int) -> None:
    """Sets a missing counter from the ledger's figures (no-op if another
    process did it first)."""
    generation = uuid.uuid4().hex[:12]
    if not redis_configured():
        _local.initialize(key, spent_units, tokens, generation)
        return
    await script(_INITIALIZE)(keys=[key, f"{key}:r", f"{key}:a"], args=[spent_units, tokens, generation, ttl])


class _LocalStore:
    """The same counters in this process (no Redis: one process serves)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict[str, dict] = {}

    def reserve(self, call_id, holds, now_ms, expires_ms):
        with self._lock:
            for index, hold in enumerate(holds):
                counter = self._counters.get(hold.key)
                if counter is None:
                    raise Missing(index)
                for held_id, (units, tokens, expiry) in list(counter["held"].items()):
                    if expiry <= now_ms:
                        counter["rc"] -= units
                        counter["rt"] -= tokens
                        del counter["held"][held_id]
                if hold.block and call_id not in counter["held"]:
                    spent, rc = counter["spent"], counter["rc"]
                    if hold.limit_units >= 0 and (
                        spent >= hold.limit_units or spent + rc + hold.units > hold.limit_units
                    ):
                        return Refusal(index, "amount", spent, rc), []
                    used, rt = counter["tokens"], counter["rt"]
                    if hold.limit_tokens >= 0 and (
                        used >= hold.limit_tokens or used + rt + hold.tokens > hold.limit_tokens
                    ):
                        return Refusal(index, "tokens", used, rt), []
            generations = []
            for hold in holds:
                counter = self._counters[hold.key]
                if call_id not in counter["held"]:
                    counter["rc"] += hold.units
                    counter["rt"] += hold.tokens
                    counter["held"][call_id] = (hold.units, hold.tokens, expires_ms)
                generations.append(counter["gen"])
            return None, generations

    def settle(self, call_id, holds):
        results = []
        with self._lock:
            for key, units, tokens, gen in holds:
                counter = self._counters.get(key)
                if counter is None:
                    results.append(Settled(key, 0, 0, False))
                    continue
                held = counter["held"].pop(call_id, None)
                if held is not None:
                    counter["rc"] -= held[0]
                    counter["rt"] -= held[1]
                counted = counter["gen"] == gen
                if counted:
                    counter["spent"] += units
                    counter["tokens"] += tokens
                results.append(Settled(key, counter["spent"], counter["tokens"], counted))
        return results

    def initialize(self, key, spent_units, tokens, generation):
        with self._lock:
            if key not in self._counters:
                self._counters[key] = {
                    "spent": spent_units,
                    "tokens": tokens,
                    "rc": 0,
                    "rt": 0,
                    "held": {},
                    "gen": generation,
                }

    def clear(self):
        with self._lock:
            self._counters.clear()


_local = _LocalStore()


def reset_local_state() -> None:
    """Forget in-process counters (tests)."""
    _local.clear()
