import hashlib

import pytest

from accounts.models import ApiKey, Membership

pytestmark = pytest.mark.django_db


def test_admin_creates_a_key_and_shows_the_secret_once(admin_client, org_a):
    response = admin_client.post(
        "/admin/accounts/apikey/add/",
        {
            "organization": org_a.organization.pk,
            "name": "from-admin",
            "role": "operator",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="from-admin")
    shown = [str(m) for m in response.context["messages"]]
    secrets = [word for m in shown for word in m.split() if word.startswith("ahk_")]
    assert len(secrets) == 1
    assert hashlib.sha256(secrets[0].encode()).hexdigest() == key.hashed_key
    page = admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert secrets[0] not in page
    assert key.prefix in page


def test_admin_revoke_action(admin_client, org_a):
    from accounts.services import api_key_create

    key, _ = api_key_create(organization=org_a.organization, name="k", actor_role="owner")
    admin_client.post("/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_admin_cannot_remove_the_last_owner(admin_client, org_a):
    owner = Membership.objects.get(organization=org_a.organization, role="owner")
    response = admin_client.post(f"/admin/accounts/membership/{owner.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_admin_role_change_goes_through_the_rules(admin_client, org_a):
    owner = Membership.objects.get(organization=org_a.organization, role="owner")
    response = admin_client.post(f"/admin/accounts/membership/{owner.pk}/change/", {"role": "viewer"})
    assert response.status_code == 403
    owner.refresh_from_db()
    assert owner.role == "owner"
    member = Membership.objects.get(organization=org_a.organization, role="member")
    response = admin_client.post(f"/admin/accounts/membership/{member.pk}/change/", {"role": "operator"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == "operator"
