"""The industry catalog, prompt rendering, the templates API, agents made
from templates, and the demo agents."""

from io import StringIO

import pytest
from django.core.management import call_command

from agenthub.errors import ApplicationError
from agents import catalog
from agents.models import Agent, AgentVersion
from agents.services.agents import TEXT_LIMITS
from agents.services.publishing import agent_publish
from agents.services.templates import (
    GENERAL_RULES,
    agent_create_from_template,
    template_answers_clean,
    template_render,
)
from agents.tests.factories import AgentFactory

ANSWERS = {
    "company_name": "Acme Corp",
    "tone": "playful",
    "goals": ["Win hearts", "Close tickets fast"],
    "do": ["Offer the FAQ link"],
    "dont": ["Discuss competitors"],
    "extra": "Open 9-17 on weekdays.",
}


def render(template_id, answers):
    template = catalog.template_get(template_id)
    return template_render(template=template, answers=template_answers_clean(template=template, answers=answers))


# --- the catalog -------------------------------------------------------------------------------


def test_catalog_covers_the_required_industries():
    ids = set(catalog.industry_ids())
    assert len(ids) >= 8
    assert {
        "customer-support",
        "ecommerce",
        "healthcare",
        "finance",
        "real-estate",
        "legal",
        "education",
        "it-services",
    } <= ids
    for industry in catalog.industry_list():
        assert industry.name and industry.description and industry.safety
        assert catalog.template_ids_of(industry.id), industry.id
    template_ids = [t.id for t in catalog.TEMPLATES]
    assert len(template_ids) == len(set(template_ids))
    for template in catalog.TEMPLATES:
        assert template.default_tone and template.suggested_goals and template.practices


@pytest.mark.parametrize("template", catalog.TEMPLATES, ids=lambda t: t.id)
def test_every_template_renders_the_answers_and_the_industry_rules(template):
    prompt = render(template.id, ANSWERS)
    industry = catalog.industry_get(template.industry)
    article = "an" if template.role[0].lower() in "aeiou" else "a"
    assert prompt.startswith(f"You are {article} {template.role} for Acme Corp. {template.mission}")
    for expected in (
        "Write in a playful tone: light and good-humoured",
        "1. Win hearts\n2. Close tickets fast",
        "- Offer the FAQ link",
        "## Never\n- Discuss competitors",
        "## What you know about Acme Corp\nOpen 9-17 on weekdays.",
        *[f"- {line}" for line in template.practices],
        *[f"- {line}" for line in industry.safety],
        "Stay on topics related to Acme Corp",
    ):
        assert expected in prompt, expected
    assert len([rule for rule in GENERAL_RULES if rule.split("{")[0][:40] in prompt]) == len(GENERAL_RULES)
    assert len(prompt) <= TEXT_LIMITS["system_prompt"]


@pytest.mark.parametrize(
    ("template_id", "phrase"),
    [
        ("patient-intake", "not a diagnosis"),
        ("clinic-faq", "call their local emergency number"),
        ("banking-assistant", "not personalised financial, investment, tax or legal advice"),
        ("finance-educator", "Never guarantee returns"),
        ("legal-intake", "not legal advice"),
        ("legal-information", "no lawyer-client relationship"),
        ("property-inquiry", "protected characteristic"),
        ("tutor", "rather than doing graded work"),
        ("it-helpdesk", "Never ask for passwords"),
    ],
)
def test_industry_safety_lines(template_id, phrase):
    assert phrase in render(template_id, {"company_name": "X"})


def test_defaults_and_normalisation():
    template = catalog.template_get("support-assistant")
    answers = template_answers_clean(
        template=template,
        answers={
            "company_name": "  Acme\n  Corp ",
            "goals": "- Answer fast\n\n* Be kind\n3. Escalate early\n",
            "do": ["  Say hello  ", "", "Smile\nwide"],
        },
    )
    assert answers.company_name == "Acme Corp"
    assert answers.tone == "friendly"
    assert answers.goals == ("Answer fast", "Be kind", "Escalate early")
    assert answers.do == ("Say hello", "Smile wide")
    assert answers.dont == ()
    prompt = template_render(template=template, answers=answers)
    assert "## Never" not in prompt
    assert "What you know about" not in prompt
    defaults = template_answers_clean(template=template, answers={"company_name": "Acme"})
    assert defaults.goals == template.suggested_goals
    assert "Write in this tone: cheerful but brief." in render(
        "tutor", {"company_name": "A", "tone": "cheerful but brief"}
    )


def test_largest_answers_fit_the_prompt_limit():
    answers = {
        "company_name": "C" * catalog.COMPANY_NAME_MAX,
        "tone": "t" * catalog.TONE_MAX,
        "goals": ["g" * catalog.ITEM_MAX] * catalog.ITEMS_MAX,
        "do": ["d" * catalog.ITEM_MAX] * catalog.ITEMS_MAX,
        "dont": ["n" * catalog.ITEM_MAX] * catalog.ITEMS_MAX,
        "extra": "e" * catalog.EXTRA_MAX,
    }
    for template in catalog.TEMPLATES:
        assert len(render(template.id, answers)) <= TEXT_LIMITS["system_prompt"]


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({}, "company_name"),
        ({"company_name": "   "}, "company_name"),
        ({"company_name": 42}, "company_name"),
        ({"company_name": "x" * 201}, "company_name"),
        ({"company_name": "A", "tone": "t" * 61}, "tone"),
        ({"company_name": "A", "goals": 5}, "goals"),
        ({"company_name": "A", "goals": [1, 2]}, "goals"),
        ({"company_name": "A", "goals": ["g"] * 13}, "goals"),
        ({"company_name": "A", "do": "just text"}, "do"),
        ({"company_name": "A", "dont": ["x" * 301]}, "dont"),
        ({"company_name": "A", "extra": "e" * 3001}, "extra"),
        ({"company_name": "A", "extra": ["list"]}, "extra"),
        ({"company_name": "A\x00B"}, "company_name"),
        ({"company_name": "A", "colour": "red"}, "colour"),
    ],
)
def test_bad_answers(answers, field):
    template = catalog.template_get("tutor")
    with pytest.raises(ApplicationError) as exc:
        template_answers_clean(template=template, answers=answers, prefix="answers.")
    assert exc.value.code == "validation_error"
    assert f"answers.{field}" in exc.value.details["fields"]


# --- API -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_industries_api(org_a):
    response = org_a.client("viewer").get("/api/v1/industries", {"page_size": 100})
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == len(catalog.industry_ids())
    body = page["results"]
    assert [i["id"] for i in body] == catalog.industry_ids()
    healthcare = next(i for i in body if i["id"] == "healthcare")
    assert healthcare["templates"] == ["patient-intake", "clinic-faq"]
    assert any("not a diagnosis" in line for line in healthcare["safety"])


@pytest.mark.django_db
def test_templates_api_lists_filters_and_details(org_a):
    client = org_a.client("viewer")
    everything = client.get("/api/v1/templates", {"page_size": 100}).json()
    assert everything["count"] == len(catalog.TEMPLATES)
    assert [t["id"] for t in everything["results"]] == [t.id for t in catalog.TEMPLATES]
    first = client.get("/api/v1/templates", {"page_size": 2}).json()
    assert [t["id"] for t in first["results"]] == [t.id for t in catalog.TEMPLATES[:2]]
    assert first["next"] and first["previous"] is None
    legal = client.get("/api/v1/templates", {"industry": "legal"}).json()["results"]
    assert [t["id"] for t in legal] == ["legal-intake", "legal-information"]
    assert set(legal[0]) == {"id", "industry", "name", "description", "agent_name", "default_tone", "suggested_goals"}
    bad = client.get("/api/v1/templates", {"industry": "astrology"})
    assert bad.status_code == 400
    assert "industry" in bad.json()["error"]["details"]["fields"]

    detail = client.get("/api/v1/templates/patient-intake").json()
    assert detail["industry"] == "healthcare"
    assert detail["default_tone"] == "calm"
    assert [f["name"] for f in detail["answer_fields"]] == ["company_name", "tone", "goals", "do", "dont", "extra"]
    company = detail["answer_fields"][0]
    assert (company["required"], company["max_length"], company["default"]) == (True, 200, None)
    tone = detail["answer_fields"][1]
    assert tone["default"] == "calm"
    assert "friendly" in tone["suggestions"]
    assert detail["answer_fields"][2]["default"] == list(catalog.template_get("patient-intake").suggested_goals)
    assert any("not a diagnosis" in line for line in detail["safety"])
    missing = client.get("/api/v1/templates/no-such-template")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "template_not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "operator", "viewer"])
def test_preview_renders_without_saving(org_a, role):
    response = org_a.client(role).post("/api/v1/templates/tutor/preview", {"answers": ANSWERS}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"template": "tutor", "prompt": render("tutor", ANSWERS)}
    assert not Agent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"answers": {}}, "answers.company_name"),
        ({"answers": {"company_name": "A", "goals": {"a": 1}}}, "answers.goals"),
        ({"answers": {"company_name": "A", "mood": "x"}}, "answers.mood"),
        ({"answers": "text"}, "answers"),
        ({}, "answers"),
        ({"answers": {"company_name": "A"}, "extra": 1}, "extra"),
    ],
)
def test_preview_bad_input(org_a, payload, field):
    response = org_a.client("viewer").post("/api/v1/templates/tutor/preview", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


@pytest.mark.django_db
def test_preview_of_unknown_template_is_404(org_a):
    response = org_a.client("viewer").post("/api/v1/templates/nope/preview", {"answers": ANSWERS}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_create_from_template_api(org_a):
    payload = {"template": "banking-assistant", "name": "Bank bot", "model": "gpt-4o-mini", "answers": ANSWERS}
    response = org_a.client("operator").post("/api/v1/agents/from-template", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["slug"], body["industry"], body["model"], body["status"]) == (
        "bank-bot",
        "finance",
        "gpt-4o-mini",
        "draft",
    )
    assert body["live_version"] is None
    assert body["system_prompt"] == render("banking-assistant", ANSWERS)
    assert body["description"].startswith("Banking assistant for Acme Corp.")
    assert body["created_by"] == "alpha-operator"
    assert not AgentVersion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"template": "nope", "name": "X", "answers": {"company_name": "A"}}, 400, "template"),
        ({"template": "tutor", "answers": {"company_name": "A"}}, 400, "name"),
        ({"template": "tutor", "name": "X", "answers": {}}, 400, "answers.company_name"),
        ({"template": "tutor", "name": "X", "model": "gpt-9", "answers": {"company_name": "A"}}, 400, "model"),
        ({"template": "tutor", "name": "X", "slug": "bad slug", "answers": {"company_name": "A"}}, 400, "slug"),
        ({"template": "tutor", "name": "X", "slug": "taken", "answers": {"company_name": "A"}}, 409, "slug"),
        ({"template": "tutor", "name": "X", "answers": {"company_name": "A"}, "tone": "x"}, 400, "tone"),
    ],
)
def test_create_from_template_errors(org_a, payload, status, field):
    AgentFactory(organization=org_a.organization, slug="taken")
    response = org_a.client("operator").post("/api/v1/agents/from-template", payload, format="json")
    assert response.status_code == status, response.json()
    assert field in response.json()["error"]["details"]["fields"]
    assert Agent.objects.count() == 1


@pytest.mark.django_db
def test_create_from_template_service(org_a):
    agent = agent_create_from_template(
        organization=org_a.organization,
        user=org_a.users["admin"],
        template_id="legal-intake",
        name="Intake",
        answers={"company_name": "Law & Co"},
    )
    assert (agent.industry, agent.slug, agent.status, agent.created_by) == (
        "legal",
        "intake",
        "draft",
        org_a.users["admin"],
    )
    assert "not legal advice" in agent.system_prompt
    assert "client intake assistant for Law & Co" in agent.system_prompt


# --- demo agents ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_agents_are_published_active_and_idempotent(settings):
    def seed(*args):
        out = StringIO()
        call_command("seed_demo", "--force", *args, stdout=out)
        return out.getvalue()

    def agent_lines(output):
        return output[output.index("  agent ") :]

    first = seed()
    agents = Agent.objects.filter(organization__slug="demo").order_by("slug")
    assert [(a.slug, a.status, a.live_version.number, a.model) for a in agents] == [
        ("it-helpdesk", "active", 1, settings.AGENTHUB_DEFAULT_MODEL),
        ("support", "active", 1, settings.AGENTHUB_DEFAULT_MODEL),
    ]
    assert agents[1].industry == "customer-support"
    assert "Demo Organization" in agents[1].system_prompt
    assert "agent support" in first and "/ws/v1/agents/it-helpdesk/chat/" in first
    assert agent_lines(seed()) == agent_lines(first)
    assert AgentVersion.objects.count() == 2

    # A changed, republished and disabled demo agent is left alone by a plain seed...
    support = agents[1]
    original = support.system_prompt
    Agent.objects.filter(pk=support.pk).update(system_prompt="Broken.")
    agent_publish(agent=support, user=None)
    Agent.objects.filter(pk=support.pk).update(status="disabled")
    seed()
    support.refresh_from_db()
    assert (support.status, support.live_version.number, support.system_prompt) == ("disabled", 2, "Broken.")
    # ...and restored, republished and reactivated by --reset.
    assert seed("--reset") == first.replace("support      Support assistant (v1", "support      Support assistant (v3")
    support.refresh_from_db()
    assert (support.status, support.live_version.number) == ("active", 3)
    assert support.system_prompt == support.live_version.system_prompt == original
    assert AgentVersion.objects.count() == 4
