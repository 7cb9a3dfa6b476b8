"""``/metrics`` for Prometheus.

django-prometheus renders the registry; with ``PROMETHEUS_MULTIPROC_DIR`` set
(several daphne/uvicorn workers, Celery prefork) it aggregates every process's
samples through prometheus_client's multiprocess collector.  Optionally
protected by ``METRICS_TOKEN`` (bearer) and/or ``METRICS_ALLOWED_IPS``.
"""

import hmac

from django.conf import settings
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView

from agenthub.errors import error_response


def _allowed(request) -> bool:
    token, allowed_ips = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed_ips:
        return True
    if allowed_ips and request.META.get("REMOTE_ADDR") in allowed_ips:
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
    return ExportToDjangoView(request)
