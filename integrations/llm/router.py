"""Picks the provider for a model name, lists the models operators may choose,
and streams with fallbacks.

- ``"offline"`` is the built-in deterministic model; every other name goes
  to the OpenAI-compatible server configured by ``OPENAI_BASE_URL`` /
  ``OPENAI_API_KEY``.
- :func:`stream_with_fallback` tries the requested model, then each fallback,
  but only while nothing has reached the caller: once a token or a tool call
  has been yielded, an error propagates (the user has seen part of an answer).
"""

import dataclasses
import functools
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from integrations.llm import metrics
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
    "ModelInfo",
    "aclose_providers",
    "available_models",
    "get_provider",
    "model_info",
    "stream_with_fallback",
]

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline"

_providers: dict[tuple, Provider] = {}
_providers_lock = threading.Lock()


def _provider_key(model_name: str) -> tuple:
    if model_name == OFFLINE_MODEL:
        return ("offline", settings.LLM_OFFLINE_TOKEN_DELAY_MS)
    return (
        "openai",
        settings.OPENAI_BASE_URL,
        settings.OPENAI_API_KEY,
        settings.LLM_TIMEOUT_SECONDS,
        settings.LLM_CONNECT_TIMEOUT_SECONDS,
        settings.LLM_MAX_RETRIES,
    )


def _build_provider(key: tuple) -> Provider:
    if key[0] == "offline":
        return OfflineProvider(token_delay_ms=key[1])
    _, base_url, api_key, timeout, connect_timeout, max_retries = key
    return OpenAICompatibleProvider(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_retries=max_retries,
    )


def get_provider(model_name: str) -> Provider:
    """The provider serving ``model_name``; one instance per configuration, so
    its connection pool is shared by every call."""
    key = _provider_key(model_name)
    provider = _providers.get(key)
    if provider is None:
        with _providers_lock:
            provider = _providers.get(key)
            if provider is None:
                provider = _providers[key] = _build_provider(key)
    return provider


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


def _unique(models: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(model for model in models if model))


async def stream_with_fallback(request: ChatRequest, fallback_models: Iterable[str] = ()) -> AsyncIterator[StreamEvent]:
    """Streams ``request`` from its model, falling back to each of
    ``fallback_models`` in order on a retryable error or an unknown model,
    as long as no :class:`TextDelta` or :class:`ToolCall` was yielded yet.

    The final :class:`Finish` names the model that answered.  Records
    ``agenthub_llm_errors_total``, ``agenthub_llm_tokens_total`` and
    ``agenthub_llm_fallbacks_total``.
    """
    candidates = _unique([request.model, *fallback_models])
    for position, model in enumerate(candidates):
        attempt = request if model == request.model else dataclasses.replace(request, model=model)
        provider = get_provider(model)
        started = False
        try:
            async with aclosing(provider.stream(attempt)) as events:
                async for event in events:
                    if isinstance(event, TextDelta | ToolCall):
                        started = True
                    elif isinstance(event, Finish):
                        metrics.record_usage(model, event.usage)
                    yield event
            return
        except LLMError as error:
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
