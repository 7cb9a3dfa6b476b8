"""Chat over HTTP: websocket tickets, ``POST /api/v1/chat`` (JSON, or SSE with
``Accept: text/event-stream``), and sessions (conversations) with their
history and resumable event streams."""

import asyncio
import json
from types import SimpleNamespace

from django.conf import settings
from django.db.models import Count
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.callers import Caller, row_visible_to
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.services import ws_ticket_issue
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.api.serializers import StrictSerializer
from agenthub.api.views import AsyncAPIView
from agenthub.db import db
from agenthub.errors import ApplicationError
from agenthub.requestid import get_request_id
from chat import events
from chat.models import Channel, Conversation, Message, MessageStatus
from chat.runtime.context import check_prompt_fits
from chat.runtime.hub import ReplayGap, get_hub
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_delete, conversation_open
from chat.services.turns import turn_start, validate_prompt
from integrations.llm.types import ChatMessage

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


# --- tickets ---------------------------------------------------------------------------------


class TicketRequestSerializer(StrictSerializer):
    agent = serializers.SlugField(required=False, max_length=64, help_text="Validate the agent now (optional).")
    channel = serializers.ChoiceField(choices=[Channel.WEBSOCKET, Channel.ADMIN], default=Channel.WEBSOCKET)


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid; it works once.")
    websocket_url = serializers.CharField(allow_null=True, help_text="Path to connect to, when an agent was given.")


class ChatTicketApi(AsyncAPIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    write_role = Role.MEMBER

    @extend_schema(
        request=TicketRequestSerializer, responses={201: TicketSerializer}, summary="A one-time websocket ticket"
    )
    async def post(self, request):
        serializer = TicketRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = tenant_for_request(request)
        channel = serializer.validated_data["channel"]
        if channel == Channel.ADMIN and not tenant.has_role(Role.OPERATOR):
            raise ApplicationError(
                "Only operators can open the admin test chat.", code="permission_denied", status_code=403
            )
        slug = serializer.validated_data.get("agent")
        if slug:
            await chat_agent_resolve(organization_id=str(tenant.organization.pk), slug=slug)
        ticket = await db(
            ws_ticket_issue,
            organization=tenant.organization,
            user=tenant.user,
            api_key=tenant.api_key,
            extra={"channel": channel},
        )
        return Response(
            {
                "ticket": ticket,
                "expires_in": settings.WS_TICKET_TTL_SECONDS,
                "websocket_url": f"/ws/v1/agents/{slug}/chat/?ticket={ticket}" if slug else None,
            },
            status=status.HTTP_201_CREATED,
        )


# --- chat ----------------------------------------------------------------------------------------


class ChatRequestSerializer(StrictSerializer):
    prompt = serializers.CharField(trim_whitespace=False, help_text="The user's message.")
    agent = serializers.SlugField(max_length=64, help_text="The agent's slug.")
    session_id = serializers.UUIDField(required=False, allow_null=True, help_text="Continue this conversation.")
    client_msg_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Your id for the message: a resend never runs twice.",
    )
    metadata = serializers.DictField(required=False, help_text="Stored with a new conversation.")

    def validate_metadata(self, value):
        if len(json.dumps(value)) > 4096:
            raise serializers.ValidationError("Metadata is limited to 4 KB of JSON.")
        return value


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class ChatMessageOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    role = serializers.CharField()
    content = serializers.CharField()


class ChatResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["success", "interrupted", "cancelled", "error"])
    session_id = serializers.UUIDField()
    agent = serializers.CharField()
    version = serializers.IntegerField()
    turn_id = serializers.CharField()
    messages = ChatMessageOutSerializer(many=True)
    tool_calls = serializers.ListField(child=serializers.DictField())
    drafts = serializers.ListField(child=serializers.DictField())
    usage = UsageSerializer()
    latency_ms = serializers.FloatField()
    ttft_ms = serializers.FloatField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)


def raise_for_turn_error(outcome, **details) -> None:
    """A failed turn as an HTTP error: 502 when the model failed, 429 when it
    rate limited, 504 when it timed out."""
    if not outcome.error:
        return
    kind = outcome.error["details"].get("kind")
    raise ApplicationError(
        outcome.error["message"],
        code=outcome.error["code"],
        status_code={"rate_limited": 429, "timeout": 504}.get(kind, 502),
        details={**outcome.error["details"], **details},
    )


class ChatApi(AsyncAPIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    write_role = Role.MEMBER
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    content_negotiation_class = AcceptHeaderNegotiation

    @extend_schema(
        request=ChatRequestSerializer,
        parameters=[NO_FORMAT_PARAMETER],
        description="Answers JSON once the turn is over; with `Accept: text/event-stream`, streams the turn's "
        "events as they happen.\n\n" + SSE_DESCRIPTION + "\n\n" + SSE_ERROR_DESCRIPTION,
        responses={
            (200, "application/json"): OpenApiResponse(ChatResponseSerializer, description="The answer."),
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT, description="With `Accept: text/event-stream`: the turn's events. " + SSE_DESCRIPTION
            ),
            409: OpenApiResponse(description="busy, duplicate_message or agent_unavailable"),
            502: OpenApiResponse(description="The model failed; the user's message is kept."),
        },
        summary="Send a message to an agent",
    )
    async def post(self, request):
        serializer = ChatRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = Caller.from_tenant(tenant_for_request(request))
        agent = await chat_agent_resolve(organization_id=caller.organization_id, slug=data["agent"])
        # Checked before a conversation is opened for it (turn_start checks again).
        check_prompt_fits(agent, [ChatMessage("user", validate_prompt(data["prompt"]))])
        session_id = str(data["session_id"]) if data.get("session_id") else None
        info = await conversation_open(
            caller=caller, agent=agent, conversation_id=session_id, channel=Channel.REST, metadata=data.get("metadata")
        )
        streaming = wants_event_stream(request)
        try:
            handle = await turn_start(
                caller=caller,
                agent=agent,
                conversation_id=info.id,
                content=data["prompt"],
                client_msg_id=data.get("client_msg_id"),
                channel=Channel.REST,
                request_id=get_request_id(),
                subscribe=streaming,
            )
        except ApplicationError as exc:
            if exc.code == "duplicate_message" and not streaming:
                return Response(await db(_stored_reply, info.id, exc.details, agent))
            raise
        if streaming:
            return event_stream_response(stream_events(handle.subscription, turn_id=handle.turn_id))
        outcome = await asyncio.shield(handle.task)
        body = {
            "status": "success" if outcome.status == MessageStatus.COMPLETE else outcome.status,
            "session_id": info.id,
            "agent": agent.slug,
            "version": agent.version_number,
            "turn_id": handle.turn_id,
            "messages": [{"id": handle.runner.assistant_message_id, "role": "assistant", "content": outcome.content}],
            "tool_calls": outcome.tool_calls,
            "drafts": outcome.drafts,
            "usage": outcome.usage(),
            "latency_ms": outcome.latency_ms,
            "ttft_ms": round(outcome.ttft_ms, 2) if outcome.ttft_ms is not None else None,
            "request_id": get_request_id(),
        }
        raise_for_turn_error(outcome, session_id=info.id, turn=body)
        return Response(body)


def _stored_reply(conversation_id: str, details: dict, agent) -> dict:
    """The answer to a message received before (an idempotent resend)."""
    reply_id = details.get("reply_message_id")
    reply = Message.objects.filter(pk=reply_id).first() if reply_id else None
    if reply is None:
        raise ApplicationError(
            "This message was already received and its answer is still being written; fetch the session history.",
            code="duplicate_message",
            status_code=409,
            details=details,
        )
    return {
        "status": "success" if reply.status == MessageStatus.COMPLETE else reply.status,
        "session_id": conversation_id,
        "agent": agent.slug,
        "version": agent.version_number,
        "turn_id": "",
        "messages": [{"id": str(reply.pk), "role": "assistant", "content": reply.content}],
        "tool_calls": [],
        "drafts": [],
        "usage": {
            "prompt_tokens": reply.tokens_in,
            "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_in + reply.tokens_out,
        },
        "latency_ms": reply.latency_ms or 0.0,
        "ttft_ms": reply.ttft_ms,
        "request_id": get_request_id(),
        "duplicate": True,
    }


# --- sessions ------------------------------------------------------------------------------------------


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(source="id", read_only=True)
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    message_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "session_id",
            "agent",
            "version",
            "channel",
            "status",
            "metadata",
            "last_seq",
            "message_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class HistoryMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "tool_calls",
            "tool_call_id",
            "status",
            "error",
            "client_msg_id",
            "model",
            "tokens_in",
            "tokens_out",
            "ttft_ms",
            "latency_ms",
            "created_at",
        ]
        read_only_fields = fields


class SessionViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Conversations.  Members see their own; operators and above see every
    conversation of the organization.  Deleted sessions are gone (404)."""

    tenant_model = Conversation
    serializer_class = SessionSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    write_role = Role.MEMBER
    filterset_fields = ["channel", "agent__slug"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-updated_at"]
    http_method_names = ["get", "delete", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        queryset = queryset.exclude(status="closed").select_related("agent", "version")
        tenant = self.tenant
        if not tenant.has_role(Role.OPERATOR):
            if tenant.api_key is not None:
                queryset = queryset.filter(api_key=tenant.api_key)
            else:
                queryset = queryset.filter(user=tenant.user)
        if self.action in ("list", "retrieve"):
            queryset = queryset.annotate(message_count=Count("messages"))
        return queryset

    @extend_schema(summary="Delete (close) a session", responses={204: None})
    def destroy(self, request, pk=None):
        conversation_delete(conversation_id=str(self.get_object().pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="A session's messages, oldest first", responses=HistoryMessageSerializer(many=True))
    def history(self, request, pk=None):
        conversation = self.get_object()
        messages = Message.objects.for_organization(conversation.organization_id).filter(conversation=conversation)
        messages = messages.order_by("created_at")
        page = self.paginate_queryset(messages)
        return self.get_paginated_response(HistoryMessageSerializer(page, many=True).data)


class SessionEventsApi(AsyncAPIView):
    """Resume a turn's event stream after a dropped connection: the events
    after ``Last-Event-ID`` (or ``?after=``) from the replay log, then the
    live stream until the running turn finishes."""

    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    renderer_classes = [EventStreamRenderer, JSONRenderer]
    content_negotiation_class = AcceptHeaderNegotiation

    @extend_schema(
        summary="Resume a session's event stream (SSE)",
        description="The events after `Last-Event-ID` (or `?after=`) from the replay log, then the live stream "
        "until the running turn finishes (at once when no turn is running).\n\n"
        + SSE_DESCRIPTION
        + "\n\nErrors are one `event: error` frame (the JSON error object as `data:`) unless you accept "
        "`application/json` only.",
        parameters=[
            NO_FORMAT_PARAMETER,
            OpenApiParameter("after", OpenApiTypes.INT, required=False, description="Last sequence number you have."),
            OpenApiParameter("Last-Event-ID", OpenApiTypes.INT, OpenApiParameter.HEADER, required=False),
        ],
        responses={(200, "text/event-stream"): OpenApiResponse(SSE_EVENT, description=SSE_DESCRIPTION)},
    )
    async def get(self, request, pk):
        raw = request.META.get("HTTP_LAST_EVENT_ID") or request.query_params.get("after") or "0"
        try:
            after = int(raw)
            if after < 0:
                raise ValueError
        except ValueError:
            raise ApplicationError(
                "after / Last-Event-ID must be a non-negative integer.", code="invalid_after"
            ) from None
        caller = Caller.from_tenant(tenant_for_request(request))
        await db(_require_visible_session, caller, str(pk))
        subscription = await get_hub().subscribe(str(pk))
        initial = await subscription.replay(after)
        return event_stream_response(stream_events(subscription, turn_id=None, initial=initial, end_when_idle=True))


def _require_visible_session(caller: Caller, conversation_id: str) -> None:
    from agenthub.errors import NotFoundError

    row = (
        Conversation.objects.filter(pk=conversation_id, organization_id=caller.organization_id)
        .exclude(status="closed")
        .values("user_id", "api_key_id", "visitor_id")
        .first()
    )
    if row is None or not row_visible_to(caller, **row):
        raise NotFoundError("No session with this id.", code="session_not_found")
