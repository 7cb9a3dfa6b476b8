"""Caller: who acts, built in one place for every surface, and the one rule
for which rows they see (their own, or the organization's from operator up)."""

import pytest

from accounts.callers import Caller, row_visible_to, rows_visible_to
from accounts.services import api_key_create
from accounts.tenancy import Tenant
from agents.tests.factories import published_agent
from chat.models import Conversation
from chat.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def test_built_from_a_tenant_a_scope_or_a_member(org_a):
    member = org_a.users["member"]
    org = org_a.organization
    from_tenant = Caller.from_tenant(Tenant(organization=org, role="member", user=member))
    from_scope = Caller.from_scope({"organization": org, "role": "member", "user": member})
    from_member = Caller.from_member(organization_id=org.pk, role="member", user_id=member.pk)
    assert from_tenant == from_scope == from_member == Caller(str(org.pk), "member", user_id=str(member.pk))

    key, _secret = api_key_create(
        organization=org, name="ci", role="operator", actor_role="admin", created_by=org_a.users["admin"]
    )
    by_key = Caller.from_scope({"organization": org, "role": "operator", "user": object(), "api_key": key})
    assert (by_key.user_id, by_key.api_key_id) == (None, str(key.pk))
    assert by_key.principal == f"{org.pk}:key:{key.pk}"
    assert from_member.principal == f"{org.pk}:user:{member.pk}"
    assert Caller(str(org.pk), "guest", visitor_id="v1").principal == f"{org.pk}:visitor:v1"


def test_operators_see_every_row_of_their_organization_others_their_own(org_a, org_b):
    agent = published_agent(org_a.organization)
    member, viewer = org_a.users["member"], org_a.users["viewer"]
    mine = ConversationFactory(agent=agent, user=member)
    theirs = ConversationFactory(agent=agent, user=viewer)
    visitors = ConversationFactory(agent=agent, visitor_id="v1")
    elsewhere = ConversationFactory(agent=published_agent(org_b.organization), user=org_b.users["member"])

    def visible(caller):
        rows = rows_visible_to(
            Conversation.objects.all(), caller, user_field="user", api_key_field="api_key", visitor_field="visitor_id"
        )
        return set(rows)

    org_id = str(org_a.organization.pk)
    operator = Caller(org_id, "operator", user_id=str(org_a.users["operator"].pk))
    assert visible(operator) == {mine, theirs, visitors}
    assert visible(Caller(org_id, "member", user_id=str(member.pk))) == {mine}
    assert visible(Caller(org_id, "guest", visitor_id="v1")) == {visitors}
    assert visible(Caller(org_id, "guest")) == set()
    assert visible(Caller(str(org_b.organization.pk), "owner", user_id=str(org_b.users["owner"].pk))) == {elsewhere}

    # The same rule, one row at a time.
    member_caller = Caller(org_id, "member", user_id=str(member.pk))
    assert row_visible_to(member_caller, user_id=member.pk, api_key_id=None)
    assert not row_visible_to(member_caller, user_id=viewer.pk, api_key_id=None)
    assert row_visible_to(operator, user_id=viewer.pk, api_key_id=None)
    assert row_visible_to(Caller(org_id, "guest", visitor_id="v1"), user_id=None, api_key_id=None, visitor_id="v1")
    assert not row_visible_to(Caller(org_id, "guest"), user_id=None, api_key_id=None, visitor_id="")
