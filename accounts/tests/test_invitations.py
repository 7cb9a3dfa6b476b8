"""Invitations: the only way into an organization. The answer does not say
whether an account exists; the invitee accepts through a one-time link."""

import re
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Invitation, Membership, User
from accounts.tests.factories import PASSWORD, UserFactory
from conftest import jwt_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/orgs/current/invitations"
ACCEPT = "/api/v1/invitations/accept"


def link_token(message) -> str:
    return re.search(r"/invitations/([A-Za-z0-9_\-]+)/", message.body).group(1)


def invite(org, email, role="member", actor="admin"):
    return org.client(actor).post(URL, {"email": email, "role": role}, format="json")


def test_the_answer_is_the_same_whether_or_not_the_account_exists(org_a, django_capture_on_commit_callbacks):
    UserFactory(username="existing", email="Existing@Example.com", first_name="Ex", last_name="Isting")
    with django_capture_on_commit_callbacks(execute=True):
        known = invite(org_a, "existing@example.com")
        unknown = invite(org_a, "ghost@example.com")
    assert (known.status_code, unknown.status_code) == (201, 201)
    shape = {k for k in known.json()}
    assert shape == {k for k in unknown.json()}
    for response in (known, unknown):
        body = response.json()
        assert body["status"] == "pending"
        assert "user" not in body and "token" not in body
    assert "existing" not in known.content.decode().replace("existing@example.com", "")
    assert "Isting" not in known.content.decode()
    assert not Membership.objects.filter(user__username="existing", organization=org_a.organization).exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["existing@example.com", "ghost@example.com"]
    assert "alpha Inc" in mail.outbox[0].subject or "alpha Inc" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("actor", "role", "expected"),
    [
        ("owner", "owner", 201),
        ("owner", "admin", 201),
        ("admin", "admin", 201),
        ("admin", "viewer", 201),
        ("admin", "owner", 403),
        ("operator", "member", 403),
        ("member", "member", 403),
        ("viewer", "viewer", 403),
    ],
)
def test_invite_role_matrix(org_a, actor, role, expected):
    response = invite(org_a, "new@example.com", role=role, actor=actor)
    assert response.status_code == expected, response.content
    assert Invitation.objects.filter(email="new@example.com").exists() is (expected == 201)
    assert len(mail.outbox) == 0  # sent on commit; the test transaction never commits


@pytest.mark.parametrize("role", ["operator", "member", "viewer"])
def test_only_admins_see_invitations(org_a, role):
    invite(org_a, "new@example.com")
    assert org_a.client(role).get(URL).status_code == 403
    assert org_a.client("admin").get(URL).json()["count"] == 1


def test_accept_through_the_api_makes_a_member_once(org_a, django_capture_on_commit_callbacks):
    invitee = UserFactory(username="invitee", email="invitee@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        invite(org_a, "INVITEE@example.com", role="operator")
    token = link_token(mail.outbox[0])
    assert mail.outbox[0].body.count("http://127.0.0.1:8000/invitations/") == 1
    client = jwt_client(invitee)
    accepted = client.post(ACCEPT, {"token": token}, format="json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json() == {"organization": accepted.json()["organization"], "role": "operator"}
    assert accepted.json()["organization"]["slug"] == "alpha"
    assert Membership.objects.get(user=invitee, organization=org_a.organization).role == "operator"
    again = client.post(ACCEPT, {"token": token}, format="json")
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "invitation_used"
    listed = org_a.client("admin").get(URL).json()["results"][0]
    assert listed["status"] == "accepted"


def test_the_wrong_person_cannot_accept(org_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(org_a, "meant@example.com")
    token = link_token(mail.outbox[0])
    other = UserFactory(username="other", email="other@example.com")
    response = jwt_client(other).post(ACCEPT, {"token": token}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invitation_wrong_user"
    assert not Membership.objects.filter(user=other, organization=org_a.organization).exists()
    assert Invitation.objects.get().accepted_at is None


def test_expired_revoked_and_bogus_tokens(org_a, django_capture_on_commit_callbacks):
    invitee = UserFactory(username="invitee", email="invitee@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        created = invite(org_a, "invitee@example.com").json()
    token = link_token(mail.outbox[0])
    client = jwt_client(invitee)
    Invitation.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.post(ACCEPT, {"token": token}, format="json")
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "invitation_expired")
    Invitation.objects.filter(pk=created["id"]).update(expires_at=timezone.now() + timedelta(days=1))
    assert org_a.client("admin").delete(f"{URL}/{created['id']}").status_code == 204
    revoked = client.post(ACCEPT, {"token": token}, format="json")
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (410, "invitation_revoked")
    bogus = client.post(ACCEPT, {"token": "x" * 43}, format="json")
    assert (bogus.status_code, bogus.json()["error"]["code"]) == (404, "invitation_not_found")
    assert not Membership.objects.filter(user=invitee, organization=org_a.organization).exists()
    assert org_a.client("admin").delete(f"{URL}/{created['id']}").status_code == 409


def test_inviting_again_renews_the_link_and_the_old_one_stops_working(org_a, django_capture_on_commit_callbacks):
    invitee = UserFactory(username="invitee", email="invitee@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        first = invite(org_a, "invitee@example.com").json()
        second = invite(org_a, "invitee@example.com", role="viewer").json()
    assert first["id"] == second["id"]
    old, new = link_token(mail.outbox[0]), link_token(mail.outbox[1])
    client = jwt_client(invitee)
    assert client.post(ACCEPT, {"token": old}, format="json").status_code == 404
    assert client.post(ACCEPT, {"token": new}, format="json").json()["role"] == "viewer"


def test_inviting_a_member_is_409(org_a):
    org_a.users["member"].email = "member@alpha.example"
    org_a.users["member"].save()
    response = invite(org_a, "MEMBER@alpha.example")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "already_member")


def test_limits_on_pending_and_per_hour(org_a, settings):
    settings.INVITATIONS_MAX_PENDING = 2
    assert invite(org_a, "a@example.com").status_code == 201
    assert invite(org_a, "b@example.com").status_code == 201
    full = invite(org_a, "c@example.com")
    assert (full.status_code, full.json()["error"]["code"]) == (409, "too_many_pending_invitations")
    settings.INVITATIONS_MAX_PENDING = 100
    settings.INVITATIONS_PER_HOUR = 3
    assert invite(org_a, "d@example.com").status_code == 201  # the third this hour
    hourly = invite(org_a, "e@example.com")
    assert hourly.status_code == 429
    assert int(hourly["Retry-After"]) > 0
    assert hourly.json()["error"]["code"] == "too_many_invitations"


def test_an_api_key_cannot_accept(org_a):
    from accounts.services import api_key_create

    _, raw = api_key_create(organization=org_a.organization, name="k", actor_role="owner", role="admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.post(ACCEPT, {"token": "x" * 43}, format="json").status_code == 403


def test_lists_hold_only_the_callers_invitations(org_a, org_b):
    invite(org_a, "for-alpha@example.com")
    invite(org_b, "for-bravo@example.com")
    emails = [i["email"] for i in org_a.client("owner").get(URL).json()["results"]]
    assert emails == ["for-alpha@example.com"]


# --- the link page -----------------------------------------------------------------------


def page_token(org, email, django_capture_on_commit_callbacks, role="member"):
    with django_capture_on_commit_callbacks(execute=True):
        invite(org, email, role=role)
    return link_token(mail.outbox[-1])


def test_the_page_creates_an_account_and_a_membership(client, org_a, django_capture_on_commit_callbacks):
    token = page_token(org_a, "newbie@example.com", django_capture_on_commit_callbacks, role="operator")
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert b"Join alpha Inc" in page.content and b"newbie@example.com" in page.content
    weak = client.post(
        f"/invitations/{token}/", {"action": "signup", "username": "newbie", "password": "123", "password_again": "123"}
    )
    assert weak.status_code == 400
    assert not User.objects.filter(username="newbie").exists()
    done = client.post(
        f"/invitations/{token}/",
        {"action": "signup", "username": "newbie", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert done.status_code == 200, done.content
    assert b"You joined alpha Inc" in done.content
    user = User.objects.get(username="newbie")
    assert user.email == "newbie@example.com" and user.check_password(PASSWORD)
    assert Membership.objects.get(user=user).role == "operator"
    used = client.get(f"/invitations/{token}/")
    assert used.status_code == 410
    assert b"already been used" in used.content


def test_the_page_signs_in_an_existing_account(client, org_a, django_capture_on_commit_callbacks):
    existing = UserFactory(username="existing", email="existing@example.com")
    token = page_token(org_a, "existing@example.com", django_capture_on_commit_callbacks)
    page = client.get(f"/invitations/{token}/")
    assert b"An account with this email already exists" in page.content
    signup = client.post(
        f"/invitations/{token}/",
        {"action": "signup", "username": "dupe", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert signup.status_code == 409
    wrong = client.post(f"/invitations/{token}/", {"action": "login", "username": "existing", "password": "nope"})
    assert wrong.status_code == 400
    assert b"wrong" in wrong.content
    done = client.post(f"/invitations/{token}/", {"action": "login", "username": "existing", "password": PASSWORD})
    assert done.status_code == 200
    assert Membership.objects.filter(user=existing, organization=org_a.organization).exists()


def test_the_link_comes_from_configuration_not_the_host_header(org_a, settings, django_capture_on_commit_callbacks):
    settings.AGENTHUB_PUBLIC_URL = "https://agents.example.com"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    with django_capture_on_commit_callbacks(execute=True):
        org_a.client("admin").post(
            URL, {"email": "x@example.com", "role": "member"}, format="json", HTTP_HOST="evil.example"
        )
    assert "https://agents.example.com/invitations/" in mail.outbox[0].body
    assert "evil.example" not in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_membership(org_a):
    if connection.vendor != "postgresql":
        pytest.skip("needs Postgres: SQLite serialises writers")
    from accounts.services import invitation_accept, invitation_create

    invitee = UserFactory(username="racer", email="racer@example.com")
    invitation_create(
        organization=org_a.organization, actor_role="owner", invited_by=None, email="racer@example.com", role="member"
    )
    token = link_token(mail.outbox[-1])
    results, barrier = [], threading.Barrier(2)

    def accept():
        barrier.wait()
        try:
            invitation_accept(token=token, user=invitee)
            results.append("ok")
        except Exception as exc:
            results.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The loser is refused either way: it lost the conditional update, or it
    # arrived after the winner's membership was committed.
    assert results.count("ok") == 1
    assert set(results) - {"ok"} <= {"invitation_used", "already_member"}
    assert len(results) == 2
    assert Membership.objects.filter(user=invitee, organization=org_a.organization).count() == 1
