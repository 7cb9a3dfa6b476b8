"""What the circuit breakers say of every model deployment, for
``/health/ready``, ``/metrics`` and the admin (synchronous callers)."""

import logging

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from integrations.llm.breaker import STATE_NAMES, breakers
from integrations.llm.deployments import DEFAULT_KEY

logger = logging.getLogger(__name__)


def _deployments() -> list[tuple[str, str, str]]:
    """(breaker key, name, model) of each enabled deployment, and of the
    default deployment of each configured model that has none in the
    database (when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` configures it)."""
    from integrations.llm.router import OFFLINE_MODEL, available_models
    from integrations.models import ModelDeployment

    rows = ModelDeployment.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
    items = [(str(r.id), f"{r.provider.name}/{r.upstream_model or r.model_name}", r.model_name) for r in rows]
    if settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY:
        served = {model for _, _, model in items}
        for info in available_models():
            if info.name != OFFLINE_MODEL and info.name not in served:
                items.append((f"{DEFAULT_KEY}:{info.name}", f"default/{info.name}", info.name))
    return items


def deployment_status() -> list[dict]:
    items = _deployments()
    stats = breakers.status_sync([key for key, _, _ in items])
    return [
        {
            "deployment": name,
            "model": model,
            "state": STATE_NAMES[entry.state],
            "in_flight": entry.in_flight,
            "ttft_ms": None if entry.ttft_ms is None else round(entry.ttft_ms, 1),
            "probe_in_seconds": round(entry.retry_in_ms / 1000, 1),
        }
        for (key, name, model), entry in zip(items, stats, strict=True)
    ]


def health_check() -> dict:
    """Informational: an open circuit does not make this process unready
    (the router skips that deployment, or answers 503 for its model).  The
    probe is unauthenticated, so it names only the deployments that are not
    closed; the admin and ``/metrics`` show them all."""
    deployments = deployment_status()
    counts = {name: 0 for name in STATE_NAMES.values()}
    for item in deployments:
        counts[item["state"]] += 1
    not_closed = [
        {"deployment": d["deployment"], "state": d["state"], "probe_in_seconds": d["probe_in_seconds"]}
        for d in deployments
        if d["state"] != "closed"
    ]
    return {"status": "degraded" if not_closed else "ok", "circuits": counts, "not_closed": not_closed}


class CircuitStateCollector:
    """``agenthub_circuit_state`` (0 closed, 1 open, 2 half-open) and
    ``agenthub_llm_in_flight`` per deployment, read at scrape time from the
    shared state, so every process reports the same."""

    def collect(self):
        state = GaugeMetricFamily(
            "agenthub_circuit_state",
            "Circuit breaker state of each model deployment (0 closed, 1 open, 2 half-open).",
            labels=["deployment", "model"],
        )
        in_flight = GaugeMetricFamily(
            "agenthub_llm_in_flight", "Model calls in flight on each deployment.", labels=["deployment", "model"]
        )
        try:
            deployments = deployment_status()
        except Exception:
            logger.warning("could not read the model deployments' circuit states", exc_info=True)
            deployments = []
        codes = {name: code for code, name in STATE_NAMES.items()}
        for item in deployments:
            state.add_metric([item["deployment"], item["model"]], codes[item["state"]])
            in_flight.add_metric([item["deployment"], item["model"]], item["in_flight"])
        yield state
        yield in_flight
