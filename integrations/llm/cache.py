"""An exact-match cache of model answers, opted into per agent.

The key is a hash of the scope (the organization and the agent version: an
answer is never shared across organizations or versions), the model and its
fallbacks, the messages, the tools offered and the sampling parameters.  A
hit is replayed as a stream at full speed; its :class:`Finish` carries
``Usage(cache_hit=True)`` with no tokens, so the ledger records a cache hit
at no model cost.  Only complete answers are stored, in Redis with a TTL (in
the process when Redis is not configured); a Redis failure is a miss, never
an error.
"""

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from agenthub.redis import get_redis, redis_configured
from integrations.llm.types import ChatRequest, Finish, StreamEvent, TextDelta, ToolCall, Usage

logger = logging.getLogger(__name__)

KEY_PREFIX = "agenthub:rc:"
MAX_ENTRY_BYTES = 512 * 1024  # larger answers are not cached
LOCAL_MAX_ENTRIES = 2000
CACHEABLE_FINISH = frozenset({"stop", "length", "tool_calls"})


@dataclass(frozen=True)
class CachePolicy:
    organization_id: str
    scope: str  # what else must match, e.g. the agent version's id
    ttl_seconds: int


def cache_key(policy: CachePolicy, request: ChatRequest, fallback_models: Iterable[str]) -> str:
    payload = {
        "scope": policy.scope,
        "model": request.model,
        "fallbacks": list(fallback_models),
        "messages": [message.as_openai() for message in request.messages],
        "tools": [tool.as_openai() for tool in request.tools],
        "temperature": request.temperature,
        "max_tokens": request.max_output_tokens,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{KEY_PREFIX}{policy.organization_id}:{digest}"


def encode(events: list[StreamEvent]) -> bytes | None:
    items: list[list] = []
    for event in events:
        if isinstance(event, TextDelta):
            items.append(["t", event.text])
        elif isinstance(event, ToolCall):
            items.append(["c", event.id, event.name, event.arguments])
        elif isinstance(event, Finish):
            items.append(["f", event.reason, event.model])
    data = json.dumps({"v": 1, "events": items}, separators=(",", ":")).encode()
    return data if len(data) <= MAX_ENTRY_BYTES else None


def decode(data: bytes) -> list[StreamEvent] | None:
    try:
        document = json.loads(data)
        events: list[StreamEvent] = []
        for item in document["events"]:
            if item[0] == "t":
                events.append(TextDelta(item[1]))
            elif item[0] == "c":
                events.append(ToolCall(id=item[1], name=item[2], arguments=item[3]))
            elif item[0] == "f":
                usage = Usage(prompt_tokens=0, completion_tokens=0, cached_tokens=0, reported=True, cache_hit=True)
                events.append(Finish(reason=item[1], usage=usage, model=item[2], provider="cache"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return events if events and isinstance(events[-1], Finish) else None


class ResponseCache:
    def __init__(self):
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> list[StreamEvent] | None:
        if redis_configured():
            try:
                data = await get_redis().get(key)
            except Exception as exc:
                logger.warning("response cache: Redis failed (%s); treated as a miss", exc.__class__.__name__)
                return None
        else:
            entry = self._local.get(key)
            data = None
            if entry is not None:
                if entry[0] > time.monotonic():
                    data = entry[1]
                    self._local.move_to_end(key)
                else:
                    del self._local[key]
        return decode(data) if data else None

    async def put(self, key: str, events: list[StreamEvent], ttl_seconds: int) -> None:
        finish = events[-1] if events else None
        if not isinstance(finish, Finish) or finish.reason not in CACHEABLE_FINISH or ttl_seconds <= 0:
            return
        data = encode(events)
        if data is None:
            return
        if redis_configured():
            try:
                await get_redis().set(key, data, ex=ttl_seconds)
            except Exception as exc:
                logger.warning("response cache: Redis failed (%s); answer not cached", exc.__class__.__name__)
            return
        self._local[key] = (time.monotonic() + ttl_seconds, data)
        self._local.move_to_end(key)
        while len(self._local) > LOCAL_MAX_ENTRIES:
            self._local.popitem(last=False)

    def clear_all_sync(self) -> None:
        """Forgets every cached answer (tests)."""
        self._local.clear()
        if redis_configured():
            import redis
            from django.conf import settings

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
            try:
                names = list(client.scan_iter(match=KEY_PREFIX + "*", count=1000))
                if names:
                    client.delete(*names)
            finally:
                client.close()


response_cache = ResponseCache()
