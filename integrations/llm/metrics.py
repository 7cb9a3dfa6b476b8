"""Prometheus metrics of the model layer.

prometheus_client's own metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set they
are written to the shared directory and ``/metrics`` aggregates every
process.  Label values are bounded: providers and error kinds are fixed sets,
models are the names the router was asked for (``AGENTHUB_MODELS`` and
fallbacks), not whatever name a model server echoes back.
"""

from prometheus_client import Counter, Gauge

from integrations.llm.types import LLMError, Usage

LLM_ERRORS = Counter(
    "agenthub_llm_errors_total",
    "Failed model calls, by provider and error kind.",
    ["provider", "kind"],
)
LLM_TOKENS = Counter(
    "agenthub_llm_tokens_total",
    "Tokens reported by model servers, by model and direction (prompt or completion).",
    ["model", "direction"],
)
LLM_FALLBACKS = Counter(
    "agenthub_llm_fallbacks_total",
    "Model calls retried on a fallback model.",
    ["from_model", "to_model"],
)


def record_error(error: LLMError) -> None:
    LLM_ERRORS.labels(provider=error.provider, kind=error.kind).inc()


def record_usage(model: str, usage: Usage) -> None:
    if usage.prompt_tokens:
        LLM_TOKENS.labels(model=model, direction="prompt").inc(usage.prompt_tokens)
    if usage.completion_tokens:
        LLM_TOKENS.labels(model=model, direction="completion").inc(usage.completion_tokens)


def record_fallback(from_model: str, to_model: str) -> None:
    LLM_FALLBACKS.labels(from_model=from_model, to_model=to_model).inc()


LLM_RETRIES = Counter(
    "agenthub_llm_retries_total",
    "Model calls tried again after a failure before any token (on another deployment when there is one).",
    ["model"],
)
LLM_CIRCUIT_REJECTIONS = Counter(
    "agenthub_llm_circuit_rejections_total",
    "Model calls refused without a network call because every deployment's circuit was open.",
    ["model"],
)


def record_retry(model: str) -> None:
    LLM_RETRIES.labels(model=model).inc()


def record_circuit_skip(model: str) -> None:
    LLM_CIRCUIT_REJECTIONS.labels(model=model).inc()


LLM_CAPACITY_REFUSALS = Counter(
    "agenthub_llm_capacity_refusals_total",
    "Model calls refused because no call slot freed in time, by whose cap (deployment or organization).",
    ["model", "scope"],
)
LLM_WAITING = Gauge(
    "agenthub_llm_waiting_calls",
    "Model calls waiting for a free call slot (a deployment's or their organization's cap).",
    multiprocess_mode="livesum",
)


def record_capacity_refusal(model: str, scope: str) -> None:
    LLM_CAPACITY_REFUSALS.labels(model=model, scope=scope).inc()


LLM_CACHE = Counter(
    "agenthub_llm_cache_total",
    "Model calls asked of the response cache, by result (hit: replayed without a model call; miss).",
    ["model", "result"],
)


def record_cache(model: str, result: str) -> None:
    LLM_CACHE.labels(model=model, result=result).inc()
