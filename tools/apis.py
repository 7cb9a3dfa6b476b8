"""Tools API: the tool catalog, drafts (confirm and reject) and the tool
invocation log.  (An agent's grants are the agents app's: agents/apis/grants.py.)

Views parse input, call a service or selector and serialize.  Roles:

- the catalog: viewers and above read;
- drafts and tool invocations: operators and above see every one of the
  organization; members see those of their own chats (their user, or the
  API key they call with); viewers never chat, so they have none and are
  refused (403) rather than shown a list that is always empty.  Deciding a
  draft needs the draft's approver role (the service checks it, and
  self-approval when the tool forbids it).

Another organization's draft or invocation is a 404, and so is a
draft or invocation a member cannot see.
"""

import django_filters
from django.db.models.functions import Left, Length
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.callers import Caller
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.api.filters import DateTimeFilter
from tools import selectors
from tools.models import Draft, DraftStatus, InvocationStatus, ToolExecution, ToolInvocation
from tools.serializers import (
    LIST_RESULT_CHARS,
    DraftConfirmSerializer,
    DraftRejectSerializer,
    DraftSerializer,
    ToolInvocationSerializer,
    ToolSerializer,
)
from tools.services import drafts as draft_services
from tools.services.catalog import tools_for_organization

_ERROR = {"$ref": "#/components/schemas/Error"}  # added by agenthub.api.schema


def _with_result_preview(queryset):
    """Lists carry the first characters of the result and its length, not
    the whole text."""
    return queryset.defer("result").annotate(
        result_preview=Left("result", LIST_RESULT_CHARS), result_chars=Length("result")
    )


# --- the catalog -------------------------------------------------------------------------------


class ToolCatalogApi(generics.ListAPIView):
    """The tools the organization's agents may be granted: the built-in
    tools and the organization's enabled HTTP tools, by name."""

    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    serializer_class = ToolSerializer
    filter_backends = []

    def get_queryset(self):
        tools = tools_for_organization(str(tenant_for_request(self.request).organization.pk))
        return [tools[name].describe() for name in sorted(tools)]

    @extend_schema(summary="Tools agents may be granted", parameters=[ORG_HEADER_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- drafts ----------------------------------------------------------------------------------------


class DraftFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DraftStatus.choices)
    tool = django_filters.CharFilter(max_length=64)
    agent = django_filters.UUIDFilter(help_text="An agent id.")
    conversation = django_filters.UUIDFilter(help_text="A conversation (session) id.")

    class Meta:
        model = Draft
        fields = ["status", "tool", "agent", "conversation"]


DRAFT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The draft's id.")
NOT_PENDING = OpenApiResponse(
    _ERROR,
    description="The draft is no longer pending (draft_not_pending; `error.details.status` says what it is, "
    "`expired` when it was not decided in time).",
)
NOT_ALLOWED = OpenApiResponse(
    _ERROR,
    description="Your role is below the draft's approver role (draft_forbidden), or you asked for the draft and "
    "the tool needs someone else to decide it (self_approval_forbidden).",
)


@extend_schema_view(
    list=extend_schema(summary="Drafts awaiting (or past) a decision, newest first", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One draft", parameters=[ORG_HEADER_PARAMETER, DRAFT_ID]),
)
class DraftViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Actions agents proposed that a person confirms or rejects.

    Operators and above see every draft of the organization; members see the
    drafts of their own chats; viewers are refused (403).  Confirming runs
    the action (on a worker); the response is the draft as the decision left
    it."""

    tenant_model = Draft
    serializer_class = DraftSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    write_role = Role.MEMBER
    action_roles = {"confirm": Role.MEMBER, "reject": Role.MEMBER}  # and the draft's approver role: the service
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = DraftFilter
    ordering_fields = ["created_at", "expires_at"]
    ordering = ["-created_at"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Draft.objects.none()
        queryset = selectors.draft_list_for(caller=Caller.from_tenant(self.tenant))
        return _with_result_preview(queryset) if self.action == "list" else queryset

    @property
    def caller(self) -> Caller:
        return Caller.from_tenant(self.tenant)

    @extend_schema(
        summary="Confirm a pending draft (optionally with edited arguments); its action runs on a worker",
        request=DraftConfirmSerializer,
        responses={200: DraftSerializer, 403: NOT_ALLOWED, 409: NOT_PENDING},
        parameters=[ORG_HEADER_PARAMETER, DRAFT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def confirm(self, request, pk=None):
        draft = self.get_object()
        serializer = DraftConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = draft_services.draft_confirm(
            caller=self.caller,
            draft_id=draft.pk,
            edited_arguments=serializer.validated_data["arguments"],
            note=serializer.validated_data["note"],
        )
        return Response(DraftSerializer(draft).data)

    @extend_schema(
        summary="Reject a pending draft; its action never runs",
        request=DraftRejectSerializer,
        responses={200: DraftSerializer, 403: NOT_ALLOWED, 409: NOT_PENDING},
        parameters=[ORG_HEADER_PARAMETER, DRAFT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def reject(self, request, pk=None):
        draft = self.get_object()
        serializer = DraftRejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = draft_services.draft_reject(
            caller=self.caller, draft_id=draft.pk, note=serializer.validated_data["note"]
        )
        return Response(DraftSerializer(draft).data)


# --- tool invocations ---------------------------------------------------------------------------------


class ToolInvocationFilter(django_filters.FilterSet):
    tool = django_filters.CharFilter(max_length=64)
    status = django_filters.ChoiceFilter(choices=InvocationStatus.choices)
    execution = django_filters.ChoiceFilter(choices=ToolExecution.choices)
    agent = django_filters.UUIDFilter(help_text="An agent id.")
    conversation = django_filters.UUIDFilter(help_text="A conversation (session) id.")
    draft = django_filters.UUIDFilter(help_text="A draft id.")
    created_after = DateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="At or after this time (ISO 8601)."
    )
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="Before this time (ISO 8601).")

    class Meta:
        model = ToolInvocation
        fields = ["tool", "status", "execution", "agent", "conversation", "draft", "created_after", "created_before"]


INVOCATION_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invocation's id.")


@extend_schema_view(
    list=extend_schema(
        summary="Tool calls, newest first (results cut to their first 500 characters)",
        parameters=[ORG_HEADER_PARAMETER],
    ),
    retrieve=extend_schema(
        summary="One tool call, with its whole result", parameters=[ORG_HEADER_PARAMETER, INVOCATION_ID]
    ),
)
class ToolInvocationViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The tool call log: what was asked, by whom, and what came of it.

    Operators and above see every call of the organization; members the
    calls of their own chats; viewers are refused (403)."""

    tenant_model = ToolInvocation
    serializer_class = ToolInvocationSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ToolInvocationFilter
    ordering_fields = ["created_at", "duration_ms"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ToolInvocation.objects.none()
        queryset = selectors.tool_invocation_list_for(caller=Caller.from_tenant(self.tenant))
        return _with_result_preview(queryset) if self.action == "list" else queryset
