"""The industry template catalog and what agents may be configured with.
Every list is paginated like the rest of the API."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from agenthub.errors import ApplicationError
from agents import catalog, selectors
from agents.models import Agent
from agents.serializers import (
    AgentConfigSerializer,
    IndustrySerializer,
    TemplateDetailSerializer,
    TemplatePreviewResultSerializer,
    TemplatePreviewSerializer,
    TemplateSerializer,
)
from agents.services import agents as agent_services
from agents.services import templates

TEMPLATE_ID = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="A template id.")


class CatalogMixin:
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.VIEWER  # previews write nothing


class TemplateViewSet(CatalogMixin, viewsets.GenericViewSet):
    """Industry templates: starting points for agents, rendered from answers
    into a system prompt."""

    lookup_field = "id"
    lookup_value_regex = "[^/]+"
    serializer_class = TemplateSerializer
    filter_backends = []  # the catalog is code, not a queryset: filtered by hand below

    @staticmethod
    def _template(template_id: str) -> catalog.Template:
        return templates.template_get_or_404(template_id)

    @extend_schema(
        summary="Agent templates",
        parameters=[
            ORG_HEADER_PARAMETER,
            OpenApiParameter("industry", OpenApiTypes.STR, enum=catalog.industry_ids(), description="An industry id."),
        ],
        responses=TemplateSerializer(many=True),
    )
    def list(self, request):
        industry = request.query_params.get("industry") or None
        if industry is not None and catalog.industry_get(industry) is None:
            raise ApplicationError(
                f"industry: '{industry[:64]}' is not an industry.",
                code="validation_error",
                details={"fields": {"industry": [f"Choose one of: {', '.join(catalog.industry_ids())}."]}},
            )
        page = self.paginate_queryset(catalog.template_list(industry=industry))
        return self.get_paginated_response(TemplateSerializer(page, many=True).data)

    @extend_schema(
        summary="One template, with the answers it asks for",
        parameters=[ORG_HEADER_PARAMETER, TEMPLATE_ID],
        responses=TemplateDetailSerializer,
    )
    def retrieve(self, request, id=None):
        return Response(TemplateDetailSerializer(self._template(id)).data)

    @extend_schema(
        summary="Render a template with answers into a system prompt (nothing is saved)",
        request=TemplatePreviewSerializer,
        responses=TemplatePreviewResultSerializer,
        parameters=[ORG_HEADER_PARAMETER, TEMPLATE_ID],
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, id=None):
        template = self._template(id)
        serializer = TemplatePreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        prompt = templates.template_preview(template_id=template.id, answers=serializer.validated_data["answers"])
        return Response(TemplatePreviewResultSerializer({"template": template.id, "prompt": prompt}).data)


class IndustryListApi(CatalogMixin, generics.ListAPIView):
    """The industries of the template catalog."""

    serializer_class = IndustrySerializer
    filter_backends = []

    def get_queryset(self):
        return catalog.industry_list()

    @extend_schema(summary="Industries", parameters=[ORG_HEADER_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AgentConfigApi(CatalogMixin, APIView):
    """The models, defaults and limits agents are configured with."""

    @extend_schema(
        summary="What agents may be configured with: models, defaults and limits",
        responses=AgentConfigSerializer,
        parameters=[ORG_HEADER_PARAMETER],
    )
    def get(self, request):
        def bounds(name):
            validators = Agent._meta.get_field(name).validators
            low = next(v.limit_value for v in validators if v.code == "min_value")
            high = next(v.limit_value for v in validators if v.code == "max_value")
            return {"min": low, "max": high}

        data = {
            "models": selectors.available_models(),
            "default_model": settings.AGENTHUB_DEFAULT_MODEL,
            "defaults": agent_services.field_defaults(),
            "limits": {
                "temperature": bounds("temperature"),
                "max_output_tokens": bounds("max_output_tokens"),
                "max_tool_rounds": bounds("max_tool_rounds"),
                "system_prompt_max_chars": agent_services.TEXT_LIMITS["system_prompt"],
                "description_max_chars": agent_services.TEXT_LIMITS["description"],
                "max_fallback_models": agent_services.MAX_FALLBACK_MODELS,
            },
            "chat_max_prompt_chars": settings.CHAT_MAX_PROMPT_CHARS,
        }
        return Response(AgentConfigSerializer(data).data)
