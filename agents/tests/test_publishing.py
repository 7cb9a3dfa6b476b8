"""Publishing: version numbering and snapshots, immutability, rollback,
deploy, and concurrent publishes on a real database."""

import threading

import pytest
from django.db import connection, connections

from accounts.tests.factories import OrganizationFactory
from agenthub.errors import ApplicationError, NotFoundError
from agents.models import Agent, AgentStatus, AgentVersion
from agents.services.agents import agent_update
from agents.services.publishing import agent_deploy, agent_publish, agent_rollback
from agents.tests.factories import AgentFactory, published_agent

pytestmark = pytest.mark.django_db

SNAPSHOT = ("name", "system_prompt", "model", "fallback_models", "temperature", "max_output_tokens", "max_tool_rounds")


def url(agent, suffix):
    return f"/api/v1/agents/{agent.pk}/{suffix}"


# --- services ------------------------------------------------------------------------------------


def test_publish_numbers_versions_and_snapshots_the_definition(org_a):
    operator = org_a.users["operator"]
    agent = AgentFactory(
        organization=org_a.organization,
        name="Bot",
        system_prompt="First.",
        model="gpt-4o-mini",
        fallback_models=["offline"],
        temperature=0.3,
        max_output_tokens=900,
        max_tool_rounds=2,
    )
    first = agent_publish(agent=agent, user=operator, note="  initial  ")
    assert (first.number, first.note, first.published_by, first.tools) == (1, "initial", operator, [])
    assert {f: getattr(first, f) for f in SNAPSHOT} == {
        "name": "Bot",
        "system_prompt": "First.",
        "model": "gpt-4o-mini",
        "fallback_models": ["offline"],
        "temperature": 0.3,
        "max_output_tokens": 900,
        "max_tool_rounds": 2,
    }
    assert first.organization_id == org_a.organization.pk
    assert agent.live_version == first  # the caller's instance is kept in sync

    agent_update(agent=agent, user=operator, data={"system_prompt": "Second."})
    second = agent_publish(agent=agent, user=None)
    third = agent_publish(agent=agent, user=None)
    assert [second.number, third.number] == [2, 3]
    assert second.system_prompt == "Second."
    assert AgentVersion.objects.get(pk=first.pk).system_prompt == "First."
    agent.refresh_from_db()
    assert agent.live_version_id == third.pk
    assert agent.status == "draft"  # publishing does not activate


def test_publish_snapshots_the_stored_row_not_a_stale_instance(org_a):
    agent = AgentFactory(organization=org_a.organization, system_prompt="Stored.")
    stale = Agent.objects.get(pk=agent.pk)
    stale.system_prompt = "Never saved."
    version = agent_publish(agent=stale, user=None)
    assert version.system_prompt == "Stored."


def test_numbers_are_per_agent_and_continue_after_rollback(org_a):
    one = published_agent(org_a.organization)
    two = published_agent(org_a.organization)
    agent_publish(agent=one, user=None)
    agent_rollback(agent=one, user=None, version_number=1)
    assert agent_publish(agent=one, user=None).number == 3
    assert two.live_version.number == 1


def test_publish_refuses_models_that_are_no_longer_available(org_a, settings):
    agent = AgentFactory(organization=org_a.organization, model="gpt-4o", fallback_models=["gpt-4o-mini"])
    settings.AGENTHUB_MODELS = ["offline", "gpt-4o-mini"]
    with pytest.raises(ApplicationError) as exc:
        agent_publish(agent=agent, user=None)
    assert exc.value.code == "model_unavailable"
    assert exc.value.details == {"models": ["gpt-4o"]}
    assert not AgentVersion.objects.exists()
    with pytest.raises(ApplicationError):
        agent_deploy(agent=agent, user=None)
    agent.refresh_from_db()
    assert (agent.status, agent.live_version_id, AgentVersion.objects.count()) == ("draft", None, 0)


def test_versions_are_immutable(org_a):
    version = published_agent(org_a.organization).live_version
    version.system_prompt = "Rewritten history."
    with pytest.raises(ValueError, match="immutable"):
        version.save()
    assert AgentVersion.objects.get(pk=version.pk).system_prompt == "You are a helpful assistant."


def test_rollback_moves_the_live_version_and_keeps_the_definition(org_a):
    agent = published_agent(org_a.organization, system_prompt="v1 prompt")
    agent_update(agent=agent, user=None, data={"system_prompt": "v2 prompt"})
    agent_publish(agent=agent, user=None)
    version = agent_rollback(agent=agent, user=None, version_number=1)
    agent.refresh_from_db()
    assert (version.number, agent.live_version_id) == (1, version.pk)
    assert agent.live_version.system_prompt == "v1 prompt"
    assert agent.system_prompt == "v2 prompt"
    assert agent.status == "active"
    assert AgentVersion.objects.filter(agent=agent).count() == 2


def test_rollback_only_to_versions_of_the_same_agent(org_a):
    agent = published_agent(org_a.organization)
    other = published_agent(org_a.organization)
    agent_publish(agent=other, user=None)
    with pytest.raises(NotFoundError) as exc:
        agent_rollback(agent=agent, user=None, version_number=2)
    assert exc.value.code == "version_not_found"
    agent.refresh_from_db()
    assert agent.live_version.number == 1


def test_deploy_publishes_and_activates(org_a):
    agent = AgentFactory(organization=org_a.organization)
    version = agent_deploy(agent=agent, user=org_a.users["operator"], note="go")
    agent.refresh_from_db()
    assert (agent.status, agent.live_version_id, version.number, version.note) == ("active", version.pk, 1, "go")
    assert agent.updated_by == org_a.users["operator"]
    again = agent_deploy(agent=agent, user=None)
    agent.refresh_from_db()
    assert (again.number, agent.live_version_id, agent.status) == (2, again.pk, "active")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need a real database server")
@pytest.mark.django_db(transaction=True)
def test_concurrent_publishes_get_distinct_consecutive_numbers():
    organization = OrganizationFactory()
    agent = AgentFactory(organization=organization)
    workers = 8
    barrier = threading.Barrier(workers)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def publish():
        try:
            instance = Agent.objects.get(pk=agent.pk)
            barrier.wait(timeout=10)
            numbers.append(agent_publish(agent=instance, user=None).number)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(numbers) == list(range(1, workers + 1))
    agent.refresh_from_db()
    assert agent.live_version.number == workers  # the last publish under the lock wins
    assert AgentVersion.objects.filter(agent=agent).count() == workers


# --- API ---------------------------------------------------------------------------------------------


def test_publish_api(org_a):
    agent = AgentFactory(organization=org_a.organization)
    response = org_a.client("operator").post(url(agent, "publish"), {"note": "First release"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    version = AgentVersion.objects.get(agent=agent)
    assert body["live_version"]["id"] == str(version.pk)
    assert body["live_version"]["number"] == 1
    assert body["status"] == "draft"
    assert body["has_unpublished_changes"] is False
    assert (version.note, version.published_by) == ("First release", org_a.users["operator"])
    # An empty body is fine: the note is optional.
    assert org_a.client("operator").post(url(agent, "publish")).json()["live_version"]["number"] == 2


@pytest.mark.parametrize(
    "payload", [{"note": "x" * 501}, {"note": ["a"]}, {"note": "ok", "force": True}, {"note": "a\x00b"}]
)
def test_publish_bad_input(org_a, payload):
    agent = AgentFactory(organization=org_a.organization)
    response = org_a.client("operator").post(url(agent, "publish"), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not AgentVersion.objects.exists()


def test_rollback_api(org_a):
    agent = published_agent(org_a.organization)
    agent_publish(agent=agent, user=None)
    client = org_a.client("operator")
    response = client.post(url(agent, "rollback"), {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["live_version"]["number"] == 1
    response = client.post(url(agent, "rollback"), {"version": 7}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "version_not_found"
    agent.refresh_from_db()
    assert agent.live_version.number == 1


@pytest.mark.parametrize("payload", [{}, {"version": 0}, {"version": "two"}, {"version": True}, {"version": 1.5}])
def test_rollback_bad_input(org_a, payload):
    agent = published_agent(org_a.organization)
    agent_publish(agent=agent, user=None)
    response = org_a.client("operator").post(url(agent, "rollback"), payload, format="json")
    assert response.status_code == 400
    assert "version" in response.json()["error"]["details"]["fields"]
    agent.refresh_from_db()
    assert agent.live_version.number == 2


def test_deploy_api(org_a):
    agent = AgentFactory(organization=org_a.organization)
    response = org_a.client("admin").post(url(agent, "deploy"), {"note": "ship it"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["live_version"]["number"]) == ("active", 1)
    assert AgentVersion.objects.get(agent=agent).note == "ship it"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_readers_cannot_publish_deploy_or_roll_back(org_a, role):
    agent = published_agent(org_a.organization, status=AgentStatus.DISABLED)
    client = org_a.client(role)
    assert client.post(url(agent, "publish"), {}, format="json").status_code == 403
    assert client.post(url(agent, "deploy"), {}, format="json").status_code == 403
    assert client.post(url(agent, "rollback"), {"version": 1}, format="json").status_code == 403
    agent.refresh_from_db()
    assert (agent.status, AgentVersion.objects.count()) == ("disabled", 1)
