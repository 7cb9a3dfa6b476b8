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


def make_staff(user):
    from django.contrib.auth.models import Permission

    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts"))
    return user


def test_admin_invites_and_revokes(client, org_a, django_capture_on_commit_callbacks):
    from django.core import mail

    from accounts.models import Invitation

    staff = make_staff(org_a.users["admin"])
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/invitation/add/",
            {"organization": org_a.organization.pk, "email": "joiner@example.com", "role": "owner"},
        )
    assert response.status_code == 403  # an admin cannot invite an owner
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/invitation/add/",
            {"organization": org_a.organization.pk, "email": "joiner@example.com", "role": "operator"},
            follow=True,
        )
    assert response.status_code == 200
    invitation = Invitation.objects.get(email="joiner@example.com")
    assert [m.to for m in mail.outbox] == [["joiner@example.com"]]
    assert invitation.token_hash not in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/accounts/invitation/", {"action": "resend_selected", "_selected_action": [invitation.pk]})
    assert [m.to for m in mail.outbox] == [["joiner@example.com"]] * 2
    assert mail.outbox[0].body != mail.outbox[1].body  # a new link
    client.post("/admin/accounts/invitation/", {"action": "revoke_selected", "_selected_action": [invitation.pk]})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    # Staff cannot place an account into an organization directly.
    assert client.get("/admin/accounts/membership/add/").status_code == 403


def test_admin_cannot_remove_another_admin_in_the_admin(client, org_a):
    from accounts.tests.factories import UserFactory

    staff = make_staff(org_a.users["admin"])
    other = Membership.objects.create(organization=org_a.organization, user=UserFactory(), role="admin")
    client.force_login(staff)
    response = client.post(f"/admin/accounts/membership/{other.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Membership.objects.filter(pk=other.pk).exists()
