"""The chat websocket: ``/ws/v1/agents/<slug>/chat/``.

It authenticates (the ticket middleware has already run), validates frames,
calls the chat services and forwards the conversation's events.  Protocol
(JSON frames; see DESIGN.md):

client → server: ``message {content, client_msg_id}``, ``resume {after}``,
``cancel``, ``ping``, ``draft.decide {draft_id, decision}``.

server → client, each with ``seq`` and ``conversation_id``:
``conversation.ready``, ``turn.started``, ``token {delta}``, ``tool.started``,
``tool.finished``, ``draft.created``, ``draft.updated``, ``turn.finished``,
``error {code, message, details}``, ``pong``.

Connecting with ``?conversation=<id>`` reattaches to a conversation: the
server then holds its live events until the client sends ``resume {after:
N}`` (or a message), so that the events after N arrive exactly once and in
order.  ``?after=N`` does the same at connect.
"""

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.callers import Caller
from accounts.roles import Role, role_at_least
from agenthub import drain
from agenthub.db import db
from agenthub.errors import ApplicationError
from agenthub.jsonparse import InvalidJson, parse_json
from agenthub.ratelimit import LocalBucket
from agenthub.requestid import new_request_id
from chat import events, metrics
from chat.models import Channel
from chat.runtime.hub import ReplayGap, get_hub
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_open
from chat.services.turns import rate_limited_error, turn_cancel, turn_start, user_message_bucket
from tools.services.drafts import draft_decide_in_conversation, drafts_pending_payloads, operators_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_CONFLICT = 4409
MAX_FRAME_CHARS = 256 * 1024


def authentication_problem(scope) -> tuple[str, str] | None:
    """(code, message) when the ticket middleware authenticated nobody."""
    if scope.get("auth_error"):
        return scope["auth_error"]["code"], scope["auth_error"]["message"]
    user = scope.get("user")
    if user is None or not user.is_authenticated or scope.get("organization") is None:
        return "not_authenticated", "Connect with a ticket from POST /api/v1/chat/tickets: ?ticket=<ticket>."
    return None


class ChatConsumer(AsyncWebsocketConsumer):
    # Chat events come through the chat hub (chat.runtime.hub), not the
    # channel layer: no per-connection layer channel to listen on.
    channel_layer_alias = "__chat_hub_instead__"
    subscription = None
    forwarder: asyncio.Task | None = None
    conversation_id: str = ""
    counted = False
    frame_bucket: LocalBucket | None = None
    message_bucket: LocalBucket | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def connect(self):
        await self.accept()
        metrics.websocket_connections.inc()
        self.counted = True
        if drain.draining():
            return await self._refuse(
                "server_draining",
                "This server is restarting; connect again (another server will take the connection).",
                drain.CLOSE_SERVICE_RESTART,
            )
        drain.connection_opened(self)
        scope = self.scope
        problem = authentication_problem(scope)
        if problem is not None:
            return await self._refuse(*problem, CLOSE_UNAUTHORIZED)
        self.caller = Caller.from_scope(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        requested_conversation = (query.get("conversation") or [""])[0] or None
        after = _int_or_none((query.get("after") or [""])[0])
        extra = scope.get("ticket_extra") or {}
        self.channel = Channel.ADMIN if extra.get("channel") == Channel.ADMIN else Channel.WEBSOCKET
        try:
            self.agent = await chat_agent_resolve(
                organization_id=self.caller.organization_id, slug=scope["url_route"]["kwargs"]["slug"]
            )
            info = await conversation_open(
                caller=self.caller, agent=self.agent, conversation_id=requested_conversation, channel=self.channel
            )
        except ApplicationError as exc:
            close_code = {404: CLOSE_NOT_FOUND, 403: CLOSE_FORBIDDEN, 409: CLOSE_CONFLICT}.get(exc.status_code, 4400)
            return await self._refuse(exc.code, exc.message, close_code, exc.details)
        self.conversation_id = info.id
        hub = get_hub()
        self.subscription = await hub.subscribe(info.id)
        last_seq = max(info.last_seq, await hub.store.last_seq(info.id))
        self.held = not info.created and after is None
        await self._send_event(
            events.CONVERSATION_READY,
            last_seq,
            agent=self.agent.slug,
            version=self.agent.version_number,
            created=info.created,
            last_seq=last_seq,
            turn_running=await hub.store.current_turn(info.id) is not None,
        )
        if info.created:
            self.subscription.start_at(last_seq)
            self._start_forwarding()
        elif after is not None:
            await self._replay_then_stream(after)

    async def disconnect(self, code):
        drain.connection_closed(self)
        if self.counted:
            metrics.websocket_connections.dec()
            self.counted = False
        if self.forwarder is not None:
            self.forwarder.cancel()
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.close()

    # --- frames -------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if not self.conversation_id:
            return
        if not await self._frame_allowed():
            return
        if text_data is None:
            return await self._frame_error("invalid_frame", "Frames are JSON text, not binary.")
        if len(text_data) > MAX_FRAME_CHARS:
            return await self._frame_error("frame_too_large", f"Frames are limited to {MAX_FRAME_CHARS} characters.")
        try:
            frame = parse_json(text_data)
        except InvalidJson as exc:
            return await self._frame_error("invalid_json", f"The frame is not usable JSON. {exc}")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return await self._frame_error("invalid_frame", 'A frame is a JSON object with a string "type".')
        handler = {
            "message": self._on_message,
            "resume": self._on_resume,
            "cancel": self._on_cancel,
            "ping": self._on_ping,
            "draft.decide": self._on_draft_decide,
        }.get(frame["type"])
        if handler is None:
            return await self._frame_error(
                "unknown_frame_type",
                f"Unknown frame type '{frame['type'][:40]}'. Known: message, resume, cancel, ping, draft.decide.",
            )
        try:
            await handler(frame)
        except ApplicationError as exc:
            await self._frame_error(exc.code, exc.message, exc.details)
        except Exception:
            logger.exception("chat frame %s failed", frame["type"])
            await self._frame_error("internal_error", "The frame could not be processed; it has been logged.")

    async def _frame_allowed(self) -> bool:
        """Every frame, of any type, takes a token from this connection's
        bucket: a flood gets ``rate_limited`` answers, not work."""
        if self.frame_bucket is None:
            self.frame_bucket = LocalBucket(settings.WS_FRAMES_PER_SECOND, settings.WS_FRAME_BURST)
        wait = self.frame_bucket.take() if settings.WS_FRAMES_PER_SECOND > 0 else 0
        if wait:
            exc = rate_limited_error("Too many frames on this connection", wait, "connection_frames")
            await self._frame_error(exc.code, exc.message, exc.details)
            return False
        return True

    async def _on_message(self, frame):
        # This connection's message bucket here; the user's, across every
        # connection and process, in Redis as the turn starts.
        if settings.WS_MESSAGES_PER_MINUTE_PER_CONNECTION > 0:
            if self.message_bucket is None:
                self.message_bucket = LocalBucket(
                    settings.WS_MESSAGES_PER_MINUTE_PER_CONNECTION / 60, settings.WS_MESSAGE_BURST_PER_CONNECTION
                )
            wait = self.message_bucket.take()
            if wait:
                raise rate_limited_error("Too many messages on this connection", wait, "connection_messages")
        if self.held:
            # A message ends the wait for resume: stream from where the log is.
            self.subscription.start_at(await get_hub().store.last_seq(self.conversation_id))
            self._start_forwarding()
        agent = await chat_agent_resolve(organization_id=self.caller.organization_id, slug=self.agent.slug)
        await turn_start(
            caller=self.caller,
            agent=agent,
            conversation_id=self.conversation_id,
            content=frame.get("content"),
            client_msg_id=frame.get("client_msg_id"),
            channel=self.channel,
            request_id=new_request_id(),
            rate_buckets=tuple(b for b in (user_message_bucket(self.caller),) if b is not None),
        )

    async def _on_resume(self, frame):
        after = frame.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ApplicationError("resume.after must be a non-negative integer sequence number.", code="invalid_frame")
        if self.held:
            await self._replay_then_stream(after)
        else:
            self.subscription.request_replay(after)

    async def _on_cancel(self, frame):
        await turn_cancel(conversation_id=self.conversation_id)

    async def _on_ping(self, frame):
        await self._send_event(events.PONG, self.subscription.last_seq if self.subscription else 0)

    async def _on_draft_decide(self, frame):
        """Confirms or rejects a draft of this conversation, when the user's
        role allows (the service checks the approver role and the
        self-approval rule).  The outcome arrives as ``draft.updated``."""
        draft_id = frame.get("draft_id")
        decision = frame.get("decision")
        note = frame.get("note") or ""
        arguments = frame.get("arguments")
        if not isinstance(draft_id, str) or decision not in ("confirm", "reject"):
            raise ApplicationError(
                'draft.decide needs "draft_id" and "decision": "confirm" or "reject".', code="invalid_frame"
            )
        if not isinstance(note, str) or (arguments is not None and not isinstance(arguments, dict)):
            raise ApplicationError(
                '"note" must be a string and "arguments" an object of edited arguments.', code="invalid_frame"
            )
        await db(
            draft_decide_in_conversation,
            caller=self.caller,
            conversation_id=self.conversation_id,
            draft_id=draft_id,
            decision=decision,
            note=note,
            edited_arguments=arguments,
        )

    # --- outbound ------------------------------------------------------------------------

    async def _replay_then_stream(self, after: int):
        self.held = False
        for item in await self.subscription.replay(after):
            await self._send_item(item)
        self._start_forwarding()

    def _start_forwarding(self):
        self.held = False
        if self.forwarder is None:
            self.forwarder = asyncio.create_task(self._forward())

    async def _forward(self):
        try:
            while True:
                await self._send_item(await self.subscription.next())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("forwarding chat events failed")

    async def _send_item(self, item):
        if isinstance(item, ReplayGap):
            await self._send_event(
                events.ERROR,
                self.subscription.last_seq,
                **events.error_fields(
                    "replay_incomplete",
                    "Some events are no longer in the replay log; reload the history from "
                    f"/api/v1/sessions/{self.conversation_id}/history.",
                    {"after": item.after, "oldest_seq": item.oldest},
                ),
            )
        else:
            await self.send(text_data=item.text)

    async def _send_event(self, event_type: str, seq: int, **fields):
        await self.send(text_data=events.encode(event_type, seq, self.conversation_id or None, **fields))

    async def _frame_error(self, code: str, message: str, details: dict | None = None):
        seq = self.subscription.last_seq if self.subscription else 0
        await self._send_event(events.ERROR, seq, **events.error_fields(code, message, details))

    async def _refuse(self, code: str, message: str, close_code: int, details: dict | None = None):
        await self._send_event(events.ERROR, 0, **events.error_fields(code, message, details))
        await self.close(code=close_code)


def _int_or_none(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


class OperatorConsumer(AsyncWebsocketConsumer):
    """``/ws/v1/operator/``: the organization's operators (role operator or
    above) receive ``draft.created`` and ``draft.updated`` live, after a
    ``drafts.pending`` snapshot of what awaits a decision."""

    joined_group = ""
    frame_bucket: LocalBucket | None = None

    async def connect(self):
        await self.accept()
        scope = self.scope
        problem = authentication_problem(scope)
        if problem is not None:
            return await self._refuse(*problem, CLOSE_UNAUTHORIZED)
        if not role_at_least(scope["role"], Role.OPERATOR):
            return await self._refuse(
                "permission_denied", "The operator channel is for operators and above.", CLOSE_FORBIDDEN
            )
        organization_id = str(scope["organization"].pk)
        self.joined_group = operators_group(organization_id)
        await self.channel_layer.group_add(self.joined_group, self.channel_name)
        pending = await db(drafts_pending_payloads, organization_id)
        await self.send(text_data=json.dumps({"type": "drafts.pending", "drafts": pending}, default=str))

    async def disconnect(self, code):
        if self.joined_group:
            await self.channel_layer.group_discard(self.joined_group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if not self.joined_group:
            return
        if self.frame_bucket is None:
            self.frame_bucket = LocalBucket(settings.WS_FRAMES_PER_SECOND, settings.WS_FRAME_BURST)
        wait = self.frame_bucket.take() if settings.WS_FRAMES_PER_SECOND > 0 else 0
        if wait:
            exc = rate_limited_error("Too many frames on this connection", wait, "connection_frames")
            await self.send(
                text_data=json.dumps({"type": "error", **events.error_fields(exc.code, exc.message, exc.details)})
            )
            return
        try:
            frame = parse_json(text_data or "")
        except InvalidJson:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
            return
        await self.send(
            text_data=json.dumps(
                {
                    "type": "error",
                    **events.error_fields("unknown_frame_type", "The operator channel only accepts ping."),
                }
            )
        )

    async def operator_event(self, message):
        await self.send(text_data=json.dumps({"type": message["event"], "draft": message["draft"]}, default=str))

    async def _refuse(self, code: str, message: str, close_code: int):
        await self.send(text_data=json.dumps({"type": "error", **events.error_fields(code, message)}))
        await self.close(code=close_code)
