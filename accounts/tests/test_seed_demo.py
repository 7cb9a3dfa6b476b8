from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Organization, User

pytestmark = pytest.mark.django_db


def seed(**kwargs):
    out = StringIO()
    call_command("seed_demo", "--force", stdout=out, **kwargs)
    return out.getvalue()


def test_seed_is_idempotent_and_prints_credentials(client):
    first = seed()
    second = seed()
    assert first == second
    assert Organization.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(organization__slug="demo").count() == 5
    assert User.objects.count() == 6
    for role in ("owner", "admin", "operator", "member", "viewer"):
        assert f"demo-{role} / agenthub-demo" in first

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


def test_seed_refuses_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())
    assert not Organization.objects.exists()
