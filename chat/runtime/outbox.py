"""Events that reach a conversation from outside a turn: a draft decided in
the admin, executed by a worker or expired by beat.

Turn events are numbered by the turn that emits them.  An event from outside
takes the conversation's turn lock for a moment, numbers itself after the
last event in the replay log and is appended and published like any other,
so every subscriber (on any process) sees it once, in order, and a client
that resumes gets it too.  While a turn runs, the turn holds the lock: the
event is handed to that turn (in this process directly, elsewhere through
the control channel) and the turn emits it in its own numbering.

Sync callers (services run by views, the admin, Celery) use
:func:`conversation_event_post_sync`; inside the server process it runs the
posting on the server's event loop, where the local subscribers are.
"""

import asyncio
import logging
import uuid

from agenthub.loops import run_on_server_loop
from chat import events
from chat.runtime.hub import get_hub
from chat.runtime.store import Event

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 0.5
LOCK_TTL_SECONDS = 10


async def conversation_event_post(
    conversation_id: str, event_type: str, fields: dict, db_last_seq: int = 0
) -> int | None:
    """Posts one event; returns its sequence number when it was written here
    (None when a running turn took it over)."""
    hub = get_hub()
    runner = hub.runner_for(conversation_id)
    if runner is not None:
        runner.emit(event_type, **fields)
        return None
    token = f"post-{uuid.uuid4().hex}"
    deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
    while not await hub.store.try_acquire_turn(conversation_id, token, LOCK_TTL_SECONDS):
        runner = hub.runner_for(conversation_id)
        if runner is not None:
            runner.emit(event_type, **fields)
            return None
        if asyncio.get_running_loop().time() >= deadline:
            # A turn runs in another process: it emits the event.
            await hub.store.publish_control(
                {"emit": conversation_id, "event": event_type, "fields": fields, "origin": hub.origin}
            )
            return None
        await asyncio.sleep(0.02)
    try:
        seq = max(await hub.store.last_seq(conversation_id), db_last_seq) + 1
        hub.emit(conversation_id, Event(seq, events.encode(event_type, seq, conversation_id, **fields)))
        await hub.flush()
        return seq
    finally:
        await hub.store.release_turn(conversation_id, token)


def conversation_event_post_sync(conversation_id: str, event_type: str, fields: dict) -> None:
    """From sync code: posts the event and keeps the conversation's last
    sequence number in the database up to date.  Failures are logged, never
    raised: the database already holds the truth the event announces."""
    from chat.models import Conversation

    try:
        db_last = Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True).first() or 0
        seq = run_on_server_loop(conversation_event_post, conversation_id, event_type, fields, db_last)
        if seq is not None:
            Conversation.objects.filter(pk=conversation_id, last_seq__lt=seq).update(last_seq=seq)
    except Exception:
        logger.exception("could not post %s to conversation %s", event_type, conversation_id)


async def _history_forget(conversation_id: str) -> None:
    await get_hub().store.drop_history(conversation_id)


def conversation_history_forget_sync(conversation_id: str) -> None:
    """Drops the cached history so that the next turn reads the database
    (after a message was added outside a turn)."""
    try:
        run_on_server_loop(_history_forget, conversation_id)
    except Exception:
        logger.exception("could not drop the cached history of %s", conversation_id)
