"""``/metrics`` for Prometheus.

django-prometheus renders the registry; with ``PROMETHEUS_MULTIPROC_DIR`` set
(several daphne/uvicorn workers, Celery prefork) it aggregates every process's
samples through prometheus_client's multiprocess collector.  Optionally
protected by ``METRICS_TOKEN`` (bearer) and/or ``METRICS_ALLOWED_IPS``.
"""

import hmac
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


def _allowed(request) -> bool:
    token, allowed_ips = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed_ips:
        return True
    if allowed_ips and client_ip(request) in allowed_ips:
        return True
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    return False


@never_cache
def metrics(request):
    if not _allowed(request):
        return error_response("permission_denied", "Metrics require the metrics token or an allowed address.", 403)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry) + generate_latest(_scrape_time), content_type=CONTENT_TYPE_LATEST)
