"""Shared chat state: turn locks, the per-conversation replay log of events,
cross-process publication of events, and the recent-history cache.

Two implementations with one interface: :class:`RedisChatStore` (production:
state shared by every ASGI process) and :class:`MemoryChatStore` (the
embedded demo: one process, nothing to share).

The replay log is a Redis stream per conversation whose entry ids are the
events' sequence numbers (``<seq>-0``), so "everything after N" is one
``XRANGE``.  Appending to the log and publishing to the other processes
happen in one pipeline, so an event is either in the log or still to be
published, never neither.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from django.conf import settings

from agenthub.redis import get_redis, redis_configured

logger = logging.getLogger(__name__)

PREFIX = "agenthub:chat"
CONTROL_CHANNEL = f"{PREFIX}:control"


def _key(conversation_id: str, part: str) -> str:
    return f"{PREFIX}:{conversation_id}:{part}"


def events_channel(conversation_id: str) -> str:
    return f"{PREFIX}:{conversation_id}:events"


class Event:
    """A turn event: its sequence number and its JSON text (encoded once,
    sent as is to websockets, SSE streams, the log and other processes).
    An event made from its fields (:meth:`of`) is encoded only when its text
    is asked for, and one made from text decoded only when its fields are:
    a private turn's events go to their one reader as fields, never as JSON."""

    __slots__ = ("_data", "_text", "seq")

    def __init__(self, seq: int, text: str | None = None):
        self.seq = seq
        self._text = text
        self._data = None

    @classmethod
    def of(cls, seq: int, data: dict) -> "Event":
        event = cls(seq)
        event._data = data
        return event

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self._data, separators=(",", ":"), ensure_ascii=False)
        return self._text

    @property
    def data(self) -> dict:
        """The fields (read them, do not change them: they may be shared)."""
        if self._data is None:
            self._data = json.loads(self._text)
        return self._data

    def __eq__(self, other) -> bool:
        return isinstance(other, Event) and (self.seq, self.text) == (other.seq, other.text)

    def __hash__(self) -> int:
        return hash((self.seq, self.text))

    def __repr__(self) -> str:
        return f"Event({self.seq!r}, {self.text!r})"


class ChatStore:
    """Interface; see the two implementations below."""

    shared = False

    async def try_acquire_turn(self, conversation_id: str, turn_id: str, ttl: int) -> bool: ...
    async def refresh_turn(self, conversation_id: str, turn_id: str, ttl: int) -> None: ...
    async def release_turn(self, conversation_id: str, turn_id: str) -> None: ...
    async def current_turn(self, conversation_id: str) -> str | None: ...
    async def append_events(self, batches: dict[str, list[Event]], origin: str) -> None: ...
    async def read_events(self, conversation_id: str, after: int) -> tuple[list[Event], int | None]: ...
    async def last_seq(self, conversation_id: str) -> int: ...
    async def get_history(self, conversation_id: str) -> list[dict] | None: ...

    async def turn_context(self, conversation_id: str) -> tuple[int, list[dict] | None]:
        """The last event number and the cached history, together."""
        return await self.last_seq(conversation_id), await self.get_history(conversation_id)

    async def set_history(self, conversation_id: str, history: list[dict]) -> None: ...
    async def drop_history(self, conversation_id: str) -> None: ...
    async def drop_conversation(self, conversation_id: str) -> None: ...
    async def publish_control(self, message: dict) -> None: ...


class MemoryChatStore(ChatStore):
    def __init__(self):
        self._turns: dict[str, str] = {}
        self._logs: dict[str, deque[Event]] = {}
        self._history: dict[str, list[dict]] = {}

    async def try_acquire_turn(self, conversation_id, turn_id, ttl):
        if conversation_id in self._turns:
            return False
        self._turns[conversation_id] = turn_id
        return True

    async def refresh_turn(self, conversation_id, turn_id, ttl):
        return None

    async def release_turn(self, conversation_id, turn_id):
        if self._turns.get(conversation_id) == turn_id:
            del self._turns[conversation_id]

    async def current_turn(self, conversation_id):
        return self._turns.get(conversation_id)

    async def append_events(self, batches, origin):
        for conversation_id, events in batches.items():
            log = self._logs.setdefault(conversation_id, deque(maxlen=settings.CHAT_REPLAY_MAX_EVENTS))
            log.extend(events)

    async def read_events(self, conversation_id, after):
        log = self._logs.get(conversation_id)
        if not log:
            return [], None
        return [e for e in log if e.seq > after], log[0].seq

    async def last_seq(self, conversation_id):
        log = self._logs.get(conversation_id)
        return log[-1].seq if log else 0

    async def get_history(self, conversation_id):
        history = self._history.get(conversation_id)
        return list(history) if history is not None else None

    async def set_history(self, conversation_id, history):
        self._history[conversation_id] = list(history)

    async def drop_history(self, conversation_id):
        self._history.pop(conversation_id, None)

    async def drop_conversation(self, conversation_id):
        self._logs.pop(conversation_id, None)
        self._history.pop(conversation_id, None)
        self._turns.pop(conversation_id, None)

    async def publish_control(self, message):
        return None


# Releases the lock only if this turn still holds it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


class RedisChatStore(ChatStore):
    shared = True

    @property
    def redis(self):
        return get_redis()

    async def try_acquire_turn(self, conversation_id, turn_id, ttl):
        return bool(await self.redis.set(_key(conversation_id, "turn"), turn_id, nx=True, ex=ttl))

    async def refresh_turn(self, conversation_id, turn_id, ttl):
        await self.redis.eval(_REFRESH, 1, _key(conversation_id, "turn"), turn_id, ttl)

    async def release_turn(self, conversation_id, turn_id):
        await self.redis.eval(_RELEASE, 1, _key(conversation_id, "turn"), turn_id)

    async def current_turn(self, conversation_id):
        value = await self.redis.get(_key(conversation_id, "turn"))
        return value.decode() if value else None

    async def append_events(self, batches, origin):
        ttl = settings.CHAT_REPLAY_TTL_SECONDS
        maxlen = settings.CHAT_REPLAY_MAX_EVENTS
        pipe = self.redis.pipeline(transaction=False)
        for conversation_id, events in batches.items():
            log = _key(conversation_id, "log")
            for event in events:
                pipe.xadd(log, {"e": event.text}, id=f"{event.seq}-0", maxlen=maxlen, approximate=True)
            pipe.expire(log, ttl)
            # "<origin>|<json>": a process skips its own publications without
            # decoding them.
            payload = origin + "|" + json.dumps([[e.seq, e.text] for e in events], separators=(",", ":"))
            pipe.publish(events_channel(conversation_id), payload)
        await pipe.execute()

    async def read_events(self, conversation_id, after):
        log = _key(conversation_id, "log")
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrange(log, min=f"{after + 1}-0", max="+")
        pipe.xrange(log, min="-", max="+", count=1)
        entries, first = await pipe.execute()
        events = [Event(int(entry_id.split(b"-")[0]), fields[b"e"].decode()) for entry_id, fields in entries]
        oldest = int(first[0][0].split(b"-")[0]) if first else None
        return events, oldest

    async def last_seq(self, conversation_id):
        last = await self.redis.xrevrange(_key(conversation_id, "log"), max="+", min="-", count=1)
        return int(last[0][0].split(b"-")[0]) if last else 0

    async def get_history(self, conversation_id):
        raw = await self.redis.get(_key(conversation_id, "history"))
        return json.loads(raw) if raw else None

    async def turn_context(self, conversation_id):
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrevrange(_key(conversation_id, "log"), max="+", min="-", count=1)
        pipe.get(_key(conversation_id, "history"))
        last, raw = await pipe.execute()
        return (int(last[0][0].split(b"-")[0]) if last else 0), (json.loads(raw) if raw else None)

    async def set_history(self, conversation_id, history):
        await self.redis.set(
            _key(conversation_id, "history"), json.dumps(history), ex=settings.CONVERSATION_TTL_SECONDS
        )

    async def drop_history(self, conversation_id):
        await self.redis.delete(_key(conversation_id, "history"))

    async def drop_conversation(self, conversation_id):
        await self.redis.delete(*(_key(conversation_id, part) for part in ("log", "history", "turn")))

    async def publish_control(self, message):
        await self.redis.publish(CONTROL_CHANNEL, json.dumps(message))


class RemoteListener:
    """One Redis pub/sub connection per process: the conversations that local
    subscribers watch, and the control channel (cancel requests)."""

    def __init__(self, on_events: Callable[[str, str, bytes], None], on_control: Callable[[dict], Awaitable[None]]):
        self._on_events = on_events
        self._on_control = on_control
        self._pubsub = None
        self._task: asyncio.Task | None = None
        self._counts: dict[str, int] = {}
        self._confirmed: dict[bytes, asyncio.Future] = {}
        self._lock = asyncio.Lock()
        self._control_tasks: set[asyncio.Task] = set()

    async def _ensure_started(self):
        if self._task is not None and not self._task.done():
            return
        self._pubsub = get_redis().pubsub()
        await self._subscribe_raw(CONTROL_CHANNEL)
        self._task = asyncio.create_task(self._run(), name="chat-remote-listener")

    async def _subscribe_raw(self, channel: str):
        future = asyncio.get_running_loop().create_future()
        self._confirmed[channel.encode()] = future
        await self._pubsub.subscribe(channel)
        if self._task is not None and not self._task.done():
            await asyncio.wait_for(future, timeout=5)
        else:
            # The reader is not running yet: read the confirmation here.
            while not future.done():
                message = await self._pubsub.get_message(timeout=5)
                if message is None:
                    raise TimeoutError("no subscription confirmation from Redis")
                self._dispatch(message)

    async def watch(self, conversation_id: str) -> None:
        """Returns once events of the conversation from other processes will
        be delivered (the subscription is confirmed)."""
        async with self._lock:
            await self._ensure_started()
            count = self._counts.get(conversation_id, 0)
            self._counts[conversation_id] = count + 1
            if count == 0:
                await self._subscribe_raw(events_channel(conversation_id))

    async def unwatch(self, conversation_id: str) -> None:
        async with self._lock:
            count = self._counts.get(conversation_id, 0) - 1
            if count > 0:
                self._counts[conversation_id] = count
                return
            self._counts.pop(conversation_id, None)
            if self._pubsub is not None:
                await self._pubsub.unsubscribe(events_channel(conversation_id))

    def _dispatch(self, message: dict):
        kind = message["type"]
        channel = message["channel"]
        if kind in (b"subscribe", "subscribe"):
            future = self._confirmed.pop(channel, None)
            if future is not None and not future.done():
                future.set_result(True)
            return
        if kind not in (b"message", "message"):
            return
        if channel == CONTROL_CHANNEL.encode():
            task = asyncio.create_task(self._on_control(json.loads(message["data"])))
            self._control_tasks.add(task)
            task.add_done_callback(self._control_tasks.discard)
            return
        conversation_id = channel.decode()[len(PREFIX) + 1 :].rsplit(":", 1)[0]
        origin, _, events = message["data"].partition(b"|")
        self._on_events(conversation_id, origin.decode(), events)

    async def _run(self):
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("chat pub/sub listener failed; reconnecting")
                await asyncio.sleep(0.5)
                try:
                    channels = [CONTROL_CHANNEL, *(events_channel(c) for c in self._counts)]
                    self._pubsub = get_redis().pubsub()
                    await self._pubsub.subscribe(*channels)
                except Exception:
                    logger.exception("chat pub/sub resubscribe failed")


def make_store() -> ChatStore:
    return RedisChatStore() if redis_configured() else MemoryChatStore()
