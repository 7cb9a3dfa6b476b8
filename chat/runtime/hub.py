"""The per-process event hub of the chat runtime.

A turn emits its events here.  The hub hands each event at once to the
subscribers in this process (websocket consumers, SSE streams, REST calls
waiting for the answer) and batches it, with whatever else is pending, into
one Redis pipeline that appends it to the conversation's replay log and
publishes it to the other processes.  Subscribers in other processes get it
through their own hub's pub/sub listener.  Every subscriber drops events it
has already delivered (by sequence number), so a client sees each event once
and in order, whichever way it arrived.
"""

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from collections import deque
from dataclasses import dataclass

from agenthub import loops
from chat.runtime.store import ChatStore, Event, RemoteListener, make_store

logger = logging.getLogger(__name__)

FLUSH_COALESCE_SECONDS = 0.005


@dataclass(frozen=True)
class ReplayGap:
    """Events after ``after`` that the replay log no longer holds."""

    after: int
    oldest: int | None


@dataclass(frozen=True)
class _ReplayRequest:
    after: int


class Subscription:
    """A subscriber's view of one conversation's events: live events as they
    are emitted, and on request the log's events after a sequence number,
    delivered once each and in order."""

    def __init__(self, hub: "ChatHub", conversation_id: str):
        self.hub = hub
        self.conversation_id = conversation_id
        self.last_seq = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self._ready: deque = deque()
        self.closed = False

    def _deliver(self, event: Event) -> None:
        self._queue.put_nowait(event)

    async def replay(self, after: int) -> list:
        """Before streaming starts: the log's events after ``after``, then the
        live stream continues after the last of them.  A :class:`ReplayGap`
        comes first when the log has lost some of them."""
        self.last_seq = after
        return await self._read_log(after)

    async def _read_log(self, after: int) -> list:
        # Events emitted here before this subscription existed may still be
        # on their way to the log: write them first, or the replay misses them.
        if not self.hub._idle.is_set():
            await self.hub.flush()
        events, oldest = await self.hub.store.read_events(self.conversation_id, after)
        items: list = []
        if oldest is not None and oldest > after + 1:
            items.append(ReplayGap(after, oldest))
        for event in events:
            if event.seq > self.last_seq:
                items.append(event)
                self.last_seq = event.seq
        return items

    def request_replay(self, after: int) -> None:
        """While streaming: fill in what this subscriber has not delivered."""
        self._queue.put_nowait(_ReplayRequest(after))

    def put_back(self, items: list) -> None:
        """Items taken with :meth:`next` to look ahead, delivered again first."""
        self._ready.extendleft(reversed(items))

    def start_at(self, seq: int) -> None:
        """Deliver only events after ``seq``."""
        self.last_seq = max(self.last_seq, seq)

    async def next(self):
        """The next event (or :class:`ReplayGap`) to deliver."""
        while True:
            if self._ready:
                return self._ready.popleft()
            item = await self._queue.get()
            if isinstance(item, _ReplayRequest):
                self._ready.extend(await self._read_log(max(item.after, self.last_seq)))
                continue
            if item.seq > self.last_seq:
                self.last_seq = item.seq
                return item

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.hub.unsubscribe(self)


class ChatHub:
    def __init__(self, store: ChatStore):
        self.store = store
        self.origin = uuid.uuid4().hex
        self._subscribers: dict[str, set[Subscription]] = {}
        self._pending: dict[str, list[Event]] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task | None = None
        self._urgent = False
        self._turns: dict[str, asyncio.Task] = {}
        self._runners: dict[str, object] = {}
        self._remote = RemoteListener(self._on_remote_events, self._on_control) if store.shared else None

    # --- publishing -------------------------------------------------------------

    def emit(self, conversation_id: str, event: Event) -> None:
        for subscription in self._subscribers.get(conversation_id, ()):
            subscription._deliver(event)
        self._pending.setdefault(conversation_id, []).append(event)
        self._idle.clear()
        self._wakeup.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="chat-hub-flusher")

    async def flush(self, timeout: float = 5.0) -> None:
        """Waits until every event emitted so far is in the replay log."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._pending or not self._idle.is_set():
            self._urgent = True
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_loop(), name="chat-hub-flusher")
            self._wakeup.set()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                logger.warning("chat events not yet written after %.1f s", timeout)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)

    async def _flush_loop(self) -> None:
        failures = 0
        while True:
            await self._wakeup.wait()
            if not self._urgent:
                # Gather what else is emitted in the next moment into the same
                # pipeline: subscribers here already have the events, the log
                # and the other processes get them a few milliseconds later
                # in far fewer round trips.
                await asyncio.sleep(FLUSH_COALESCE_SECONDS)
            self._wakeup.clear()
            self._urgent = False
            if not self._pending:
                self._idle.set()
                continue
            batch, self._pending = self._pending, {}
            try:
                await self.store.append_events(batch, self.origin)
                failures = 0
            except Exception:
                failures += 1
                logger.exception("could not write %d conversation(s) of chat events", len(batch))
                if failures < 20:
                    # Put the batch back in front, keeping each conversation's order.
                    for conversation_id, events in self._pending.items():
                        batch.setdefault(conversation_id, []).extend(events)
                    self._pending = batch
                    await asyncio.sleep(min(0.05 * failures, 1.0))
                    self._wakeup.set()
                    continue
                logger.error("dropping chat events after repeated failures; replay will miss them")
                failures = 0
            if not self._pending:
                self._idle.set()

    # --- subscribing ------------------------------------------------------------

    async def subscribe(self, conversation_id: str) -> Subscription:
        """Events emitted from now on, here or in another process."""
        subscription = Subscription(self, conversation_id)
        self._subscribers.setdefault(conversation_id, set()).add(subscription)
        if self._remote is not None:
            try:
                await self._remote.watch(conversation_id)
            except BaseException:
                self._subscribers[conversation_id].discard(subscription)
                raise
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.conversation_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.conversation_id]
        if self._remote is not None:
            with contextlib.suppress(Exception):
                await self._remote.unwatch(subscription.conversation_id)

    def _on_remote_events(self, conversation_id: str, origin: str, payload: bytes) -> None:
        if origin == self.origin:
            return  # delivered locally when emitted
        if conversation_id not in self._subscribers:
            return
        for seq, text in json.loads(payload):
            event = Event(seq, text)
            for subscription in self._subscribers.get(conversation_id, ()):
                subscription._deliver(event)

    # --- running turns -------------------------------------------------------------

    def register_turn(self, conversation_id: str, task: asyncio.Task, runner=None) -> None:
        self._turns[conversation_id] = task
        if runner is not None:
            self._runners[conversation_id] = runner

        def done(t):
            if self._turns.get(conversation_id) is t:
                self._turns.pop(conversation_id, None)
                self._runners.pop(conversation_id, None)

        task.add_done_callback(done)

    def runner_for(self, conversation_id: str):
        """The turn running here for the conversation, if any."""
        task = self._turns.get(conversation_id)
        return self._runners.get(conversation_id) if task is not None and not task.done() else None

    def running_turns(self) -> int:
        return len(self._turns)

    async def request_cancel(self, conversation_id: str) -> bool:
        """Cancels the conversation's turn, here or in whichever process runs it."""
        task = self._turns.get(conversation_id)
        if task is not None:
            if not task.cancelling():  # a turn is stopped once; it then saves and finishes
                task.cancel()
            return True
        await self.store.publish_control({"cancel": conversation_id, "origin": self.origin})
        return False

    async def _on_control(self, message: dict) -> None:
        if "emit" in message:
            # An event for a conversation whose turn runs in this process
            # (see chat.runtime.outbox): the turn numbers and sends it.
            runner = self.runner_for(message["emit"])
            if runner is not None:
                runner.emit(message["event"], **message.get("fields", {}))
            return
        conversation_id = message.get("cancel")
        if conversation_id and message.get("origin") != self.origin:
            task = self._turns.get(conversation_id)
            if task is not None and not task.cancelling():
                task.cancel()


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChatHub]" = weakref.WeakKeyDictionary()


def get_hub() -> ChatHub:
    """The hub of the running event loop (one per process in a server)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = ChatHub(make_store())
        _hubs[loop] = hub
        # Sync code in the server's threads posts chat events through this loop.
        loops.remember(loop)
    return hub


def running_turns_here() -> int:
    """Turns running in this process, on any of its event loops (for the drain)."""
    return sum(hub.running_turns() for hub in list(_hubs.values()))


class PrivateSubscription(Subscription):
    """The one subscriber of a private turn (see :class:`PrivateEvents`)."""

    def __init__(self, conversation_id: str):
        super().__init__(None, conversation_id)

    async def close(self) -> None:
        self.closed = True

    def take_ready(self) -> list:
        """The events already waiting (none is waited for): a reader that
        writes them together saves a write per event."""
        items = list(self._ready)
        self._ready.clear()
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event.seq > self.last_seq:
                self.last_seq = event.seq
                items.append(event)
        return items


class _NoLocks:
    """A private turn's conversation is new and its id not yet given out:
    no other turn can start on it, so there is no lock to take or keep."""

    async def refresh_turn(self, conversation_id, turn_id, ttl) -> None:
        return None

    async def release_turn(self, conversation_id, turn_id) -> None:
        return None


class PrivateEvents:
    """What a turn is handed in place of the hub when nobody but its caller
    can ever watch it: a call of the OpenAI-compatible API, whose
    conversation is created for that call and whose id is never given out.
    Its events go straight to the caller's subscription; nothing is logged
    for replay or published to other processes (no one could ask for them)."""

    def __init__(self, conversation_id: str):
        self.store = _NoLocks()
        self.subscription = PrivateSubscription(conversation_id)

    def emit(self, conversation_id: str, event: Event) -> None:
        self.subscription._deliver(event)

    async def flush(self, timeout: float = 5.0) -> None:
        return None
