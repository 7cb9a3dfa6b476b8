"""The admin for tools, tool grants, the invocation log, drafts, credentials
and the egress allowlist: writes through the services, role gates and tenant
scoping."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from agents.models import AgentTool
from agents.tests.factories import AgentFactory
from agents.tests.test_agents_admin import form_data as agent_form_data
from integrations.models import Credential, EgressAllowedHost
from tools.models import Draft, DraftStatus, HttpTool, InvocationStatus, ToolInvocation
from tools.services.catalog import tools_for_organization
from tools.tests.factories import DraftFactory

pytestmark = pytest.mark.django_db

DRAFTS = "/admin/tools/draft/"
INVOCATIONS = "/admin/tools/toolinvocation/"
HTTP_TOOLS = "/admin/tools/httptool/"
CREDENTIALS = "/admin/integrations/credential/"
EGRESS = "/admin/integrations/egressallowedhost/"


def login_staff(client, user):
    """``user`` as a staff user holding every agents, tools, chat and integrations model
    permission: what they may do is then up to their role."""
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["agents", "tools", "chat", "integrations"])
    )
    client.force_login(user)
    return client


def make_draft(organization, **fields) -> Draft:
    fields.setdefault("summary", "calculator(expression=2+3)")
    fields.setdefault("requested_role", "")
    return DraftFactory(organization=organization, **fields)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def change_url(draft) -> str:
    return f"{DRAFTS}{draft.pk}/change/"


# --- drafts: the change-list actions -----------------------------------------------------------


def test_operator_confirms_from_the_change_list_and_it_executes(
    client, org_a, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    operator = org_a.users["operator"]
    login_staff(client, operator)
    draft = make_draft(org_a.organization)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(DRAFTS, {"action": "confirm_selected", "_selected_action": [str(draft.pk)]}, follow=True)
        draft.refresh_from_db()
        assert draft.status == DraftStatus.CONFIRMED
        assert draft.decided_by == operator

    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once
    assert response.status_code == 200
    assert messages_of(response) == ["Confirmed 1 draft(s): calculator(expression=2+3)."]
    draft.refresh_from_db()
    assert draft.status == DraftStatus.EXECUTED
    assert json.loads(draft.result) == {"expression": "2+3", "result": 5}
    invocation = ToolInvocation.objects.get()
    assert invocation.idempotency_key == str(draft.pk)
    assert invocation.status == InvocationStatus.OK


def test_reject_action(client, org_a, django_capture_on_commit_callbacks):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(DRAFTS, {"action": "reject_selected", "_selected_action": [str(draft.pk)]}, follow=True)
    assert messages_of(response) == ["Rejected 1 draft(s): calculator(expression=2+3)."]
    draft.refresh_from_db()
    assert draft.status == DraftStatus.REJECTED
    assert draft.decided_by == org_a.users["operator"]
    assert callbacks == []
    assert ToolInvocation.objects.count() == 0


def test_actions_report_each_failure_and_each_success(client, org_a, django_capture_on_commit_callbacks):
    login_staff(client, org_a.users["operator"])
    pending = make_draft(org_a.organization, summary="the pending one")
    decided = make_draft(org_a.organization, summary="the rejected one", status=DraftStatus.REJECTED)
    admins_only = make_draft(org_a.organization, summary="needs an admin", approver_role="admin")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            DRAFTS,
            {"action": "confirm_selected", "_selected_action": [str(d.pk) for d in (pending, decided, admins_only)]},
            follow=True,
        )
    shown = messages_of(response)
    assert "Confirmed 1 draft(s): the pending one." in shown
    assert "the rejected one: This draft is rejected; only a pending draft can be decided." in shown
    assert "needs an admin: Deciding this draft needs the admin role or above; you are operator." in shown
    assert len(shown) == 3
    statuses = {d.summary: d.status for d in Draft.objects.all()}
    assert statuses == {
        "the pending one": DraftStatus.CONFIRMED,
        "the rejected one": DraftStatus.REJECTED,
        "needs an admin": DraftStatus.PENDING,
    }


# --- drafts: who sees them ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_see_drafts(client, org_a, role):
    login_staff(client, org_a.users[role])
    draft = make_draft(org_a.organization)
    assert client.get(DRAFTS).status_code == 403
    assert client.get(change_url(draft)).status_code == 403
    assert client.post(f"{DRAFTS}{draft.pk}/confirm/", {"note": ""}).status_code == 403
    assert client.post(f"{DRAFTS}{draft.pk}/reject/", {"note": ""}).status_code == 403
    response = client.post(DRAFTS, {"action": "confirm_selected", "_selected_action": [str(draft.pk)]})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == DraftStatus.PENDING
    assert draft.decided_by is None


def test_operator_of_one_organization_cannot_see_or_decide_anothers_drafts(
    client, org_a, org_b, django_capture_on_commit_callbacks
):
    login_staff(client, org_a.users["operator"])
    make_draft(org_a.organization, summary="alpha's draft")
    theirs = make_draft(org_b.organization, summary="bravo's draft")
    page = client.get(DRAFTS).content.decode()
    assert "alpha&#x27;s draft" in page
    assert "bravo" not in page
    assert client.get(change_url(theirs)).status_code == 302  # the admin's "no such object"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.post(f"{DRAFTS}{theirs.pk}/confirm/", {"note": ""}).status_code == 404
        assert client.post(f"{DRAFTS}{theirs.pk}/reject/", {"note": ""}).status_code == 404
        client.post(DRAFTS, {"action": "confirm_selected", "_selected_action": [str(theirs.pk)]})
    assert callbacks == []
    theirs.refresh_from_db()
    assert theirs.status == DraftStatus.PENDING
    assert theirs.decided_by is None


# --- drafts: the detail page and its decision form ----------------------------------------------


def test_detail_page_shows_the_proposed_action_and_the_decision_form(client, org_a):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization, requested_by=org_a.users["member"])
    html = client.get(change_url(draft)).content.decode()
    assert "calculator(expression=2+3)" in html
    assert "&quot;expression&quot;: &quot;2+3&quot;" in html  # the proposed arguments, as JSON
    assert "alpha-member" in html
    assert 'value="Confirm"' in html and 'value="Reject"' in html
    assert f'formaction="{DRAFTS}{draft.pk}/confirm/"' in html
    assert f'formaction="{DRAFTS}{draft.pk}/reject/"' in html
    assert 'name="edited_arguments"' in html


def test_detail_page_of_a_decided_draft_has_no_decision_form(client, org_a):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization, status=DraftStatus.EXECUTED, result='{"expression": "2+3", "result": 5}')
    html = client.get(change_url(draft)).content.decode()
    assert "&quot;result&quot;: 5" in html
    assert 'value="Confirm"' not in html
    assert "/confirm/" not in html


def test_confirm_with_edited_arguments_from_the_detail_page(
    client, org_a, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            f"{DRAFTS}{draft.pk}/confirm/",
            {"note": "checked the maths", "edited_arguments": '{"expression": "6*7"}'},
        )
    assert response.status_code == 302
    assert response["Location"] == change_url(draft)
    assert len(callbacks) == 2  # announce the confirmation, then enqueue the execution once
    draft.refresh_from_db()
    assert draft.status == DraftStatus.EXECUTED
    assert draft.edited_arguments == {"expression": "6*7"}
    assert draft.arguments == {"expression": "2+3"}
    assert draft.decision_note == "checked the maths"
    assert json.loads(draft.result)["result"] == 42
    assert ToolInvocation.objects.get().arguments == {"expression": "6*7"}
    page = client.get(change_url(draft))
    assert messages_of(page) == ["Confirmed “calculator(expression=2+3)”; it runs shortly."]


@pytest.mark.parametrize(
    ("edited", "message"),
    [
        ("{not json", "The arguments are not valid JSON."),
        ("[1, 2]", "The arguments must be a JSON object."),
        (
            '{"expr": "1"}',
            "The arguments for 'calculator' do not match its schema: "
            "(arguments): 'expression' is a required property; "
            "(arguments): Additional properties are not allowed ('expr' was unexpected)",
        ),
    ],
)
def test_invalid_edited_arguments_show_the_services_message(
    client, org_a, django_capture_on_commit_callbacks, edited, message
):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"{DRAFTS}{draft.pk}/confirm/", {"note": "", "edited_arguments": edited}, follow=True)
    assert messages_of(response) == [message]
    assert callbacks == []
    draft.refresh_from_db()
    assert draft.status == DraftStatus.PENDING
    assert draft.edited_arguments is None
    assert 'value="Confirm"' in response.content.decode()


def test_confirming_an_expired_draft_says_it_expired(client, org_a, django_capture_on_commit_callbacks):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization, expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"{DRAFTS}{draft.pk}/confirm/", {"note": ""}, follow=True)
    assert messages_of(response) == ["This draft is expired; only a pending draft can be decided."]
    assert callbacks == []
    draft.refresh_from_db()
    assert draft.status == DraftStatus.EXPIRED
    assert draft.decided_by is None
    assert ToolInvocation.objects.count() == 0
    html = response.content.decode()  # the page it returns to offers no decision any more
    assert "calculator draft (expired)" in html
    assert 'value="Confirm"' not in html


def test_reject_from_the_detail_page_records_the_note(client, org_a):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization)
    response = client.post(f"{DRAFTS}{draft.pk}/reject/", {"note": "not today"}, follow=True)
    assert messages_of(response) == ["Rejected “calculator(expression=2+3)”; it will not run."]
    draft.refresh_from_db()
    assert draft.status == DraftStatus.REJECTED
    assert draft.decision_note == "not today"


def test_decision_views_take_only_posts_and_drafts_cannot_be_edited_or_deleted(client, org_a):
    login_staff(client, org_a.users["operator"])
    draft = make_draft(org_a.organization)
    assert client.get(f"{DRAFTS}{draft.pk}/confirm/").status_code == 405
    assert client.get(f"{DRAFTS}add/").status_code == 403
    assert client.post(change_url(draft), {"summary": "edited"}).status_code == 403
    assert client.post(f"{DRAFTS}{draft.pk}/delete/", {"post": "yes"}).status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.summary) == (DraftStatus.PENDING, "calculator(expression=2+3)")


# --- the invocation log ------------------------------------------------------------------------------


def test_invocation_log_is_read_only_and_scoped(client, org_a, org_b):
    login_staff(client, org_a.users["operator"])
    ours = ToolInvocation.objects.create(
        organization=org_a.organization, tool="calculator", status="ok", request_id="req-alpha", result="5"
    )
    ToolInvocation.objects.create(organization=org_b.organization, tool="calculator", status="ok", request_id="req-b")
    assert [i.pk for i in client.get(INVOCATIONS).context["cl"].result_list] == [ours.pk]
    assert client.get(INVOCATIONS, {"q": "req-alpha"}).context["cl"].result_count == 1
    assert client.get(INVOCATIONS, {"q": "req-b"}).context["cl"].result_count == 0
    assert client.get(f"{INVOCATIONS}{ours.pk}/change/").status_code == 200
    assert client.get(f"{INVOCATIONS}add/").status_code == 403
    assert client.post(f"{INVOCATIONS}{ours.pk}/change/", {"tool": "x"}).status_code == 403
    assert client.post(f"{INVOCATIONS}{ours.pk}/delete/", {"post": "yes"}).status_code == 403
    ours.refresh_from_db()
    assert ours.tool == "calculator"
    assert ToolInvocation.objects.count() == 2


def test_invocation_log_is_closed_to_members(client, org_a):
    login_staff(client, org_a.users["member"])
    assert client.get(INVOCATIONS).status_code == 403


# --- HTTP tools ---------------------------------------------------------------------------------------


def http_tool_data(organization, **overrides) -> dict:
    data = {
        "organization": organization.pk,
        "name": "asset_lookup",
        "description": "Looks up an asset.",
        "enabled": "on",
        "method": "GET",
        "url_template": "https://api.example.com/assets/{asset_id}",
        "parameters": json.dumps(
            {"type": "object", "properties": {"asset_id": {"type": "string"}}, "required": ["asset_id"]}
        ),
        "headers": "{}",
        "credential": "",
        "min_role": "member",
        "approver_role": "operator",
        "allow_self_approval": "on",
        "execution": "celery",
        "timeout_seconds": "15",
        "max_result_chars": "16000",
    }
    data.update(overrides)
    return data


def test_admin_defines_an_http_tool(client, org_a):
    login_staff(client, org_a.users["admin"])
    response = client.post(f"{HTTP_TOOLS}add/", http_tool_data(org_a.organization))
    assert response.status_code == 302, response.context["adminform"].form.errors
    tool = HttpTool.objects.get()
    assert (tool.organization, tool.name, tool.method) == (org_a.organization, "asset_lookup", "GET")
    assert "asset_lookup" in tools_for_organization(str(org_a.organization.pk))


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"name": "calculator"}, "name", "'calculator' is a built-in tool; choose another name."),
        (
            {"parameters": '{"type": "array"}'},
            "parameters",
            'The parameters must be a JSON schema with "type": "object".',
        ),
        ({"url_template": "ftp://files.example.com/x"}, "url_template", "The URL must start with https:// or http://."),
        ({"headers": '{"Authorization": "Bearer x"}'}, "headers", "Put Authorization in a credential"),
    ],
)
def test_http_tool_form_refuses_invalid_definitions(client, org_a, overrides, field, error):
    login_staff(client, org_a.users["admin"])
    response = client.post(f"{HTTP_TOOLS}add/", http_tool_data(org_a.organization, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(error)
    assert HttpTool.objects.count() == 0


def test_http_tool_credential_must_be_the_organizations(client, org_a, org_b):
    login_staff(client, org_a.users["admin"])
    theirs = Credential(organization=org_b.organization, name="theirs")
    theirs.set_secret("x")
    theirs.save()
    response = client.post(f"{HTTP_TOOLS}add/", http_tool_data(org_a.organization, credential=str(theirs.pk)))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["credential"]
    assert HttpTool.objects.count() == 0


def test_operators_see_http_tools_but_cannot_define_them(client, org_a, org_b):
    tool = HttpTool.objects.create(
        organization=org_a.organization, name="ours", description="d", url_template="https://x.example/"
    )
    HttpTool.objects.create(
        organization=org_b.organization, name="theirs", description="d", url_template="https://x.example/"
    )
    login_staff(client, org_a.users["operator"])
    page = client.get(HTTP_TOOLS)
    assert page.status_code == 200
    assert [t.name for t in page.context["cl"].result_list] == ["ours"]
    assert client.get(f"{HTTP_TOOLS}{tool.pk}/change/").status_code == 200  # view only
    assert client.get(f"{HTTP_TOOLS}add/").status_code == 403
    response = client.post(f"{HTTP_TOOLS}{tool.pk}/change/", http_tool_data(org_a.organization, name="renamed"))
    assert response.status_code == 403
    assert client.post(f"{HTTP_TOOLS}{tool.pk}/delete/", {"post": "yes"}).status_code == 403
    tool.refresh_from_db()
    assert tool.name == "ours"
    assert HttpTool.objects.count() == 2


def test_http_tools_are_defined_only_where_the_staff_user_is_an_admin(client, org_a, org_b):
    from accounts.tests.factories import MembershipFactory

    user = org_a.users["admin"]
    MembershipFactory(organization=org_b.organization, user=user, role="operator")
    login_staff(client, user)
    form = client.get(f"{HTTP_TOOLS}add/").context["adminform"].form
    assert list(form.fields["organization"].queryset) == [org_a.organization]
    response = client.post(f"{HTTP_TOOLS}add/", http_tool_data(org_b.organization))
    assert list(response.context["adminform"].form.errors) == ["organization"]
    theirs = HttpTool.objects.create(
        organization=org_b.organization, name="theirs", description="d", url_template="https://x.example/"
    )
    assert client.get(f"{HTTP_TOOLS}{theirs.pk}/change/").status_code == 200  # an operator there: view only
    response = client.post(f"{HTTP_TOOLS}{theirs.pk}/change/", http_tool_data(org_b.organization, name="renamed"))
    assert response.status_code == 403
    assert HttpTool.objects.get().name == "theirs"


# --- tool grants on the agent page -------------------------------------------------------------------


def grants(*rows, initial=0) -> dict:
    data = {
        "tool_grants-TOTAL_FORMS": str(len(rows)),
        "tool_grants-INITIAL_FORMS": str(initial),
        "tool_grants-MIN_NUM_FORMS": "0",
        "tool_grants-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"tool_grants-{i}-{k}": v for k, v in row.items()})
    return data


def test_grants_are_chosen_from_the_organizations_catalog(client, org_a, org_b):
    HttpTool.objects.create(
        organization=org_b.organization, name="bravo_tool", description="d", url_template="https://x/"
    )
    HttpTool.objects.create(
        organization=org_a.organization, name="alpha_tool", description="d", url_template="https://x/"
    )
    login_staff(client, org_a.users["operator"])
    agent = AgentFactory(organization=org_a.organization, name="Grantee", slug="grantee")
    html = client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert "take effect when the agent is next published" in html
    choices = client.get(f"/admin/agents/agent/{agent.pk}/change/").context["inline_admin_formsets"][1]
    tool_choices = {value for value, _ in choices.formset.empty_form.fields["tool"].choices}
    assert {"calculator", "current_time", "alpha_tool"} <= tool_choices
    assert "bravo_tool" not in tool_choices

    base = agent_form_data(org_a.organization, name="Grantee", slug="grantee")
    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        {**base, **grants({"tool": "calculator", "min_role": "operator", "requires_approval": "true"})},
    )
    assert response.status_code == 302
    grant = AgentTool.objects.get()
    assert (grant.agent, grant.organization, grant.tool) == (agent, org_a.organization, "calculator")
    assert (grant.min_role, grant.requires_approval) == ("operator", True)

    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/", {**base, **grants({"tool": "bravo_tool", "min_role": ""})}
    )
    assert response.status_code == 200
    assert AgentTool.objects.count() == 1


def test_grants_are_changed_and_removed_through_the_service(client, org_a):
    login_staff(client, org_a.users["operator"])
    agent = AgentFactory(organization=org_a.organization, name="Grantee", slug="grantee")
    calculator = AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="calculator")
    # Granted elsewhere (the API) after the page was loaded: not on the form, kept.
    AgentTool.objects.create(organization=org_a.organization, agent=agent, tool="http_request")
    base = agent_form_data(org_a.organization, name="Grantee", slug="grantee")
    row = {"id": str(calculator.pk), "agent": str(agent.pk), "tool": "calculator", "min_role": "admin"}
    response = client.post(f"/admin/agents/agent/{agent.pk}/change/", {**base, **grants(row, initial=1)})
    assert response.status_code == 302
    assert {(g.tool, g.min_role) for g in AgentTool.objects.all()} == {("calculator", "admin"), ("http_request", "")}
    agent.refresh_from_db()
    assert agent.updated_by == org_a.users["operator"]

    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/", {**base, **grants({**row, "DELETE": "on"}, initial=1)}
    )
    assert response.status_code == 302
    assert [g.tool for g in AgentTool.objects.all()] == ["http_request"]

    # A post without the grants section leaves them alone.
    assert client.post(f"/admin/agents/agent/{agent.pk}/change/", base).status_code == 302
    assert [g.tool for g in AgentTool.objects.all()] == ["http_request"]


def test_a_tool_is_granted_once(client, org_a):
    login_staff(client, org_a.users["operator"])
    agent = AgentFactory(organization=org_a.organization, name="Grantee", slug="grantee")
    base = agent_form_data(org_a.organization, name="Grantee", slug="grantee")
    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/", {**base, **grants({"tool": "calculator"}, {"tool": "calculator"})}
    )
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][1].formset.non_form_errors()
    assert AgentTool.objects.count() == 0


def test_a_new_agents_grants_are_checked_against_the_chosen_organization(client, org_a, org_b):
    from agents.models import Agent

    HttpTool.objects.create(
        organization=org_b.organization, name="bravo_tool", description="d", url_template="https://x/"
    )
    login_staff(client, org_a.users["operator"])
    refused = client.post(
        "/admin/agents/agent/add/", {**agent_form_data(org_a.organization), **grants({"tool": "bravo_tool"})}
    )
    assert refused.status_code == 200
    formset = refused.context["inline_admin_formsets"][1].formset
    assert formset.errors == [
        {"tool": ["No tool 'bravo_tool' in this organization's catalog (the built-ins and its enabled HTTP tools)."]}
    ]
    assert Agent.objects.count() == 0

    accepted = client.post(
        "/admin/agents/agent/add/", {**agent_form_data(org_a.organization), **grants({"tool": "current_time"})}
    )
    assert accepted.status_code == 302
    grant = AgentTool.objects.get()
    assert (grant.organization, grant.tool, grant.agent.name) == (org_a.organization, "current_time", "Admin bot")


# --- credentials and the egress allowlist ----------------------------------------------------------------


def test_credential_secret_is_write_only_and_encrypted(client, org_a):
    login_staff(client, org_a.users["admin"])
    plaintext = "tok-very-secret-4711"
    response = client.post(
        f"{CREDENTIALS}add/",
        {
            "organization": org_a.organization.pk,
            "name": "backend",
            "kind": "bearer",
            "header_name": "",
            "secret": plaintext,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    credential = Credential.objects.get()
    assert credential.secret_encrypted != plaintext
    assert plaintext not in credential.secret_encrypted
    assert credential.auth_headers() == {"Authorization": f"Bearer {plaintext}"}

    page = client.get(f"{CREDENTIALS}{credential.pk}/change/").content.decode()
    assert plaintext not in page
    assert credential.secret_encrypted not in page
    assert "Stored, encrypted (never shown)" in page
    assert plaintext not in client.get(CREDENTIALS).content.decode()

    # A change without a secret keeps it; a new one replaces it.
    change = {"name": "backend", "kind": "bearer", "header_name": "", "secret": ""}
    assert client.post(f"{CREDENTIALS}{credential.pk}/change/", change).status_code == 302
    credential.refresh_from_db()
    assert credential.auth_headers() == {"Authorization": f"Bearer {plaintext}"}
    change["secret"] = "tok-rotated"
    assert client.post(f"{CREDENTIALS}{credential.pk}/change/", change).status_code == 302
    credential.refresh_from_db()
    assert credential.auth_headers() == {"Authorization": "Bearer tok-rotated"}


def test_credential_needs_a_secret_and_operators_cannot_manage_credentials(client, org_a):
    login_staff(client, org_a.users["admin"])
    data = {"organization": org_a.organization.pk, "name": "backend", "kind": "bearer", "header_name": "", "secret": ""}
    response = client.post(f"{CREDENTIALS}add/", data)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["secret"]
    response = client.post(f"{CREDENTIALS}add/", {**data, "kind": "header", "secret": "x"})
    assert list(response.context["adminform"].form.errors) == ["header_name"]
    assert Credential.objects.count() == 0

    login_staff(client, org_a.users["operator"])
    assert client.get(CREDENTIALS).status_code == 200  # the operator's list is empty: ADMIN_ROLES only
    assert client.get(CREDENTIALS).context["cl"].result_count == 0
    response = client.post(f"{CREDENTIALS}add/", {**data, "secret": "x"})
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["organization"]
    assert Credential.objects.count() == 0


def test_egress_allowlist_normalizes_hosts_and_is_scoped(client, org_a, org_b):
    EgressAllowedHost.objects.create(organization=org_b.organization, host="bravo.internal")
    login_staff(client, org_a.users["admin"])
    response = client.post(f"{EGRESS}add/", {"organization": org_a.organization.pk, "host": " API.Alpha.Internal. "})
    assert response.status_code == 302
    assert EgressAllowedHost.objects.get(organization=org_a.organization).host == "api.alpha.internal"
    refused = client.post(f"{EGRESS}add/", {"organization": org_a.organization.pk, "host": "https://x.internal/path"})
    assert list(refused.context["adminform"].form.errors) == ["host"]
    duplicate = client.post(f"{EGRESS}add/", {"organization": org_a.organization.pk, "host": "api.alpha.internal"})
    assert duplicate.status_code == 200
    assert EgressAllowedHost.objects.filter(organization=org_a.organization).count() == 1
    page = client.get(EGRESS)
    assert [h.host for h in page.context["cl"].result_list] == ["api.alpha.internal"]
