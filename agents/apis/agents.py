"""Agents API: agents and their versions, publishing, bulk actions and YAML
import/export.

Views parse input, call a service or selector and serialize.  Roles: viewers
(and members) read; operators create, edit, publish, deploy, roll back and
change status; admins delete.  Another organization's agent is a 404.
"""

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin
from agenthub.errors import ApplicationError
from agenthub.jsonparse import JSONParser
from agents import catalog, selectors
from agents.apis.yaml_http import YAML_MEDIA_TYPES, TextYAMLParser, XYAMLParser, YAMLRenderer, YAMLTextParser
from agents.definition import SPEC_FIELDS
from agents.models import Agent, AgentStatus
from agents.serializers import (
    AgentBulkResultSerializer,
    AgentBulkSerializer,
    AgentFromTemplateSerializer,
    AgentImportSerializer,
    AgentPublishSerializer,
    AgentRollbackSerializer,
    AgentSerializer,
    AgentStatusSerializer,
    AgentVersionSerializer,
    AgentWriteSerializer,
)
from agents.services import agents as agent_services
from agents.services import publishing, templates, yamldoc


class AgentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AgentStatus.choices)
    industry = django_filters.ChoiceFilter(choices=[(i.id, i.name) for i in catalog.industry_list()])
    model = django_filters.CharFilter(max_length=100)

    class Meta:
        model = Agent
        fields = ["status", "industry", "model"]


AGENT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The agent's id.")
_ERROR = {"$ref": "#/components/schemas/Error"}  # added by agenthub.api.schema
SLUG_TAKEN = OpenApiResponse(_ERROR, description="Another agent of the organization has this slug (slug_taken).")
_TOOL_GRANT_DOCUMENT = {
    "oneOf": [
        {"type": "string", "description": "A tool's name: granted with the tool's own rules."},
        {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {"type": "string"},
                "min_role": {"type": "string"},
                "requires_approval": {"type": "boolean"},
            },
        },
    ]
}
# The YAML document of ``agents.services.yamldoc.agent_export_data`` (schema only).
AGENT_DOCUMENT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"type": "string", "enum": ["agenthub/v1"]},
        "kind": {"type": "string", "enum": ["Agent"]},
        "metadata": {
            "type": "object",
            "required": ["name", "slug", "description", "industry"],
            "properties": {
                "name": {"type": "string"},
                "slug": {"type": "string"},
                "description": {"type": "string"},
                "industry": {"type": "string"},
            },
        },
        "spec": {
            "type": "object",
            "required": list(SPEC_FIELDS),
            "properties": {
                "system_prompt": {"type": "string"},
                "model": {"type": "string"},
                "fallback_models": {"type": "array", "items": {"type": "string"}},
                "temperature": {"type": "number"},
                "max_output_tokens": {"type": "integer"},
                "max_tool_rounds": {"type": "integer"},
                "response_cache": {"type": "string", "enum": ["off", "deterministic", "always"]},
                "tools": {"type": "array", "items": _TOOL_GRANT_DOCUMENT},
            },
        },
        "version": {
            "type": "object",
            "description": "Informational: the published version exported (absent for unpublished changes).",
            "required": ["number", "published_at", "note"],
            "properties": {
                "number": {"type": "integer"},
                "published_at": {"type": "string", "format": "date-time"},
                "note": {"type": "string"},
            },
        },
    },
}


@extend_schema_view(
    list=extend_schema(summary="Agents of the current organization", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One agent", parameters=[ORG_HEADER_PARAMETER, AGENT_ID]),
    create=extend_schema(
        summary="Create a draft agent",
        request=AgentWriteSerializer,
        responses={201: AgentSerializer, 409: SLUG_TAKEN},
        parameters=[ORG_HEADER_PARAMETER],
    ),
    partial_update=extend_schema(
        summary="Change an agent's definition (publish to make it live)",
        request=AgentWriteSerializer(partial=True),
        responses={200: AgentSerializer, 409: SLUG_TAKEN},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    ),
    destroy=extend_schema(
        summary="Delete an agent with its versions and conversations (admins)",
        responses={204: None},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    ),
)
class AgentViewSet(TenantScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Agents of the caller's organization: their definitions, published
    versions and status."""

    tenant_model = Agent
    serializer_class = AgentSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    action_roles = {
        "create": Role.OPERATOR,
        "partial_update": Role.OPERATOR,
        "destroy": Role.ADMIN,
        "publish": Role.OPERATOR,
        "rollback": Role.OPERATOR,
        "deploy": Role.OPERATOR,
        "set_status": Role.OPERATOR,
        "bulk": Role.OPERATOR,  # deleting in bulk needs admin: checked by the service
        "import_yaml": Role.OPERATOR,
        "from_template": Role.OPERATOR,
    }
    filterset_class = AgentFilter
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Agent.objects.none()
        return selectors.agent_list(organization=self.tenant.organization)

    def get_agent(self) -> Agent:
        """The agent named by the URL, in the caller's organization (no
        list filters apply)."""
        return selectors.agent_get(organization=self.tenant.organization, agent_id=self.kwargs["pk"])

    def _agent_response(self, agent: Agent, status_code: int = status.HTTP_200_OK) -> Response:
        agent = selectors.agent_get(organization=self.tenant.organization, agent_id=agent.pk)
        return Response(AgentSerializer(agent).data, status=status_code)

    def retrieve(self, request, pk=None):
        return Response(AgentSerializer(self.get_agent()).data)

    def create(self, request):
        serializer = AgentWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = agent_services.agent_create(
            organization=self.tenant.organization, user=self.tenant.user, **serializer.validated_data
        )
        return self._agent_response(agent, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        agent = self.get_agent()
        serializer = AgentWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        agent = agent_services.agent_update(agent=agent, user=self.tenant.user, data=serializer.validated_data)
        return self._agent_response(agent)

    def destroy(self, request, pk=None):
        agent_services.agent_delete(agent=self.get_agent())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Published versions of an agent, newest first",
        responses=AgentVersionSerializer(many=True),
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request, pk=None):
        agent = self.get_agent()
        context = {"live_version_id": agent.live_version_id}
        page = self.paginate_queryset(selectors.agent_version_list(agent=agent))
        return self.get_paginated_response(AgentVersionSerializer(page, many=True, context=context).data)

    @extend_schema(
        summary="Publish: snapshot the definition as a new version and make it live",
        request=AgentPublishSerializer,
        responses={200: AgentSerializer},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def publish(self, request, pk=None):
        agent = self.get_agent()
        serializer = AgentPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publishing.agent_publish(agent=agent, user=self.tenant.user, note=serializer.validated_data["note"])
        return self._agent_response(agent)

    @extend_schema(
        summary="Roll back: make an earlier version live (the definition is unchanged)",
        request=AgentRollbackSerializer,
        responses={200: AgentSerializer},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def rollback(self, request, pk=None):
        agent = self.get_agent()
        serializer = AgentRollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publishing.agent_rollback(
            agent=agent, user=self.tenant.user, version_number=serializer.validated_data["version"]
        )
        return self._agent_response(agent)

    @extend_schema(
        summary="Deploy: publish and activate",
        request=AgentPublishSerializer,
        responses={200: AgentSerializer},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def deploy(self, request, pk=None):
        agent = self.get_agent()
        serializer = AgentPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publishing.agent_deploy(agent=agent, user=self.tenant.user, note=serializer.validated_data["note"])
        return self._agent_response(agent)

    @extend_schema(
        summary="Change an agent's status (active needs a published version)",
        request=AgentStatusSerializer,
        responses={
            200: AgentSerializer,
            409: OpenApiResponse(_ERROR, description="Not published yet (agent_not_published)."),
        },
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    @action(detail=True, methods=["post"], url_path="status", filter_backends=[])
    def set_status(self, request, pk=None):
        agent = self.get_agent()
        serializer = AgentStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent_services.agent_set_status(agent=agent, user=self.tenant.user, status=serializer.validated_data["status"])
        return self._agent_response(agent)

    @extend_schema(
        summary="Enable, disable or delete several agents, all or nothing",
        description="Ids that are not agents of your organization are listed in `error.details.ids` (404) and "
        "nothing changes; enabling unpublished agents is a 409 listing them. Deleting needs the admin role.",
        request=AgentBulkSerializer,
        responses={
            200: AgentBulkResultSerializer,
            409: OpenApiResponse(_ERROR, description="Some agents are not published (agent_not_published)."),
        },
        parameters=[ORG_HEADER_PARAMETER],
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def bulk(self, request):
        serializer = AgentBulkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = agent_services.agent_bulk(
            organization=self.tenant.organization,
            user=self.tenant.user,
            actor_role=self.tenant.role,
            action=serializer.validated_data["action"],
            ids=serializer.validated_data["ids"],
        )
        return Response(
            AgentBulkResultSerializer({"action": result.action, "count": result.count, "ids": result.ids}).data
        )

    @extend_schema(
        summary="Export an agent as a YAML document",
        description="The working definition, or with `version` that published version. See the import endpoint "
        "for the format.",
        parameters=[
            ORG_HEADER_PARAMETER,
            AGENT_ID,
            OpenApiParameter("version", OpenApiTypes.INT, description="A version number to export instead."),
            OpenApiParameter("format", exclude=True),
        ],
        responses={
            (200, "application/yaml"): OpenApiResponse(
                AGENT_DOCUMENT,
                description="The agent as a YAML document (`Content-Type: application/yaml; charset=utf-8`, "
                "`Content-Disposition: attachment`), whatever the `Accept` header. Errors are JSON, or YAML "
                "with `Accept: application/yaml`.",
            )
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], renderer_classes=[JSONRenderer, YAMLRenderer])
    def export(self, request, pk=None):
        agent = self.get_agent()
        version = None
        raw = request.query_params.get("version")
        if raw not in (None, ""):
            if not raw.isdigit() or len(raw) > 9:
                raise ApplicationError(
                    "version: Must be a version number.",
                    code="validation_error",
                    details={"fields": {"version": ["Must be a version number."]}},
                )
            version = selectors.agent_version_get(agent=agent, number=int(raw))
        text = yamldoc.agent_export_yaml(agent=agent, version=version)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{agent.slug}.yaml"'
        return response

    @extend_schema(
        summary="Import an agent from a YAML document",
        description=(
            "Send the document as the body (`Content-Type: application/yaml` or `text/yaml`) or as JSON "
            '`{"yaml": "..."}`. Creates a draft agent (201); with `update=true`, changes the agent with the same '
            "slug (200). Errors name the field by its path in the document, e.g. `spec.temperature`.\n\n"
            "```yaml\n"
            "apiVersion: agenthub/v1\nkind: Agent\nmetadata: {name: Support, slug: support, description: '', "
            "industry: customer-support}\nspec: {system_prompt: 'You are ...', model: offline, fallback_models: [], "
            "temperature: 0.7, max_output_tokens: 1024, max_tool_rounds: 5,\n"
            "        tools: [calculator, {tool: send_email, min_role: operator, requires_approval: true}]}\n"
            "version: {number: 1, published_at: '2025-01-01T00:00:00+00:00', note: ''}  # informational\n"
            "```"
        ),
        request={
            "application/yaml": OpenApiTypes.STR,
            "text/yaml": OpenApiTypes.STR,
            "application/json": AgentImportSerializer,
        },
        parameters=[
            ORG_HEADER_PARAMETER,
            OpenApiParameter("update", OpenApiTypes.BOOL, description="Update the agent with the same slug."),
        ],
        responses={201: AgentSerializer, 200: AgentSerializer, 409: SLUG_TAKEN},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        filter_backends=[],
        parser_classes=[YAMLTextParser, TextYAMLParser, XYAMLParser, JSONParser],
    )
    def import_yaml(self, request):
        update = request.query_params.get("update", "").lower()
        if update not in ("", "true", "false", "1", "0"):
            raise ApplicationError(
                "update: Must be true or false.",
                code="validation_error",
                details={"fields": {"update": ["Must be true or false."]}},
            )
        data = request.data
        if isinstance(data, str):
            text = data
        elif request.content_type.split(";")[0].strip().lower() in YAML_MEDIA_TYPES:
            text = ""  # an empty body
        else:
            serializer = AgentImportSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            text = serializer.validated_data["yaml"]
        result = yamldoc.agent_import_yaml(
            organization=self.tenant.organization,
            user=self.tenant.user,
            text=text,
            update=update in ("true", "1"),
        )
        return self._agent_response(result.agent, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(
        summary="Create a draft agent from an industry template",
        request=AgentFromTemplateSerializer,
        responses={201: AgentSerializer, 409: SLUG_TAKEN},
        parameters=[ORG_HEADER_PARAMETER],
    )
    @action(detail=False, methods=["post"], url_path="from-template", filter_backends=[])
    def from_template(self, request):
        serializer = AgentFromTemplateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent = templates.agent_create_from_template(
            organization=self.tenant.organization,
            user=self.tenant.user,
            template_id=data["template"],
            name=data["name"],
            slug=data.get("slug"),
            model=data.get("model"),
            answers=data["answers"],
        )
        return self._agent_response(agent, status.HTTP_201_CREATED)
