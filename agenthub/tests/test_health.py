import copy

import pytest
from django.db import connections
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)

DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_live(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body) == {"status", "version", "uptime_seconds"}


def test_ready_reports_every_configured_dependency(client, settings):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    expected = {"database", "cache", "channel_layer", "celery_broker", "model_deployments", "journal"}
    assert set(body["checks"]) == expected
    # Informational: reported, never failing the probe (integrations and chat register them).
    assert body["checks"]["model_deployments"]["required"] is False
    assert body["checks"]["journal"]["required"] is False
    for name in ("database", "cache", "channel_layer"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0
    broker = body["checks"]["celery_broker"]
    assert broker["status"] == ("skipped" if settings.CELERY_TASK_ALWAYS_EAGER else "ok")


def test_ready_is_503_when_redis_is_unreachable(client, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: without Redis there is no Redis dependency to lose")
    from agenthub.celery import app

    caches = {"default": {**settings.CACHES["default"], "LOCATION": DEAD}}
    layers = {"default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": {"hosts": [DEAD]}}}
    old_broker = app.conf.broker_url
    app.conf.broker_url = DEAD
    try:
        with override_settings(CACHES=caches, CHANNEL_LAYERS=layers):
            from channels.layers import channel_layers

            channel_layers.backends.clear()
            response = client.get("/health/ready")
    finally:
        app.conf.broker_url = old_broker
        from channels.layers import channel_layers

        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "ok"
    for name in ("cache", "channel_layer", "celery_broker"):
        assert body["checks"][name]["status"] == "error", name
        assert body["checks"][name]["error"]
    # And back to ready once Redis is reachable again.
    assert client.get("/health/ready").status_code == 200


def test_ready_is_503_when_the_database_is_unreachable(client):
    connection = connections["default"]
    if connection.vendor == "sqlite":
        pytest.skip("needs a database server (DATABASE_URL): SQLite cannot be unreachable")
    original = copy.deepcopy(connection.settings_dict)

    def reset(settings_dict):
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(settings_dict)

    broken = copy.deepcopy(original)
    broken["PORT"] = 1
    if broken["OPTIONS"].get("pool"):
        broken["OPTIONS"]["pool"] = {**broken["OPTIONS"]["pool"], "min_size": 0, "timeout": 1}
    reset(broken)
    try:
        response = client.get("/health/ready")
    finally:
        reset(original)
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["status"] == "error"
    assert body["checks"]["database"]["error"] in ("OperationalError", "PoolTimeout")
    assert body["checks"]["cache"]["status"] == "ok"
    assert client.get("/health/ready").status_code == 200
