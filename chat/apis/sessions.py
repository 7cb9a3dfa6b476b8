"""Sessions (conversations): the caller's list, history, deletion and the
resumable event stream."""

from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.callers import Caller, row_visible_to, rows_visible_to
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.api.views import AsyncAPIView
from agenthub.db import db
from agenthub.errors import ApplicationError
from chat.apis.streams import (
    NO_FORMAT_PARAMETER,
    SSE_DESCRIPTION,
    SSE_EVENT,
    AcceptHeaderNegotiation,
    EventStreamRenderer,
    event_stream_response,
    stream_events,
)
from chat.models import Conversation, Message
from chat.runtime.hub import get_hub
from chat.services.conversations import conversation_delete


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
        queryset = rows_visible_to(
            queryset,
            Caller.from_tenant(self.tenant),
            user_field="user",
            api_key_field="api_key",
            visitor_field="visitor_id",
        )
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
