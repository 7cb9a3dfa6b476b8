"""Picks the provider for a model name, lists the models operators may choose,
and streams with fallbacks.

- ``"offline"`` is the built-in deterministic model; every other name goes
  to the OpenAI-compatible server configured by ``OPENAI_BASE_URL`` /
  ``OPENAI_API_KEY``.
- :func:`stream_with_fallback` tries the requested model, then each fallback,
  but only while nothing has reached the caller: once a token or a tool call
  has been yielded, an error propagates (the user has seen part of an answer).
"""

import asyncio
import dataclasses
import functools
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from integrations.llm import metrics
from integrations.llm.breaker import breakers
from integrations.llm.cache import CachePolicy, cache_key, response_cache
from integrations.llm.deployments import Deployment, ProviderConfig, default_deployment, routes
from integrations.llm.offline import OfflineProvider
from integrations.llm.openai_provider import OpenAICompatibleProvider
from integrations.llm.types import (
    DEFAULT_CONTEXT_WINDOW,
    ChatRequest,
    Finish,
    LLMError,
    ModelInfo,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCall,
)

__all__ = [
    "OFFLINE_MODEL",
    "CachePolicy",
    "ModelInfo",
    "aclose_providers",
    "available_models",
    "get_provider",
    "model_info",
    "provider_for",
    "stream_with_fallback",
]

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline"

_providers: dict[object, Provider] = {}
_providers_lock = threading.Lock()


def provider_for(config: ProviderConfig) -> Provider:
    """The provider of a deployment; one instance per configuration, so its
    connection pool is shared by every call.  The router retries (on another
    deployment when there is one), so the SDK does not."""
    provider = _providers.get(config)
    if provider is None:
        with _providers_lock:
            provider = _providers.get(config)
            if provider is None:
                provider = _providers[config] = OpenAICompatibleProvider(
                    name=config.name,
                    base_url=config.base_url,
                    api_key=config.api_key,
                    timeout=config.timeout,
                    connect_timeout=config.connect_timeout,
                    max_retries=0,
                )
    return provider


def get_provider(model_name: str) -> Provider:
    """The provider of ``model_name``'s default deployment (the offline model,
    or the server configured by ``OPENAI_BASE_URL``)."""
    if model_name == OFFLINE_MODEL:
        key = ("offline", settings.LLM_OFFLINE_TOKEN_DELAY_MS)
        provider = _providers.get(key)
        if provider is None:
            with _providers_lock:
                provider = _providers.setdefault(key, OfflineProvider(token_delay_ms=key[1]))
        return provider
    return provider_for(default_deployment(model_name).provider)


async def aclose_providers() -> None:
    """Closes the running event loop's HTTP clients of every cached provider
    (for shutdown hooks and tests; the next call opens new ones)."""
    for provider in list(_providers.values()):
        aclose = getattr(provider, "aclose", None)
        if aclose is not None:
            await aclose()


def _parse_model(entry: str) -> ModelInfo:
    name, window = entry, DEFAULT_CONTEXT_WINDOW
    head, sep, tail = entry.rpartition(":")
    # "llama3:8b" is a name (Ollama tags contain colons); only digits are a window.
    if sep and tail.strip().isdigit():
        name, window = head.strip(), int(tail)
    name = name.strip()
    if not name or window <= 0:
        raise ImproperlyConfigured(f"AGENTHUB_MODELS: {entry!r} is not 'name' or 'name:context_window'.")
    return ModelInfo(name=name, provider="offline" if name == OFFLINE_MODEL else "openai", context_window=window)


@functools.lru_cache(maxsize=8)
def _parse_models(entries: tuple[str, ...]) -> tuple[ModelInfo, ...]:
    models: dict[str, ModelInfo] = {}
    for entry in entries:
        if entry.strip():
            info = _parse_model(entry.strip())
            models.setdefault(info.name, info)
    return tuple(models.values())


def available_models() -> list[ModelInfo]:
    """The models operators may choose, in the order of ``AGENTHUB_MODELS``
    (``"name"`` or ``"name:context_window"``; the window defaults to 8192)."""
    return list(_parse_models(tuple(settings.AGENTHUB_MODELS)))


def model_info(name: str) -> ModelInfo | None:
    """The configured model called ``name``, or ``None`` if it is not in
    ``AGENTHUB_MODELS`` (use :data:`DEFAULT_CONTEXT_WINDOW` then)."""
    return next((info for info in available_models() if info.name == name), None)


def _can_fall_back(error: LLMError) -> bool:
    return error.retryable or error.kind == "unknown_model"


# Failures that count toward opening a deployment's circuit: the deployment's
# fault, not the request's.
_BREAKER_KINDS = frozenset({"rate_limited", "server_error", "timeout", "connection", "stream_dropped"})


def _unique(models: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(model for model in models if model))


def _backoff(retry: int) -> float:
    """Seconds before retrying a deployment that already failed this call:
    exponential with full jitter."""
    base = settings.LLM_RETRY_BACKOFF_SECONDS * (2 ** (retry - 1))
    return random.uniform(0, min(base, 8.0))


async def _stream_model(request: ChatRequest) -> AsyncIterator[StreamEvent]:
    """Streams ``request`` from one of its model's deployments, retrying a
    failed call (before anything was yielded) on the next deployment, up to
    ``LLM_MAX_RETRIES`` times.  Deployments whose circuit is open are skipped
    without a network call."""
    model = request.model
    if model == OFFLINE_MODEL:
        async with aclosing(get_provider(model).stream(request)) as events:
            async for event in events:
                yield dataclasses.replace(event, provider=OFFLINE_MODEL) if isinstance(event, Finish) else event
        return
    route = await routes.route(model)
    tried: set[str] = set()
    last_error: LLMError | None = None
    for attempt in range(settings.LLM_MAX_RETRIES + 1):
        candidates = routes.order(route, tried)
        lease = await _acquire(model, candidates, request.organization_id)
        if lease is None:
            metrics.record_circuit_skip(model)
            if last_error is not None:
                raise last_error
            raise LLMError(
                f"Every deployment of {model} is unavailable: their circuits are open after repeated failures.",
                kind="circuit_open",
                provider="gateway",
            )
        deployment = candidates[lease.index]
        if deployment.key in tried:
            await asyncio.sleep(_backoff(attempt))
        if attempt:
            metrics.record_retry(model)
        tried.add(deployment.key)
        try:
            async with aclosing(_stream_deployment(request, deployment, lease)) as events:
                async for event in events:
                    yield event
            return
        except _Retry as retry:
            last_error = retry.error
            logger.warning(
                "Model %s: deployment %s failed (%s)%s",
                model,
                deployment.label,
                retry.error.kind,
                "; retrying" if attempt < settings.LLM_MAX_RETRIES else "",
                extra={"model": model, "deployment": deployment.label, "error_kind": retry.error.kind},
            )
    assert last_error is not None
    raise last_error


SLOT_POLL_SECONDS = (0.01, 0.02, 0.05, 0.1)


async def _acquire(model: str, candidates: list[Deployment], organization_id: str):
    """A lease on the first candidate whose circuit and cap let the call
    through; waits up to ``MODEL_SLOT_WAIT_SECONDS`` for a slot when the caps
    are what stands in the way (never queues without bound).  ``None`` when
    every circuit is open."""
    keys = [d.key for d in candidates]
    caps = [d.cap() for d in candidates]
    org_cap = settings.MODEL_MAX_CONCURRENT_PER_ORGANIZATION if organization_id else 0
    deadline = time.monotonic() + settings.MODEL_SLOT_WAIT_SECONDS
    polls = 0
    waiting = False
    try:
        while True:
            acquired = await breakers.acquire(keys, caps=caps, organization=organization_id, organization_cap=org_cap)
            if acquired.stats:
                routes.remember(candidates, acquired.stats)
            if acquired.lease is not None or acquired.full is None:
                return acquired.lease
            if time.monotonic() >= deadline:
                metrics.record_capacity_refusal(model, acquired.full)
                whose = "your organization's" if acquired.full == "organization" else f"{model}'s deployments'"
                raise LLMError(
                    f"Too many model calls at once: {whose} limit of calls in flight was reached; try again shortly.",
                    kind="capacity_exceeded",
                    provider="gateway",
                    details={"scope": acquired.full, "retry_after_ms": 1000},
                )
            if not waiting:
                waiting = True
                metrics.LLM_WAITING.inc()
            await asyncio.sleep(SLOT_POLL_SECONDS[min(polls, len(SLOT_POLL_SECONDS) - 1)])
            polls += 1
    finally:
        if waiting:
            metrics.LLM_WAITING.dec()


class _Retry(Exception):
    def __init__(self, error: LLMError):
        self.error = error


async def _stream_deployment(request: ChatRequest, deployment: Deployment, lease) -> AsyncIterator[StreamEvent]:
    """One attempt on one deployment; settles its lease whatever happens.
    Raises :class:`_Retry` for a retryable failure before the first token
    or tool call, the :class:`LLMError` itself otherwise."""
    upstream = (
        request
        if deployment.upstream_model == request.model
        else dataclasses.replace(request, model=deployment.upstream_model)
    )
    limits = deployment.limits()
    provider = provider_for(deployment.provider)
    started_at = time.perf_counter()
    first = True
    answered = False
    ttft_ms: float | None = None
    tokens = 0
    outcome = "none"
    try:
        async with aclosing(provider.stream(upstream)) as events:
            async for event in events:
                if first:
                    first = False
                    ttft_ms = (time.perf_counter() - started_at) * 1000
                    if lease.probe:  # the deployment answers again: close its circuit now
                        await breakers.settle(lease, "first", limits, ttft_ms)
                if isinstance(event, TextDelta | ToolCall):
                    answered = True
                elif isinstance(event, Finish):
                    tokens = event.usage.total_tokens
                    event = dataclasses.replace(event, model=request.model, provider=deployment.provider.name)
                yield event
        outcome = "ok"
    except LLMError as error:
        outcome = "fail" if error.kind in _BREAKER_KINDS else "none"
        metrics.record_error(error)
        if answered or not error.retryable:
            raise
        raise _Retry(error) from error
    finally:
        await asyncio.shield(
            breakers.settle(lease, outcome, limits, ttft_ms if outcome == "ok" else None, tokens=tokens)
        )


async def stream_with_fallback(
    request: ChatRequest, fallback_models: Iterable[str] = (), cache: CachePolicy | None = None
) -> AsyncIterator[StreamEvent]:
    """:func:`stream_models`, through the response cache when the caller's
    ``cache`` policy asks for it: a hit is replayed at full speed (no model
    call); a complete answer is stored."""
    if cache is None:
        async with aclosing(stream_models(request, fallback_models)) as events:
            async for event in events:
                yield event
        return
    fallback_models = tuple(fallback_models)
    key = cache_key(cache, request, fallback_models)
    hit = await response_cache.get(key)
    if hit is not None:
        metrics.record_cache(request.model, "hit")
        for event in hit:
            yield event
        return
    metrics.record_cache(request.model, "miss")
    seen: list[StreamEvent] = []
    async with aclosing(stream_models(request, fallback_models)) as events:
        async for event in events:
            seen.append(event)
            yield event
    await response_cache.put(key, seen, cache.ttl_seconds)


async def stream_models(request: ChatRequest, fallback_models: Iterable[str] = ()) -> AsyncIterator[StreamEvent]:
    """Streams ``request`` from its model, falling back to each of
    ``fallback_models`` in order on a retryable error or an unknown model,
    as long as no :class:`TextDelta` or :class:`ToolCall` was yielded yet.
    Within a model, a failed call is first retried on the model's other
    deployments (see :func:`_stream_model`).

    The final :class:`Finish` names the model that answered (the name agents
    use, not a deployment's upstream name).  Records
    ``agenthub_llm_errors_total``, ``agenthub_llm_tokens_total``,
    ``agenthub_llm_retries_total`` and ``agenthub_llm_fallbacks_total``.
    """
    candidates = _unique([request.model, *fallback_models])
    for position, model in enumerate(candidates):
        attempt = request if model == request.model else dataclasses.replace(request, model=model)
        started = False
        try:
            async with aclosing(_stream_model(attempt)) as events:
                async for event in events:
                    if isinstance(event, TextDelta | ToolCall):
                        started = True
                    elif isinstance(event, Finish):
                        metrics.record_usage(model, event.usage)
                    yield event
            return
        except LLMError as error:
            if model == OFFLINE_MODEL:
                metrics.record_error(error)
            is_last = position == len(candidates) - 1
            if started or is_last or not _can_fall_back(error):
                raise
            next_model = candidates[position + 1]
            metrics.record_fallback(model, next_model)
            logger.warning(
                "Model %s failed (%s); falling back to %s",
                model,
                error.kind,
                next_model,
                extra={"model": model, "fallback_model": next_model, "error_kind": error.kind},
            )
