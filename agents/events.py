"""The chat protocol's event types (server → client).  Every event carries
``type``, ``seq`` and ``conversation_id``; turn events are numbered and kept
in the replay log, connection events (``conversation.ready``, ``pong``, frame
errors) carry the conversation's current sequence number and are not logged.
"""

import json

CONVERSATION_READY = "conversation.ready"
TURN_STARTED = "turn.started"
TOKEN = "token"  # noqa: S105  (an event name, not a secret)
TOOL_STARTED = "tool.started"
TOOL_FINISHED = "tool.finished"
DRAFT_CREATED = "draft.created"
DRAFT_UPDATED = "draft.updated"
TURN_FINISHED = "turn.finished"
ERROR = "error"
PONG = "pong"

TURN_EVENTS = (TURN_STARTED, TOKEN, TOOL_STARTED, TOOL_FINISHED, DRAFT_CREATED, DRAFT_UPDATED, TURN_FINISHED, ERROR)


def encode(event_type: str, seq: int, conversation_id: str, **fields) -> str:
    return json.dumps(
        {"type": event_type, "seq": seq, "conversation_id": conversation_id, **fields},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def error_fields(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}
