"""Publishing: immutable versions, the live version, rollback and deploy.

An agent's fields are its working definition.  :func:`agent_publish`
snapshots them into a new :class:`~agents.models.AgentVersion` (numbered
1, 2, 3... per agent) and makes it the live version, the one chats run
against.  :func:`agent_rollback` points the live version at an earlier
version without touching the working definition, and :func:`agent_deploy`
publishes and activates in one step.

Versions are never changed or deleted (``AgentVersion.save`` refuses
updates).  Publishing locks the agent's row, so concurrent publishes of one
agent get distinct, consecutive numbers.
"""

from django.db import transaction
from django.db.models import Max

from accounts.models import User
from agenthub.errors import ApplicationError
from agents import selectors
from agents.models import Agent, AgentStatus, AgentVersion
from agents.services.agents import agent_lock, agent_set_status
from tools.services.catalog import tools_for_organization

NOTE_MAX = 500


def _sync(agent: Agent, locked: Agent) -> None:
    """Copies what a service changed on the locked row to the caller's instance."""
    agent.live_version = locked.live_version
    agent.status = locked.status
    agent.updated_by_id = locked.updated_by_id
    agent.updated_at = locked.updated_at


@transaction.atomic
def agent_publish(*, agent: Agent, user: User | None, note: str = "") -> AgentVersion:
    """Snapshots the agent's current definition as version max+1 and makes it
    live.  The snapshot is taken from the locked row, not from ``agent``,
    so it is exactly what is stored."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ApplicationError(
            f"note: Ensure this field has no more than {NOTE_MAX} characters.",
            code="validation_error",
            details={"fields": {"note": [f"Ensure this field has no more than {NOTE_MAX} characters."]}},
        )
    locked = agent_lock(agent)
    models = selectors.available_model_names()
    unavailable = [m for m in [locked.model, *locked.fallback_models] if m not in models]
    if unavailable:
        raise ApplicationError(
            f"{locked.name} uses models that are no longer available ({', '.join(unavailable)}); "
            "choose available models before publishing.",
            code="model_unavailable",
            details={"models": unavailable},
        )
    grants = selectors.agent_tool_grants(locked)
    if grants:
        catalog = tools_for_organization(str(locked.organization_id))
        unknown = [grant["tool"] for grant in grants if grant["tool"] not in catalog]
        if unknown:
            raise ApplicationError(
                f"{locked.name} is granted tools that do not exist or are disabled ({', '.join(unknown)}); "
                "remove the grants or fix the tools before publishing.",
                code="unknown_tools",
                details={"tools": unknown},
            )
    latest = AgentVersion.objects.filter(agent=locked).aggregate(n=Max("number"))["n"] or 0
    version = AgentVersion.objects.create(
        organization_id=locked.organization_id,
        agent=locked,
        number=latest + 1,
        tools=grants,
        note=note,
        published_by=user,
        **selectors.agent_snapshot(locked),
    )
    locked.live_version = version
    locked.save(update_fields=["live_version"])
    _sync(agent, locked)
    return version


@transaction.atomic
def agent_rollback(*, agent: Agent, user: User | None, version_number: int) -> AgentVersion:
    """Makes an earlier (or later) version of the agent live again.  The
    working definition is unchanged; publish to make it live."""
    locked = agent_lock(agent)
    version = selectors.agent_version_get(agent=locked, number=version_number)
    if locked.live_version_id != version.pk:
        locked.live_version = version
        locked.save(update_fields=["live_version"])
    _sync(agent, locked)
    return version


@transaction.atomic
def agent_deploy(*, agent: Agent, user: User | None, note: str = "") -> AgentVersion:
    """Publishes the agent and makes it active."""
    version = agent_publish(agent=agent, user=user, note=note)
    if agent.status != AgentStatus.ACTIVE:
        agent_set_status(agent=agent, user=user, status=AgentStatus.ACTIVE)
    return version
