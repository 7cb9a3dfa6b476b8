"""The admin's live test chat: the panel on the agent page, a ticket through
the admin session (with CSRF), and a websocket conversation on the admin
channel."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from chat.models import Conversation
from chat.tests.helpers import make_live_agent, open_chat, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def staff_client(bundle, role):
    user = bundle.users[role]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["agents", "chat", "accounts"]))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_change_page_has_the_panel_for_operators(org_a):
    agent = make_live_agent(org_a.organization, slug="helper")
    page = staff_client(org_a, "operator").get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert 'id="test-chat"' in page
    assert 'data-slug="helper"' in page
    assert f'data-organization="{org_a.organization.pk}"' in page
    assert 'id="test-chat-send"' in page


def test_panel_explains_when_the_agent_is_not_live(org_a):
    agent = make_live_agent(org_a.organization, slug="helper")
    agent.status = "disabled"
    agent.save()
    page = staff_client(org_a, "operator").get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert "Publish and activate this agent" in page
    assert 'id="test-chat-send"' not in page


def ticket(client, csrf=True, **body):
    headers = {}
    if csrf:
        client.get("/admin/")  # sets the csrftoken cookie
        headers["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client.post("/api/v1/chat/tickets", body, content_type="application/json", **headers)


def test_session_ticket_needs_csrf_and_opens_an_admin_conversation(org_a):
    make_live_agent(org_a.organization, slug="helper")
    client = staff_client(org_a, "operator")
    assert ticket(client, csrf=False, agent="helper", channel="admin").status_code == 403
    response = ticket(client, agent="helper", channel="admin")
    assert response.status_code == 201, response.content
    url = response.json()["websocket_url"]
    assert url.startswith("/ws/v1/agents/helper/chat/?ticket=")

    async def chat():
        ws, ready = await open_chat("helper", url.split("?", 1)[1])
        assert ready["type"] == "conversation.ready"
        await ws.send_json_to({"type": "message", "content": "testing from the admin"})
        frames = await receive_until(ws, "turn.finished")
        await ws.disconnect()
        return ready["conversation_id"], frames[-1]

    from asgiref.sync import async_to_sync

    conversation_id, finished = async_to_sync(chat)()
    assert finished["status"] == "complete"
    assert Conversation.objects.get(pk=conversation_id).channel == "admin"


def test_members_cannot_open_the_admin_channel(org_a):
    make_live_agent(org_a.organization, slug="helper")
    client = staff_client(org_a, "member")
    response = ticket(client, agent="helper", channel="admin")
    assert response.status_code == 403
    assert ticket(client, agent="helper").status_code == 201


def test_conversation_admin_is_read_only_and_scoped(org_a, org_b):
    make_live_agent(org_a.organization, slug="helper")
    org_a.client("member").post("/api/v1/chat", {"agent": "helper", "prompt": "hello"}, format="json")
    make_live_agent(org_b.organization, slug="bravo-bot")
    org_b.client("member").post("/api/v1/chat", {"agent": "bravo-bot", "prompt": "secret"}, format="json")
    user = org_a.users["admin"]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["agents", "tools", "chat"]))
    client = Client()
    client.force_login(user)
    listing = client.get("/admin/chat/conversation/").content.decode()
    alpha = Conversation.objects.get(organization=org_a.organization)
    bravo = Conversation.objects.get(organization=org_b.organization)
    assert str(alpha.pk) in listing
    assert str(bravo.pk) not in listing
    detail = client.get(f"/admin/chat/conversation/{alpha.pk}/change/")
    assert detail.status_code == 200
    assert "hello" in detail.content.decode()
    assert client.get(f"/admin/chat/conversation/{bravo.pk}/change/").status_code == 302
