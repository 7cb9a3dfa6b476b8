"""Which agent a chat talks to: the live version of an active agent, as the
snapshot a turn runs with, cached for a moment per process."""

import time

from agenthub.db import db
from agenthub.errors import ConflictError, NotFoundError
from agents.definition import RUNTIME_VERSION_FIELDS
from agents.models import Agent, AgentStatus
from chat.runtime.context import AgentSnapshot

AGENT_CACHE_SECONDS = 2.0

_agent_cache: dict[tuple[str, str], tuple[float, AgentSnapshot]] = {}


def _agent_snapshot(organization_id: str, slug: str) -> AgentSnapshot:
    agent = (
        Agent.objects.select_related("live_version")
        .filter(organization_id=organization_id, slug=slug[:64])
        .only(
            "id",
            "slug",
            "name",
            "status",
            "organization_id",
            *(f"live_version__{name}" for name in RUNTIME_VERSION_FIELDS),
        )
        .first()
    )
    if agent is None:
        raise NotFoundError(f"No agent '{slug}' in this organization.", code="agent_not_found")
    if agent.status != AgentStatus.ACTIVE:
        raise ConflictError(
            f"The agent '{slug}' is {agent.status}; an operator must activate it.", code="agent_unavailable"
        )
    version = agent.live_version
    if version is None:
        raise ConflictError(f"The agent '{slug}' has no published version yet.", code="agent_unavailable")
    return AgentSnapshot(
        organization_id=str(agent.organization_id),
        agent_id=str(agent.pk),
        slug=agent.slug,
        name=agent.name,
        version_id=str(version.pk),
        version_number=version.number,
        system_prompt=version.system_prompt,
        model=version.model,
        fallback_models=tuple(version.fallback_models or ()),
        temperature=version.temperature,
        max_output_tokens=version.max_output_tokens,
        max_tool_rounds=version.max_tool_rounds,
        response_cache=version.response_cache,
        tools=tuple(version.tools or ()),
    )


async def chat_agent_resolve(*, organization_id: str, slug: str) -> AgentSnapshot:
    """The agent's live version, for a turn.  Cached for a moment per
    process, so publishing, rollback and disabling apply within seconds."""
    key = (organization_id, slug)
    now = time.monotonic()
    cached = _agent_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    snapshot = await db(_agent_snapshot, organization_id, slug)
    _agent_cache[key] = (now + AGENT_CACHE_SECONDS, snapshot)
    return snapshot


def agent_cache_clear() -> None:
    _agent_cache.clear()
