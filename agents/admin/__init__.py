"""Admin for agents: definitions, versions, templates and tool grants."""

from agents.admin import agents, grants  # noqa: F401  (registers the admins)
from agents.admin.agents import AgentAdmin

__all__ = ["AgentAdmin"]
