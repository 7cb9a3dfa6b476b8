"""The agents API: CRUD, filters, the role matrix, status, bulk actions, bad
input, and the cross-organization sweep of every agents endpoint."""

import uuid

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from accounts.roles import role_at_least
from accounts.services import api_key_create
from agents.models import Agent, AgentStatus, AgentVersion
from agents.services.publishing import agent_publish
from agents.tests.factories import AgentFactory, published_agent
from chat.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
ROLES = ["owner", "admin", "operator", "member", "viewer"]
OPERATORS = ["owner", "admin", "operator"]
ADMINS = ["owner", "admin"]

# Every path of the agents app; accounts/tests/test_tenant_isolation.py adds
# them to its guard, and test_cross_organization_sweep below covers them.
AGENTS_SWEPT = {
    "/api/v1/agents",
    "/api/v1/agents/{id}",
    "/api/v1/agents/{id}/versions",
    "/api/v1/agents/{id}/publish",
    "/api/v1/agents/{id}/rollback",
    "/api/v1/agents/{id}/deploy",
    "/api/v1/agents/{id}/status",
    "/api/v1/agents/{id}/export",
    "/api/v1/agents/bulk",
    "/api/v1/agents/import",
    "/api/v1/agents/from-template",
    "/api/v1/templates",
    "/api/v1/templates/{id}",
    "/api/v1/templates/{id}/preview",
    "/api/v1/industries",
    "/api/v1/config",
}


def detail(agent, suffix=""):
    return f"{URL}/{agent.pk}{suffix}"


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def snapshot(agent):
    """Everything a denied or failed request must leave as it was."""
    agent.refresh_from_db()
    return (
        agent.name,
        agent.slug,
        agent.system_prompt,
        agent.model,
        agent.status,
        agent.live_version_id,
        agent.updated_by_id,
        AgentVersion.objects.filter(agent=agent).count(),
    )


# --- create ------------------------------------------------------------------------------------


def test_create_with_defaults(org_a):
    response = org_a.client("operator").post(URL, {"name": "Support Bot"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    agent = Agent.objects.get()
    assert body["id"] == str(agent.pk)
    assert agent.organization == org_a.organization
    assert {k: body[k] for k in ("name", "slug", "model", "temperature", "max_output_tokens", "max_tool_rounds")} == {
        "name": "Support Bot",
        "slug": "support-bot",
        "model": settings.AGENTHUB_DEFAULT_MODEL,
        "temperature": 0.7,
        "max_output_tokens": 1024,
        "max_tool_rounds": 5,
    }
    assert body["status"] == "draft"
    assert body["live_version"] is None
    assert body["has_unpublished_changes"] is True
    assert body["fallback_models"] == []
    assert body["created_by"] == body["updated_by"] == "alpha-operator"


def test_create_full_definition(org_a):
    payload = {
        "name": "Shop helper",
        "slug": "shop",
        "description": "Helps shoppers.",
        "industry": "ecommerce",
        "system_prompt": "  You help shoppers.\n",
        "model": "gpt-4o-mini",
        "fallback_models": ["gpt-4o", "offline"],
        "temperature": 0.2,
        "max_output_tokens": 2048,
        "max_tool_rounds": 0,
    }
    response = org_a.client("admin").post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in payload} == payload  # the prompt keeps its whitespace
    agent = Agent.objects.get(slug="shop")
    assert agent.fallback_models == ["gpt-4o", "offline"]


def test_slugs_are_derived_unique_and_explicit_clashes_are_409(org_a, org_b):
    client = org_a.client("operator")
    slugs = [client.post(URL, {"name": "Support"}, format="json").json()["slug"] for _ in range(3)]
    assert slugs == ["support", "support-2", "support-3"]
    response = client.post(URL, {"name": "Other", "slug": "support-2"}, format="json")
    error = assert_error(response, 409, "slug_taken")
    assert "slug" in error["details"]["fields"]
    assert Agent.objects.filter(organization=org_a.organization).count() == 3
    # Slugs are unique per organization only.
    assert org_b.client("operator").post(URL, {"name": "S", "slug": "support"}, format="json").status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "gpt-5-ultra"}, "model"),
        ({"fallback_models": ["nope"]}, "fallback_models"),
        ({"model": "offline", "fallback_models": ["offline"]}, "fallback_models"),
        ({"fallback_models": ["gpt-4o", "gpt-4o"]}, "fallback_models"),
        ({"fallback_models": ["gpt-4o"] * 6}, "fallback_models"),
        ({"industry": "astrology"}, "industry"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 40000}, "max_output_tokens"),
        ({"max_tool_rounds": 21}, "max_tool_rounds"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"max_tool_rounds": "many"}, "max_tool_rounds"),
        ({"fallback_models": "gpt-4o"}, "fallback_models"),
        ({"description": {"nested": True}}, "description"),
        ({"system_prompt": ["a"]}, "system_prompt"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"description": "x" * 2001}, "description"),
        ({"system_prompt": "x" * 20001}, "system_prompt"),
        ({"name": "a\x00b"}, "name"),
        ({"system_prompt": "a\x00b"}, "system_prompt"),
        ({"nmae": "typo"}, "nmae"),
    ],
)
def test_bad_definitions_are_400_by_field(org_a, payload, field):
    body = {"name": "Agent", **payload}
    error = assert_error(org_a.client("operator").post(URL, body, format="json"), 400, "validation_error")
    assert field in error["details"]["fields"], error
    assert Agent.objects.count() == 0


@pytest.mark.parametrize("body", [[], ["a"], "text", 42])
def test_non_object_bodies_are_400(org_a, body):
    assert_error(org_a.client("operator").post(URL, body, format="json"), 400)
    assert Agent.objects.count() == 0


def test_models_follow_the_configuration(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192", "llama3:8b"]
    client = org_a.client("operator")
    assert client.post(URL, {"name": "A", "model": "llama3:8b"}, format="json").status_code == 201
    error = assert_error(client.post(URL, {"name": "B", "model": "gpt-4o"}, format="json"), 400)
    assert error["details"]["fields"]["model"] == [
        "'gpt-4o' is not an available model. Choose one of: offline, llama3:8b."
    ]


# --- read, filter, search, order -----------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads(org_a, role):
    agent = published_agent(org_a.organization, name="Alpha", slug="alpha")
    client = org_a.client(role)
    listing = client.get(URL)
    assert listing.status_code == 200
    assert [a["slug"] for a in listing.json()["results"]] == ["alpha"]
    one = client.get(detail(agent))
    assert one.status_code == 200
    version = agent.live_version
    assert one.json()["live_version"] == {
        "id": str(version.pk),
        "number": 1,
        "published_at": version.published_at.isoformat().replace("+00:00", "Z"),
    }
    assert one.json()["status"] == "active"
    assert one.json()["has_unpublished_changes"] is False
    assert client.get(detail(agent, "/versions")).status_code == 200
    assert client.get(detail(agent, "/export")).status_code == 200


def test_filters_search_and_ordering(org_a):
    org = org_a.organization
    published_agent(org, name="Zeta helpdesk", slug="zeta", industry="it-services", model="gpt-4o")
    AgentFactory(organization=org, name="Alpha shop", slug="alpha", industry="ecommerce", description="Sells socks")
    published_agent(org, name="Mid support", slug="mid", status=AgentStatus.DISABLED, industry="customer-support")
    client = org_a.client("viewer")

    def slugs(**params):
        response = client.get(URL, params)
        assert response.status_code == 200, response.json()
        return [a["slug"] for a in response.json()["results"]]

    assert slugs() == ["alpha", "mid", "zeta"]
    assert slugs(status="active") == ["zeta"]
    assert slugs(status="draft") == ["alpha"]
    assert slugs(status="disabled") == ["mid"]
    assert slugs(industry="ecommerce") == ["alpha"]
    assert slugs(model="gpt-4o") == ["zeta"]
    assert slugs(model="offline") == ["alpha", "mid"]
    assert slugs(search="socks") == ["alpha"]
    assert slugs(search="ZETA") == ["zeta"]
    assert slugs(ordering="-name") == ["zeta", "mid", "alpha"]
    assert slugs(ordering="created_at") == ["zeta", "alpha", "mid"]
    assert slugs(ordering="-updated_at")[0] == "mid"
    assert slugs(ordering="system_prompt") == ["alpha", "mid", "zeta"]  # not orderable: ignored
    assert_error(client.get(URL, {"status": "sleeping"}), 400, "validation_error")
    assert_error(client.get(URL, {"industry": "astrology"}), 400, "validation_error")


def test_versions_are_listed_newest_first_with_the_live_one_marked(org_a):
    agent = published_agent(org_a.organization)
    agent_publish(agent=agent, user=org_a.users["operator"], note="second")
    agent_publish(agent=agent, user=None, note="third")
    client = org_a.client("viewer")
    assert client.post(detail(agent, "/rollback"), {"version": 2}, format="json").status_code == 403
    org_a.client("operator").post(detail(agent, "/rollback"), {"version": 2}, format="json")
    body = client.get(detail(agent, "/versions")).json()
    assert body["count"] == 3
    assert [(v["number"], v["is_live"], v["note"]) for v in body["results"]] == [
        (3, False, "third"),
        (2, True, "second"),
        (1, False, "v1"),
    ]
    assert body["results"][1]["published_by"] == "alpha-operator"
    assert body["results"][0]["published_by"] is None
    assert body["results"][0]["tools"] == []
    assert body["results"][0]["system_prompt"] == agent.system_prompt


# --- update and delete ---------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_records_the_editor(org_a):
    agent = published_agent(org_a.organization, user=org_a.users["owner"], slug="bot")
    agent.created_by = org_a.users["owner"]
    agent.save(update_fields=["created_by"])
    live_before = agent.live_version_id
    response = org_a.client("operator").patch(
        detail(agent), {"system_prompt": "New prompt.", "temperature": 1.1}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["system_prompt"] == "New prompt."
    assert body["temperature"] == 1.1
    assert body["updated_by"] == "alpha-operator"
    assert body["created_by"] == "alpha-owner"
    assert body["has_unpublished_changes"] is True
    assert body["live_version"]["id"] == str(live_before)
    agent.refresh_from_db()
    assert agent.live_version.system_prompt == "You are a helpful assistant."  # the live version is untouched
    assert agent.status == "active"


def test_patch_slug_clash_is_409_and_changes_nothing(org_a):
    AgentFactory(organization=org_a.organization, slug="taken")
    agent = AgentFactory(organization=org_a.organization, slug="mine")
    before = snapshot(agent)
    response = org_a.client("operator").patch(detail(agent), {"slug": "taken", "name": "Renamed"}, format="json")
    assert_error(response, 409, "slug_taken")
    assert snapshot(agent) == before


def test_patch_refuses_status_and_unknown_fields(org_a):
    agent = AgentFactory(organization=org_a.organization)
    before = snapshot(agent)
    for payload in ({"status": "active"}, {"live_version": None}, {"organization": "bravo"}):
        error = assert_error(org_a.client("owner").patch(detail(agent), payload, format="json"), 400)
        assert list(error["details"]["fields"]) == list(payload)
    assert snapshot(agent) == before


@pytest.mark.parametrize("role", ROLES)
def test_put_is_not_allowed_whatever_the_role(org_a, role):
    """An unsupported method is a 405 for everyone, not a 403 for the roles
    that may not write."""
    agent = AgentFactory(organization=org_a.organization)
    error = assert_error(org_a.client(role).put(detail(agent), {"name": "x"}, format="json"), 405)
    assert "PUT" in error["message"]


@pytest.mark.parametrize("role", ROLES)
def test_write_role_matrix(org_a, role):
    agent = AgentFactory(organization=org_a.organization, slug="bot")
    client = org_a.client(role)
    before = snapshot(agent)

    created = client.post(URL, {"name": "New"}, format="json")
    assert created.status_code == (201 if role in OPERATORS else 403)
    assert Agent.objects.filter(slug="new").exists() is (role in OPERATORS)

    patched = client.patch(detail(agent), {"name": "Renamed"}, format="json")
    assert patched.status_code == (200 if role in OPERATORS else 403)
    if role not in OPERATORS:
        assert snapshot(agent) == before

    published = client.post(detail(agent, "/publish"), {}, format="json")
    assert published.status_code == (200 if role in OPERATORS else 403)
    assert AgentVersion.objects.filter(agent=agent).count() == (1 if role in OPERATORS else 0)

    deleted = client.delete(detail(agent))
    assert deleted.status_code == (204 if role in ADMINS else 403)
    assert Agent.objects.filter(pk=agent.pk).exists() is (role not in ADMINS)


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_readers_cannot_use_any_write_endpoint(org_a, role):
    agent = published_agent(org_a.organization, slug="bot")
    before = snapshot(agent)
    client = org_a.client(role)
    attempts = [
        client.post(detail(agent, "/rollback"), {"version": 1}, format="json"),
        client.post(detail(agent, "/deploy"), {}, format="json"),
        client.post(detail(agent, "/status"), {"status": "disabled"}, format="json"),
        client.post(f"{URL}/bulk", {"action": "disable", "ids": [str(agent.pk)]}, format="json"),
        client.post(f"{URL}/import", {"yaml": "apiVersion: agenthub/v1"}, format="json"),
        client.post(
            f"{URL}/from-template",
            {"template": "tutor", "name": "T", "answers": {"company_name": "X"}},
            format="json",
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert snapshot(agent) == before
    assert Agent.objects.count() == 1


def test_delete_removes_versions_and_conversations(org_a):
    from chat.models import Conversation

    agent = published_agent(org_a.organization)
    ConversationFactory(agent=agent)
    assert org_a.client("admin").delete(detail(agent)).status_code == 204
    assert not Agent.objects.exists()
    assert not AgentVersion.objects.exists()
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000Z", "%00", "' OR 1=1"])
def test_invalid_ids_are_404(org_a, bad_id):
    AgentFactory(organization=org_a.organization)
    client = org_a.client("owner")
    assert_error(client.get(f"{URL}/{bad_id}"), 404)
    assert_error(client.patch(f"{URL}/{bad_id}", {"name": "x"}, format="json"), 404)
    assert_error(client.delete(f"{URL}/{bad_id}"), 404)
    assert_error(client.post(f"{URL}/{bad_id}/publish", {}, format="json"), 404)
    assert_error(client.get(f"{URL}/{bad_id}/export"), 404)
    assert Agent.objects.count() == 1


def test_unknown_agent_is_404(org_a):
    missing = f"{URL}/{uuid.uuid4()}"
    client = org_a.client("owner")
    assert assert_error(client.get(missing), 404, "agent_not_found")["message"]
    assert_error(client.post(f"{missing}/status", {"status": "active"}, format="json"), 404, "agent_not_found")


# --- status --------------------------------------------------------------------------------------


def test_activating_needs_a_published_version(org_a):
    agent = AgentFactory(organization=org_a.organization)
    client = org_a.client("operator")
    error = assert_error(client.post(detail(agent, "/status"), {"status": "active"}, format="json"), 409)
    assert error["code"] == "agent_not_published"
    assert "publish before activating" in error["message"]
    agent.refresh_from_db()
    assert agent.status == "draft"

    assert client.post(detail(agent, "/publish"), {"note": "first"}, format="json").status_code == 200
    response = client.post(detail(agent, "/status"), {"status": "active"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert response.json()["updated_by"] == "alpha-operator"
    response = client.post(detail(agent, "/status"), {"status": "disabled"}, format="json")
    assert response.json()["status"] == "disabled"
    assert client.post(detail(agent, "/status"), {"status": "draft"}, format="json").json()["status"] == "draft"


@pytest.mark.parametrize("payload", [{"status": "paused"}, {}, {"status": None}, {"status": "active", "x": 1}])
def test_bad_status_input(org_a, payload):
    agent = published_agent(org_a.organization, status=AgentStatus.DISABLED)
    assert_error(org_a.client("operator").post(detail(agent, "/status"), payload, format="json"), 400)
    agent.refresh_from_db()
    assert agent.status == "disabled"


# --- bulk ------------------------------------------------------------------------------------------


@pytest.fixture
def three(org_a):
    org = org_a.organization
    return [
        published_agent(org, slug="one", status=AgentStatus.DISABLED),
        published_agent(org, slug="two", status=AgentStatus.DISABLED),
        AgentFactory(organization=org, slug="draft"),
    ]


def statuses():
    return dict(Agent.objects.values_list("slug", "status"))


def test_bulk_enable_disable_delete(org_a, three):
    one, two, draft = three
    client = org_a.client("operator")
    response = client.post(
        f"{URL}/bulk", {"action": "enable", "ids": [str(one.pk), str(two.pk), str(one.pk)]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"action": "enable", "count": 2, "ids": [str(one.pk), str(two.pk)]}
    assert statuses() == {"one": "active", "two": "active", "draft": "draft"}
    assert Agent.objects.get(pk=one.pk).updated_by == org_a.users["operator"]

    response = client.post(f"{URL}/bulk", {"action": "disable", "ids": [str(two.pk), str(draft.pk)]}, format="json")
    assert response.json()["count"] == 2
    assert statuses() == {"one": "active", "two": "disabled", "draft": "disabled"}

    response = org_a.client("admin").post(
        f"{URL}/bulk", {"action": "delete", "ids": [str(one.pk), str(draft.pk)]}, format="json"
    )
    assert response.json() == {"action": "delete", "count": 2, "ids": [str(one.pk), str(draft.pk)]}
    assert statuses() == {"two": "disabled"}


def test_bulk_delete_needs_admin(org_a, three):
    response = org_a.client("operator").post(
        f"{URL}/bulk", {"action": "delete", "ids": [str(a.pk) for a in three]}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert Agent.objects.count() == 3


def test_bulk_is_all_or_nothing_and_reports_unknown_ids(org_a, org_b, three):
    foreign = published_agent(org_b.organization, slug="foreign", status=AgentStatus.DISABLED)
    ghost = str(uuid.uuid4())
    ids = [str(three[0].pk), str(foreign.pk), ghost]
    for action in ("enable", "disable", "delete"):
        response = org_a.client("owner").post(f"{URL}/bulk", {"action": action, "ids": ids}, format="json")
        error = assert_error(response, 404, "agents_not_found")
        assert error["details"] == {"ids": [str(foreign.pk), ghost]}
    assert statuses() == {"one": "disabled", "two": "disabled", "draft": "draft", "foreign": "disabled"}


def test_bulk_enable_of_unpublished_agents_is_409_listing_them(org_a, three):
    one, _, draft = three
    response = org_a.client("operator").post(
        f"{URL}/bulk", {"action": "enable", "ids": [str(one.pk), str(draft.pk)]}, format="json"
    )
    error = assert_error(response, 409, "agent_not_published")
    assert error["details"] == {"ids": [str(draft.pk)]}
    assert statuses() == {"one": "disabled", "two": "disabled", "draft": "draft"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "explode", "ids": []}, "action"),
        ({"action": "enable", "ids": []}, "ids"),
        ({"action": "enable", "ids": ["not-a-uuid"]}, "ids"),
        ({"action": "enable", "ids": "all"}, "ids"),
        ({"action": "enable"}, "ids"),
        ({"action": "enable", "ids": [str(uuid.uuid4()) for _ in range(101)]}, "ids"),
        ({"action": "enable", "ids": [], "force": True}, "force"),
    ],
)
def test_bulk_bad_input(org_a, three, payload, field):
    error = assert_error(org_a.client("owner").post(f"{URL}/bulk", payload, format="json"), 400, "validation_error")
    assert field in error["details"]["fields"]
    assert statuses() == {"one": "disabled", "two": "disabled", "draft": "draft"}


def test_bulk_get_is_405(org_a):
    assert_error(org_a.client("owner").get(f"{URL}/bulk"), 405)


# --- configuration ---------------------------------------------------------------------------------


def test_config(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192", "gpt-4o-mini:128000", "llama3:8b"]
    settings.AGENTHUB_DEFAULT_MODEL = "offline"
    response = org_a.client("viewer").get("/api/v1/config")
    assert response.status_code == 200
    assert response.json() == {
        "models": [
            {"name": "offline", "provider": "offline", "context_window": 8192},
            {"name": "gpt-4o-mini", "provider": "openai", "context_window": 128000},
            {"name": "llama3:8b", "provider": "openai", "context_window": 8192},
        ],
        "default_model": "offline",
        "defaults": {"temperature": 0.7, "max_output_tokens": 1024, "max_tool_rounds": 5},
        "limits": {
            "temperature": {"min": 0.0, "max": 2.0},
            "max_output_tokens": {"min": 1.0, "max": 32768.0},
            "max_tool_rounds": {"min": 0.0, "max": 20.0},
            "system_prompt_max_chars": 20000,
            "description_max_chars": 2000,
            "max_fallback_models": 5,
        },
        "chat_max_prompt_chars": settings.CHAT_MAX_PROMPT_CHARS,
    }


def test_catalog_endpoints_need_authentication(api_client):
    for path in ("/api/v1/config", "/api/v1/industries", "/api/v1/templates", "/api/v1/templates/tutor", URL):
        assert_error(api_client.get(path), 401, "not_authenticated")


# --- cross-organization sweep ----------------------------------------------------------------------


def test_swept_paths_exist_in_the_schema():
    paths = set(SchemaGenerator().get_schema(request=None, public=True)["paths"])
    missing = AGENTS_SWEPT - paths
    assert not missing, sorted(missing)


@pytest.mark.parametrize("role", ["owner", "operator", "viewer"])
def test_cross_organization_sweep(org_a, org_b, role):
    foreign = published_agent(org_b.organization, name="Bravo secret", slug="bravo-bot", system_prompt="bravo-only")
    agent_publish(agent=foreign, user=None, note="bravo v2")
    before = snapshot(foreign)
    mine = AgentFactory(organization=org_a.organization, slug="alpha-bot")
    client = org_a.client(role)

    reads = [
        client.get(detail(foreign)),
        client.get(detail(foreign, "/versions")),
        client.get(detail(foreign, "/export")),
        client.get(detail(foreign, "/export"), {"version": 1}),
    ]
    writes = [  # (response, the role the endpoint needs)
        (client.patch(detail(foreign), {"name": "pwned"}, format="json"), "operator"),
        (client.delete(detail(foreign)), "admin"),
        (client.post(detail(foreign, "/publish"), {}, format="json"), "operator"),
        (client.post(detail(foreign, "/rollback"), {"version": 1}, format="json"), "operator"),
        (client.post(detail(foreign, "/deploy"), {}, format="json"), "operator"),
        (client.post(detail(foreign, "/status"), {"status": "disabled"}, format="json"), "operator"),
        (client.post(f"{URL}/bulk", {"action": "disable", "ids": [str(foreign.pk)]}, format="json"), "operator"),
        (client.post(f"{URL}/bulk", {"action": "delete", "ids": [str(foreign.pk)]}, format="json"), "admin"),
    ]
    assert [r.status_code for r in reads] == [404] * len(reads)
    # Another organization's agent is not found; a role that may not write at
    # all is refused before any lookup.  Neither reveals anything.
    assert [r.status_code for r, _ in writes] == [404 if role_at_least(role, needs) else 403 for _, needs in writes]
    writes = [r for r, _ in writes]
    for response in reads + writes:
        assert "bravo" not in response.content.decode().lower()
    assert snapshot(foreign) == before

    listing = client.get(URL).json()
    assert [a["slug"] for a in listing["results"]] == ["alpha-bot"]
    assert client.get(URL, {"search": "bravo"}).json()["count"] == 0

    if role != "viewer":
        # Import and from-template with the other organization's slug create
        # in the caller's organization and leave the other one alone.
        document = (
            "apiVersion: agenthub/v1\nkind: Agent\nmetadata: {name: Mine, slug: bravo-bot}\nspec: {model: offline}\n"
        )
        imported = client.post(f"{URL}/import?update=true", document, content_type="application/yaml")
        assert imported.status_code == 201, imported.json()
        made = client.post(
            f"{URL}/from-template",
            {"template": "tutor", "name": "T", "slug": "bravo-tutor", "answers": {"company_name": "Alpha"}},
            format="json",
        )
        assert made.status_code == 201
        assert set(Agent.objects.filter(organization=org_a.organization).values_list("slug", flat=True)) == {
            "alpha-bot",
            "bravo-bot",
            "bravo-tutor",
        }
        assert snapshot(foreign) == before
        assert Agent.objects.filter(organization=org_b.organization).count() == 1

    # The catalog is the same for everyone and holds no tenant data.
    other = org_b.client(role)
    for path in ("/api/v1/templates", "/api/v1/templates/tutor", "/api/v1/industries", "/api/v1/config"):
        assert client.get(path).json() == other.get(path).json()
    preview = {"answers": {"company_name": "Same"}}
    assert (
        client.post("/api/v1/templates/tutor/preview", preview, format="json").json()
        == other.post("/api/v1/templates/tutor/preview", preview, format="json").json()
    )
    assert mine.organization == org_a.organization


def test_api_key_of_another_organization_sees_only_its_own(org_a, org_b):
    from rest_framework.test import APIClient

    mine = AgentFactory(organization=org_a.organization, slug="alpha-bot")
    theirs = AgentFactory(organization=org_b.organization, slug="bravo-bot")
    _, raw = api_key_create(organization=org_b.organization, name="k", role="admin", actor_role="owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(detail(mine)).status_code == 404
    assert client.delete(detail(mine)).status_code == 404
    assert Agent.objects.filter(pk=mine.pk).exists()
    assert [a["slug"] for a in client.get(URL).json()["results"]] == ["bravo-bot"]
    created = client.post(URL, {"name": "By key"}, format="json")
    assert created.status_code == 201
    assert created.json()["created_by"] is None
    assert Agent.objects.get(pk=created.json()["id"]).organization == org_b.organization
    assert theirs.organization == org_b.organization


def test_header_naming_another_organization_is_404(org_a, org_b):
    AgentFactory(organization=org_b.organization)
    response = org_a.client("owner").get(URL, HTTP_X_ORGANIZATION="bravo")
    assert_error(response, 404, "organization_not_found")
