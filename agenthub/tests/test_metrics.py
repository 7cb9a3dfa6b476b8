import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_metrics_count_requests(client):
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_view_transport_method_total" in text
    assert 'view="health-live"' in text


@pytest.mark.django_db
def test_metrics_report_the_depth_of_every_celery_queue(client, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the queue depth is read from the Redis broker")
    import redis

    from tools.tasks import drafts_expire

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    try:
        for _ in range(3):
            drafts_expire.apply_async(queue="tools")
        drafts_expire.apply_async(queue="tools", priority=6)
        text = client.get("/metrics").content.decode()
    finally:
        broker.flushdb()
    assert 'agenthub_celery_queue_depth{queue="tools"} 4.0' in text
    for queue in ("default", "workflows", "billing"):
        assert f'agenthub_celery_queue_depth{{queue="{queue}"}} 0.0' in text


@pytest.mark.django_db
def test_tool_and_draft_metrics_are_exported(client, org_a, settings):
    from accounts.callers import Caller
    from tools.services.drafts import draft_reject
    from tools.tests.factories import DraftFactory

    settings.CELERY_TASK_ALWAYS_EAGER = True

    draft = DraftFactory(organization=org_a.organization, arguments={"expression": "1+1"})
    caller = Caller(
        organization_id=str(org_a.organization.pk), role="operator", user_id=str(org_a.users["operator"].pk)
    )
    draft_reject(caller=caller, draft_id=draft.pk)
    text = client.get("/metrics").content.decode()
    assert 'agenthub_draft_decisions_total{outcome="rejected",tool="calculator"}' in text
    assert "agenthub_tool_executions_total" in text
    assert "agenthub_tool_duration_seconds" in text


@pytest.mark.django_db
def test_metrics_token_protection(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


@pytest.mark.django_db
def test_metrics_address_allowlist(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.2.3"]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


SCRIPT = textwrap.dedent(
    """
    import django, sys
    django.setup()
    from django.conf import settings
    from django.test import Client
    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    for _ in range(int(sys.argv[1])):
        client.get("/health/live")
    if sys.argv[2] == "scrape":
        sys.stdout.write(client.get("/metrics").content.decode())
    """
)


def test_metrics_aggregate_across_worker_processes(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, /metrics on any process reports the
    samples of every process (several ASGI workers behind one scrape)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agenthub.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DATABASE_URL": "sqlite://:memory:",
    }
    env.pop("REDIS_URL", None)

    def run(count, mode):
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, str(count), mode],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    run(3, "none")
    run(4, "none")
    scraped = run(0, "scrape")
    lines = [
        line
        for line in scraped.splitlines()
        if line.startswith("django_http_requests_total_by_view_transport_method_total{")
        and 'view="health-live"' in line
    ]
    assert len(lines) == 1, scraped[:2000]
    assert float(lines[0].rsplit(" ", 1)[1]) == 7.0


@pytest.mark.django_db
def test_metrics_are_closed_without_a_token_or_allowlist_unless_opened(client, settings):
    settings.METRICS_ALLOW_ANONYMOUS = False  # the production default
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "set METRICS_TOKEN or METRICS_ALLOWED_IPS" in refused.json()["error"]["message"]
    assert b"agenthub_" not in refused.content
    settings.METRICS_ALLOW_ANONYMOUS = True
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_allowlist_takes_networks_and_ignores_forged_forwarding(client, settings):
    settings.METRICS_ALLOW_ANONYMOUS = False
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16", "not-an-address"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.200.7").status_code == 200
    # An outsider naming an allowed address in X-Forwarded-For is still an outsider.
    forged = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert forged.status_code == 403
    # Behind one trusted proxy, the address it forwards is the client's.
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/metrics", REMOTE_ADDR="172.16.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 200


def test_labels_naming_tenants_objects_are_hidden_unless_opted_in(settings):
    from chat.metrics import agent_label
    from tools.metrics import tool_label

    settings.METRICS_TENANT_LABELS = False
    assert agent_label("acme-billing-bot") == "hidden"
    assert tool_label("acme_crm_update") == "hidden"  # an operator-defined tool
    assert tool_label("calculator") == "calculator"  # a built-in is the platform's
    settings.METRICS_TENANT_LABELS = True
    assert agent_label("acme-billing-bot") == "acme-billing-bot"
    assert tool_label("acme_crm_update") == "acme_crm_update"
