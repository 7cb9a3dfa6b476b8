"""Chat over HTTP: websocket tickets and ``POST /api/v1/chat`` (JSON, or SSE
with ``Accept: text/event-stream``)."""

import asyncio
import json

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.callers import Caller
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.services import ws_ticket_issue
from accounts.tenancy import tenant_for_request
from agenthub.api.serializers import StrictSerializer
from agenthub.api.views import AsyncAPIView
from agenthub.db import db
from agenthub.errors import ApplicationError
from agenthub.requestid import get_request_id
from chat.apis.streams import (
    NO_FORMAT_PARAMETER,
    SSE_DESCRIPTION,
    SSE_ERROR_DESCRIPTION,
    SSE_EVENT,
    AcceptHeaderNegotiation,
    EventStreamRenderer,
    event_stream_response,
    raise_for_turn_error,
    stream_events,
    wants_event_stream,
)
from chat.models import Channel, Message, MessageStatus
from chat.runtime.context import check_prompt_fits
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_open
from chat.services.turns import turn_start, validate_prompt
from integrations.llm.types import ChatMessage

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
    cost = serializers.CharField(
        required=False, help_text="What the turn's model calls cost, an exact decimal (billing's ledger)."
    )
    currency = serializers.CharField(required=False, help_text="ISO 4217 code of `cost`.")


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
