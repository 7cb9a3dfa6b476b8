"""Celery entry points of the tools app: load by id, call one service.

- ``tool_execute`` (queue ``tools``): a tool call of a running turn; reports
  ``tool.started`` and the result to the waiting turn through the channel
  layer.
- ``draft_execute`` (queue ``tools``): runs a confirmed draft, once.
- ``drafts_expire`` (beat, every minute): expires undecided drafts.
"""

import asyncio
import logging
import os
import threading

from celery import shared_task

from tools import queueing
from tools.services import drafts as draft_services
from tools.services import execution as tool_services

logger = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker process, in a thread, for channel-layer
    sends: one Redis connection reused by every task, not one per send."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="agenthub-channel-sender", daemon=True).start()
            _loop_pid = os.getpid()
        return _loop


def channel_send(channel: str, message: dict) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    asyncio.run_coroutine_threadsafe(layer.send(channel, message), _sender_loop()).result(timeout=10)


# The turn gets the result over the channel layer: no result backend write.
@shared_task(name=queueing.TOOL_EXECUTE, ignore_result=True)
def tool_execute(payload: dict) -> dict:
    reply_to = payload.get("reply_to")

    def notify(message: dict) -> None:
        if reply_to:
            try:
                channel_send(reply_to, message)
            except Exception:
                logger.exception("could not report tool %s back to its turn", payload.get("tool"))

    return tool_services.tool_execute_remote(payload, notify).as_dict()


# One delivery beyond the cap reaches the draft's own bookkeeping, which then
# marks the draft failed instead of leaving it executing forever.
@shared_task(name=queueing.DRAFT_EXECUTE, extra_deliveries=1)
def draft_execute(draft_id: str) -> str:
    return draft_services.draft_execute(draft_id=draft_id)


@shared_task(name=queueing.DRAFTS_EXPIRE)
def drafts_expire() -> int:
    expired = draft_services.drafts_expire()
    if expired:
        logger.info("expired %d drafts", expired)
    return expired
