"""Reads for agents.  Every query over tenant-owned rows takes the
organization; callers never reach ``Agent.objects`` directly.

Agent selectors come first; conversation selectors follow below.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import Organization
from agenthub.errors import NotFoundError
from agents.definition import SNAPSHOT_FIELDS
from agents.models import Agent, AgentVersion
from integrations.llm import router
from integrations.llm.types import ModelInfo

# --- agents ------------------------------------------------------------------------------


def available_models() -> list[ModelInfo]:
    """The models operators may choose (name, provider, context window), in
    the configured order.  The one place agents learn about models."""
    return router.available_models()


def available_model_names() -> list[str]:
    return [m.name for m in available_models()]


def agent_list(*, organization: Organization) -> QuerySet[Agent]:
    return Agent.objects.for_organization(organization).select_related("live_version", "created_by", "updated_by")


def agent_get(*, organization: Organization, agent_id: uuid.UUID | str) -> Agent:
    try:
        return agent_list(organization=organization).get(pk=agent_id)
    except (Agent.DoesNotExist, ValidationError, ValueError, TypeError):  # malformed ids too
        raise NotFoundError("No agent with this id in your organization.", code="agent_not_found") from None


def agent_get_by_slug(*, organization: Organization, slug: str) -> Agent:
    agent = agent_list(organization=organization).filter(slug=slug).first()
    if agent is None:
        raise NotFoundError(f"No agent with the slug '{slug}' in your organization.", code="agent_not_found")
    return agent


def agent_version_list(*, agent: Agent) -> QuerySet[AgentVersion]:
    return (
        AgentVersion.objects.for_organization(agent.organization_id)
        .filter(agent=agent)
        .select_related("published_by")
        .order_by("-number")
    )


def agent_version_get(*, agent: Agent, number: int) -> AgentVersion:
    version = agent_version_list(agent=agent).filter(number=number).first()
    if version is None:
        raise NotFoundError(f"{agent.name} has no version {number}.", code="version_not_found")
    return version


def agent_snapshot(agent: Agent | AgentVersion) -> dict:
    """The fields a version snapshots, from an agent or a version."""
    return {name: getattr(agent, name) for name in SNAPSHOT_FIELDS}


def agent_tool_grants(agent: Agent) -> list[dict]:
    """The agent's tool grants as a version records them."""
    return [grant.as_grant() for grant in agent.tool_grants.order_by("tool")]


def agent_has_unpublished_changes(agent: Agent) -> bool:
    """True when the agent was never published or differs from its live version."""
    if agent.live_version is None:
        return True
    if agent_tool_grants(agent) != list(agent.live_version.tools or []):
        return True
    return agent_snapshot(agent) != agent_snapshot(agent.live_version)
