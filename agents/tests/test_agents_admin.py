"""The agents admin: writes through the services, actions, read-only
versions, tenant scoping and "Create from template"."""

import pytest
from django.contrib.auth.models import Permission

from agents import catalog
from agents.models import Agent, AgentStatus, AgentVersion
from agents.services.publishing import agent_publish
from agents.tests.factories import AgentFactory, published_agent
from chat.models import Channel, Conversation
from chat.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/agents/agent/"
FROM_TEMPLATE = "/admin/agents/agent/from-template/"


def form_data(organization, **overrides):
    data = {
        "organization": organization.pk,
        "name": "Admin bot",
        "slug": "",
        "description": "",
        "industry": "",
        "system_prompt": "You are made in the admin.",
        "model": "offline",
        "fallback_models": "",
        "temperature": "0.7",
        "max_output_tokens": "1024",
        "max_tool_rounds": "5",
        "response_cache": "off",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def staff(org_a, client):
    """org A's admin as a staff user with the agents permissions."""
    user = org_a.users["admin"]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["agents", "tools", "chat"]))
    client.force_login(user)
    return client


# --- change list and forms ----------------------------------------------------------------------


def test_changelist_links_create_from_template_and_filters(admin_client, org_a):
    published_agent(org_a.organization, name="Live one", industry="healthcare")
    AgentFactory(organization=org_a.organization, name="Draft one")
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{FROM_TEMPLATE}"' in html
    assert "Live one" in html and "Draft one" in html
    assert "v1" in html
    filtered = admin_client.get(CHANGELIST, {"status__exact": "active"}).content.decode()
    assert "Live one" in filtered and "Draft one" not in filtered
    by_industry = admin_client.get(CHANGELIST, {"industry": "healthcare"}).content.decode()
    assert "Live one" in by_industry and "Draft one" not in by_industry
    searched = admin_client.get(CHANGELIST, {"q": "draft"}).content.decode()
    assert "Draft one" in searched and "Live one" not in searched


def test_add_goes_through_the_service(admin_client, admin_user, org_a):
    response = admin_client.post(
        "/admin/agents/agent/add/", form_data(org_a.organization, fallback_models="gpt-4o, gpt-4o-mini")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    agent = Agent.objects.get()
    assert (agent.slug, agent.status, agent.created_by, agent.updated_by) == (
        "admin-bot",
        "draft",
        admin_user,
        admin_user,
    )
    assert agent.fallback_models == ["gpt-4o", "gpt-4o-mini"]
    assert agent.organization == org_a.organization


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fallback_models": "offline"}, "fallback_models"),
        ({"fallback_models": "gpt-9"}, "fallback_models"),
        ({"model": "gpt-9"}, "model"),
        ({"industry": "astrology"}, "industry"),
        ({"slug": "taken"}, "slug"),
        ({"temperature": "5"}, "temperature"),
        ({"name": ""}, "name"),
    ],
)
def test_add_shows_service_errors_on_the_form(admin_client, org_a, overrides, field):
    AgentFactory(organization=org_a.organization, slug="taken")
    response = admin_client.post("/admin/agents/agent/add/", form_data(org_a.organization, **overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert Agent.objects.count() == 1


def test_change_records_the_editor_and_keeps_the_live_version(admin_client, admin_user, org_a):
    agent = published_agent(org_a.organization, slug="bot", name="Bot")
    live = agent.live_version_id
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert "v1</a> published" in page
    assert "You are a helpful assistant." in page  # the versions inline
    data = form_data(org_a.organization, name="Bot", slug="bot", system_prompt="Changed in the admin.")
    data.pop("organization")
    data.update(
        {
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": str(live),
            "versions-0-agent": str(agent.pk),
        }
    )
    response = admin_client.post(f"/admin/agents/agent/{agent.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    agent.refresh_from_db()
    assert (agent.system_prompt, agent.updated_by, agent.live_version_id) == ("Changed in the admin.", admin_user, live)
    assert agent.organization == org_a.organization
    assert AgentVersion.objects.get(pk=live).system_prompt == "You are a helpful assistant."


def test_delete_goes_through_the_service(admin_client, org_a):
    agent = published_agent(org_a.organization)
    ConversationFactory(agent=agent, channel=Channel.ADMIN)
    confirm = admin_client.get(f"/admin/agents/agent/{agent.pk}/delete/").content.decode()
    assert "Are you sure" in confirm and "protected" not in confirm
    response = admin_client.post(f"/admin/agents/agent/{agent.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Agent.objects.exists()
    assert not Conversation.objects.exists()
    assert not AgentVersion.objects.exists()


def test_delete_selected_goes_through_the_service(admin_client, org_a):
    agents = [published_agent(org_a.organization) for _ in range(2)]
    keep = AgentFactory(organization=org_a.organization)
    for agent in agents:
        ConversationFactory(agent=agent)
    selected = {"action": "delete_selected", "_selected_action": [str(a.pk) for a in agents]}
    assert admin_client.post(CHANGELIST, selected).status_code == 200  # the confirmation page
    response = admin_client.post(CHANGELIST, {**selected, "post": "yes"})
    assert response.status_code == 302
    assert list(Agent.objects.all()) == [keep]
    assert (Conversation.objects.count(), AgentVersion.objects.count()) == (0, 0)


# --- actions ------------------------------------------------------------------------------------------


def action(admin_client, name, agents):
    return admin_client.post(CHANGELIST, {"action": name, "_selected_action": [str(a.pk) for a in agents]}, follow=True)


def test_publish_and_deploy_actions(admin_client, admin_user, org_a):
    one = AgentFactory(organization=org_a.organization, name="One")
    two = published_agent(org_a.organization, name="Two", status=AgentStatus.DISABLED)
    response = action(admin_client, "publish_selected", [one, two])
    assert "Published 2 agent(s): One, Two." in messages_of(response)
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.live_version.number, two.live_version.number) == (1, 2)
    assert one.live_version.published_by == admin_user
    assert (one.status, two.status) == ("draft", "disabled")

    response = action(admin_client, "deploy_selected", [one])
    assert "Deployed 1 agent(s): One." in messages_of(response)
    one.refresh_from_db()
    assert (one.status, one.live_version.number) == ("active", 2)


def test_enable_and_disable_actions_report_errors(admin_client, org_a):
    draft = AgentFactory(organization=org_a.organization, name="Draft")
    live = published_agent(org_a.organization, name="Live", status=AgentStatus.DISABLED)
    response = action(admin_client, "enable_selected", [draft, live])
    shown = messages_of(response)
    assert "Draft has no published version: publish before activating." in " ".join(shown)
    assert "Enabled 1 agent(s): Live." in shown
    draft.refresh_from_db()
    live.refresh_from_db()
    assert (draft.status, live.status) == ("draft", "active")
    response = action(admin_client, "disable_selected", [draft, live])
    assert "Disabled 2 agent(s): Draft, Live." in messages_of(response)
    assert set(Agent.objects.values_list("status", flat=True)) == {"disabled"}


def test_publish_action_reports_unavailable_models(admin_client, org_a, settings):
    agent = AgentFactory(organization=org_a.organization, name="Old", model="gpt-4o")
    settings.AGENTHUB_MODELS = ["offline"]
    response = action(admin_client, "publish_selected", [agent])
    assert any("no longer available" in m for m in messages_of(response))
    assert not AgentVersion.objects.exists()


# --- versions are read-only ------------------------------------------------------------------------------


def test_versions_are_read_only_in_the_admin(admin_client, org_a):
    agent = published_agent(org_a.organization)
    version = agent.live_version
    url = f"/admin/agents/agentversion/{version.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert 'name="system_prompt"' not in page.content.decode()
    assert admin_client.post(url, {"note": "edited"}).status_code == 403
    assert admin_client.get("/admin/agents/agentversion/add/").status_code == 403
    assert admin_client.post(f"/admin/agents/agentversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/agents/agentversion/").status_code == 200
    version.refresh_from_db()
    assert version.note == "v1"
    assert AgentVersion.objects.count() == 1


# --- tenant scoping --------------------------------------------------------------------------------------


def test_staff_see_only_their_organizations(staff, org_a, org_b):
    mine = published_agent(org_a.organization, name="Alpha agent")
    theirs = published_agent(org_b.organization, name="Bravo agent", status=AgentStatus.DISABLED)
    page = staff.get(CHANGELIST).content.decode()
    assert "Alpha agent" in page and "Bravo agent" not in page
    assert staff.get(f"/admin/agents/agent/{theirs.pk}/change/").status_code == 302
    assert staff.get(f"/admin/agents/agentversion/{theirs.live_version.pk}/change/").status_code == 302
    versions = staff.get("/admin/agents/agentversion/").content.decode()
    assert "Alpha agent" in versions and "Bravo agent" not in versions
    # Actions only reach the staff user's own agents.
    action(staff, "enable_selected", [mine, theirs])
    theirs.refresh_from_db()
    assert theirs.status == "disabled"
    # The organization choices on the forms are scoped too.
    add = staff.get("/admin/agents/agent/add/").content.decode()
    assert "alpha Inc" in add and "bravo Inc" not in add
    form = staff.get(FROM_TEMPLATE).context["form"]
    assert list(form.fields["organization"].queryset) == [org_a.organization]
    response = staff.post(
        FROM_TEMPLATE,
        {
            "organization": org_b.organization.pk,
            "template": "tutor",
            "name": "X",
            "model": "offline",
            "company_name": "B",
        },
    )
    assert "organization" in response.context["form"].errors
    assert not Agent.objects.filter(name="X").exists()


# --- create from template ---------------------------------------------------------------------------------


def test_from_template_page(admin_client, org_a):
    page = admin_client.get(FROM_TEMPLATE)
    assert page.status_code == 200
    html = page.content.decode()
    for template in catalog.TEMPLATES:
        assert template.name in html
    assert "Preview prompt" in html


def test_from_template_preview_creates_nothing(admin_client, org_a):
    data = {
        "organization": org_a.organization.pk,
        "template": "patient-intake",
        "name": "Clinic bot",
        "model": "offline",
        "company_name": "Sunny Clinic",
        "tone": "warm",
        "goals": "Book visits\nAnswer hours",
        "do": "Offer the phone number",
        "dont": "",
        "extra": "Open 8-18.",
        "_preview": "Preview prompt",
    }
    response = admin_client.post(FROM_TEMPLATE, data)
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.startswith("You are a patient services assistant for Sunny Clinic.")
    assert "1. Book visits\n2. Answer hours" in preview
    assert "not a diagnosis" in preview
    assert "Sunny Clinic" in response.content.decode()
    assert not Agent.objects.exists()


def test_from_template_creates_a_draft_and_redirects(admin_client, admin_user, org_a):
    data = {
        "organization": org_a.organization.pk,
        "template": "it-helpdesk",
        "name": "Helpdesk",
        "slug": "",
        "model": "gpt-4o-mini",
        "company_name": "Initech",
        "tone": "",
        "goals": "",
        "do": "Ask for the asset tag\nBe brief",
        "dont": "Promise fixes",
        "extra": "",
    }
    response = admin_client.post(FROM_TEMPLATE, data)
    agent = Agent.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/agents/agent/{agent.pk}/change/"
    assert (agent.slug, agent.industry, agent.model, agent.status, agent.created_by) == (
        "helpdesk",
        "it-services",
        "gpt-4o-mini",
        "draft",
        admin_user,
    )
    assert "IT helpdesk assistant for Initech" in agent.system_prompt
    assert "concise" in agent.system_prompt  # the template's default tone
    assert "- Ask for the asset tag\n- Be brief" in agent.system_prompt
    assert "## Never\n- Promise fixes" in agent.system_prompt


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"company_name": ""}, "company_name"),
        ({"template": "nope"}, "template"),
        ({"slug": "taken"}, "slug"),
        ({"goals": "\n".join(["g"] * 13)}, "goals"),
        ({"do": "x" * 301}, "do"),
    ],
)
def test_from_template_errors_are_shown_on_the_form(admin_client, org_a, overrides, field):
    AgentFactory(organization=org_a.organization, slug="taken")
    data = {
        "organization": org_a.organization.pk,
        "template": "tutor",
        "name": "Tutor",
        "model": "offline",
        "company_name": "School",
        **overrides,
    }
    response = admin_client.post(FROM_TEMPLATE, data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert Agent.objects.count() == 1


def test_from_template_needs_the_add_permission(client, org_a):
    user = org_a.users["operator"]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename="view_agent"))
    client.force_login(user)
    assert client.get(FROM_TEMPLATE).status_code == 403
    assert "Create from template" not in client.get(CHANGELIST).content.decode()
    client.logout()
    assert client.get(FROM_TEMPLATE).status_code == 302  # to the login page


def test_published_agent_version_links(admin_client, org_a):
    agent = published_agent(org_a.organization)
    agent_publish(agent=agent, user=None, note="second")
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert f"/admin/agents/agentversion/{agent.live_version_id}/change/" in page
    assert "second" in page


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin/agents/draft/?status__exact=pending", "/admin/tools/draft/?status__exact=pending"),
        ("/admin/agents/httptool/add/", "/admin/tools/httptool/add/"),
        ("/admin/agents/conversation/0b7e/change/", "/admin/chat/conversation/0b7e/change/"),
    ],
)
def test_admin_pages_of_moved_models_redirect_to_their_new_app(client, old, new):
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"] == new
