"""Moving conversations, messages, HTTP tools, invocations and drafts out of
the agents app keeps every row: a database filled on the old layout (agents
migration 0002) is migrated forward and read through the new apps' models,
and permissions granted on the old models follow them."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

OLD_LAYOUT = [("agents", "0002_tools_and_drafts")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_rows_made_on_the_old_layout_are_read_through_the_new_apps():
    executor = _migrate(OLD_LAYOUT)
    old = executor.loader.project_state(OLD_LAYOUT).apps
    assert old.get_model("agents", "Draft")._meta.db_table == "agents_draft"

    Organization = old.get_model("accounts", "Organization")
    User = old.get_model("accounts", "User")
    org = Organization.objects.create(name="Old Co", slug="old-co")
    user = User.objects.create(username="old-operator")
    agent = old.get_model("agents", "Agent").objects.create(
        organization=org, name="Support", slug="support", system_prompt="Help.", model="offline"
    )
    version = old.get_model("agents", "AgentVersion").objects.create(
        organization=org,
        agent=agent,
        number=1,
        name="Support",
        system_prompt="Help.",
        model="offline",
        fallback_models=[],
        temperature=0.7,
        max_output_tokens=1024,
        max_tool_rounds=5,
        tools=[{"tool": "lookup", "min_role": None, "requires_approval": None}],
    )
    old.get_model("agents", "AgentTool").objects.create(organization=org, agent=agent, tool="lookup")
    conversation = old.get_model("agents", "Conversation").objects.create(
        organization=org, agent=agent, version=version, user=user, channel="rest", last_seq=7
    )
    question = old.get_model("agents", "Message").objects.create(
        organization=org, conversation=conversation, role="user", content="Where is my order?", client_msg_id="c-1"
    )
    old.get_model("agents", "Message").objects.create(
        organization=org, conversation=conversation, role="assistant", content="On its way.", reply_to=question
    )
    http_tool = old.get_model("agents", "HttpTool").objects.create(
        organization=org, name="lookup", description="Looks up.", url_template="https://api.example.com/x"
    )
    draft = old.get_model("agents", "Draft").objects.create(
        organization=org,
        conversation=conversation,
        agent=agent,
        tool="lookup",
        arguments={"q": "42"},
        requested_by=user,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    invocation = old.get_model("agents", "ToolInvocation").objects.create(
        id=uuid.uuid4(),
        organization=org,
        tool="lookup",
        agent=agent,
        conversation=conversation,
        draft=draft,
        user=user,
        status="drafted",
    )
    # A permission granted on the old model, e.g. to an operator's account.
    ContentType = old.get_model("contenttypes", "ContentType")
    draft_type = ContentType.objects.get(app_label="agents", model="draft")
    permission = old.get_model("auth", "Permission").objects.get(content_type=draft_type, codename="change_draft")
    user.user_permissions.add(permission)

    _migrate(_latest())

    from accounts.models import User as CurrentUser
    from agents.models import Agent, AgentTool
    from chat.models import Conversation, Message
    from tools.models import Draft, HttpTool, ToolInvocation

    moved = Conversation.objects.get(pk=conversation.pk)
    assert (moved.agent_id, moved.version_id, moved.user_id, moved.last_seq) == (agent.pk, version.pk, user.pk, 7)
    assert [(m.role, m.content) for m in Message.objects.filter(conversation=moved)] == [
        ("user", "Where is my order?"),
        ("assistant", "On its way."),
    ]
    assert Message.objects.get(role="assistant").reply_to_id == question.pk
    assert HttpTool.objects.get(pk=http_tool.pk).name == "lookup"
    moved_draft = Draft.objects.get(pk=draft.pk)
    assert (moved_draft.conversation_id, moved_draft.agent_id, moved_draft.arguments) == (
        conversation.pk,
        agent.pk,
        {"q": "42"},
    )
    assert list(moved.drafts.all()) == [moved_draft]
    moved_invocation = ToolInvocation.objects.get(pk=invocation.pk)
    assert (moved_invocation.draft_id, moved_invocation.conversation_id) == (draft.pk, conversation.pk)
    assert list(moved_draft.invocations.all()) == [moved_invocation]
    assert AgentTool.objects.get(agent_id=agent.pk).tool == "lookup"
    assert Agent.objects.get(pk=agent.pk).conversations.get() == moved

    # The permission followed its content type to the tools app.
    assert Permission.objects.filter(content_type__app_label="agents", codename="change_draft").count() == 0
    assert CurrentUser.objects.get(pk=user.pk).has_perm("tools.change_draft")

    # Constraints kept their names and still hold on the moved tables.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            organization_id=org.pk, conversation=moved, role="user", content="again", client_msg_id="c-1"
        )
