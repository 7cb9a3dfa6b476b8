"""Circuit breakers and in-flight counts per model deployment, shared by every
process through Redis.

A deployment's circuit is *closed* (calls go through), *open* (calls are
skipped without a network call) after ``threshold`` failures within
``window`` seconds, and *half-open* once the ``cooldown`` has passed: the
next call is the single probe.  The probe's first streamed event closes the
circuit; its failure opens it again for another cooldown.  If the probe's
process dies, its lease runs out and another call probes.

One Lua script picks the first deployment of a preference list that may take
a call and leases it (one Redis round trip before the model call); another
settles the lease when the call ends.  Both return what the router needs to
order the next call (states, calls in flight, time-to-first-token average).

Without Redis (the embedded demo) the same rules run in the process.  When
Redis is configured but down, the breakers fall back to per-process state,
calls continue, and a warning is logged; Redis is tried again after a few
seconds.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from agenthub.redis import get_redis, redis_configured, script
from integrations.llm import breaker_lua

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half_open"}

# A lease of a call in flight expires after this long even if its process
# died without settling it; it also bounds a probe.
LEASE_MS = 10 * 60 * 1000
PROBE_LEASE_MS = 60 * 1000
REDIS_RETRY_SECONDS = 5.0
KEY_PREFIX = "agenthub:gw:"


class Cap(NamedTuple):
    """A deployment's caps (0: none): calls in flight across processes,
    requests and tokens per minute."""

    in_flight: int = 0
    rpm: int = 0
    tpm: int = 0


NO_CAP = Cap()


@dataclass(frozen=True)
class Limits:
    threshold: int
    window_ms: int
    cooldown_ms: int


@dataclass
class Stats:
    """What the breakers last said of a deployment."""

    state: int = CLOSED
    in_flight: int = 0
    ttft_ms: float | None = None
    retry_in_ms: int = 0


@dataclass
class Lease:
    """A call a deployment has taken; settle it exactly once."""

    key: str  # the deployment's breaker key
    index: int  # its position in the candidate list
    call_id: str
    probe: bool
    organization: str = ""  # whose cap the call counts against ("" none)
    settled: bool = False


@dataclass
class Acquired:
    lease: Lease | None
    stats: list[Stats]
    # Why there is no lease although a circuit would have let the call
    # through: "deployment" (every such deployment is at its cap) or
    # "organization" (the organization is at its cap); None otherwise.
    full: str | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _keys(key: str) -> tuple[str, str, str]:
    base = KEY_PREFIX + key
    return base, base + ":fail", base + ":busy"


def _minute_keys(key: str, now: int) -> tuple[str, str]:
    minute = now // 60_000
    base = KEY_PREFIX + key
    return f"{base}:rpm:{minute}", f"{base}:tpm:{minute}"


def _org_key(organization: str) -> str:
    return f"{KEY_PREFIX}org:{organization or '-'}:busy"


def _status_stats(reply: list) -> list[Stats]:
    """The STATUS script's flat reply, four values per deployment."""
    return [
        Stats(int(reply[i]), int(reply[i + 1]), _ttft(reply[i + 2]), max(0, int(reply[i + 3])))
        for i in range(0, len(reply), 4)
    ]


def _ttft(value) -> float | None:
    if value in (None, b"", ""):
        return None
    return float(value)


class LocalBreakers:
    """The same rules in one process (no Redis, or Redis down)."""

    def __init__(self):
        self._state: dict[str, dict] = {}
        self._org: dict[str, dict[str, int]] = {}

    def _entry(self, key: str) -> dict:
        return self._state.setdefault(
            key,
            {
                "state": CLOSED,
                "until": 0,
                "probe": 0,
                "ttft": None,
                "fail": [],
                "busy": {},
                "minute": 0,
                "requests": 0,
                "tokens": 0,
            },
        )

    def _expire(self, entry: dict, now: int) -> None:
        entry["busy"] = {call: deadline for call, deadline in entry["busy"].items() if deadline > now}

    def acquire(
        self, keys: list[str], call_id: str, now: int, caps: list[Cap], organization: str, organization_cap: int
    ) -> tuple[int, bool, bool, list[Stats]]:
        if organization_cap:
            org = self._org.setdefault(organization, {})
            for call in [c for c, deadline in org.items() if deadline <= now]:
                del org[call]
            if len(org) >= organization_cap:
                return -1, False, True, []
        chosen, probe, full, stats = 0, False, False, []
        for index, key in enumerate(keys, start=1):
            entry = self._entry(key)
            self._expire(entry, now)
            cap = caps[index - 1]
            minute = now // 60_000
            if entry["minute"] != minute:
                entry.update(minute=minute, requests=0, tokens=0)
            if not chosen:
                ok = False
                if (
                    (cap.in_flight and len(entry["busy"]) >= cap.in_flight)
                    or (cap.rpm and entry["requests"] >= cap.rpm)
                    or (cap.tpm and entry["tokens"] >= cap.tpm)
                ):
                    full = full or entry["state"] == CLOSED
                elif entry["state"] == CLOSED:
                    ok = True
                elif entry["state"] == OPEN and now >= entry["until"]:
                    entry["state"], entry["probe"], ok, probe = HALF_OPEN, now + PROBE_LEASE_MS, True, True
                elif entry["state"] == HALF_OPEN and now >= entry["probe"]:
                    entry["probe"], ok, probe = now + PROBE_LEASE_MS, True, True
                if ok:
                    chosen = index
                    entry["busy"][call_id] = now + LEASE_MS
                    entry["requests"] += 1
                    if organization_cap:
                        self._org[organization][call_id] = now + LEASE_MS
            stats.append(Stats(entry["state"], len(entry["busy"]), entry["ttft"]))
        return chosen, probe, full, stats

    def settle(
        self,
        key: str,
        call_id: str,
        outcome: str,
        probe: bool,
        ttft_ms,
        limits: Limits,
        now: int,
        organization: str,
        tokens: int = 0,
    ) -> int:
        entry = self._entry(key)
        if outcome != "first":
            entry["busy"].pop(call_id, None)
            self._org.get(organization, {}).pop(call_id, None)
            if tokens and entry["minute"] == now // 60_000:
                entry["tokens"] += tokens
        if outcome in ("ok", "first"):
            if entry["state"] != CLOSED:
                entry.update(state=CLOSED, until=0, probe=0, fail=[])
            if ttft_ms is not None:
                entry["ttft"] = ttft_ms if entry["ttft"] is None else entry["ttft"] * 0.8 + ttft_ms * 0.2
        elif outcome == "fail":
            if entry["state"] == HALF_OPEN:
                entry.update(state=OPEN, until=now + limits.cooldown_ms, probe=0)
            elif entry["state"] == CLOSED:
                entry["fail"] = [t for t in entry["fail"] if t > now - limits.window_ms] + [now]
                if len(entry["fail"]) >= limits.threshold:
                    entry.update(state=OPEN, until=now + limits.cooldown_ms, probe=0, fail=[])
        elif outcome == "none" and probe and entry["state"] == HALF_OPEN:
            entry["probe"] = 0
        return entry["state"]

    def status(self, keys: list[str], now: int) -> list[Stats]:
        stats = []
        for key in keys:
            entry = self._entry(key)
            self._expire(entry, now)
            state, wait = entry["state"], 0
            if state == OPEN:
                wait = entry["until"] - now
                if wait <= 0:
                    state, wait = HALF_OPEN, 0
            stats.append(Stats(state, len(entry["busy"]), entry["ttft"], max(0, wait)))
        return stats

    def reset(self) -> None:
        self._state.clear()
        self._org.clear()


class Breakers:
    """Redis when it is configured and answering, the process otherwise."""

    def __init__(self):
        self.local = LocalBreakers()
        self._redis_down_until = 0.0

    def _use_redis(self) -> bool:
        return redis_configured() and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning(
            "Circuit breakers: Redis is unreachable (%s); using this process's own breaker state for %g s",
            exc.__class__.__name__,
            REDIS_RETRY_SECONDS,
        )

    async def acquire(
        self,
        keys: list[str],
        *,
        caps: list[Cap] | None = None,
        organization: str = "",
        organization_cap: int = 0,
    ) -> Acquired:
        """Leases the first of ``keys`` (deployments, in preference order)
        whose circuit lets a call through and that is below its cap of calls
        in flight and its requests and tokens this minute (``caps``), if ``organization`` is below
        ``organization_cap`` (0 for none)."""
        call_id = uuid.uuid4().hex
        now = _now_ms()
        caps = caps or [NO_CAP] * len(keys)
        if not organization_cap:
            organization = ""
        if self._use_redis():
            try:
                redis_keys = [_org_key(organization)]
                for key in keys:
                    redis_keys += [*_keys(key)[::2], *_minute_keys(key, now)]
                args = [now, call_id, LEASE_MS, PROBE_LEASE_MS, organization_cap]
                for cap in caps:
                    args += list(cap)
                reply = await script(breaker_lua.ACQUIRE)(keys=redis_keys, args=args)
                chosen, probe, full = int(reply[0]), bool(int(reply[1])), bool(int(reply[2]))
                rest = reply[3:]
                stats = [Stats(int(rest[i]), int(rest[i + 1]), _ttft(rest[i + 2])) for i in range(0, len(rest), 3)]
            except Exception as exc:  # Redis down: per-process state, calls continue
                if not _is_redis_error(exc):
                    raise
                self._redis_failed(exc)
                chosen, probe, full, stats = self.local.acquire(
                    keys, call_id, now, caps, organization, organization_cap
                )
        else:
            chosen, probe, full, stats = self.local.acquire(keys, call_id, now, caps, organization, organization_cap)
        if chosen == -1:
            return Acquired(None, stats, "organization")
        if not chosen:
            return Acquired(None, stats, "deployment" if full else None)
        lease = Lease(key=keys[chosen - 1], index=chosen - 1, call_id=call_id, probe=probe, organization=organization)
        return Acquired(lease, stats)

    async def settle(
        self, lease: Lease, outcome: str, limits: Limits, ttft_ms: float | None = None, tokens: int = 0
    ) -> int:
        """``outcome``: ``ok`` (answered), ``fail`` (counts toward opening),
        ``none`` (neither: cancelled, or refused for the request's own fault),
        ``first`` (a probe's first event: close the circuit, keep the lease)."""
        if lease.settled:
            return CLOSED
        if outcome != "first":
            lease.settled = True
        now = _now_ms()
        args = [now, lease.call_id, outcome, int(lease.probe), "" if ttft_ms is None else f"{ttft_ms:.2f}"]
        args += [limits.threshold, limits.window_ms, limits.cooldown_ms, tokens]
        if self._use_redis():
            try:
                keys = [*_keys(lease.key), _org_key(lease.organization), _minute_keys(lease.key, now)[1]]
                state = int(await script(breaker_lua.SETTLE)(keys=keys, args=args))
            except Exception as exc:
                if not _is_redis_error(exc):
                    raise
                self._redis_failed(exc)
            else:
                if outcome == "fail" and state == OPEN:
                    logger.warning("Circuit opened for model deployment %s", lease.key)
                return state
        state = self.local.settle(
            lease.key, lease.call_id, outcome, lease.probe, ttft_ms, limits, now, lease.organization, tokens
        )
        if outcome == "fail" and state == OPEN:
            logger.warning("Circuit opened for model deployment %s (this process)", lease.key)
        return state

    async def status(self, keys: list[str]) -> list[Stats]:
        """Each deployment's state, calls in flight and latency, for health,
        metrics and the admin."""
        now = _now_ms()
        if keys and self._use_redis():
            try:
                redis_keys = [k for key in keys for k in _keys(key)[::2]]
                reply = await script(breaker_lua.STATUS)(keys=redis_keys, args=[now])
            except Exception as exc:
                if not _is_redis_error(exc):
                    raise
                self._redis_failed(exc)
            else:
                return _status_stats(reply)
        return self.local.status(keys, now)

    def status_sync(self, keys: list[str]) -> list[Stats]:
        """:meth:`status` for synchronous code (health, metrics, the admin)."""
        now = _now_ms()
        if keys and self._use_redis():
            try:
                client = _sync_client()
                redis_keys = [k for key in keys for k in _keys(key)[::2]]
                reply = client.eval(breaker_lua.STATUS, len(redis_keys), *redis_keys, now)
            except Exception as exc:
                if not _is_redis_error(exc):
                    raise
                self._redis_failed(exc)
            else:
                return _status_stats(reply)
        return self.local.status(keys, now)

    def reset_sync(self, keys: list[str]) -> None:
        """Closes these deployments' circuits (the admin's action)."""
        for key in keys:
            self.local._state.pop(key, None)
        if redis_configured() and keys:
            _sync_client().delete(*[name for key in keys for name in _keys(key)])

    def reset_all_sync(self) -> None:
        """Closes every circuit and forgets every count (tests)."""
        self.local.reset()
        self._redis_down_until = 0.0
        if redis_configured():
            client = _sync_client()
            names = list(client.scan_iter(match=KEY_PREFIX + "*", count=1000))
            if names:
                client.delete(*names)

    async def reset(self, keys: list[str] | None = None) -> None:
        """Closes circuits and forgets their counts (``keys``: those deployments; all otherwise)."""
        if keys is None:
            self.local.reset()
        else:
            for key in keys:
                self.local._state.pop(key, None)
        if redis_configured():
            client = get_redis()
            if keys is None:
                names = [name async for name in client.scan_iter(match=KEY_PREFIX + "*", count=500)]
            else:
                names = [name for key in keys for name in _keys(key)]
            if names:
                await client.delete(*names)


_sync = None


def _sync_client():
    global _sync
    if _sync is None:
        import redis
        from django.conf import settings

        _sync = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    return _sync


def _is_redis_error(exc: Exception) -> bool:
    import redis.exceptions

    return isinstance(exc, redis.exceptions.RedisError | OSError | TimeoutError)


def weighted_order(items: list, weights: list[int], rng: random.Random) -> list:
    """``items`` in a random order where each comes first with a probability
    proportional to its weight (Efraimidis–Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / max(1, w)), index) for index, w in enumerate(weights)]
    keyed.sort(reverse=True)
    return [items[index] for _, index in keyed]


breakers = Breakers()
