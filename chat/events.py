"""The chat protocol's event types (server → client).  Every event carries
``type``, ``seq`` and ``conversation_id``; turn events are numbered and kept
in the replay log, connection events (``conversation.ready``, ``pong``, frame
errors) carry the conversation's current sequence number and are not logged.
"""

import json

from tools.events import DRAFT_CREATED, DRAFT_UPDATED, TOOL_FINISHED, TOOL_STARTED

CONVERSATION_READY = "conversation.ready"
TURN_STARTED = "turn.started"
TOKEN = "token"  # noqa: S105  (an event name, not a secret)
TURN_FINISHED = "turn.finished"
ERROR = "error"
PONG = "pong"

__all__ = [
    "CONVERSATION_READY",
    "DRAFT_CREATED",
    "DRAFT_UPDATED",
    "ERROR",
    "PONG",
    "TOKEN",
    "TOOL_FINISHED",
    "TOOL_STARTED",
    "TURN_EVENTS",
    "TURN_FINISHED",
    "TURN_STARTED",
    "encode",
    "error_fields",
]

TURN_EVENTS = (TURN_STARTED, TOKEN, TOOL_STARTED, TOOL_FINISHED, DRAFT_CREATED, DRAFT_UPDATED, TURN_FINISHED, ERROR)


def encode(event_type: str, seq: int, conversation_id: str, **fields) -> str:
    return json.dumps(
        {"type": event_type, "seq": seq, "conversation_id": conversation_id, **fields},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def error_fields(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}
