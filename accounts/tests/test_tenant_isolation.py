"""Two organizations; every endpoint tried across the boundary.

Another organization's object is a 404 (never a 403, never data), and lists
hold only the caller's rows.  ``test_every_api_path_is_swept`` fails when an
endpoint is added without a case here.
"""

import pytest
from django.apps import apps
from django.contrib import admin
from drf_spectacular.generators import SchemaGenerator

from accounts.admin import TenantScopedAdmin
from accounts.models import ApiKey, Membership, Organization, TenantOwned
from accounts.services import api_key_create, invitation_create
from agents.tests.test_agents_api import AGENTS_SWEPT
from billing.tests.test_billing_api import BILLING_SWEPT
from chat.tests.test_chat_tenancy import SWEPT_PATHS as CHAT_SWEPT
from tools.tests.test_tools_api import TOOLS_SWEPT

pytestmark = pytest.mark.django_db

# Paths that carry no tenant data, or whose tenant behaviour is tested
# elsewhere (auth: accounts/tests/test_auth.py).
NO_TENANT_DATA = {
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/token/verify/",
    "/api/v1/auth/token/blacklist/",
    # Stripe's webhook: no caller, the signature is the proof (billing/tests/test_payments.py).
    "/api/v1/billing/webhooks/stripe",
}
SWEPT = {
    "/api/v1/me",
    "/api/v1/orgs/current",
    "/api/v1/orgs/current/members",
    "/api/v1/orgs/current/members/{id}",
    "/api/v1/api-keys",
    "/api/v1/api-keys/{id}",
    "/api/v1/orgs/current/invitations",
    "/api/v1/orgs/current/invitations/{id}",
    # A token, not an id: a token of another organization's invitation is its
    # invitee's to use (accounts/tests/test_invitations.py).
    "/api/v1/invitations/accept",
    # agents, templates, industries, config: agents/tests/test_agents_api.py::test_cross_organization_sweep
    *AGENTS_SWEPT,
    *CHAT_SWEPT,
    *TOOLS_SWEPT,
    # usage, budgets, prices, account, invoices, payments: billing/tests/test_billing_api.py
    *BILLING_SWEPT,
}


@pytest.fixture
def b_objects(org_b):
    key, _ = api_key_create(organization=org_b.organization, name="bravo-key", actor_role="owner")
    member = Membership.objects.get(organization=org_b.organization, user=org_b.users["member"])
    invitation = invitation_create(
        organization=org_b.organization,
        actor_role="owner",
        invited_by=org_b.users["owner"],
        email="bravo-invitee@example.com",
        role="member",
    )
    return {"key": key, "member": member, "invitation": invitation}


@pytest.mark.parametrize("role", ["owner", "admin", "viewer"])
def test_object_endpoints_of_another_organization_are_404(org_a, org_b, b_objects, role):
    client = org_a.client(role)
    member_url = f"/api/v1/orgs/current/members/{b_objects['member'].pk}"
    key_url = f"/api/v1/api-keys/{b_objects['key'].pk}"
    invitation_url = f"/api/v1/orgs/current/invitations/{b_objects['invitation'].pk}"
    attempts = [
        client.get(invitation_url),
        client.delete(invitation_url),
        client.get(member_url),
        client.patch(member_url, {"role": "viewer"}, format="json"),
        client.delete(member_url),
        client.get(key_url),
        client.delete(key_url),
    ]
    statuses = [r.status_code for r in attempts]
    # Viewers are refused writes by role before lookup; both hide the object.
    assert all(s == 404 for s in statuses) or (role == "viewer" and set(statuses) <= {403, 404})
    for response in attempts:
        assert "bravo" not in response.content.decode()
    b_objects["member"].refresh_from_db()
    b_objects["key"].refresh_from_db()
    assert b_objects["member"].role == "member"
    assert b_objects["key"].revoked_at is None
    b_objects["invitation"].refresh_from_db()
    assert b_objects["invitation"].revoked_at is None
    assert Membership.objects.filter(organization=org_b.organization).count() == 5


def test_lists_hold_only_the_callers_rows(org_a, org_b, b_objects):
    client = org_a.client("owner")
    api_key_create(organization=org_a.organization, name="alpha-key", actor_role="owner")
    members = client.get("/api/v1/orgs/current/members", {"page_size": 100}).json()
    assert {m["user"]["username"] for m in members["results"]} == {f"alpha-{r}" for r in org_a.users}
    keys = client.get("/api/v1/api-keys").json()
    assert [k["name"] for k in keys["results"]] == ["alpha-key"]
    org = client.get("/api/v1/orgs/current").json()
    assert org["slug"] == "alpha"


def test_header_naming_another_organization_is_404(org_a, org_b, b_objects):
    client = org_a.client("owner")
    for value in ("bravo", str(org_b.organization.pk)):
        for path in ("/api/v1/me", "/api/v1/orgs/current", "/api/v1/orgs/current/members", "/api/v1/api-keys"):
            response = client.get(path, HTTP_X_ORGANIZATION=value)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "organization_not_found"
            assert "alpha" not in response.content.decode()


def test_token_claim_for_an_organization_without_membership_is_401(org_a, org_b):
    from conftest import jwt_client

    client = jwt_client(org_a.users["owner"], org_b.organization)
    response = client.get("/api/v1/orgs/current/members")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "membership_revoked"
    assert "bravo" not in response.content.decode()


def test_api_key_of_another_organization_sees_only_its_own(org_a, org_b, b_objects):
    from rest_framework.test import APIClient

    _, raw = api_key_create(organization=org_b.organization, name="bravo-admin-key", role="admin", actor_role="owner")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    alpha_member = Membership.objects.get(organization=org_a.organization, user=org_a.users["member"])
    assert client.get(f"/api/v1/orgs/current/members/{alpha_member.pk}").status_code == 404
    assert client.delete(f"/api/v1/orgs/current/members/{alpha_member.pk}").status_code == 404
    assert Membership.objects.filter(pk=alpha_member.pk).exists()
    names = {m["user"]["username"] for m in client.get("/api/v1/orgs/current/members").json()["results"]}
    assert names == {f"bravo-{r}" for r in org_b.users}


def test_every_api_path_is_swept():
    paths = set(SchemaGenerator().get_schema(request=None, public=True)["paths"])
    unswept = paths - SWEPT - NO_TENANT_DATA
    assert not unswept, f"add these endpoints to the cross-organization sweep: {sorted(unswept)}"


def test_every_tenant_owned_model_derives_from_tenant_owned():
    offenders = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            points_at_org = getattr(field, "many_to_one", False) and field.related_model is Organization
            if points_at_org and field.concrete and not issubclass(model, TenantOwned):
                offenders.append(f"{model._meta.label}.{field.name}")
    assert not offenders, f"tenant-owned models must derive from accounts.models.TenantOwned: {offenders}"


def test_every_tenant_owned_model_in_the_admin_is_scoped():
    offenders = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if issubclass(model, TenantOwned) and not isinstance(model_admin, TenantScopedAdmin)
    ]
    assert not offenders


def test_admin_scopes_staff_to_their_organizations(client, org_a, org_b, b_objects):
    staff = org_a.users["admin"]
    staff.is_staff = True
    staff.save()
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts"))
    client.force_login(staff)
    api_key_create(organization=org_a.organization, name="alpha-key", actor_role="owner")
    page = client.get("/admin/accounts/apikey/").content.decode()
    assert "alpha-key" in page
    assert "bravo-key" not in page
    assert client.get(f"/admin/accounts/apikey/{b_objects['key'].pk}/change/").status_code == 302
    assert ApiKey.objects.get(pk=b_objects["key"].pk).revoked_at is None
