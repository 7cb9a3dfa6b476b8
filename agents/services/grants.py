"""Tool grants: which tools an agent may call, with optional per-agent
overrides of the tool's minimum role and approval rule.

Grants are part of the agent's working definition: changing them does not
change a running agent.  :func:`agents.services.publishing.agent_publish`
copies them into the new version, and chats run against that version.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.roles import Role
from agenthub.errors import ApplicationError
from agents import selectors
from agents.models import Agent, AgentTool
from agents.services.agents import agent_lock
from tools.services.catalog import tools_for_organization

GRANTS_MAX = 100


def _field_error(message: str, *, code: str = "validation_error", **details: Any) -> ApplicationError:
    return ApplicationError(f"tools: {message}", code=code, details={"fields": {"tools": [message]}, **details})


def _normalize(grant: Mapping[str, Any]) -> dict:
    """A grant as stored: ``min_role`` "" and ``requires_approval`` None mean
    "the tool's own rule"."""
    min_role = grant.get("min_role") or ""
    requires_approval = grant.get("requires_approval")
    if min_role and min_role not in Role.values:
        raise _field_error(f"'{min_role}' is not a role. Choose one of: {', '.join(Role.values)}.")
    if requires_approval is not None and not isinstance(requires_approval, bool):
        raise _field_error("requires_approval must be true, false or null.")
    return {"tool": str(grant["tool"]), "min_role": min_role, "requires_approval": requires_approval}


def agent_tools_validate(*, organization_id: str, grants: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The grants, normalized, or an error naming the duplicated or unknown
    tools.  Known tools are the organization's catalog (built-ins and
    enabled HTTP tools)."""
    normalized = [_normalize(grant) for grant in grants]
    if len(normalized) > GRANTS_MAX:
        raise _field_error(f"An agent can be granted at most {GRANTS_MAX} tools.")
    names = [grant["tool"] for grant in normalized]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise _field_error(
            f"Each tool can be granted once; granted more than once: {', '.join(duplicates)}.",
            tools=duplicates,
        )
    catalog = tools_for_organization(organization_id) if names else {}
    unknown = [name for name in names if name not in catalog]
    if unknown:
        raise _field_error(
            f"Unknown tools: {', '.join(unknown)}. Choose tools from /api/v1/tools (disabled HTTP tools "
            "cannot be granted).",
            code="unknown_tools",
            tools=unknown,
        )
    return normalized


@transaction.atomic
def agent_tools_set(*, agent: Agent, grants: Iterable[Mapping[str, Any]], user: User | None) -> list[dict]:
    """Replaces the agent's tool grants with ``grants`` (all or nothing) and
    returns them as a version would record them.  They apply to chats when
    the agent is next published.  Unchanged grants keep their rows."""
    locked = agent_lock(agent)
    wanted = {
        grant["tool"]: grant
        for grant in agent_tools_validate(organization_id=str(locked.organization_id), grants=grants)
    }
    existing = {row.tool: row for row in AgentTool.objects.filter(agent=locked)}

    removed = [row.pk for name, row in existing.items() if name not in wanted]
    if removed:
        AgentTool.objects.filter(pk__in=removed).delete()
    changed = []
    for name, grant in wanted.items():
        row = existing.get(name)
        if row is None:
            continue
        if (row.min_role, row.requires_approval) != (grant["min_role"], grant["requires_approval"]):
            row.min_role, row.requires_approval = grant["min_role"], grant["requires_approval"]
            changed.append(row)
    if changed:
        AgentTool.objects.bulk_update(changed, ["min_role", "requires_approval"])
    added = [
        AgentTool(organization_id=locked.organization_id, agent=locked, **grant)
        for name, grant in wanted.items()
        if name not in existing
    ]
    if added:
        AgentTool.objects.bulk_create(added)

    if removed or changed or added:
        # Grants are part of the working definition: record the editor.
        locked.updated_by = user
        locked.save(update_fields=["updated_by", "updated_at"])
        agent.updated_by_id, agent.updated_at = locked.updated_by_id, locked.updated_at
    return selectors.agent_tool_grants(locked)
