"""Factories for agents and versions.  ``AgentFactory`` makes a draft;
``published_agent`` publishes it through the service, as real code would."""

import factory

from accounts.tests.factories import OrganizationFactory
from agents.models import Agent, AgentStatus, AgentVersion


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.Sequence(lambda n: f"agent-{n}")
    description = "A helpful agent."
    industry = ""
    system_prompt = "You are a helpful assistant."
    model = "offline"
    fallback_models = factory.LazyFunction(list)
    status = AgentStatus.DRAFT


class AgentVersionFactory(factory.django.DjangoModelFactory):
    """A version row made directly (for selectors and admin tests); use
    ``agent_publish`` to test publishing."""

    class Meta:
        model = AgentVersion

    agent = factory.SubFactory(AgentFactory)
    organization = factory.SelfAttribute("agent.organization")
    number = factory.Sequence(lambda n: n + 1)
    name = factory.SelfAttribute("agent.name")
    system_prompt = factory.SelfAttribute("agent.system_prompt")
    model = factory.SelfAttribute("agent.model")
    fallback_models = factory.LazyAttribute(lambda o: list(o.agent.fallback_models))
    temperature = factory.SelfAttribute("agent.temperature")
    max_output_tokens = factory.SelfAttribute("agent.max_output_tokens")
    max_tool_rounds = factory.SelfAttribute("agent.max_tool_rounds")


def published_agent(organization, *, user=None, status=AgentStatus.ACTIVE, **fields) -> Agent:
    """An agent with one published version (v1), active by default."""
    from agents.services.agents import agent_set_status
    from agents.services.publishing import agent_publish

    agent = AgentFactory(organization=organization, **fields)
    agent_publish(agent=agent, user=user, note="v1")
    if status != AgentStatus.DRAFT:
        agent_set_status(agent=agent, user=user, status=status)
    agent.refresh_from_db()
    return agent
