"""Liveness and readiness.

``/health/live`` says the process serves requests.  ``/health/ready`` checks
each dependency this deployment is configured with (database, cache, channel
layer, Celery broker), reports its status and latency, and answers 503 when a
required one is down, so a load balancer stops sending traffic here.
"""

import logging
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)
STARTED_AT = time.monotonic()


def _database() -> None:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    value = cache.get(key)
    cache.delete(key)
    if value != "ok":
        raise RuntimeError("cache did not return the value just written")


def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def roundtrip():
        import asyncio

        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        if message.get("type") != "health.ping":
            raise RuntimeError("channel layer returned an unexpected message")

    async_to_sync(roundtrip)()


def _celery_broker() -> None:
    from agenthub.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        if conn.transport_cls == "redis" or conn.transport.driver_type == "redis":
            conn.default_channel.client.ping()


# name -> function returning a dict with a "status": reported by /health/ready
# but never making it fail (registered by apps above, e.g. circuit states).
_informational: dict = {}


def register_informational_check(name: str, func) -> None:
    _informational[name] = func


def _informational_results() -> dict:
    results = {}
    for name, func in _informational.items():
        try:
            results[name] = {**func(), "required": False}
        except Exception as exc:
            logger.warning("informational check %s failed: %s: %s", name, exc.__class__.__name__, exc)
            results[name] = {"status": "error", "required": False, "error": exc.__class__.__name__}
    return results


def _checks() -> dict:
    """name -> (function, required)."""
    checks = {"database": (_database, True), "cache": (_cache, True), "channel_layer": (_channel_layer, True)}
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["celery_broker"] = (_celery_broker, True)
    return checks


def _run(name, func) -> dict:
    start = time.perf_counter()
    try:
        func()
    except Exception as exc:  # a failed dependency is reported, not raised
        latency = (time.perf_counter() - start) * 1000
        # The probe is unauthenticated: it names the failure, the log has the detail.
        logger.warning("readiness check %s failed: %s: %s", name, exc.__class__.__name__, exc)
        return {"status": "error", "latency_ms": round(latency, 2), "error": exc.__class__.__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


def _envelope(status: str, checks: dict | None = None) -> dict:
    body = {
        "status": status,
        "version": settings.AGENTHUB_VERSION,
        "uptime_seconds": round(time.monotonic() - STARTED_AT, 1),
    }
    if checks is not None:
        body["checks"] = checks
    return body


@never_cache
@require_GET
def live(request):
    return JsonResponse(_envelope("ok"))


@never_cache
@require_GET
def ready(request):
    from agenthub.drain import draining

    if draining():
        # Shutting down: the load balancer must send traffic elsewhere.
        return JsonResponse(_envelope("draining"), status=503)
    results, healthy = {}, True
    for name, (func, required) in _checks().items():
        results[name] = _run(name, func)
        results[name]["required"] = required
        if required and results[name]["status"] != "ok":
            healthy = False
    if settings.CELERY_TASK_ALWAYS_EAGER:
        results["celery_broker"] = {"status": "skipped", "required": False, "detail": "tasks run eagerly in-process"}
    results.update(_informational_results())
    return JsonResponse(_envelope("ok" if healthy else "unavailable", results), status=200 if healthy else 503)
