"""The router: providers by model name, the model list, fallbacks and metrics."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

from integrations.llm import router
from integrations.llm.offline import OfflineProvider
from integrations.llm.openai_provider import OpenAICompatibleProvider
from integrations.llm.router import available_models, get_provider, model_info, stream_with_fallback
from integrations.llm.testing.mock_server import answer_tokens
from integrations.llm.types import Finish, LLMError, ModelInfo, TextDelta, ToolCall, ToolSpec
from integrations.tests.helpers import MOCK_TOKENS, collect, user_request

# The router reads the model deployments from the database.
pytestmark = pytest.mark.django_db


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- providers and models -------------------------------------------------------------------


def test_offline_model_gets_the_offline_provider(llm_settings):
    llm_settings.LLM_OFFLINE_TOKEN_DELAY_MS = 7

    provider = get_provider("offline")

    assert isinstance(provider, OfflineProvider)
    assert provider.token_delay_ms == 7
    assert get_provider("offline") is provider


def test_other_models_get_the_openai_provider_configured_from_settings(llm_settings, mock_server):
    llm_settings.LLM_TIMEOUT_SECONDS = 12.5

    provider = get_provider("gpt-4o-mini")

    assert isinstance(provider, OpenAICompatibleProvider)
    # The router retries (on another deployment when there is one), not the SDK.
    assert (provider.base_url, provider.timeout, provider.connect_timeout, provider.max_retries) == (
        mock_server.base_url,
        12.5,
        2.0,
        0,
    )
    # One provider (one connection pool) for every model of the same server...
    assert get_provider("gpt-4o") is provider
    # ...and a new one when the settings change.
    llm_settings.LLM_TIMEOUT_SECONDS = 7.0
    assert get_provider("gpt-4o").timeout == 7.0


def test_available_models(settings):
    settings.AGENTHUB_MODELS = ["offline:8192", "gpt-4o-mini:128000", "llama3:8b", " plain ", "", "gpt-4o-mini:1"]

    assert available_models() == [
        ModelInfo(name="offline", provider="offline", context_window=8192),
        ModelInfo(name="gpt-4o-mini", provider="openai", context_window=128000),
        ModelInfo(name="llama3:8b", provider="openai", context_window=8192),
        ModelInfo(name="plain", provider="openai", context_window=8192),
    ]
    assert model_info("gpt-4o-mini") == ModelInfo("gpt-4o-mini", "openai", 128000)
    assert model_info("llama3:8b").context_window == 8192
    assert model_info("not-configured") is None


def test_default_models_parse():
    assert all(info.name for info in available_models())
    assert all(info.context_window > 0 for info in available_models())


@pytest.mark.parametrize("entry", [":8192", "gpt:0"])
def test_invalid_model_entries_are_a_configuration_error(settings, entry):
    settings.AGENTHUB_MODELS = [entry]

    with pytest.raises(ImproperlyConfigured):
        available_models()


# --- fallbacks ---------------------------------------------------------------------------------


async def test_streams_the_requested_model_and_records_tokens(llm_settings, close_llm_clients):
    prompt_before = sample("agenthub_llm_tokens_total", model="gpt-4o", direction="prompt")
    completion_before = sample("agenthub_llm_tokens_total", model="gpt-4o", direction="completion")

    events = await collect(stream_with_fallback(user_request("two words", model="gpt-4o"), ["mock-model"]))

    assert events[:-1] == [TextDelta(token) for token in answer_tokens("two words", MOCK_TOKENS)]
    assert events[-1].model == "gpt-4o"
    assert sample("agenthub_llm_tokens_total", model="gpt-4o", direction="prompt") - prompt_before == 2
    assert sample("agenthub_llm_tokens_total", model="gpt-4o", direction="completion") - completion_before == 8


async def test_falls_back_from_a_failing_model(llm_settings, mock_server, close_llm_clients):
    fallbacks_before = sample("agenthub_llm_fallbacks_total", from_model="mock-error-500", to_model="mock-model")
    errors_before = sample("agenthub_llm_errors_total", provider="openai", kind="server_error")
    requests_before = mock_server.app.stats["chat_completions"]

    events = await collect(stream_with_fallback(user_request("hello", model="mock-error-500"), ["mock-model"]))

    assert events[:-1] == [TextDelta(token) for token in answer_tokens("hello", MOCK_TOKENS)]
    assert isinstance(events[-1], Finish)
    assert events[-1].model == "mock-model"
    assert mock_server.app.stats["chat_completions"] - requests_before == 2
    assert (
        sample("agenthub_llm_fallbacks_total", from_model="mock-error-500", to_model="mock-model") - (fallbacks_before)
        == 1
    )
    assert sample("agenthub_llm_errors_total", provider="openai", kind="server_error") - errors_before == 1


async def test_falls_back_through_several_models_in_order(llm_settings, close_llm_clients):
    events = await collect(
        stream_with_fallback(
            user_request("hello", model="mock-error-500"), ["mock-error-429", "no-such-model", "offline"]
        )
    )

    assert events[-1].model == "offline"
    assert events[-1].reason == "stop"


async def test_the_last_error_propagates_when_every_model_fails(llm_settings, close_llm_clients):
    with pytest.raises(LLMError) as caught:
        await collect(stream_with_fallback(user_request("hello", model="mock-error-500"), ["mock-error-503"]))

    assert caught.value.kind == "server_error"
    assert caught.value.status_code == 503


async def test_does_not_fall_back_after_tokens_were_yielded(llm_settings, mock_server, close_llm_clients):
    fallbacks_before = sample("agenthub_llm_fallbacks_total", from_model="mock-model", to_model="gpt-4o")
    requests_before = mock_server.app.stats["chat_completions"]
    events = []

    with pytest.raises(LLMError) as caught:
        async for event in stream_with_fallback(user_request("hi [[mock:drop_after=3]]"), ["gpt-4o"]):
            events.append(event)

    assert caught.value.kind == "stream_dropped"
    assert events == [TextDelta(token) for token in answer_tokens("hi", MOCK_TOKENS)[:3]]
    assert mock_server.app.stats["chat_completions"] - requests_before == 1
    assert sample("agenthub_llm_fallbacks_total", from_model="mock-model", to_model="gpt-4o") == fallbacks_before


async def test_does_not_fall_back_on_a_bad_request(llm_settings, mock_server, close_llm_clients):
    requests_before = mock_server.app.stats["chat_completions"]

    with pytest.raises(LLMError) as caught:
        await collect(stream_with_fallback(user_request("hi [[mock:error=400]]"), ["gpt-4o"]))

    assert caught.value.kind == "bad_request"
    assert mock_server.app.stats["chat_completions"] - requests_before == 1


async def test_falls_back_on_a_timeout(llm_settings, close_llm_clients):
    llm_settings.LLM_TIMEOUT_SECONDS = 0.2

    events = await collect(stream_with_fallback(user_request("hi [[mock:timeout]]"), ["offline"]))

    assert events[-1].model == "offline"


async def test_does_not_fall_back_after_a_tool_call(llm_settings, close_llm_clients):
    # Through the offline fallback the tool call comes out, then the stream ends normally.
    tools = (ToolSpec(name="lookup", description="Look up."),)
    events = await collect(stream_with_fallback(user_request("use lookup", model="offline", tools=tools), ["gpt-4o"]))

    assert [type(event) for event in events] == [ToolCall, Finish]
    assert events[-1].model == "offline"


async def test_a_model_listed_twice_is_tried_once(llm_settings, mock_server, close_llm_clients):
    requests_before = mock_server.app.stats["chat_completions"]

    with pytest.raises(LLMError):
        await collect(stream_with_fallback(user_request("x", model="mock-error-500"), ["mock-error-500"]))

    assert mock_server.app.stats["chat_completions"] - requests_before == 1


async def test_closing_the_stream_early_closes_the_provider_stream(llm_settings, close_llm_clients):
    stream = stream_with_fallback(user_request("hi [[mock:tokens=50]] [[mock:token_delay_ms=5]]"), [])

    first = await anext(stream)
    await stream.aclose()

    assert isinstance(first, TextDelta)


async def test_aclose_providers_closes_clients(llm_settings):
    await collect(stream_with_fallback(user_request("hi"), []))
    provider = get_provider("mock-model")
    client = provider.client()

    await router.aclose_providers()

    assert client.is_closed()
