"""Helpers for chat tests: a published, active agent; tickets; frames."""

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import ws_ticket_issue
from agenthub.asgi import application
from agents.models import Agent, AgentStatus, AgentTool, AgentVersion
from chat.services.agents import agent_cache_clear


def make_live_agent(
    organization, *, slug="helper", model="offline", system_prompt="You are helpful.", tools=(), **fields
):
    """A published, active agent; ``tools`` are grants: names or
    ``{"tool", "min_role", "requires_approval"}`` dicts."""
    agent = Agent.objects.create(
        organization=organization,
        name=slug.title(),
        slug=slug,
        system_prompt=system_prompt,
        model=model,
        status=AgentStatus.ACTIVE,
        **fields,
    )
    version = AgentVersion.objects.create(
        organization=organization,
        agent=agent,
        number=1,
        name=agent.name,
        system_prompt=agent.system_prompt,
        model=agent.model,
        fallback_models=agent.fallback_models,
        temperature=agent.temperature,
        max_output_tokens=agent.max_output_tokens,
        max_tool_rounds=agent.max_tool_rounds,
        response_cache=agent.response_cache,
        tools=[_grant(agent, tool) for tool in tools],
    )
    agent.live_version = version
    agent.save(update_fields=["live_version"])
    agent_cache_clear()
    return agent


def _grant(agent, tool) -> dict:
    grant = {"tool": tool, "min_role": None, "requires_approval": None} if isinstance(tool, str) else dict(tool)
    grant.setdefault("min_role", None)
    grant.setdefault("requires_approval", None)
    AgentTool.objects.create(
        organization=agent.organization,
        agent=agent,
        tool=grant["tool"],
        min_role=grant["min_role"] or "",
        requires_approval=grant["requires_approval"],
    )
    return grant


async def ticket_for(user, organization, **kwargs) -> str:
    return await database_sync_to_async(ws_ticket_issue)(user=user, organization=organization, **kwargs)


async def open_chat(slug: str, query: str) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(
        application, f"/ws/v1/agents/{slug}/chat/?{query}", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    return communicator, first


async def receive_until(communicator, event_type: str, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == event_type:
            return frames
