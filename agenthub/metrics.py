"""``/metrics`` for Prometheus.

django-prometheus renders the registry; with ``PROMETHEUS_MULTIPROC_DIR`` set
(several daphne/uvicorn workers, Celery prefork) it aggregates every process's
samples through prometheus_client's multiprocess collector.  Optionally
protected by ``METRICS_TOKEN`` (bearer) and/or ``METRICS_ALLOWED_IPS``.
"""

import hmac
import ipaddress
import logging
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from agenthub.clientip import client_ip
from agenthub.errors import error_response

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of priority p > 0 in
# "<queue>\x06\x16<p>" next to the plain list.
_PRIORITY_SUFFIXES = ("", *(f"\x06\x16{p}" for p in (3, 6, 9)))


def celery_queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (Redis broker only; empty otherwise)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return {}
    import redis

    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        lengths = pipe.execute()
    finally:
        client.close()
    per_queue = len(_PRIORITY_SUFFIXES)
    return {name: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, name in enumerate(names)}


class CeleryQueueDepthCollector:
    """Read at scrape time, so every web process reports the same truth."""

    def collect(self):
        family = GaugeMetricFamily(
            "agenthub_celery_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            depths = celery_queue_depths()
        except Exception:
            logger.warning("could not read the Celery queue depths")
            depths = {}
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


_scrape_time = CollectorRegistry(auto_describe=False)
_scrape_time.register(CeleryQueueDepthCollector())


def register_scrape_collector(collector) -> None:
    """Adds a collector read at scrape time (apps above register theirs in
    their ``AppConfig.ready``)."""
    _scrape_time.register(collector)


HIDDEN_LABEL = "hidden"


# Seconds: from a few milliseconds (a token) to minutes (a long tool or turn).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def tenant_label(value: str) -> str:
    """``value`` as a label when it names an organization's object (an agent
    slug, an operator-defined tool): shown only when the operator opted in
    with ``METRICS_TENANT_LABELS``, otherwise one fixed value."""
    return value if settings.METRICS_TENANT_LABELS else HIDDEN_LABEL


def _in_allowlist(address: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOWED_IPS entry %r is not an address or network; ignored", entry)
    return False


def _refusal(request) -> str | None:
    """Why ``request`` may not read the metrics, or None."""
    token, allowed_ips = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed_ips:
        if settings.METRICS_ALLOW_ANONYMOUS:
            return None
        return "Metrics are closed: set METRICS_TOKEN or METRICS_ALLOWED_IPS to let Prometheus read them."
    if allowed_ips and _in_allowlist(client_ip(request), allowed_ips):
        return None
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return None
    return "Metrics require the metrics token or an allowed address."


@never_cache
def metrics(request):
    refusal = _refusal(request)
    if refusal:
        return error_response("permission_denied", refusal, 403)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry) + generate_latest(_scrape_time), content_type=CONTENT_TYPE_LATEST)
