import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db

URL = "/api/v1/api-keys"


def create_key(client, **payload):
    return client.post(URL, {"name": "ci", **payload}, format="json")


def key_client(raw: str, header: str = "authorization") -> APIClient:
    client = APIClient()
    if header == "authorization":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    else:
        client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_key_is_shown_once_and_stored_hashed(org_a):
    admin = org_a.client("admin")
    response = create_key(admin, role="operator")
    assert response.status_code == 201
    body = response.json()
    raw = body["key"]
    assert raw.startswith(f"ahk_{body['prefix']}_")
    assert body["role"] == "operator"
    assert body["created_by"] == "alpha-admin"

    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.prefix, stored.hashed_key, stored.name}

    listed = admin.get(URL).json()
    assert listed["count"] == 1
    assert "key" not in listed["results"][0]
    assert "key" not in admin.get(f"{URL}/{body['id']}").json()


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_key_authenticates_in_its_organization_with_its_role(org_a, header):
    raw = create_key(org_a.client("owner"), role="viewer").json()["key"]
    me = key_client(raw, header).get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert body["auth_method"] == "api_key"
    assert body["user"] is None
    assert (body["organization"]["slug"], body["role"]) == ("alpha", "viewer")
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_key_is_refused(org_a):
    admin = org_a.client("admin")
    created = create_key(admin).json()
    client = key_client(created["key"])
    assert client.get("/api/v1/me").status_code == 200

    assert admin.delete(f"{URL}/{created['id']}").status_code == 204
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "api_key_revoked",
        "message": "This API key has been revoked.",
        "details": {},
    }
    # Revoking again is harmless and keeps the first revocation time.
    revoked_at = ApiKey.objects.get().revoked_at
    assert admin.delete(f"{URL}/{created['id']}").status_code == 204
    assert ApiKey.objects.get().revoked_at == revoked_at
    assert admin.get(URL, {"revoked": "true"}).json()["count"] == 1
    assert admin.get(URL, {"revoked": "false"}).json()["count"] == 0


def test_expired_key_is_refused(org_a):
    raw = create_key(org_a.client("admin"), expires_at=(timezone.now() + timedelta(hours=1)).isoformat()).json()["key"]
    ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = key_client(raw).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"


def test_expiry_in_the_past_is_400(org_a):
    response = create_key(org_a.client("admin"), expires_at="2001-01-01T00:00:00Z")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"] == {"expires_at": ["Must be in the future."]}
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("raw", ["ahk_nope_nope", "ahk_", "ahk_abc", "ahk_" + "a" * 300])
def test_unknown_or_malformed_key_is_401(org_a, raw):
    response = key_client(raw).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_secret_for_a_real_prefix_is_401(org_a):
    raw = create_key(org_a.client("admin")).json()["key"]
    forged = raw[:-3] + ("aaa" if not raw.endswith("aaa") else "bbb")
    assert key_client(forged).get("/api/v1/me").status_code == 401


def test_key_role_cannot_exceed_the_creators(org_a):
    response = create_key(org_a.client("admin"), role="owner")
    assert response.status_code == 403
    assert ApiKey.objects.count() == 0
    assert create_key(org_a.client("owner"), role="owner").status_code == 201


@pytest.mark.parametrize("role", ["operator", "member", "viewer"])
def test_below_admin_cannot_list_create_or_revoke(org_a, role):
    created = create_key(org_a.client("admin")).json()
    client = org_a.client(role)
    assert client.get(URL).status_code == 403
    assert create_key(client).status_code == 403
    assert client.delete(f"{URL}/{created['id']}").status_code == 403
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


def test_api_key_cannot_switch_organization_by_header(org_a, org_b):
    raw = create_key(org_a.client("owner"), role="admin").json()["key"]
    client = key_client(raw)
    response = client.get("/api/v1/orgs/current", HTTP_X_ORGANIZATION="bravo")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "organization_not_found"
    assert client.get("/api/v1/orgs/current", HTTP_X_ORGANIZATION="alpha").json()["slug"] == "alpha"


def test_key_of_a_disabled_organization_is_refused(org_a):
    raw = create_key(org_a.client("owner")).json()["key"]
    org_a.organization.is_active = False
    org_a.organization.save()
    assert key_client(raw).get("/api/v1/me").status_code == 401


def test_another_process_refuses_a_revoked_key_within_the_cache_time(org_a, settings):
    """A revocation made elsewhere (here: the row updated behind this
    process's back) is seen once the process's memory of the key expires."""
    import time

    settings.API_KEY_CACHE_SECONDS = 0.3
    created = create_key(org_a.client("admin")).json()
    client = key_client(created["key"])
    assert client.get("/api/v1/me").status_code == 200
    ApiKey.objects.filter(pk=created["id"]).update(revoked_at=timezone.now())
    assert client.get("/api/v1/me").status_code == 200  # still remembered here
    time.sleep(0.35)
    assert client.get("/api/v1/me").json()["error"]["code"] == "api_key_revoked"


def test_without_the_cache_every_request_reads_the_key(org_a, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    created = create_key(org_a.client("admin")).json()
    client = key_client(created["key"])
    assert client.get("/api/v1/me").status_code == 200
    ApiKey.objects.filter(pk=created["id"]).update(revoked_at=timezone.now())
    assert client.get("/api/v1/me").status_code == 401


def test_a_wrong_secret_is_refused_even_while_the_right_key_is_remembered(org_a):
    created = create_key(org_a.client("admin")).json()
    assert key_client(created["key"]).get("/api/v1/me").status_code == 200
    prefix, _, _secret = created["key"].removeprefix("ahk_").partition("_")
    forged = f"ahk_{prefix}_{'x' * 40}"
    assert key_client(forged).get("/api/v1/me").status_code == 401
