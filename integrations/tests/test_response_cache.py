"""The response cache: exact-match replays without a model call, never
across organizations or agent versions, only of complete answers."""

import pytest
from prometheus_client import REGISTRY

from integrations.llm.cache import CachePolicy
from integrations.llm.router import stream_with_fallback
from integrations.llm.types import Finish, LLMError, TextDelta
from integrations.tests.helpers import collect, user_request

pytestmark = pytest.mark.django_db


def policy(org="org-a", scope="version:1") -> CachePolicy:
    return CachePolicy(organization_id=org, scope=scope, ttl_seconds=60)


def text(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls(server) -> int:
    return server.app.stats["chat_completions"]


@pytest.fixture(params=["redis", "in-process"])
def cache_settings(request, llm_settings):
    if request.param == "in-process":
        llm_settings.REDIS_URL = ""
    elif not llm_settings.REDIS_URL:
        pytest.skip(
            "needs REDIS_URL: this case checks the cache kept in Redis (CI always sets it; the in-process case runs without)"
        )
    return llm_settings


async def test_the_same_request_is_replayed_without_a_model_call(cache_settings, mock_server, close_llm_clients):
    hits = REGISTRY.get_sample_value("agenthub_llm_cache_total", {"model": "mock-model", "result": "hit"}) or 0
    first = await collect(stream_with_fallback(user_request("What are your hours?", temperature=0), cache=policy()))
    before = calls(mock_server)

    again = await collect(stream_with_fallback(user_request("What are your hours?", temperature=0), cache=policy()))

    assert calls(mock_server) == before
    assert text(again) == text(first) and len(again) == len(first)  # replayed as a stream, token by token
    finish = again[-1]
    assert isinstance(finish, Finish) and finish.usage.cache_hit and finish.provider == "cache"
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (0, 0)
    assert not first[-1].usage.cache_hit and first[-1].usage.completion_tokens > 0
    assert REGISTRY.get_sample_value("agenthub_llm_cache_total", {"model": "mock-model", "result": "hit"}) == hits + 1


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("another organization", {"cache": policy(org="org-b")}),
        ("another agent version", {"cache": policy(scope="version:2")}),
        ("another temperature", {"request": user_request("What are your hours?", temperature=0.5)}),
        ("other messages", {"request": user_request("What are your hours today?", temperature=0)}),
        ("no cache", {"cache": None}),
    ],
)
async def test_anything_different_is_a_miss(cache_settings, mock_server, close_llm_clients, change, kwargs):
    await collect(stream_with_fallback(user_request("What are your hours?", temperature=0), cache=policy()))
    before = calls(mock_server)
    request = kwargs.get("request", user_request("What are your hours?", temperature=0))

    events = await collect(stream_with_fallback(request, cache=kwargs.get("cache", policy())))

    assert calls(mock_server) == before + 1, change
    assert not events[-1].usage.cache_hit


async def test_a_broken_answer_is_not_cached(cache_settings, mock_server, close_llm_clients):
    with pytest.raises(LLMError):
        await collect(stream_with_fallback(user_request("[[mock:drop_after=2]] hi", temperature=0), cache=policy()))
    before = calls(mock_server)
    with pytest.raises(LLMError):
        await collect(stream_with_fallback(user_request("[[mock:drop_after=2]] hi", temperature=0), cache=policy()))
    assert calls(mock_server) == before + 1


async def test_redis_failing_is_a_miss_not_an_error(llm_settings, mock_server, close_llm_clients):
    llm_settings.REDIS_URL = "redis://127.0.0.1:1/0"
    events = await collect(stream_with_fallback(user_request("hi", temperature=0), cache=policy()))
    assert isinstance(events[-1], Finish) and not events[-1].usage.cache_hit
