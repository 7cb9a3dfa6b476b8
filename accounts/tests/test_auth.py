from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
VERIFY_URL = "/api/v1/auth/token/verify/"


def obtain(client, username, password=PASSWORD, **extra):
    return client.post(TOKEN_URL, {"username": username, "password": password, **extra}, format="json")


def test_obtain_returns_a_pair_that_authenticates(api_client, org_a):
    response = obtain(api_client, "alpha-member")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert body["auth_method"] == "jwt"
    assert body["user"]["username"] == "alpha-member"
    assert body["organization"]["slug"] == "alpha"
    assert body["role"] == "member"


def test_obtain_with_wrong_password_is_401_in_error_shape(api_client, org_a):
    response = obtain(api_client, "alpha-member", password="wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "no_active_account"
    assert body["request_id"] == response["X-Request-ID"]


def test_obtain_binds_the_token_to_a_chosen_organization(api_client, org_a, org_b):
    from accounts.models import Membership

    user = org_a.users["viewer"]
    Membership.objects.create(organization=org_b.organization, user=user, role="admin")
    response = obtain(api_client, user.username, organization="bravo")
    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["org"] == str(org_b.organization.pk)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    body = client.get("/api/v1/me").json()
    assert (body["organization"]["slug"], body["role"]) == ("bravo", "admin")
    assert [m["organization"]["slug"] for m in body["memberships"]] == ["alpha", "bravo"]


def test_obtain_for_an_organization_you_are_not_in_is_400(api_client, org_a, org_b):
    response = obtain(api_client, "alpha-owner", organization="bravo")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"]["organization"] == [
        "You are not a member of this organization."
    ]


def test_refresh_rotates_and_blacklists_the_old_token(api_client, org_a):
    pair = obtain(api_client, "alpha-admin").json()

    first = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert first.status_code == 200
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != pair["refresh"]
    assert (
        BlacklistedToken.objects.filter(token__jti=RefreshToken(rotated["refresh"], verify=False)["jti"]).count() == 0
    )
    assert BlacklistedToken.objects.count() == 1

    again = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "token_not_valid"

    # The rotated one still works, once.
    assert api_client.post(REFRESH_URL, {"refresh": rotated["refresh"]}, format="json").status_code == 200


def test_rotation_keeps_the_organization_claim(api_client, org_a):
    pair = obtain(api_client, "alpha-admin", organization="alpha").json()
    rotated = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json").json()
    assert AccessToken(rotated["access"])["org"] == str(org_a.organization.pk)


def test_logout_blacklists_the_refresh_token(api_client, org_a):
    pair = obtain(api_client, "alpha-admin").json()
    assert (
        api_client.post("/api/v1/auth/token/blacklist/", {"refresh": pair["refresh"]}, format="json").status_code == 200
    )
    assert api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_expired_access_token_is_401(org_a):
    token = AccessToken.for_user(org_a.users["owner"])
    token.set_exp(lifetime=-timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_tampered_access_token_is_401(org_a):
    token = str(AccessToken.for_user(org_a.users["owner"]))
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert client.get("/api/v1/me").status_code == 401

    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get("/api/v1/me").status_code == 401


def test_token_of_a_deactivated_user_is_refused(org_a):
    user = org_a.users["member"]
    client = org_a.client("member")
    user.is_active = False
    user.save()
    assert client.get("/api/v1/me").status_code == 401


def test_verify(api_client, org_a):
    pair = obtain(api_client, "alpha-viewer").json()
    assert api_client.post(VERIFY_URL, {"token": pair["access"]}, format="json").status_code == 200
    response = api_client.post(VERIFY_URL, {"token": pair["access"] + "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_user_without_any_membership_gets_a_clear_404_on_org_endpoints(api_client, db):
    from accounts.tests.factories import UserFactory
    from conftest import jwt_client

    loner = UserFactory(username="loner")
    client = jwt_client(loner)
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["organization"] is None
    response = client.get("/api/v1/orgs/current")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_organization"


def test_session_auth_works_for_the_browsable_api(client, org_a):
    client.force_login(org_a.users["operator"])
    response = client.get("/api/v1/me", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["auth_method"] == "session"


def test_logout_revokes_the_access_token_at_once(api_client, org_a):
    pair = obtain(api_client, "alpha-member").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.get("/api/v1/me").status_code == 200
    out = client.post("/api/v1/auth/token/blacklist/", {"refresh": pair["refresh"]}, format="json")
    assert out.status_code == 200
    after = client.get("/api/v1/me")
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "token_revoked"
    assert client.post("/api/v1/chat/tickets", {}, format="json").status_code == 401
    refreshed = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401
    # Another session of the same user is untouched.
    other = obtain(api_client, "alpha-member").json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other['access']}")
    assert client.get("/api/v1/me").status_code == 200


def test_login_binds_the_tokens_to_the_first_membership(api_client, org_a):
    access = AccessToken(obtain(api_client, "alpha-member").json()["access"])
    assert access["org"] == str(org_a.organization.pk)


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/api/v1/orgs/current", "/api/v1/agents", "/api/v1/api-keys", "/api/v1/drafts"]
)
def test_a_token_whose_membership_was_deleted_is_401_everywhere(api_client, org_a, path):
    from accounts.models import Membership

    pair = obtain(api_client, "alpha-admin").json()
    Membership.objects.filter(user=org_a.users["admin"]).delete()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    response = client.get(path)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "membership_revoked"
    # Naming the organization in the header does not help either.
    assert client.get(path, HTTP_X_ORGANIZATION="alpha").status_code == 401
    refreshed = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert refreshed.json()["error"]["code"] == "membership_revoked"


def test_refresh_of_a_disabled_user_is_401(api_client, org_a):
    pair = obtain(api_client, "alpha-viewer").json()
    org_a.users["viewer"].__class__.objects.filter(pk=org_a.users["viewer"].pk).update(is_active=False)
    refreshed = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401
