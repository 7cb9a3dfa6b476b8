"""The real ASGI server (daphne) on the test database: readiness, login, the
API and its error shape over HTTP."""

import httpx
import pytest

from agenthub.testing import run_daphne

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_daphne_serves_health_auth_and_api(org_a, tmp_path):
    with run_daphne(log_path=tmp_path / "daphne.log") as base, httpx.Client(base_url=base, timeout=10) as http:
        ready = http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert all(check["status"] in ("ok", "skipped") for check in ready.json()["checks"].values())

        token = http.post(
            "/api/v1/auth/token/",
            json={"username": "alpha-admin", "password": "s3cret-Pass-for-tests"},
            headers={"X-Request-ID": "e2e-login-1"},
        )
        assert token.status_code == 200
        assert token.headers["X-Request-ID"] == "e2e-login-1"
        auth = {"Authorization": f"Bearer {token.json()['access']}"}

        me = http.get("/api/v1/me", headers=auth)
        assert (me.status_code, me.json()["organization"]["slug"], me.json()["role"]) == (200, "alpha", "admin")

        created = http.post("/api/v1/api-keys", json={"name": "e2e"}, headers=auth)
        assert created.status_code == 201
        keyed = http.get("/api/v1/orgs/current", headers={"Authorization": f"Bearer {created.json()['key']}"})
        assert keyed.status_code == 200
        assert keyed.json()["slug"] == "alpha"

        missing = http.get("/api/v1/nowhere", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert missing.json()["request_id"] == missing.headers["X-Request-ID"]

        docs = http.get("/api/docs/")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text
        assert "cdn" not in docs.text.lower()
        asset = http.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
        assert asset.status_code == 200
        schema = http.get("/api/schema/", headers={"Accept": "application/json"})
        assert schema.status_code == 200
        assert "/api/v1/api-keys" in schema.json()["paths"]
    # daphne's access log: every request but the static file.
    log = (tmp_path / "daphne.log").read_text()
    assert '"GET /api/docs/" 200' in log
    assert "/static/" not in log


def test_lean_chat_paths_keep_headers_request_ids_and_metrics(org_a, tmp_path):
    """/api/v1/chat, the session event streams and /v1/... run through the
    shorter async middleware stack (agenthub.asgi): same headers, ids and
    metrics as every other path."""
    from accounts.services import api_key_create

    _, raw = api_key_create(organization=org_a.organization, name="lean", actor_role="owner")
    with run_daphne(log_path=tmp_path / "daphne.log") as base, httpx.Client(base_url=base, timeout=10) as http:
        response = http.get("/v1/models", headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "lean-1"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == "lean-1"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        refused = http.post("/api/v1/chat", json={"agent": "x", "prompt": "hi"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "not_authenticated"
        metrics = http.get("/metrics").text
        assert 'view="openai-models"' in metrics
