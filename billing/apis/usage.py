"""The usage ledger and its summaries.

Admins and owners see every call of the organization; members (and member
API keys) see their own; viewers never chat and are refused (403)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_date
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.api.filters import DateTimeFilter
from billing import selectors
from billing.models import UsageRecord, UsageStatus
from billing.serializers import UsageRecordSerializer, UsageSummarySerializer

MAX_SUMMARY_DAYS = 3700


class UsageFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent_id", max_length=36, help_text="An agent id.")
    model = django_filters.CharFilter(max_length=100)
    user = django_filters.CharFilter(field_name="user_id", max_length=36, help_text="A user id.")
    api_key = django_filters.CharFilter(field_name="api_key_id", max_length=36, help_text="An API key id.")
    channel = django_filters.CharFilter(max_length=32)
    status = django_filters.ChoiceFilter(choices=UsageStatus.choices)
    estimated = django_filters.BooleanFilter()
    # "from" is a Python keyword: declared below.
    to = DateTimeFilter(field_name="occurred_at", lookup_expr="lt", help_text="Before this time (ISO 8601).")

    class Meta:
        model = UsageRecord
        fields = ["agent", "model", "user", "api_key", "channel", "status", "estimated", "to"]


UsageFilter.base_filters["from"] = DateTimeFilter(
    field_name="occurred_at", lookup_expr="gte", help_text="At or after this time (ISO 8601)."
)

USAGE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The ledger row's id.")


@extend_schema_view(
    list=extend_schema(summary="Model calls charged, newest first", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One model call", parameters=[ORG_HEADER_PARAMETER, USAGE_ID]),
)
class UsageViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The ledger: one row per model call, with the unit prices it was
    charged at frozen in it."""

    tenant_model = UsageRecord
    serializer_class = UsageRecordSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = UsageFilter
    ordering_fields = ["occurred_at", "cost"]
    ordering = ["-occurred_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return UsageRecord.objects.none()
        return selectors.usage_list_for(self.tenant)


class SummaryQuery(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=[(g, g) for g in selectors.GROUPS], default="day")
    agent = serializers.CharField(max_length=36, required=False)
    model = serializers.CharField(max_length=100, required=False)
    user = serializers.CharField(max_length=36, required=False)
    api_key = serializers.CharField(max_length=36, required=False)
    channel = serializers.CharField(max_length=32, required=False)

    def validate(self, attrs):
        raw = self.initial_data
        for name in ("from", "to"):
            value = raw.get(name)
            if value in (None, ""):
                attrs[name] = None
                continue
            try:
                parsed = parse_date(str(value)[:10]) if len(str(value)) >= 10 else None
            except (ValueError, DjangoValidationError):
                parsed = None
            if parsed is None:
                raise serializers.ValidationError({name: ["Give a day as YYYY-MM-DD (or an ISO 8601 time)."]})
            attrs[name] = parsed
        if attrs["from"] and attrs["to"]:
            if attrs["from"] > attrs["to"]:
                raise serializers.ValidationError({"from": ["from is after to."]})
            if (attrs["to"] - attrs["from"]).days > MAX_SUMMARY_DAYS:
                raise serializers.ValidationError({"from": [f"Ask for at most {MAX_SUMMARY_DAYS} days at once."]})
        return attrs


class UsageSummaryApi(APIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER

    @extend_schema(
        summary="Tokens and cost summed by day, agent, model, user, API key or channel",
        parameters=[
            ORG_HEADER_PARAMETER,
            OpenApiParameter("group_by", str, enum=list(selectors.GROUPS), description="Default: day."),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive, UTC)."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive, UTC)."),
            *(OpenApiParameter(name, str) for name in ("agent", "model", "user", "api_key", "channel")),
        ],
        responses=UsageSummarySerializer,
    )
    def get(self, request):
        query = SummaryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = {k: data[k] for k in ("agent", "model", "user", "api_key", "channel") if data.get(k)}
        summary = selectors.usage_summary(
            tenant=tenant_for_request(request),
            group_by=data["group_by"],
            start=data["from"],
            end=data["to"],
            filters=filters,
        )
        return Response(UsageSummarySerializer(summary).data)
