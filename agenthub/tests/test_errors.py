"""Every error in one shape, and bad input always a clear 4xx."""

import pytest

from accounts.models import ApiKey, Membership

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    # The OpenAI-compatible endpoints add OpenAI's type and param (chat.apis.openai).
    openai_extras = {"type", "param"} if response.request["PATH_INFO"].startswith("/v1/") else set()
    assert set(body["error"]) == {"code", "message", "details"} | openai_extras
    assert body["error"]["message"]
    assert body["request_id"] == response["X-Request-ID"]
    if code:
        assert body["error"]["code"] == code
    return body


def test_400_validation_lists_fields(org_a):
    response = org_a.client("admin").post("/api/v1/api-keys", {"name": "", "role": "emperor"}, format="json")
    body = assert_error_shape(response, 400, "validation_error")
    assert set(body["error"]["details"]["fields"]) == {"name", "role"}


def test_401(api_client):
    assert_error_shape(api_client.get("/api/v1/orgs/current"), 401, "not_authenticated")


def test_403(org_a):
    assert_error_shape(org_a.client("viewer").get("/api/v1/api-keys"), 403, "permission_denied")


def test_404_on_api_object_and_unknown_url(org_a):
    client = org_a.client("admin")
    assert_error_shape(client.get("/api/v1/api-keys/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    body = assert_error_shape(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert "/api/v1/no-such-thing" in body["error"]["message"]


def test_405(org_a):
    assert_error_shape(org_a.client("owner").put("/api/v1/me", {}, format="json"), 405, "method_not_allowed")


def test_429_with_retry_after(org_a, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "user": "3/min"}
    client = org_a.client("viewer")
    assert [client.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/api/v1/me")
    body = assert_error_shape(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert body["error"]["details"]["retry_after_seconds"] == int(response["Retry-After"])
    # Another user has a bucket of their own.
    assert org_a.client("member").get("/api/v1/me").status_code == 200


def test_throttle_buckets_for_api_keys_and_anonymous_clients(org_a, api_client, settings):
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    settings.THROTTLE_RATES = {"user": "100/min", "api_key": "2/min", "anon": "2/min"}
    _, raw = api_key_create(organization=org_a.organization, name="k", actor_role="owner")
    keyed = APIClient()
    keyed.credentials(HTTP_X_API_KEY=raw)
    assert [keyed.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 429]
    # Anonymous clients are limited where anonymity is allowed: password guessing.
    attempts = [
        api_client.post("/api/v1/auth/token/", {"username": "alpha-owner", "password": "guess"}, format="json")
        for _ in range(3)
    ]
    assert [r.status_code for r in attempts] == [401, 401, 429]
    assert org_a.client("owner").get("/api/v1/me").status_code == 200


def test_413_oversized_body(org_a, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = org_a.client("admin").post("/api/v1/api-keys", {"name": "x" * 5000}, format="json")
    body = assert_error_shape(response, 413, "payload_too_large")
    assert body["error"]["details"] == {"limit_bytes": 1000}
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"name": "a",}', "application/json"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_malformed_json_is_400(org_a, payload, content_type):
    response = org_a.client("admin").post("/api/v1/api-keys", payload, content_type=content_type)
    assert_error_shape(response, 400, "invalid_json")


DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize(
    ("path", "principal"),
    [
        ("/api/v1/auth/token/", None),
        ("/api/v1/api-keys", "admin"),
        ("/api/v1/chat", "member"),
        ("/v1/chat/completions", "member"),
    ],
)
@pytest.mark.django_db(transaction=True)  # the chat views are async: their ORM thread must see the users
def test_deeply_nested_json_is_400_invalid_json(org_a, api_client, path, principal):
    client = org_a.client(principal) if principal else api_client
    response = client.post(path, DEEP, content_type="application/json")
    if path.startswith("/v1/"):  # OpenAI's error fields are added there (type, param)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    else:
        assert_error_shape(response, 400, "invalid_json")
    assert "nested more than 64 levels" in response.json()["error"]["message"]


def test_nesting_at_the_limit_is_accepted_by_the_parser(settings):
    from agenthub.jsonparse import InvalidJson, parse_json

    settings.JSON_MAX_DEPTH = 5
    assert parse_json('{"a": [[[{"b": 1}]]]}') == {"a": [[[{"b": 1}]]]}
    with pytest.raises(InvalidJson):
        parse_json('{"a": [[[{"b": [1]}]]]}')


def test_wrong_content_type_is_415(org_a):
    response = org_a.client("admin").post(
        "/api/v1/api-keys", "name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error_shape(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "payload",
    [
        {"name": 123, "role": ["admin"]},
        {"name": {"nested": True}},
        {"name": None},
        {"name": "ok", "expires_at": "yesterday"},
        {"name": "ok", "expires_at": 12},
    ],
)
def test_wrong_types_are_400(org_a, payload):
    response = org_a.client("admin").post("/api/v1/api-keys", payload, format="json")
    assert_error_shape(response, 400, "validation_error")
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("body", [[], ["a"], "text", 42, None])
def test_non_object_bodies_are_400(org_a, body):
    response = org_a.client("admin").post("/api/v1/api-keys", body, format="json")
    assert_error_shape(response, 400)


def test_unknown_fields_are_400(org_a):
    response = org_a.client("admin").post("/api/v1/api-keys", {"name": "ok", "rolee": "admin"}, format="json")
    body = assert_error_shape(response, 400, "validation_error")
    assert body["error"]["details"]["fields"] == {"rolee": ["Unknown field. Allowed fields: expires_at, name, role."]}
    member = Membership.objects.get(user=org_a.users["member"])
    response = org_a.client("owner").patch(
        f"/api/v1/orgs/current/members/{member.pk}", {"role": "viewer", "user": "x"}, format="json"
    )
    assert_error_shape(response, 400, "validation_error")
    member.refresh_from_db()
    assert member.role == "member"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000Z", "%00", "' OR 1=1"])
def test_invalid_uuids_are_404(org_a, bad_id):
    client = org_a.client("owner")
    assert_error_shape(client.get(f"/api/v1/api-keys/{bad_id}"), 404)
    assert_error_shape(client.delete(f"/api/v1/orgs/current/members/{bad_id}"), 404)


def test_unicode_and_very_long_strings(org_a):
    client = org_a.client("admin")
    ok = client.post("/api/v1/api-keys", {"name": "clé 🔑 ключ 鍵"}, format="json")
    assert ok.status_code == 201
    assert ok.json()["name"] == "clé 🔑 ключ 鍵"
    long = client.post("/api/v1/api-keys", {"name": "x" * 10_000}, format="json")
    body = assert_error_shape(long, 400, "validation_error")
    assert "name" in body["error"]["details"]["fields"]
    nul = client.post("/api/v1/api-keys", {"name": "a\x00b"}, format="json")
    assert_error_shape(nul, 400, "validation_error")
    huge_header = client.get("/api/v1/orgs/current", HTTP_X_ORGANIZATION="é" * 500)
    assert_error_shape(huge_header, 404, "organization_not_found")
    assert ApiKey.objects.count() == 1


def test_bad_query_parameters(org_a):
    client = org_a.client("viewer")
    assert_error_shape(client.get("/api/v1/orgs/current/members", {"page": "abc"}), 404)
    assert_error_shape(client.get("/api/v1/orgs/current/members", {"page": 999}), 404)
    assert client.get("/api/v1/orgs/current/members", {"page_size": "lots"}).status_code == 200
    assert client.get("/api/v1/orgs/current/members", {"ordering": "password"}).status_code == 200


def test_bad_content_length_header(org_a):
    response = org_a.client("admin").generic("POST", "/api/v1/api-keys", b"{}", CONTENT_LENGTH="abc")
    assert_error_shape(response, 400, "bad_request")
