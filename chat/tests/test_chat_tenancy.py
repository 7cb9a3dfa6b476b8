"""The chat endpoints across the organization boundary: another
organization's agents and sessions are 404, never data."""

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent

pytestmark = pytest.mark.django_db(transaction=True)

# The endpoints these tests sweep (accounts/tests/test_tenant_isolation.py
# checks that every path of the schema is swept somewhere).
SWEPT_PATHS = {
    "/api/v1/chat",
    "/api/v1/chat/tickets",
    "/api/v1/sessions",
    "/api/v1/sessions/{id}",
    "/api/v1/sessions/{id}/history",
    "/api/v1/sessions/{id}/events",
    "/v1/chat/completions",
    "/v1/models",
}


@pytest.fixture
def b_session(org_b):
    make_live_agent(org_b.organization, slug="bravo-bot")
    response = org_b.client("member").post(
        "/api/v1/chat", {"agent": "bravo-bot", "prompt": "secret plans"}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["session_id"]


@pytest.mark.parametrize("role", ["owner", "member"])
def test_sessions_of_another_organization_are_404(org_a, org_b, b_session, role):
    make_live_agent(org_a.organization, slug="alpha-bot")
    client = org_a.client(role)
    for response in (
        client.get(f"/api/v1/sessions/{b_session}"),
        client.get(f"/api/v1/sessions/{b_session}/history"),
        client.get(f"/api/v1/sessions/{b_session}/events", HTTP_ACCEPT="application/json"),
        client.delete(f"/api/v1/sessions/{b_session}"),
        client.post("/api/v1/chat", {"agent": "alpha-bot", "prompt": "hi", "session_id": b_session}, format="json"),
    ):
        assert response.status_code == 404, response.content
        assert "secret" not in response.content.decode()
    assert client.get("/api/v1/sessions").json()["count"] == 0
    assert Conversation.objects.get(pk=b_session).status == "active"
    assert Message.objects.filter(conversation_id=b_session).count() == 2


def test_agents_of_another_organization_are_not_found(org_a, org_b, b_session):
    client = org_a.client("owner")
    chat = client.post("/api/v1/chat", {"agent": "bravo-bot", "prompt": "hi"}, format="json")
    assert (chat.status_code, chat.json()["error"]["code"]) == (404, "agent_not_found")
    ticket = client.post("/api/v1/chat/tickets", {"agent": "bravo-bot"}, format="json")
    assert ticket.status_code == 404
    completion = client.post(
        "/v1/chat/completions", {"model": "bravo-bot", "messages": [{"role": "user", "content": "hi"}]}, format="json"
    )
    assert completion.status_code == 404
    assert client.get("/v1/models").json() == {"object": "list", "data": []}
    assert Message.objects.exclude(conversation_id=b_session).count() == 0


def test_api_keys_see_only_their_own_sessions(org_a):
    make_live_agent(org_a.organization, slug="alpha-bot")
    _, raw_one = api_key_create(organization=org_a.organization, name="one", actor_role="owner")
    _, raw_two = api_key_create(organization=org_a.organization, name="two", actor_role="owner")
    one, two = APIClient(), APIClient()
    one.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_one}")
    two.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_two}")
    session = one.post("/api/v1/chat", {"agent": "alpha-bot", "prompt": "mine"}, format="json").json()["session_id"]
    assert one.get(f"/api/v1/sessions/{session}").status_code == 200
    assert two.get(f"/api/v1/sessions/{session}").status_code == 404
    assert two.get("/api/v1/sessions").json()["count"] == 0
    # Operators and above see the organization's sessions.
    assert org_a.client("operator").get(f"/api/v1/sessions/{session}").status_code == 200
    assert org_a.client("member").get(f"/api/v1/sessions/{session}").status_code == 404


@pytest.mark.parametrize("role", ["viewer"])
def test_viewers_cannot_chat_or_get_tickets(org_a, role):
    make_live_agent(org_a.organization, slug="alpha-bot")
    client = org_a.client(role)
    assert client.post("/api/v1/chat", {"agent": "alpha-bot", "prompt": "hi"}, format="json").status_code == 403
    assert client.post("/api/v1/chat/tickets", {}, format="json").status_code == 403
    assert not Message.objects.exists()
