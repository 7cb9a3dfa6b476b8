"""Server-sent events for the chat APIs: content negotiation on ``Accept``,
frames, keep-alives and the streaming response, and how a failed turn
becomes an API error."""

import asyncio
import json
from types import SimpleNamespace

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from agenthub.errors import ApplicationError
from chat import events
from chat.runtime.hub import ReplayGap

SSE_KEEPALIVE_SECONDS = 15


class EventStreamRenderer(BaseRenderer):
    """``text/event-stream``: successful responses stream; an error before
    the stream starts is one ``error`` event (with the HTTP status)."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return f"event: error\ndata: {json.dumps(data)}\n\n".encode()


class AcceptHeaderNegotiation(DefaultContentNegotiation):
    """JSON or an event stream is chosen by the ``Accept`` header (and, for
    ``/v1/chat/completions``, by the body's ``stream``), never by ``?format=``:
    with the override, a JSON answer was rendered as an SSE ``error`` event."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


NO_FORMAT_PARAMETER = OpenApiParameter("format", exclude=True)

SSE_DESCRIPTION = (
    "A `text/event-stream` of the turn's events, one frame per event, separated by a blank line:\n\n"
    '```\nid: 7\nevent: token\ndata: {"type": "token", "seq": 7, "conversation_id": "...", '
    '"delta": "Hel"}\n\n```\n\n'
    "`id:` is the event's sequence number in the session's replay log (send it back as `Last-Event-ID`, or as "
    "`?after=`, to `GET /api/v1/sessions/{id}/events` to resume), `event:` its type (`conversation.ready`, "
    "`turn.started`, `token`, `tool.started`, `tool.finished`, `draft.created`, `draft.updated`, "
    "`turn.finished`, `error`) and `data:` the event as one line of JSON. Lines starting with `:` are "
    "keep-alive comments. An `error` event without `id:` (code `replay_incomplete`) says the replay log no "
    "longer holds what you missed: reload the history. The stream ends after `turn.finished`."
)
SSE_ERROR_DESCRIPTION = (
    "With `Accept: text/event-stream`, an error found before the stream starts is one frame "
    "`event: error` whose `data:` line is the JSON error object (see the `Error` schema), with the HTTP status."
)
# Open API 3.0/3.1 describe an event stream by the schema of one event: its
# `id:`, `event:` (absent means "message") and `data:` lines.
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's sequence number (`seq`)."},
        "event": {"type": "string", "description": "The event's type, as in its `data`."},
        "data": {"type": "string", "description": "The event as a JSON object (one line)."},
    },
}


def sse_frame(event_id: int | None, event_type: str, text: str) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event_type}\ndata: {text}\n\n"


def wants_event_stream(request) -> bool:
    return "text/event-stream" in request.META.get("HTTP_ACCEPT", "")


def event_stream_response(generator) -> StreamingHttpResponse:
    response = StreamingHttpResponse(generator, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def stream_events(subscription, *, turn_id: str | None, initial=(), end_when_idle: bool = False):
    """SSE frames for a subscription until ``turn.finished`` of ``turn_id``
    (or of any turn when ``turn_id`` is None)."""
    try:
        for item in initial:
            frame, finished = _frame_for(item, subscription, turn_id)
            yield frame
            if finished:
                return
        if end_when_idle and await subscription.hub.store.current_turn(subscription.conversation_id) is None:
            return
        while True:
            try:
                item = await asyncio.wait_for(subscription.next(), SSE_KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            frame, finished = _frame_for(item, subscription, turn_id)
            yield frame
            if finished:
                return
    finally:
        await subscription.close()


def _frame_for(item, subscription, turn_id):
    if isinstance(item, ReplayGap):
        text = events.encode(
            events.ERROR,
            subscription.last_seq,
            subscription.conversation_id,
            **events.error_fields(
                "replay_incomplete",
                "Some events are no longer in the replay log; reload the history.",
                {"after": item.after, "oldest_seq": item.oldest},
            ),
        )
        return sse_frame(None, events.ERROR, text), False
    data = item.data
    finished = data["type"] == events.TURN_FINISHED and (turn_id is None or data.get("turn_id") == turn_id)
    return sse_frame(item.seq, data["type"], item.text), finished


def raise_for_turn_error(outcome, **details) -> None:
    """A failed turn as an HTTP error: 402 when a budget refused the model
    call, 503 when budgets could not be checked or every deployment of the
    model has an open circuit, 502 when the model failed, 429 when it rate
    limited, 504 when it timed out."""
    if not outcome.error:
        return
    raise turn_error_as_http(outcome.error, **details)


# Turn errors raised before the model was called, with their own status.
REFUSAL_STATUS = {"budget_exceeded": 402, "billing_unavailable": 503}


def turn_error_as_http(error: dict, **details) -> ApplicationError:
    kind = error["details"].get("kind")
    if error["code"] == "capacity_exceeded":
        # A deployment's cap: this server cannot take it now (503); the
        # organization's own cap: it sends too much at once (429).
        status_code = 429 if error["details"].get("scope") == "organization" else 503
    else:
        status_code = REFUSAL_STATUS.get(error["code"]) or {
            "rate_limited": 429,
            "timeout": 504,
            "circuit_open": 503,
        }.get(kind, 502)
    exc = ApplicationError(
        error["message"], code=error["code"], status_code=status_code, details={**error["details"], **details}
    )
    if error["details"].get("retry_after_ms"):
        exc.retry_after = max(1, -(-int(error["details"]["retry_after_ms"]) // 1000))
    return exc
