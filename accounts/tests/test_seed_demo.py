"""``seed_demo`` creates what is missing and leaves what exists alone: a
second run keeps the demo users' passwords, sessions and tokens.  ``--reset``
restores the original state (and so logs the demo users out)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Membership, Organization, User

pytestmark = pytest.mark.django_db

ROLES = ("owner", "admin", "operator", "member", "viewer")
UNCHANGED = "(password unchanged)"


def seed(*args):
    out = StringIO()
    call_command("seed_demo", "--force", *args, stdout=out)
    return out.getvalue()


def hashes():
    return dict(User.objects.values_list("username", "password"))


def test_seed_is_idempotent_and_prints_credentials(client):
    first = seed()
    second = seed()
    assert Organization.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(organization__slug="demo").count() == 5
    assert User.objects.count() == 6
    assert "admin / agenthub-demo  (all organizations, in the admin)" in first
    for role in ROLES:
        assert f"demo-{role} / agenthub-demo" in first
    assert UNCHANGED not in first
    # The second run created nothing and says the passwords were kept, and how to reset them.
    assert "admin / (password unchanged)  (all organizations, in the admin)" in second
    for role in ROLES:
        assert f"demo-{role} / {UNCHANGED}" in second
    assert "agenthub-demo unless" in second
    assert "manage.py seed_demo --reset" in second
    assert seed() == second

    response = client.post(
        "/api/v1/auth/token/",
        {"username": "demo-operator", "password": "agenthub-demo"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert client.login(username="demo-owner", password="agenthub-demo")
    assert client.get("/admin/accounts/membership/").status_code == 200
    client.logout()
    assert client.login(username="demo-member", password="agenthub-demo")
    assert client.get("/admin/").status_code == 302  # not staff


def test_seeding_again_keeps_passwords_sessions_and_tokens(client):
    seed()
    before = hashes()
    assert client.login(username="demo-owner", password="agenthub-demo")
    assert client.get("/admin/").status_code == 200
    tokens = APIClient().post(
        "/api/v1/auth/token/", {"username": "demo-operator", "password": "agenthub-demo"}, format="json"
    )
    assert tokens.status_code == 200

    seed()
    seed("--password", "something-else")  # only for users created now: none are

    assert hashes() == before
    assert client.get("/admin/").status_code == 200  # the session still works
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert api.get("/api/v1/me").json()["user"]["username"] == "demo-operator"
    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200


def test_a_changed_demo_user_is_left_alone():
    seed()
    viewer = User.objects.get(username="demo-viewer")
    viewer.set_password("my-own-password")
    viewer.first_name = "Vera"
    viewer.save()
    Membership.objects.filter(user=viewer).update(role="member")

    output = seed("--password", "another")

    viewer.refresh_from_db()
    assert viewer.check_password("my-own-password")
    assert viewer.first_name == "Vera"
    assert Membership.objects.get(user=viewer).role == "member"
    assert f"demo-viewer / {UNCHANGED}" in output
    # It says how to set the given password, since this run did not.
    assert "To set it to another" in output
    assert "manage.py seed_demo --reset --password another" in output


def test_missing_demo_users_and_memberships_are_recreated(client):
    seed()
    before = hashes()
    User.objects.filter(username__in=["demo-member", "admin"]).delete()
    Membership.objects.filter(user__username="demo-viewer").delete()

    output = seed()

    assert User.objects.count() == 6
    assert Membership.objects.filter(organization__slug="demo").count() == 5
    assert Membership.objects.get(user__username="demo-viewer").role == "viewer"
    assert Membership.objects.get(user__username="demo-member").role == "member"
    assert "admin / agenthub-demo  (all organizations, in the admin)" in output
    assert "demo-member / agenthub-demo" in output
    assert f"demo-owner / {UNCHANGED}" in output
    after = hashes()
    assert {name: after[name] for name in before if name not in ("demo-member", "admin")} == {
        name: before[name] for name in before if name not in ("demo-member", "admin")
    }
    assert User.objects.get(username="admin").is_superuser
    assert client.login(username="demo-member", password="agenthub-demo")
    assert client.login(username="admin", password="agenthub-demo")


def test_reset_restores_passwords_roles_and_flags(client):
    seed()
    owner = User.objects.get(username="demo-owner")
    owner.set_password("changed")
    owner.save()
    User.objects.filter(username="demo-admin").update(is_staff=False, is_active=False)
    User.objects.filter(username="admin").update(is_superuser=False)
    Membership.objects.filter(user__username="demo-operator").update(role="viewer")
    assert client.login(username="demo-owner", password="changed")

    output = seed("--reset")

    assert UNCHANGED not in output
    for role in ROLES:
        assert f"demo-{role} / agenthub-demo" in output
    assert client.get("/admin/").status_code == 302  # the reset password logged the owner out
    assert client.login(username="demo-owner", password="agenthub-demo")
    demo_admin = User.objects.get(username="demo-admin")
    assert demo_admin.is_staff and demo_admin.is_active
    assert User.objects.get(username="admin").is_superuser
    assert Membership.objects.get(user__username="demo-operator").role == "operator"
    # After a reset, a plain seed again leaves everything as it is.
    before = hashes()
    seed()
    assert hashes() == before


def test_seed_refuses_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("seed_demo", "--reset", stdout=StringIO())
    assert not Organization.objects.exists()
