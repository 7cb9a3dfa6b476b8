"""The tools API: the tool catalog, an agent's tool grants, drafts (confirm,
reject, visibility, filters) and tool invocations, with the role matrix and
the cross-organization sweep of every path."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.roles import role_at_least
from accounts.services import api_key_create
from agents.models import AgentTool, AgentVersion
from agents.services.publishing import agent_publish
from agents.tests.factories import AgentFactory, published_agent
from chat.models import Message
from chat.tests.factories import ConversationFactory
from tools.models import Draft, DraftStatus, ToolInvocation
from tools.tests.factories import DraftFactory, HttpToolFactory, ToolInvocationFactory

pytestmark = pytest.mark.django_db

TOOLS = "/api/v1/tools"
DRAFTS = "/api/v1/drafts"
INVOCATIONS = "/api/v1/tool-invocations"
ROLES = ["owner", "admin", "operator", "member", "viewer"]
OPERATORS = ["owner", "admin", "operator"]
BUILTINS = ["calculator", "current_time", "http_request", "send_email"]
# The test settings also register the tools of agents/tests/tools_for_tests.py.
TEST_TOOLS = ["test_poison", "test_slow_effect", "test_worker_echo"]

# Every path of the tools API; accounts/tests/test_tenant_isolation.py adds
# them to its guard, and test_cross_organization_sweep below covers them.
TOOLS_SWEPT = {
    "/api/v1/tools",
    "/api/v1/agents/{id}/tools",
    "/api/v1/drafts",
    "/api/v1/drafts/{id}",
    "/api/v1/drafts/{id}/confirm",
    "/api/v1/drafts/{id}/reject",
    "/api/v1/tool-invocations",
    "/api/v1/tool-invocations/{id}",
}


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def grants_url(agent):
    return f"/api/v1/agents/{agent.pk}/tools"


def http_tool(organization, name, **fields):
    return HttpToolFactory(organization=organization, name=name, **fields)


def conversation_of(agent, **fields):
    return ConversationFactory(agent=agent, **fields)


def make_draft(organization, *, arguments=None, expires_in=3600, **fields):
    if arguments is not None:
        fields["arguments"] = arguments
    return DraftFactory(organization=organization, expires_at=timezone.now() + timedelta(seconds=expires_in), **fields)


def make_invocation(organization, **fields):
    return ToolInvocationFactory(organization=organization, **fields)


def draft_state(draft):
    """Everything a refused or failed decision must leave as it was."""
    draft.refresh_from_db()
    return (
        draft.status,
        draft.decided_by_id,
        draft.decided_by_api_key_id,
        draft.decided_at,
        draft.decision_note,
        draft.edited_arguments,
        draft.result,
        draft.updated_at,
        ToolInvocation.objects.filter(draft=draft).count(),
    )


def key_client(organization, role, name="key"):
    key, raw = api_key_create(organization=organization, name=name, role=role, actor_role="owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return key, client


# --- the catalog -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_catalog_lists_builtins_and_only_the_organizations_enabled_http_tools(org_a, org_b, role):
    http_tool(org_a.organization, "crm_lookup", requires_approval=True, approver_role="admin", timeout_seconds=7)
    http_tool(org_a.organization, "old_lookup", enabled=False)
    http_tool(org_b.organization, "bravo_lookup")
    response = org_a.client(role).get(TOOLS, {"page_size": 100})
    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}
    tools = {t["name"]: t for t in response.json()["results"]}
    assert list(tools) == sorted([*BUILTINS, *TEST_TOOLS, "crm_lookup"])
    assert tools["calculator"] == {
        "name": "calculator",
        "description": tools["calculator"]["description"],
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": 500}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        "min_role": "viewer",
        "requires_approval": False,
        "approver_role": "operator",
        "allow_self_approval": True,
        "execution": "inline",
        "timeout_seconds": 2.0,
        "max_result_chars": 16000,
        "source": "builtin",
    }
    assert (tools["send_email"]["requires_approval"], tools["send_email"]["execution"]) == (True, "celery")
    crm = tools["crm_lookup"]
    assert (crm["source"], crm["requires_approval"], crm["approver_role"], crm["timeout_seconds"]) == (
        "http",
        True,
        "admin",
        7.0,
    )
    assert crm["parameters"]["properties"] == {"q": {"type": "string"}}
    other = org_b.client(role).get(TOOLS, {"page_size": 100}).json()["results"]
    assert [t["name"] for t in other] == sorted([*BUILTINS, *TEST_TOOLS, "bravo_lookup"])


def test_tool_endpoints_need_authentication(api_client):
    draft_id = uuid.uuid4()
    for path in (TOOLS, DRAFTS, f"{DRAFTS}/{draft_id}", INVOCATIONS, f"/api/v1/agents/{draft_id}/tools"):
        assert_error(api_client.get(path), 401, "not_authenticated")
    assert_error(api_client.post(f"{DRAFTS}/{draft_id}/confirm", {}, format="json"), 401, "not_authenticated")


# --- grants --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_grants_put_role_matrix(org_a, role):
    agent = AgentFactory(organization=org_a.organization)
    AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="current_time")
    body = {"tools": [{"tool": "calculator"}, {"tool": "send_email", "min_role": "operator"}]}
    response = org_a.client(role).put(grants_url(agent), body, format="json")
    allowed = role in OPERATORS
    assert response.status_code == (200 if allowed else 403)
    stored = sorted(AgentTool.objects.filter(agent=agent).values_list("tool", "min_role", "requires_approval"))
    if allowed:
        assert stored == [("calculator", "", None), ("send_email", "operator", None)]
        agent.refresh_from_db()
        assert agent.updated_by == org_a.users[role]
    else:
        assert stored == [("current_time", "", None)]
        agent.refresh_from_db()
        assert agent.updated_by is None


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_grants(org_a, role):
    agent = published_agent(org_a.organization)
    AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="calculator", requires_approval=True)
    response = org_a.client(role).get(grants_url(agent))
    assert response.status_code == 200
    assert response.json() == {
        "agent": str(agent.pk),
        "tools": [{"tool": "calculator", "min_role": None, "requires_approval": True}],
        "published": [],
        "unpublished": True,
        "detail": "Grants apply to chats when the agent is next published.",
    }


def test_grants_apply_on_the_next_publish(org_a):
    client = org_a.client("operator")
    agent = AgentFactory(organization=org_a.organization)
    first = client.get(grants_url(agent)).json()
    assert (first["tools"], first["published"], first["unpublished"]) == ([], None, True)

    grants = [
        {"tool": "calculator", "min_role": "member", "requires_approval": None},
        {"tool": "send_email", "min_role": None, "requires_approval": False},
    ]
    response = client.put(grants_url(agent), {"tools": grants[::-1]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["tools"] == grants  # by tool name
    assert (response.json()["published"], response.json()["unpublished"]) == (None, True)

    assert client.post(f"/api/v1/agents/{agent.pk}/publish", {}, format="json").status_code == 200
    assert AgentVersion.objects.get(agent=agent).tools == grants
    published = client.get(grants_url(agent)).json()
    assert (published["tools"], published["published"], published["unpublished"]) == (grants, grants, False)

    # Changing the grants leaves the live version alone until the next publish.
    changed = client.put(grants_url(agent), {"tools": [{"tool": "calculator"}]}, format="json").json()
    assert changed["tools"] == [{"tool": "calculator", "min_role": None, "requires_approval": None}]
    assert (changed["published"], changed["unpublished"]) == (grants, True)
    assert client.get(f"/api/v1/agents/{agent.pk}").json()["has_unpublished_changes"] is True
    assert AgentVersion.objects.get(agent=agent).tools == grants

    emptied = client.put(grants_url(agent), {"tools": []}, format="json")
    assert emptied.status_code == 200
    assert emptied.json()["tools"] == []
    assert AgentTool.objects.filter(agent=agent).count() == 0


def test_unchanged_grants_keep_their_rows(org_a):
    agent = AgentFactory(organization=org_a.organization)
    kept = AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="calculator")
    changed = AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="send_email")
    body = {"tools": [{"tool": "calculator"}, {"tool": "send_email", "requires_approval": False}]}
    assert org_a.client("admin").put(grants_url(agent), body, format="json").status_code == 200
    rows = {row.tool: row for row in AgentTool.objects.filter(agent=agent)}
    assert (rows["calculator"].pk, rows["calculator"].created_at) == (kept.pk, kept.created_at)
    assert (rows["send_email"].pk, rows["send_email"].requires_approval) == (changed.pk, False)


def test_unknown_tools_are_400_naming_them_and_nothing_changes(org_a, org_b):
    http_tool(org_a.organization, "old_lookup", enabled=False)
    http_tool(org_b.organization, "bravo_lookup")
    http_tool(org_a.organization, "crm_lookup")
    agent = AgentFactory(organization=org_a.organization)
    AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="current_time")
    body = {"tools": [{"tool": "calculator"}, {"tool": "bravo_lookup"}, {"tool": "old_lookup"}, {"tool": "teleport"}]}
    error = assert_error(org_a.client("operator").put(grants_url(agent), body, format="json"), 400, "unknown_tools")
    assert error["details"]["tools"] == ["bravo_lookup", "old_lookup", "teleport"]
    message = error["details"]["fields"]["tools"][0]
    assert "bravo_lookup, old_lookup, teleport" in message
    assert list(AgentTool.objects.filter(agent=agent).values_list("tool", flat=True)) == ["current_time"]
    # The organization's own enabled HTTP tool can be granted.
    ok = org_a.client("operator").put(grants_url(agent), {"tools": [{"tool": "crm_lookup"}]}, format="json")
    assert ok.status_code == 200
    assert list(AgentTool.objects.filter(agent=agent).values_list("tool", flat=True)) == ["crm_lookup"]


def test_duplicate_grants_are_400_and_nothing_changes(org_a):
    agent = AgentFactory(organization=org_a.organization)
    AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="current_time")
    body = {"tools": [{"tool": "calculator"}, {"tool": "calculator", "min_role": "admin"}]}
    error = assert_error(org_a.client("operator").put(grants_url(agent), body, format="json"), 400, "validation_error")
    assert error["details"]["tools"] == ["calculator"]
    assert "calculator" in error["details"]["fields"]["tools"][0]
    assert list(AgentTool.objects.filter(agent=agent).values_list("tool", flat=True)) == ["current_time"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "tools"),
        ({"tools": None}, "tools"),
        ({"tools": "calculator"}, "tools"),
        ({"tools": ["calculator"]}, "tools"),
        ({"tools": [{"tool": ""}]}, "tools"),
        ({"tools": [{"tool": "calculator", "min_role": "god"}]}, "tools"),
        ({"tools": [{"tool": "calculator", "requires_approval": "yes"}]}, "tools"),
        ({"tools": [{"tool": "calculator", "requires_approval": 1}]}, "tools"),
        ({"tools": [{"tool": "calculator", "extra": 1}]}, "tools"),
        ({"tools": [{"tool": "x" * 65}]}, "tools"),
        ({"tools": [], "publish": True}, "publish"),
    ],
)
def test_bad_grant_bodies_are_400(org_a, body, field):
    agent = AgentFactory(organization=org_a.organization)
    error = assert_error(org_a.client("operator").put(grants_url(agent), body, format="json"), 400, "validation_error")
    assert field in error["details"]["fields"]
    assert AgentTool.objects.filter(agent=agent).count() == 0


def test_grants_of_unknown_or_malformed_agents_are_404(org_a):
    client = org_a.client("operator")
    for agent_id in (uuid.uuid4(), "not-a-uuid"):
        assert_error(client.get(f"/api/v1/agents/{agent_id}/tools"), 404, "agent_not_found")
        response = client.put(f"/api/v1/agents/{agent_id}/tools", {"tools": []}, format="json")
        assert_error(response, 404, "agent_not_found")


def test_grants_post_and_patch_are_405(org_a):
    agent = AgentFactory(organization=org_a.organization)
    client = org_a.client("owner")
    assert_error(client.post(grants_url(agent), {"tools": []}, format="json"), 405)
    assert_error(client.patch(grants_url(agent), {"tools": []}, format="json"), 405)


# --- drafts: visibility ------------------------------------------------------------------------------


@pytest.fixture
def drafts(org_a):
    """Three drafts of org A: the member's, the operator's, and one made with
    a member API key."""
    org = org_a.organization
    key, key_http = key_client(org, "member", name="member-key")
    return {
        "member": make_draft(org, requested_by=org_a.users["member"]),
        "operator": make_draft(org, requested_by=org_a.users["operator"], tool="send_email", arguments={}),
        "key": make_draft(org, requested_by_api_key=key),
        "key_client": key_http,
    }


@pytest.mark.parametrize("role", ROLES)
def test_draft_visibility_by_role(org_a, drafts, role):
    client = org_a.client(role)
    listing = client.get(DRAFTS)
    if role == "viewer":
        assert_error(listing, 403, "permission_denied")
        assert_error(client.get(f"{DRAFTS}/{drafts['member'].pk}"), 403, "permission_denied")
        return
    assert listing.status_code == 200
    expected = ["member", "operator", "key"] if role in OPERATORS else ["member"]
    assert listing.json()["count"] == len(expected)
    assert {d["id"] for d in listing.json()["results"]} == {str(drafts[name].pk) for name in expected}
    for name in ("member", "operator", "key"):
        one = client.get(f"{DRAFTS}/{drafts[name].pk}")
        assert one.status_code == (200 if name in expected else 404)


def test_api_key_members_see_their_keys_drafts(org_a, drafts):
    client = drafts["key_client"]
    listing = client.get(DRAFTS).json()
    assert [d["id"] for d in listing["results"]] == [str(drafts["key"].pk)]
    assert client.get(f"{DRAFTS}/{drafts['member'].pk}").status_code == 404
    _, operator_key = key_client(org_a.organization, "operator", name="operator-key")
    assert operator_key.get(DRAFTS).json()["count"] == 3


def test_draft_detail_shape(org_a):
    agent = published_agent(org_a.organization)
    conversation = conversation_of(agent, user=org_a.users["member"])
    draft = make_draft(
        org_a.organization,
        agent=agent,
        conversation=conversation,
        requested_by=org_a.users["member"],
        approver_role="admin",
        allow_self_approval=False,
        result="r" * 600,
    )
    client = org_a.client("operator")
    body = client.get(f"{DRAFTS}/{draft.pk}").json()
    assert body["id"] == str(draft.pk)
    assert (body["tool"], body["status"], body["arguments"], body["edited_arguments"]) == (
        "calculator",
        "pending",
        {"expression": "2+3"},
        None,
    )
    assert (body["agent_id"], body["conversation_id"], body["requested_by"]) == (
        str(agent.pk),
        str(conversation.pk),
        str(org_a.users["member"].pk),
    )
    assert (body["approver_role"], body["allow_self_approval"], body["requested_role"]) == ("admin", False, "member")
    assert (body["result"], body["result_chars"]) == ("r" * 600, 600)
    listed = client.get(DRAFTS).json()["results"][0]
    assert (listed["result"], listed["result_chars"]) == ("r" * 500, 600)
    assert set(listed) == set(body)


# --- drafts: filters and ordering ------------------------------------------------------------------------


def test_draft_filters_and_ordering(org_a):
    org = org_a.organization
    agent = published_agent(org, slug="one")
    other_agent = published_agent(org, slug="two")
    conversation = conversation_of(agent)
    a = make_draft(org, agent=agent, conversation=conversation, expires_in=300)
    b = make_draft(org, agent=agent, tool="send_email", arguments={}, expires_in=100, status=DraftStatus.REJECTED)
    c = make_draft(org, agent=other_agent, tool="send_email", arguments={}, expires_in=200)
    client = org_a.client("operator")

    def ids(**params):
        response = client.get(DRAFTS, params)
        assert response.status_code == 200, response.json()
        assert response.json()["count"] == len(response.json()["results"])
        return [d["id"] for d in response.json()["results"]]

    a, b, c = str(a.pk), str(b.pk), str(c.pk)
    assert ids() == [c, b, a]
    assert ids(status="pending") == [c, a]
    assert ids(status="rejected") == [b]
    assert ids(status="executed") == []
    assert ids(tool="send_email") == [c, b]
    assert ids(tool="calculator") == [a]
    assert ids(agent=str(agent.pk)) == [b, a]
    assert ids(agent=str(other_agent.pk), status="pending") == [c]
    assert ids(conversation=str(conversation.pk)) == [a]
    assert ids(agent=str(uuid.uuid4())) == []
    assert ids(ordering="created_at") == [a, b, c]
    assert ids(ordering="expires_at") == [b, c, a]
    assert ids(ordering="-expires_at") == [a, c, b]
    assert ids(ordering="summary") == [c, b, a]  # not orderable: ignored
    assert_error(client.get(DRAFTS, {"status": "asleep"}), 400, "validation_error")
    assert_error(client.get(DRAFTS, {"agent": "not-a-uuid"}), 400, "validation_error")


# --- drafts: decisions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", OPERATORS)
def test_operator_confirms_and_the_action_runs(org_a, role, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    client = org_a.client(role)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"{DRAFTS}/{draft.pk}/confirm", {"note": "looks right"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["status"], body["decision_note"]) == (str(draft.pk), "confirmed", "looks right")
    assert body["decided_by"] == str(org_a.users[role].pk)
    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once

    draft.refresh_from_db()
    assert draft.status == DraftStatus.EXECUTED
    assert '"result": 5' in draft.result
    invocation = ToolInvocation.objects.get(draft=draft)
    assert (invocation.status, invocation.execution, invocation.idempotency_key) == ("ok", "celery", str(draft.pk))
    shown = client.get(f"{DRAFTS}/{draft.pk}").json()
    assert (shown["status"], shown["result"]) == ("executed", draft.result)


def test_confirm_with_edited_arguments_runs_them(org_a, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.client("operator").post(
            f"{DRAFTS}/{draft.pk}/confirm", {"arguments": {"expression": "6*7"}}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert response.json()["edited_arguments"] == {"expression": "6*7"}
    assert response.json()["arguments"] == {"expression": "2+3"}
    draft.refresh_from_db()
    assert draft.status == DraftStatus.EXECUTED
    assert '"result": 42' in draft.result
    assert ToolInvocation.objects.get(draft=draft).arguments == {"expression": "6*7"}


def test_invalid_edited_arguments_are_400_and_the_draft_stays_pending(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    before = draft_state(draft)
    client = org_a.client("operator")
    with django_capture_on_commit_callbacks() as callbacks:
        for arguments in ({"expression": ""}, {"expression": "1", "extra": 1}, {}):
            response = client.post(f"{DRAFTS}/{draft.pk}/confirm", {"arguments": arguments}, format="json")
            error = assert_error(response, 400, "invalid_arguments")
            assert error["details"]["errors"]
        not_an_object = client.post(f"{DRAFTS}/{draft.pk}/confirm", {"arguments": ["2+3"]}, format="json")
        assert "arguments" in assert_error(not_an_object, 400, "validation_error")["details"]["fields"]
    assert callbacks == []
    assert draft_state(draft) == before
    assert draft.status == DraftStatus.PENDING


def test_member_cannot_confirm_and_nothing_changes(org_a, drafts, django_capture_on_commit_callbacks):
    draft = drafts["member"]  # the member's own draft: visible, but operators decide it
    before = draft_state(draft)
    others = draft_state(drafts["operator"])
    client = org_a.client("member")
    with django_capture_on_commit_callbacks() as callbacks:
        assert_error(client.post(f"{DRAFTS}/{draft.pk}/confirm", {}, format="json"), 403, "draft_forbidden")
        assert_error(client.post(f"{DRAFTS}/{draft.pk}/reject", {}, format="json"), 403, "draft_forbidden")
        # Someone else's draft is not even found.
        response = client.post(f"{DRAFTS}/{drafts['operator'].pk}/confirm", {}, format="json")
        assert_error(response, 404, "not_found")
    assert callbacks == []
    assert draft_state(draft) == before
    assert draft.status == DraftStatus.PENDING
    assert draft_state(drafts["operator"]) == others


def test_member_may_decide_when_the_tool_lets_members_approve(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"], approver_role="member")
    with django_capture_on_commit_callbacks() as callbacks:
        response = org_a.client("member").post(f"{DRAFTS}/{draft.pk}/confirm", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "confirmed"
    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once


def test_viewer_cannot_decide(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["viewer"], approver_role="viewer")
    before = draft_state(draft)
    client = org_a.client("viewer")
    with django_capture_on_commit_callbacks() as callbacks:
        assert_error(client.post(f"{DRAFTS}/{draft.pk}/confirm", {}, format="json"), 403, "permission_denied")
        assert_error(client.post(f"{DRAFTS}/{draft.pk}/reject", {}, format="json"), 403, "permission_denied")
    assert callbacks == []
    assert draft_state(draft) == before


def test_self_approval_is_forbidden_when_the_tool_says_so(org_a, django_capture_on_commit_callbacks):
    operator = org_a.users["operator"]
    draft = make_draft(org_a.organization, requested_by=operator, allow_self_approval=False)
    before = draft_state(draft)
    with django_capture_on_commit_callbacks() as callbacks:
        for decision in ("confirm", "reject"):
            response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/{decision}", {}, format="json")
            assert_error(response, 403, "self_approval_forbidden")
    assert callbacks == []
    assert draft_state(draft) == before
    # Someone else may decide it.
    with django_capture_on_commit_callbacks() as callbacks:
        response = org_a.client("admin").post(f"{DRAFTS}/{draft.pk}/confirm", {}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decided_by"]) == ("confirmed", str(org_a.users["admin"].pk))
    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once


def test_self_approval_is_allowed_by_default(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["operator"])
    with django_capture_on_commit_callbacks():
        response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/reject", {}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "rejected")


def test_double_confirm_is_409_and_runs_once(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    client = org_a.client("operator")
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post(f"{DRAFTS}/{draft.pk}/confirm", {"note": "first"}, format="json")
        assert first.status_code == 200
        after_first = draft_state(draft)
        second = org_a.client("admin").post(f"{DRAFTS}/{draft.pk}/confirm", {"note": "second"}, format="json")
        error = assert_error(second, 409, "draft_not_pending")
        assert error["details"] == {"status": "confirmed"}
        rejected = client.post(f"{DRAFTS}/{draft.pk}/reject", {}, format="json")
        assert assert_error(rejected, 409, "draft_not_pending")["details"] == {"status": "confirmed"}
    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once
    assert draft_state(draft) == after_first
    assert (draft.decision_note, draft.decided_by) == ("first", org_a.users["operator"])


def test_confirming_an_expired_draft_is_409_and_expires_it(org_a, django_capture_on_commit_callbacks):
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"], expires_in=-5)
    with django_capture_on_commit_callbacks() as callbacks:
        response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/confirm", {}, format="json")
    error = assert_error(response, 409, "draft_not_pending")
    assert error["details"] == {"status": "expired"}
    assert callbacks == []
    draft.refresh_from_db()
    assert (draft.status, draft.decided_by, draft.result) == (DraftStatus.EXPIRED, None, "")


def test_rejecting_an_expired_draft_is_409_and_expires_it(org_a):
    agent = published_agent(org_a.organization)
    conversation = conversation_of(agent)
    draft = make_draft(org_a.organization, conversation=conversation, expires_in=-5)
    response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/reject", {"note": "too late"}, format="json")
    assert assert_error(response, 409, "draft_not_pending")["details"] == {"status": "expired"}
    draft.refresh_from_db()
    assert (draft.status, draft.decided_by, draft.decision_note) == (DraftStatus.EXPIRED, None, "")
    assert Message.objects.filter(conversation=conversation, content__contains="expired").count() == 1


def test_reject(org_a):
    agent = published_agent(org_a.organization)
    conversation = conversation_of(agent)
    draft = make_draft(org_a.organization, conversation=conversation, requested_by=org_a.users["member"])
    response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/reject", {"note": "not today"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["decision_note"], body["decided_by"]) == (
        "rejected",
        "not today",
        str(org_a.users["operator"].pk),
    )
    draft.refresh_from_db()
    assert draft.status == DraftStatus.REJECTED
    assert draft.decided_at is not None
    assert ToolInvocation.objects.filter(draft=draft).count() == 0
    assert Message.objects.filter(conversation=conversation, content__contains="rejected").count() == 1


def test_api_key_decides_drafts(org_a, django_capture_on_commit_callbacks):
    key, client = key_client(org_a.organization, "operator")
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    with django_capture_on_commit_callbacks():
        response = client.post(f"{DRAFTS}/{draft.pk}/reject", {}, format="json")
    assert response.status_code == 200
    assert (response.json()["decided_by"], response.json()["decided_by_api_key"]) == (None, str(key.pk))


@pytest.mark.parametrize(
    ("decision", "body", "field"),
    [
        ("confirm", {"note": "ok", "approve": True}, "approve"),
        ("confirm", {"edited_arguments": {"expression": "1"}}, "edited_arguments"),
        ("confirm", {"note": "x" * 1001}, "note"),
        ("reject", {"arguments": {"expression": "1"}}, "arguments"),
        ("reject", {"reason": "no"}, "reason"),
        ("reject", {"note": None}, "note"),
    ],
)
def test_bad_decision_bodies_are_400_and_nothing_changes(
    org_a, decision, body, field, django_capture_on_commit_callbacks
):
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    before = draft_state(draft)
    with django_capture_on_commit_callbacks() as callbacks:
        response = org_a.client("operator").post(f"{DRAFTS}/{draft.pk}/{decision}", body, format="json")
    assert field in assert_error(response, 400, "validation_error")["details"]["fields"]
    assert callbacks == []
    assert draft_state(draft) == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000Z"])
def test_malformed_and_unknown_ids_are_404(org_a, bad_id):
    client = org_a.client("owner")
    for draft_id in (bad_id, uuid.uuid4()):
        assert_error(client.get(f"{DRAFTS}/{draft_id}"), 404)
        assert_error(client.post(f"{DRAFTS}/{draft_id}/confirm", {}, format="json"), 404)
        assert_error(client.post(f"{DRAFTS}/{draft_id}/reject", {}, format="json"), 404)
        assert_error(client.get(f"{INVOCATIONS}/{draft_id}"), 404)


def test_drafts_cannot_be_created_changed_or_deleted(org_a):
    draft = make_draft(org_a.organization)
    client = org_a.client("owner")
    assert_error(client.post(DRAFTS, {"tool": "calculator"}, format="json"), 405)
    assert_error(client.patch(f"{DRAFTS}/{draft.pk}", {"status": "executed"}, format="json"), 405)
    assert_error(client.delete(f"{DRAFTS}/{draft.pk}"), 405)
    assert_error(client.get(f"{DRAFTS}/{draft.pk}/confirm"), 405)
    assert_error(client.delete(f"{INVOCATIONS}/{uuid.uuid4()}"), 405)
    assert Draft.objects.get(pk=draft.pk).status == DraftStatus.PENDING


# --- tool invocations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_invocation_visibility_by_role(org_a, role):
    org = org_a.organization
    key, key_http = key_client(org, "member")
    mine = make_invocation(org, user=org_a.users["member"])
    theirs = make_invocation(org, user=org_a.users["operator"])
    keyed = make_invocation(org, api_key=key)
    client = org_a.client(role)
    listing = client.get(INVOCATIONS)
    if role == "viewer":
        assert_error(listing, 403, "permission_denied")
        assert_error(client.get(f"{INVOCATIONS}/{mine.pk}"), 403, "permission_denied")
        return
    expected = [keyed, theirs, mine] if role in OPERATORS else [mine]
    assert listing.status_code == 200
    assert listing.json()["count"] == len(expected)
    assert [i["id"] for i in listing.json()["results"]] == [str(i.pk) for i in expected]
    for invocation in (mine, theirs, keyed):
        assert client.get(f"{INVOCATIONS}/{invocation.pk}").status_code == (200 if invocation in expected else 404)
    assert [i["id"] for i in key_http.get(INVOCATIONS).json()["results"]] == [str(keyed.pk)]


def test_invocation_results_are_cut_in_the_list_and_whole_in_the_detail(org_a):
    result = "".join(str(i % 10) for i in range(2000))
    invocation = make_invocation(org_a.organization, result=result, result_truncated=True, duration_ms=12.5)
    client = org_a.client("operator")
    listed = client.get(INVOCATIONS).json()["results"][0]
    assert (listed["result"], listed["result_chars"], listed["result_truncated"]) == (result[:500], 2000, True)
    one = client.get(f"{INVOCATIONS}/{invocation.pk}").json()
    assert (one["result"], one["result_chars"]) == (result, 2000)
    assert set(listed) == set(one)
    assert {k: one[k] for k in ("tool", "status", "execution", "arguments", "duration_ms")} == {
        "tool": "calculator",
        "status": "ok",
        "execution": "inline",
        "arguments": {"expression": "2+3"},
        "duration_ms": 12.5,
    }


def test_invocation_filters(org_a):
    org = org_a.organization
    agent = published_agent(org, slug="one")
    conversation = conversation_of(agent)
    draft = make_draft(org, tool="send_email", arguments={})
    now = timezone.now()
    a = make_invocation(org, agent=agent, conversation=conversation)
    b = make_invocation(org, tool="send_email", status="drafted", execution="celery", draft=draft, agent=agent)
    c = make_invocation(org, tool="send_email", status="ok", execution="celery", draft=draft)
    d = make_invocation(org, tool="current_time", status="error", error="boom")
    for row, hours_ago in ((a, 4), (b, 3), (c, 2), (d, 1)):
        ToolInvocation.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=hours_ago))
    client = org_a.client("admin")

    def ids(**params):
        response = client.get(INVOCATIONS, params)
        assert response.status_code == 200, response.json()
        assert response.json()["count"] == len(response.json()["results"])
        return [i["id"] for i in response.json()["results"]]

    a, b, c, d = (str(row.pk) for row in (a, b, c, d))
    assert ids() == [d, c, b, a]
    assert ids(tool="send_email") == [c, b]
    assert ids(status="ok") == [c, a]
    assert ids(status="drafted") == [b]
    assert ids(execution="celery") == [c, b]
    assert ids(execution="inline") == [d, a]
    assert ids(conversation=str(conversation.pk)) == [a]
    assert ids(draft=str(draft.pk)) == [c, b]
    assert ids(agent=str(agent.pk)) == [b, a]
    assert ids(agent=str(agent.pk), tool="send_email") == [b]
    after = (now - timedelta(hours=3)).isoformat()
    before = (now - timedelta(hours=1)).isoformat()
    assert ids(created_after=after) == [d, c, b]
    assert ids(created_before=before) == [c, b, a]
    assert ids(created_after=after, created_before=before) == [c, b]
    assert ids(ordering="created_at") == [a, b, c, d]
    assert_error(client.get(INVOCATIONS, {"status": "fine"}), 400, "validation_error")
    assert_error(client.get(INVOCATIONS, {"execution": "thread"}), 400, "validation_error")
    assert_error(client.get(INVOCATIONS, {"created_after": "yesterday"}), 400, "validation_error")
    assert_error(client.get(INVOCATIONS, {"draft": "x"}), 400, "validation_error")


def test_lists_do_not_query_per_row(org_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = org_a.organization
    client = org_a.client("operator")

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    make_draft(org)
    make_invocation(org)
    one = (queries(DRAFTS), queries(INVOCATIONS))
    for _ in range(4):
        make_draft(org, result="x" * 1000)
        make_invocation(org, result="y" * 1000)
    assert (queries(DRAFTS), queries(INVOCATIONS)) == one


# --- the schema and the cross-organization sweep -----------------------------------------------------------


def test_swept_paths_exist_in_the_schema_without_warnings():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        paths = set(SchemaGenerator().get_schema(request=None, public=True)["paths"])
    assert not TOOLS_SWEPT - paths, sorted(TOOLS_SWEPT - paths)
    problems = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if "tool" in m.lower()]
    # An enum name collision names only the field ("status"): any is a problem.
    problems += [m for m in GENERATOR_STATS._warn_cache if "Draft" in m or "enum naming" in m]
    assert not problems, problems


@pytest.fixture
def b_objects(org_b):
    """Org B's agent with grants, a pending draft and an invocation."""
    org = org_b.organization
    agent = published_agent(org, name="Bravo secret", slug="bravo-bot")
    AgentTool.objects.create(organization=org, agent=agent, tool="calculator")
    agent_publish(agent=agent, user=None, note="with tools")
    draft = Draft.objects.create(
        organization=org,
        agent=agent,
        tool="calculator",
        arguments={"expression": "bravo"},
        summary="bravo secret",
        requested_by=org_b.users["member"],
        expires_at=timezone.now() + timedelta(hours=1),
    )
    invocation = make_invocation(org, agent=agent, draft=draft, user=org_b.users["member"], result="bravo secret")
    return {"agent": agent, "draft": draft, "invocation": invocation}


@pytest.mark.parametrize("role", ["owner", "operator", "member", "viewer"])
def test_cross_organization_sweep(org_a, org_b, b_objects, role, django_capture_on_commit_callbacks):
    foreign_agent, foreign_draft = b_objects["agent"], b_objects["draft"]
    draft_before = draft_state(foreign_draft)
    grants_before = list(AgentTool.objects.filter(agent=foreign_agent).values_list("tool", "min_role"))
    client = org_a.client(role)
    needs_member = role_at_least(role, "member")

    with django_capture_on_commit_callbacks() as callbacks:
        reads = [  # (response, the role the endpoint needs)
            (client.get(grants_url(foreign_agent)), "viewer"),
            (client.get(f"{DRAFTS}/{foreign_draft.pk}"), "member"),
            (client.get(f"{INVOCATIONS}/{b_objects['invocation'].pk}"), "member"),
        ]
        writes = [
            (client.put(grants_url(foreign_agent), {"tools": []}, format="json"), "operator"),
            (client.post(f"{DRAFTS}/{foreign_draft.pk}/confirm", {}, format="json"), "member"),
            (
                client.post(f"{DRAFTS}/{foreign_draft.pk}/confirm", {"arguments": {"expression": "1"}}, format="json"),
                "member",
            ),
            (client.post(f"{DRAFTS}/{foreign_draft.pk}/reject", {"note": "x"}, format="json"), "member"),
        ]
    # Another organization's object is not found; a role that may not use the
    # endpoint at all is refused before any lookup.  Neither reveals anything.
    attempts = reads + writes
    assert [r.status_code for r, _ in attempts] == [404 if role_at_least(role, needs) else 403 for _, needs in attempts]
    for response, _ in attempts:
        assert "bravo" not in response.content.decode().lower()
    assert callbacks == []
    assert draft_state(foreign_draft) == draft_before
    assert list(AgentTool.objects.filter(agent=foreign_agent).values_list("tool", "min_role")) == grants_before

    # Lists hold only the caller's organization's rows.
    http_tool(org_b.organization, "bravo_lookup")
    assert "bravo_lookup" not in {t["name"] for t in client.get(TOOLS, {"page_size": 100}).json()["results"]}
    if needs_member:
        make_draft(org_a.organization, requested_by=org_a.users[role])
        make_invocation(org_a.organization, user=org_a.users[role])
        for path in (DRAFTS, INVOCATIONS):
            listing = client.get(path).json()
            assert listing["count"] == 1
            assert "bravo" not in str(listing).lower()
        assert client.get(DRAFTS, {"agent": str(foreign_agent.pk)}).json()["count"] == 0
        assert client.get(INVOCATIONS, {"draft": str(foreign_draft.pk)}).json()["count"] == 0
    # Granting the other organization's HTTP tool by name is an unknown tool.
    if role_at_least(role, "operator"):
        mine = AgentFactory(organization=org_a.organization)
        response = client.put(grants_url(mine), {"tools": [{"tool": "bravo_lookup"}]}, format="json")
        assert assert_error(response, 400, "unknown_tools")["details"]["tools"] == ["bravo_lookup"]


def test_api_key_of_another_organization_sees_only_its_own(org_a, org_b, b_objects):
    _, client = key_client(org_a.organization, "admin")
    assert client.get(f"{DRAFTS}/{b_objects['draft'].pk}").status_code == 404
    assert client.post(f"{DRAFTS}/{b_objects['draft'].pk}/confirm", {}, format="json").status_code == 404
    assert client.get(f"{INVOCATIONS}/{b_objects['invocation'].pk}").status_code == 404
    assert client.get(grants_url(b_objects["agent"])).status_code == 404
    assert client.get(DRAFTS).json()["count"] == 0
    assert client.get(INVOCATIONS).json()["count"] == 0
    assert Draft.objects.get(pk=b_objects["draft"].pk).status == DraftStatus.PENDING


def test_header_naming_another_organization_is_404(org_a, org_b):
    for path in (TOOLS, DRAFTS, INVOCATIONS):
        assert_error(org_a.client("owner").get(path, HTTP_X_ORGANIZATION="bravo"), 404, "organization_not_found")
