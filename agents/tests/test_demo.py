"""The demo agents: ``seed_demo`` creates and publishes the missing ones and
leaves existing ones as they are (``--reset`` restores them); the tools hint
it prints works as printed with the offline model — the calculator runs, the
email becomes a draft that the demo operator confirms in the admin."""

import json
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from agents.models import Agent, AgentVersion
from agents.services.agents import agent_delete, agent_set_status, agent_update
from agents.services.grants import agent_tools_set
from agents.services.publishing import agent_publish
from chat.services.agents import agent_cache_clear
from tools.models import Draft, DraftStatus, InvocationStatus, ToolInvocation

pytestmark = pytest.mark.django_db(transaction=True)

HINTED_EMAIL = 'send_email {"to": ["you@example.com"], "subject": "Hello", "body": "Sent by AgentHub"}'
HINTED_CALCULATOR = 'calculator {"expression": "6*7"}'
HINTED_CHAT = ".venv/bin/python manage.py chat it-helpdesk --org demo --user demo-member"
GRANTS = [
    {"tool": "calculator", "min_role": None, "requires_approval": None},
    {"tool": "current_time", "min_role": None, "requires_approval": None},
    {"tool": "send_email", "min_role": None, "requires_approval": None},
]


@pytest.fixture
def demo_settings(settings):
    settings.AGENTHUB_DEFAULT_MODEL = "offline"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    agent_cache_clear()
    yield settings
    agent_cache_clear()


def seed(*args):
    out = StringIO()
    call_command("seed_demo", "--force", *args, stdout=out)
    return out.getvalue()


def agent_lines(output):
    return output[output.index("  agent ") :]


def helpdesk():
    return Agent.objects.select_related("live_version").get(organization__slug="demo", slug="it-helpdesk")


def test_seed_grants_tools_to_the_helpdesk_and_publishes_them_once(demo_settings):
    first = seed()
    second = seed()
    assert seed() == second
    assert agent_lines(second) == agent_lines(first)  # the users' lines differ: their passwords were kept
    agent = helpdesk()
    assert (agent.status, agent.live_version.number, agent.model) == ("active", 1, "offline")
    assert agent.live_version.tools == GRANTS
    assert AgentVersion.objects.filter(agent=agent).count() == 1
    support = Agent.objects.get(organization__slug="demo", slug="support")
    assert support.live_version.tools == []
    # The hint names the message to type and where to confirm the draft.
    assert HINTED_CHAT in first
    assert HINTED_CALCULATOR in first
    assert HINTED_EMAIL in first
    assert "confirm the draft as demo-operator at /admin/tools/draft/" in first

    # Grants removed and published are kept by a plain seed; --reset restores and republishes them.
    agent_tools_set(agent=agent, grants=[{"tool": "calculator"}], user=None)
    agent_publish(agent=agent, user=None)
    seed()
    assert helpdesk().live_version.number == 2
    assert helpdesk().live_version.tools == [GRANTS[0]]
    assert seed("--reset").count("IT helpdesk (v3") == 1
    seed("--reset")
    seed()
    agent = helpdesk()
    assert agent.live_version.number == 3
    assert agent.live_version.tools == GRANTS
    assert AgentVersion.objects.filter(agent=agent).count() == 3


def snapshot(agent):
    agent.refresh_from_db()
    return {
        "fields": {name: getattr(agent, name) for name in ("name", "system_prompt", "model", "status", "updated_at")},
        "live": (agent.live_version.number, agent.live_version.system_prompt, agent.live_version.tools),
        "versions": list(AgentVersion.objects.filter(agent=agent).values_list("number", "system_prompt", "tools")),
    }


def test_seeding_again_leaves_an_edited_demo_agent_as_it_is(demo_settings):
    seed()
    agent = helpdesk()
    agent_update(agent=agent, user=None, data={"name": "Our helpdesk", "system_prompt": "Answer in French."})
    agent_tools_set(agent=agent, grants=[{"tool": "calculator"}], user=None)
    agent_publish(agent=agent, user=None, note="ours")
    agent_update(agent=agent, user=None, data={"system_prompt": "Answer in German (not published yet)."})
    agent_set_status(agent=agent, user=None, status="disabled")
    edited = snapshot(agent)

    output = seed()

    assert snapshot(helpdesk()) == edited
    assert edited["fields"]["system_prompt"] == "Answer in German (not published yet)."
    assert edited["live"] == (2, "Answer in French.", [GRANTS[0]])
    assert "agent it-helpdesk  Our helpdesk (v2, offline, disabled)" in output


def test_a_deleted_demo_agent_is_recreated_and_the_other_left_alone(demo_settings):
    seed()
    support = Agent.objects.get(organization__slug="demo", slug="support")
    agent_update(agent=support, user=None, data={"system_prompt": "Edited."})
    edited = snapshot(support)
    agent_delete(agent=helpdesk())

    output = seed()

    agent = helpdesk()
    assert (agent.status, agent.live_version.number, agent.live_version.tools) == ("active", 1, GRANTS)
    assert "agent it-helpdesk  IT helpdesk (v1, offline)" in output
    assert snapshot(support) == edited


def test_reset_restores_an_edited_demo_agent(demo_settings):
    first = seed()
    original = snapshot(helpdesk())
    agent = helpdesk()
    agent_update(agent=agent, user=None, data={"name": "Our helpdesk", "system_prompt": "Answer in French."})
    agent_tools_set(agent=agent, grants=[], user=None)
    agent_publish(agent=agent, user=None)
    agent_set_status(agent=agent, user=None, status="disabled")

    output = seed("--reset")

    restored = snapshot(helpdesk())
    assert "agent it-helpdesk  IT helpdesk (v3, offline)" in output
    assert {k: v for k, v in restored["fields"].items() if k != "updated_at"} == {
        k: v for k, v in original["fields"].items() if k != "updated_at"
    }
    assert restored["live"] == (3, original["live"][1], GRANTS)
    assert len(restored["versions"]) == 3  # versions are kept; the restored definition is published on top
    assert seed("--reset").replace("(v3", "(v1") == first  # reset again: nothing to republish


def test_the_hinted_messages_run_the_calculator_and_draft_an_email_the_operator_confirms(demo_settings, client):
    output = seed()
    seed()
    assert HINTED_EMAIL in output and HINTED_CALCULATOR in output
    call_command(
        "chat", "it-helpdesk", "--org", "demo", "--user", "demo-member", "-m", HINTED_CALCULATOR, "-m", HINTED_EMAIL
    )

    calculator, email = ToolInvocation.objects.order_by("created_at")
    assert (calculator.tool, calculator.status, calculator.role) == ("calculator", InvocationStatus.OK, "member")
    assert json.loads(calculator.result) == {"expression": "6*7", "result": 42}
    assert (email.tool, email.status) == ("send_email", InvocationStatus.DRAFTED)
    draft = Draft.objects.get()
    assert (draft.tool, draft.status, draft.agent) == ("send_email", DraftStatus.PENDING, helpdesk())
    assert draft.arguments == {"to": ["you@example.com"], "subject": "Hello", "body": "Sent by AgentHub"}
    assert draft.requested_by.username == "demo-member"
    assert len(mail.outbox) == 0  # nothing is sent before a person confirms

    # The demo operator confirms it in the admin, where the hint points.
    assert client.login(username="demo-operator", password="agenthub-demo")
    listing = client.get("/admin/tools/draft/")
    assert listing.status_code == 200
    assert str(draft.pk) in listing.content.decode()
    response = client.post(f"/admin/tools/draft/{draft.pk}/confirm/", {"note": "", "edited_arguments": ""})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.decided_by.username) == (DraftStatus.EXECUTED, "demo-operator")
    assert len(mail.outbox) == 1
    assert (mail.outbox[0].to, mail.outbox[0].subject, mail.outbox[0].body) == (
        ["you@example.com"],
        "Hello",
        "Sent by AgentHub",
    )


def test_the_demo_has_prices_a_budget_usage_and_last_months_invoice_once(demo_settings):
    from billing.models import Budget, Invoice, Price, UsageRecord

    output = seed()
    invoice = Invoice.objects.get(organization__slug="demo")
    assert invoice.status == "issued" and invoice.total > 0 and invoice.lines.exists()
    assert invoice.number in output and "/admin/billing/invoice/" in output
    ledger = sum(r.cost for r in UsageRecord.objects.filter(organization__slug="demo", occurred_at__lt=invoice_end()))
    assert invoice.ledger_cost == ledger
    assert Budget.objects.filter(organization__slug="demo").count() == 1
    assert Price.objects.filter(model="offline", input_per_million__gt=0).exists()
    seed()
    seed("--reset")
    assert Invoice.objects.filter(organization__slug="demo").count() == 1
    assert UsageRecord.objects.filter(organization__slug="demo").count() == 160 + 24


def invoice_end():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
