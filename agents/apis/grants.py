"""An agent's tool grants: which tools of the catalog its chats may call
(applied when the agent is next published)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import tenant_for_request
from agents import selectors
from agents.apis.agents import AGENT_ID
from agents.models import Agent
from agents.serializers import AgentToolsSerializer, AgentToolsWriteSerializer
from agents.services.grants import agent_tools_set


class AgentToolsApi(APIView):
    """The tools an agent may call.  Grants belong to the working
    definition: they reach chats when the agent is next published."""

    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    http_method_names = ["get", "put", "head", "options"]

    def _agent(self, agent_id) -> Agent:
        return selectors.agent_get(organization=tenant_for_request(self.request).organization, agent_id=agent_id)

    @staticmethod
    def _response(agent: Agent, tools: list[dict]) -> Response:
        published = list(agent.live_version.tools or []) if agent.live_version_id else None
        data = {
            "agent": agent.pk,
            "tools": tools,
            "published": published,
            "unpublished": tools != published,
            "detail": "Grants apply to chats when the agent is next published.",
        }
        return Response(AgentToolsSerializer(data).data)

    @extend_schema(
        summary="An agent's tool grants, and those of its live version",
        responses=AgentToolsSerializer,
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    def get(self, request, id):
        agent = self._agent(id)
        return self._response(agent, selectors.agent_tool_grants(agent))

    @extend_schema(
        summary="Replace an agent's tool grants (they apply on the next publish)",
        description="Every tool must be in /api/v1/tools and appear once: unknown tools are a 400 "
        "(`unknown_tools`, naming them in `error.details.tools`), duplicates a 400 (`validation_error`). "
        "Nothing changes on an error.",
        request=AgentToolsWriteSerializer,
        responses={200: AgentToolsSerializer},
        parameters=[ORG_HEADER_PARAMETER, AGENT_ID],
    )
    def put(self, request, id):
        agent = self._agent(id)
        serializer = AgentToolsWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tools = agent_tools_set(
            agent=agent, grants=serializer.validated_data["tools"], user=tenant_for_request(request).user
        )
        return self._response(agent, tools)
