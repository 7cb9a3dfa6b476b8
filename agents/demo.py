"""Demo agents for ``manage.py seed_demo``: two published, active agents of
the demo organization, made from the industry templates on the default model.
The IT helpdesk is granted tools, so a newcomer sees them work with the
offline model: the calculator and the current time run at once, and an email
becomes a draft that an operator confirms in the admin.

A second run leaves an existing demo agent as it is (its edits, grants,
versions and status) and creates only the missing ones.  With ``reset``
(``seed_demo --reset``) it restores the definitions, grants and status and
publishes only when something differs from the live version, so resetting
never piles up versions.
"""

import json

from django.conf import settings
from django.db import transaction

from accounts.models import Organization, User
from accounts.roles import Role
from accounts.services_demo import register_demo_seeder
from agents import catalog, selectors
from agents.models import Agent, AgentStatus
from agents.services.agents import agent_create, agent_set_status, agent_update, field_defaults
from agents.services.grants import agent_tools_set
from agents.services.publishing import agent_publish
from agents.services.templates import template_answers_clean, template_render
from billing.demo import demo_usage_seed

DEMO_AGENTS = (
    {
        "slug": "support",
        "name": "Support assistant",
        "template": "support-assistant",
        "answers": {
            "company_name": "Demo Organization",
            "tone": "friendly",
            "do": ["Mention the help centre at help.example.com for step-by-step guides"],
            "extra": "Support hours: Monday to Friday, 9:00 to 18:00 CET. Email: support@example.com.",
        },
    },
    {
        "slug": "it-helpdesk",
        "name": "IT helpdesk",
        "template": "it-helpdesk",
        "answers": {
            "company_name": "Demo Organization",
            "tone": "concise",
            "extra": "Tickets are handled by the IT team at it@example.com; urgent issues: extension 4000.",
        },
        # The tools' own rules: the calculator and the time for every member,
        # emails from members up, each one a draft an operator confirms.
        "tools": ("calculator", "current_time", "send_email"),
    },
)
TOOLS_AGENT = "it-helpdesk"
# What to type into the chat (the offline model calls a tool the message names,
# with the JSON that follows the name as its arguments).
TRY_CALCULATOR = 'calculator {"expression": "6*7"}'
TRY_EMAIL = "send_email " + json.dumps(
    {"to": ["you@example.com"], "subject": "Hello", "body": "Sent by AgentHub"}, separators=(", ", ": ")
)
DRAFTS_ADMIN = "/admin/tools/draft/"


def _definition(spec: dict) -> dict:
    template = catalog.template_get(spec["template"])
    answers = template_answers_clean(template=template, answers=spec["answers"])
    return {
        "name": spec["name"],
        "description": f"{template.name} for {answers.company_name}. {template.description}",
        "industry": template.industry,
        "system_prompt": template_render(template=template, answers=answers),
        "model": settings.AGENTHUB_DEFAULT_MODEL,
        "fallback_models": [],
        **field_defaults(),
    }


@register_demo_seeder
@transaction.atomic
def seed_demo_agents(organization: Organization, users: dict[str, User], *, reset: bool = False) -> list[str]:
    operator = users.get(Role.OPERATOR)
    lines, demo_agents = [], []
    for spec in DEMO_AGENTS:
        agent = (
            Agent.objects.for_organization(organization)
            .select_related("live_version")
            .filter(slug=spec["slug"])
            .first()
        )
        if agent is None or reset:
            agent = _restore(organization, operator, spec, agent)
        lines.append(_agent_line(agent))
        demo_agents.append(agent)
    lines.extend(_try_tools_hint(organization, users))
    # Last month's usage of these agents (and its invoice), for billing's demo.
    lines.extend(
        demo_usage_seed(
            organization,
            users,
            agents=[
                (str(a.pk), a.name, str(a.live_version_id), a.live_version.number, a.live_version.model)
                for a in demo_agents
            ],
            reset=reset,
        )
    )
    return lines


def _restore(organization: Organization, operator: User | None, spec: dict, agent: Agent | None) -> Agent:
    """Creates the demo agent of ``spec`` (or restores ``agent`` to it):
    definition, grants, published and active."""
    definition = _definition(spec)
    if agent is None:
        agent = agent_create(organization=organization, user=operator, slug=spec["slug"], **definition)
    else:
        agent = agent_update(agent=agent, user=operator, data=definition)
    agent_tools_set(agent=agent, grants=[{"tool": name} for name in spec.get("tools", ())], user=operator)
    agent = selectors.agent_get(organization=organization, agent_id=agent.pk)
    if selectors.agent_has_unpublished_changes(agent):
        agent_publish(agent=agent, user=operator, note="Demo seed")
    return agent_set_status(agent=agent, user=operator, status=AgentStatus.ACTIVE)


def _agent_line(agent: Agent) -> str:
    version = f"v{agent.live_version.number}" if agent.live_version else "not published"
    status = "" if agent.status == AgentStatus.ACTIVE else f", {agent.status}"
    return (
        f"agent {agent.slug:<12} {agent.name} ({version}, {agent.model}{status}) "
        f"— chat at /ws/v1/agents/{agent.slug}/chat/"
    )


def _try_tools_hint(organization: Organization, users: dict[str, User]) -> list[str]:
    """What to type to see the tools work, and where to confirm the email."""
    (spec,) = (spec for spec in DEMO_AGENTS if spec["slug"] == TOOLS_AGENT)
    member, operator = users[Role.MEMBER].username, users[Role.OPERATOR].username
    chat = f".venv/bin/python manage.py chat {TOOLS_AGENT} --org {organization.slug} --user {member}"
    tools = spec["tools"]
    return [
        f"try tools    {TOOLS_AGENT} may use {', '.join(tools[:-1])} and {tools[-1]}. Chat with it in the "
        "admin's test chat,",
        f"             or run: {chat}",
        "             and type:",
        f"               {TRY_CALCULATOR}   (runs at once)",
        f"               {TRY_EMAIL}   (waits as a draft)",
        f"             then confirm the draft as {operator} at {DRAFTS_ADMIN}",
    ]
