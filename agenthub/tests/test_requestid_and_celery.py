import json
import time
from pathlib import Path

import pytest
from django.conf import settings

from agenthub.celery import app as celery_app
from agenthub.requestid import get_request_id, reset_request_id, set_request_id
from agenthub.testing import run_celery_worker, subprocess_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_request_id_is_echoed_when_sane_and_generated_otherwise(org_a):
    client = org_a.client("viewer")
    assert client.get("/api/v1/me", HTTP_X_REQUEST_ID="trace-123.abc")["X-Request-ID"] == "trace-123.abc"

    generated = client.get("/api/v1/me")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/api/v1/me")["X-Request-ID"] != generated

    hostile = client.get("/api/v1/me", HTTP_X_REQUEST_ID="x" * 500)["X-Request-ID"]
    assert len(hostile) == 32
    injected = client.get("/api/v1/me", HTTP_X_REQUEST_ID="a\r\nSet-Cookie: x=1")["X-Request-ID"]
    assert "\n" not in injected and len(injected) == 32


def test_request_id_on_non_api_responses(client):
    assert client.get("/health/live", HTTP_X_REQUEST_ID="probe-1")["X-Request-ID"] == "probe-1"


@pytest.mark.django_db
def test_request_id_is_in_the_logs(org_a, caplog):
    import logging

    from agenthub.requestid import RequestIdLogFilter

    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        org_a.client("viewer").get("/api/v1/api-keys", HTTP_X_REQUEST_ID="log-me-42")
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.request_id for r in records] == ["log-me-42"]


def test_every_task_is_routed_to_a_known_queue():
    from celery.app.routes import prepare

    celery_app.loader.import_default_modules()
    known = {q.name for q in settings.CELERY_TASK_QUEUES}
    routers = prepare(settings.CELERY_TASK_ROUTES)
    ours = [name for name in celery_app.tasks if not name.startswith(("celery.", "agenthub.tests."))]
    assert ours, "no project tasks registered"

    def queue_of(name):
        for router in routers:
            route = router(name, (), {}, {})
            if route:
                return route.get("queue")
        return None

    unrouted = sorted(name for name in ours if queue_of(name) not in known)
    assert not unrouted, f"add these tasks to CELERY_TASK_ROUTES with a known queue: {unrouted}"


@celery_app.task(name="agenthub.tests.current_request_id")
def current_request_id():
    return get_request_id()


def test_request_id_reaches_an_eager_task(settings):
    celery_app.conf.task_always_eager = True
    token = set_request_id("eager-rid-1")
    try:
        assert current_request_id.delay().get() == "eager-rid-1"
    finally:
        reset_request_id(token)
        celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
    # Outside a request, a task gets an id of its own.
    celery_app.conf.task_always_eager = True
    try:
        assert len(current_request_id.delay().get()) == 32
    finally:
        celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_request_id_reaches_a_real_worker_and_its_logs(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: a real worker needs a real broker (CI always sets it)")
    from accounts.tasks import flush_expired_tokens

    log_path = tmp_path / "worker.log"
    with run_celery_worker(
        env=subprocess_env(LOG_LEVEL="INFO"), log_path=log_path, queues="default", pool="solo", concurrency=1
    ):
        token = set_request_id("worker-rid-99")
        try:
            result = flush_expired_tokens.apply_async()
        finally:
            reset_request_id(token)
        assert result.get(timeout=60) is None
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            if any(line.get("message") == "flushed expired refresh tokens" for line in lines):
                break
            time.sleep(0.2)
        task_lines = [line for line in lines if line.get("message") == "flushed expired refresh tokens"]
        assert [line["request_id"] for line in task_lines] == ["worker-rid-99"]
