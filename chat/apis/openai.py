"""Every agent is an OpenAI-compatible model: ``POST /v1/chat/completions``
(``model`` = the agent's slug; streaming and not) and ``GET /v1/models``.

Authenticate with an API key (or a JWT) as the bearer token, so the official
``openai`` clients work unchanged.  The agent's system prompt, published
version and settings apply; the client's messages are the conversation (as
with OpenAI, the client keeps the history), and each call is recorded as a
conversation on the ``openai`` channel.
"""

import asyncio
import json
import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.callers import Caller
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import tenant_for_request
from agenthub.api.serializers import StrictSerializer
from agenthub.api.views import AsyncAPIView
from agenthub.db import db
from agenthub.errors import ApplicationError
from agenthub.requestid import get_request_id
from agents.models import Agent, AgentStatus
from chat import events
from chat.apis.streams import (
    NO_FORMAT_PARAMETER,
    REFUSAL_STATUS,
    SSE_ERROR_DESCRIPTION,
    AcceptHeaderNegotiation,
    EventStreamRenderer,
    event_stream_response,
    raise_for_turn_error,
    turn_error_as_http,
)
from chat.models import Channel, MessageStatus
from chat.services.agents import chat_agent_resolve
from chat.services.turns import turn_start_private
from integrations.llm.types import ChatMessage

ALLOWED_ROLES = ("system", "user", "assistant", "developer")


class OpenAIMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ALLOWED_ROLES)
    content = serializers.JSONField(help_text="A string, or a list of {type: text, text} parts.")
    name = serializers.CharField(required=False, max_length=64)

    def validate_content(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            texts = []
            for part in value:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise serializers.ValidationError("Only text content parts ({type: text, text}) are supported.")
                texts.append(part["text"])
            return "".join(texts)
        if value is None:
            return ""
        raise serializers.ValidationError("Content must be a string or a list of text parts.")


class ChatCompletionRequestSerializer(serializers.Serializer):
    """OpenAI's request; sampling fields are accepted and the agent's own
    settings apply."""

    model = serializers.CharField(max_length=64, help_text="The agent's slug.")
    messages = OpenAIMessageSerializer(
        many=True, allow_empty=False, help_text="At most CHAT_MAX_MESSAGES (500 by default) messages."
    )
    stream = serializers.BooleanField(default=False)
    stream_options = serializers.DictField(required=False)
    user = serializers.CharField(required=False, max_length=200)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, min_value=1)
    n = serializers.IntegerField(required=False, min_value=1, max_value=1)
    presence_penalty = serializers.FloatField(required=False)
    frequency_penalty = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False)
    stop = serializers.JSONField(required=False)
    metadata = serializers.DictField(required=False)


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class ModelListSerializer(StrictSerializer):
    object = serializers.CharField()
    data = ModelSerializer(many=True)


def _check_message_count(data) -> None:
    """Before the messages are validated one by one: their number is capped."""
    messages = data.get("messages") if isinstance(data, dict) else None
    limit = settings.CHAT_MAX_MESSAGES
    if isinstance(messages, list) and len(messages) > limit:
        raise ApplicationError(
            f"The request has {len(messages)} messages; at most {limit} are accepted. Send fewer messages.",
            code="too_many_messages",
            details={"param": "messages", "limit_messages": limit},
        )


def _plain_text(value) -> bool:
    """A string DRF's CharField keeps as it is (no surrounding whitespace,
    NUL or surrogate)."""
    return (
        isinstance(value, str)
        and value == value.strip()
        and "\x00" not in value
        and (value.isascii() or not any("\ud800" <= ch <= "\udfff" for ch in value))
    )


_COMMON_KEYS = frozenset({"model", "messages", "stream", "stream_options", "user", "temperature", "max_tokens"})


def _common_request(data) -> dict | None:
    """The serializer's validated data for the shape nearly every client
    sends (string contents, the usual fields, all valid), checked by hand:
    building the serializer's fields costs more than the rest of the
    request's parsing.  None for anything else, which the serializer then
    validates (and explains)."""
    if not isinstance(data, dict) or not data.keys() <= _COMMON_KEYS:
        return None
    model, messages, stream = data.get("model"), data.get("messages"), data.get("stream", False)
    if not _plain_text(model) or not 0 < len(model) <= 64 or type(stream) is not bool:
        return None
    if not isinstance(messages, list) or not messages:
        return None
    validated_messages = []
    for message in messages:
        if not isinstance(message, dict) or message.keys() != {"role", "content"}:
            return None
        if message["role"] not in ALLOWED_ROLES or not isinstance(message["content"], str):
            return None
        validated_messages.append({"role": message["role"], "content": message["content"]})
    validated = {"model": model, "messages": validated_messages, "stream": stream}
    if "stream_options" in data:
        if not isinstance(data["stream_options"], dict):
            return None
        validated["stream_options"] = data["stream_options"]
    if "user" in data:
        if not _plain_text(data["user"]) or not 0 < len(data["user"]) <= 200:
            return None
        validated["user"] = data["user"]
    if "temperature" in data:
        temperature = data["temperature"]
        if type(temperature) not in (int, float) or not 0 <= temperature <= 2:
            return None
        validated["temperature"] = float(temperature)
    if "max_tokens" in data:
        if type(data["max_tokens"]) is not int or data["max_tokens"] < 1:
            return None
        validated["max_tokens"] = data["max_tokens"]
    return validated


def _history(messages: list[dict]) -> list[ChatMessage]:
    history = [ChatMessage("system" if m["role"] == "developer" else m["role"], m["content"]) for m in messages]
    if history[-1].role != "user" or not history[-1].content.strip():
        raise ApplicationError(
            "The last message must be a non-empty user message.",
            code="validation_error",
            details={"fields": {"messages": ["The last message must be a non-empty user message."]}},
        )
    return history


# OpenAI's error ``type`` for each status (its clients read ``type`` and ``param``).
OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


class OpenAIErrorsMixin:
    """Errors keep the project's shape (``code``, ``message``, ``details``,
    ``request_id``) and gain OpenAI's ``type`` and ``param``, so the
    official clients show them as they would OpenAI's."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        error = response.data.get("error") if isinstance(response.data, dict) else None
        if isinstance(error, dict):
            status_code = response.status_code
            default = "server_error" if status_code >= 500 else "invalid_request_error"
            error.setdefault("type", OPENAI_ERROR_TYPES.get(status_code, default))
            details = error.get("details") if isinstance(error.get("details"), dict) else {}
            fields = details.get("fields") if isinstance(details.get("fields"), dict) else {}
            error.setdefault("param", details.get("param") or next(iter(fields), None))
        return response


class ChatCompletionsApi(OpenAIErrorsMixin, AsyncAPIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    write_role = Role.MEMBER
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    content_negotiation_class = AcceptHeaderNegotiation

    @extend_schema(
        request=ChatCompletionRequestSerializer,
        parameters=[NO_FORMAT_PARAMETER],
        description='As OpenAI\'s endpoint: a `chat.completion` object, or with `"stream": true` a '
        "`text/event-stream`.\n\n" + SSE_ERROR_DESCRIPTION,
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="A `chat.completion`."),
            (200, "text/event-stream"): OpenApiResponse(
                {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["message"], "description": "No `event:` line."},
                        "data": {
                            "type": "string",
                            "description": 'A `chat.completion.chunk` as JSON, `{"error": ...}`, or `[DONE]`.',
                        },
                    },
                },
                description='With `"stream": true`: one `data: {chat.completion.chunk}` line per frame (the '
                "role first, then content deltas, then a chunk with `finish_reason`, then with "
                "`stream_options.include_usage` a chunk with `usage` and no choices), ended by `data: [DONE]`. "
                'A failure during the stream is a frame `data: {"error": {message, type, code}}`; '
                "frames carry no `id:` or `event:` lines.",
            ),
            502: OpenApiResponse(description="The model failed."),
        },
        summary="OpenAI-compatible chat completions (model = agent slug)",
        tags=["openai"],
    )
    async def post(self, request):
        _check_message_count(request.data)
        data = _common_request(request.data)
        if data is None:
            serializer = ChatCompletionRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        history = _history(data["messages"])
        caller = Caller.from_tenant(tenant_for_request(request))
        agent = await chat_agent_resolve(organization_id=caller.organization_id, slug=data["model"])
        # The conversation is this call's own (the client keeps the history):
        # a private turn, written behind.
        handle = await turn_start_private(
            caller=caller,
            agent=agent,
            history=history,
            channel=Channel.OPENAI,
            metadata={"openai_user": data["user"]} if data.get("user") else {},
            request_id=get_request_id(),
        )
        completion_id = f"chatcmpl-{handle.turn_id}"
        created = int(time.time())
        if data["stream"]:
            # A refusal before the model is called (a budget) is an HTTP
            # status, as without streaming: look at the turn's first event
            # before the response starts.
            refusal = await _refusal_before_stream(handle.subscription, handle.turn_id)
            if refusal is not None:
                raise turn_error_as_http(refusal)
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            return event_stream_response(
                _chunks(handle.subscription, handle.turn_id, completion_id, created, agent.slug, include_usage)
            )
        outcome = await asyncio.shield(handle.task)
        raise_for_turn_error(outcome)
        # Without "stream", the answer is a JSON chat.completion whatever the
        # Accept header: the event-stream renderer only writes error frames.
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return Response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": agent.slug,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": outcome.content},
                        "finish_reason": "stop" if outcome.status == MessageStatus.COMPLETE else "length",
                        "logprobs": None,
                    }
                ],
                "usage": outcome.usage(),
            }
        )


async def _refusal_before_stream(subscription, turn_id) -> dict | None:
    """The turn's error when its first event after ``turn.started`` is a
    refusal (the subscription is then closed); otherwise None, with the
    events looked at put back for the stream."""
    seen = []
    try:
        while True:
            event = await subscription.next()
            seen.append(event)
            data = event.data
            if data.get("turn_id") != turn_id or data["type"] == events.TURN_STARTED:
                continue
            if data["type"] == events.ERROR and data["code"] in REFUSAL_STATUS:
                await subscription.close()
                return {"code": data["code"], "message": data["message"], "details": data.get("details") or {}}
            return None
    finally:
        subscription.put_back(seen)


def _chunk(completion_id, created, model, delta, finish_reason=None, usage=None) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body, separators=(',', ':'), ensure_ascii=False)}\n\n"


async def _chunks(subscription, turn_id, completion_id, created, model, include_usage):
    try:
        yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""})
        while True:
            # The next event, and with it every one already waiting: written
            # together (the first is never held back).
            batch = [await subscription.next(), *subscription.take_ready()]
            frames = []
            for event in batch:
                data = event.data
                if data.get("turn_id") != turn_id:
                    continue
                kind = data["type"]
                if kind == events.TOKEN:
                    frames.append(_chunk(completion_id, created, model, {"content": data["delta"]}))
                elif kind == events.ERROR:
                    error = {"message": data["message"], "type": data["code"], "code": data["code"]}
                    frames.append(f"data: {json.dumps({'error': error})}\n\n")
                    yield "".join(frames)
                    return
                elif kind == events.TURN_FINISHED:
                    reason = "stop" if data["status"] == MessageStatus.COMPLETE else "length"
                    frames.append(_chunk(completion_id, created, model, {}, finish_reason=reason))
                    if include_usage:
                        frames.append(_chunk(completion_id, created, model, None, usage=data["usage"]))
                    frames.append("data: [DONE]\n\n")
                    yield "".join(frames)
                    return
            if frames:
                yield "".join(frames)
    finally:
        await subscription.close()


def _models_for(organization_id: str) -> list[dict]:
    agents = (
        Agent.objects.for_organization(organization_id)
        .filter(status=AgentStatus.ACTIVE, live_version__isnull=False)
        .select_related("organization")
        .order_by("slug")
    )
    return [
        {"id": a.slug, "object": "model", "created": int(a.created_at.timestamp()), "owned_by": a.organization.slug}
        for a in agents
    ]


class ModelsApi(OpenAIErrorsMixin, AsyncAPIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER

    @extend_schema(responses=ModelListSerializer, summary="The agents you may chat with, as models", tags=["openai"])
    async def get(self, request):
        tenant = tenant_for_request(request)
        return Response({"object": "list", "data": await db(_models_for, str(tenant.organization.pk))})
