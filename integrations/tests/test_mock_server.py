"""The mock model server, checked with the real ``openai`` client (sync and
async) so that what AgentHub's tests and benchmarks rely on is what an
OpenAI-compatible server does."""

import json
import subprocess
import sys

import httpx
import openai
import pytest

from agenthub.testing import ROOT, subprocess_env
from integrations.llm.testing.mock_server import MockConfig, answer_tokens, parse_directives, run_in_thread, serving
from integrations.tests.helpers import MOCK_TOKENS

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def client(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, **kwargs)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --- answers ------------------------------------------------------------------------


def test_streaming_text_with_usage(mock_server):
    chunks = list(
        client(mock_server).chat.completions.create(
            model="mock-model",
            messages=user("Tell me about streaming"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    contents = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(contents) == MOCK_TOKENS
    assert "".join(contents) == "".join(answer_tokens("Tell me about streaming", MOCK_TOKENS))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (4, 8, 12)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {chunk.model for chunk in chunks} == {"mock-model"}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}


def test_streaming_without_include_usage_sends_no_usage_chunk(mock_server):
    chunks = list(client(mock_server).chat.completions.create(model="mock-model", messages=user("hi"), stream=True))

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_answers_are_deterministic(mock_server):
    def answer() -> str:
        return (
            client(mock_server)
            .chat.completions.create(model="gpt-4o-mini", messages=user("same"))
            .choices[0]
            .message.content
        )

    assert answer() == answer()


def test_non_streaming_completion(mock_server):
    completion = client(mock_server).chat.completions.create(
        model="gpt-4o-mini", messages=user("Hello there [[mock:tokens=5]]")
    )

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "".join(answer_tokens("Hello there", 5))
    assert len(choice.message.content.split()) == 5
    assert "mock:" not in choice.message.content
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 5)


def test_max_tokens_cuts_the_answer_with_finish_reason_length(mock_server):
    completion = client(mock_server).chat.completions.create(model="mock-model", messages=user("hi"), max_tokens=3)

    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content.split()) == 3
    assert completion.usage.completion_tokens == 3


def test_models_endpoint(mock_server):
    models = client(mock_server).models.list()

    assert [model.id for model in models.data] == ["mock-model", "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    assert client(mock_server).models.retrieve("gpt-4o").id == "gpt-4o"


def test_models_endpoint_lists_the_configured_models():
    with serving(MockConfig(models=("alpha", "beta"))) as server:
        assert [model.id for model in client(server).models.list().data] == ["alpha", "beta"]


async def test_async_client_streams(mock_server):
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="k", max_retries=0) as async_client:
        stream = await async_client.chat.completions.create(
            model="mock-model",
            messages=user("async [[mock:tokens=4]]"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    contents = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert contents == answer_tokens("async", 4)
    assert chunks[-1].usage.completion_tokens == 4


# --- tool calls -----------------------------------------------------------------------------


def _tool_calls_of(chunks) -> tuple[dict, str]:
    calls: dict[int, dict] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk.choices:
            for part in choice.delta.tool_calls or ():
                call = calls.setdefault(part.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or part.id
                call["name"] += part.function.name or ""
                call["arguments"] += part.function.arguments or ""
            finish = choice.finish_reason or finish
    return calls, finish


def test_streams_a_call_to_a_tool_the_user_names(mock_server):
    chunks = list(
        client(mock_server).chat.completions.create(
            model="mock-model",
            messages=user('What is the weather? Use get_weather({"city": "Paris, France"}) please'),
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    calls, finish = _tool_calls_of(chunks)
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris, France"}
    # The arguments arrive in several pieces, as from a real model.
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.tool_calls) > 2
    assert not any(chunk.choices[0].delta.content for chunk in chunks if chunk.choices)


def test_a_tool_directive_forces_a_call_with_arguments(mock_server):
    completion = client(mock_server).chat.completions.create(
        model="mock-model", messages=user('go [[mock:tool=lookup {"q": [1, 2]}]]')
    )

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"q": [1, 2]})


def test_no_tool_call_when_the_named_tool_is_not_offered(mock_server):
    completion = client(mock_server).chat.completions.create(
        model="mock-model", messages=user("use get_weather now"), tools=[]
    )

    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


def test_answers_a_tool_result_with_its_content(mock_server):
    messages = [
        {"role": "user", "content": "weather via get_weather"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]
    completion = client(mock_server).chat.completions.create(
        model="mock-model", messages=messages, tools=[WEATHER_TOOL]
    )

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "The get_weather tool returned: Sunny, 21 C."


# --- faults -------------------------------------------------------------------------------------


def test_429_is_a_rate_limit_error_with_retry_after(mock_server):
    before = mock_server.app.stats["chat_completions"]
    with pytest.raises(openai.RateLimitError) as caught:
        client(mock_server).chat.completions.create(model="mock-model", messages=user("x [[mock:error=429]]"))

    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.headers["retry-after-ms"] == "10"
    assert mock_server.app.stats["chat_completions"] - before == 1  # max_retries=0: one request


def test_429_is_retried_by_the_client_honouring_retry_after(mock_server):
    before = mock_server.app.stats["chat_completions"]
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(base_url=mock_server.base_url, api_key="k", max_retries=2).chat.completions.create(
            model="mock-model", messages=user("x [[mock:error=429]]")
        )

    assert mock_server.app.stats["chat_completions"] - before == 3


def test_500_is_an_internal_server_error(mock_server):
    with pytest.raises(openai.InternalServerError) as caught:
        client(mock_server).chat.completions.create(
            model="mock-model", messages=user("x [[mock:error=500]]"), stream=True
        )

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


def test_a_mock_error_model_always_fails(mock_server):
    with pytest.raises(openai.InternalServerError):
        client(mock_server).chat.completions.create(model="mock-error-500", messages=user("hi"))
    with pytest.raises(openai.APIStatusError) as caught:
        client(mock_server).chat.completions.create(model="mock-error-503", messages=user("hi"))
    assert caught.value.status_code == 503


def test_an_unknown_model_is_404(mock_server):
    with pytest.raises(openai.NotFoundError) as caught:
        client(mock_server).chat.completions.create(model="no-such-model", messages=user("hi"))

    assert caught.value.code == "model_not_found"


def test_any_model_serves_unknown_names():
    with serving(MockConfig(any_model=True, tokens=2)) as server:
        completion = client(server).chat.completions.create(model="whatever-7b", messages=user("hi"))
    assert completion.model == "whatever-7b"


def test_an_api_key_is_required_when_configured():
    with serving(MockConfig(api_key="right-key")) as server:
        with pytest.raises(openai.AuthenticationError):
            client(server).chat.completions.create(model="mock-model", messages=user("hi"))
        completion = openai.OpenAI(base_url=server.base_url, api_key="right-key").chat.completions.create(
            model="mock-model", messages=user("hi")
        )
    assert completion.choices[0].finish_reason == "stop"


def test_a_malformed_directive_is_a_bad_request(mock_server):
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock_server).chat.completions.create(model="mock-model", messages=user("[[mock:tokens=many]]"))

    assert "tokens" in caught.value.message


def test_a_request_without_messages_is_a_bad_request(mock_server):
    response = httpx.post(f"{mock_server.base_url}/chat/completions", json={"model": "mock-model", "messages": []})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_timeout_never_answers(mock_server):
    before = mock_server.app.stats["timeouts"]
    with pytest.raises(openai.APITimeoutError):
        client(mock_server, timeout=0.3).chat.completions.create(
            model="mock-model", messages=user("x [[mock:timeout]]"), stream=True
        )

    assert mock_server.app.stats["timeouts"] - before == 1


def test_dropped_stream_breaks_after_n_tokens(mock_server):
    stream = client(mock_server).chat.completions.create(
        model="mock-model", messages=user("x [[mock:drop_after=3]]"), stream=True
    )
    contents = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                contents.append(chunk.choices[0].delta.content)

    assert contents == answer_tokens("x", MOCK_TOKENS)[:3]


async def test_dropped_stream_with_token_delay(mock_server):
    async with openai.AsyncOpenAI(base_url=mock_server.base_url, api_key="k", max_retries=0) as async_client:
        stream = await async_client.chat.completions.create(
            model="mock-model", messages=user("x [[mock:drop_after=2]] [[mock:token_delay_ms=5]]"), stream=True
        )
        contents = []
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    contents.append(chunk.choices[0].delta.content)

    assert len(contents) == 2


def test_dropped_non_streaming_response(mock_server):
    with pytest.raises(openai.APIConnectionError):
        client(mock_server).chat.completions.create(model="mock-model", messages=user("x [[mock:drop_after=1]]"))


def test_token_delay_and_ttft_directives_pace_the_stream(mock_server):
    stream = client(mock_server).chat.completions.create(
        model="mock-model",
        messages=user("x [[mock:tokens=3]] [[mock:ttft_ms=50]] [[mock:token_delay_ms=20]]"),
        stream=True,
    )
    contents = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]

    assert len(contents) == 3


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (MockConfig(error_rate=1.0, error_status=429), openai.RateLimitError),
        (MockConfig(error_rate=1.0, error_status=500), openai.InternalServerError),
        (MockConfig(drop_rate=1.0, drop_after=1), openai.APIConnectionError),
    ],
)
def test_server_wide_fault_rates(config, expected):
    with serving(config) as server, pytest.raises(expected):
        list(client(server).chat.completions.create(model="mock-model", messages=user("hi"), stream=True))


def test_server_wide_timeout_rate():
    with serving(MockConfig(timeout_rate=1.0)) as server, pytest.raises(openai.APITimeoutError):
        client(server, timeout=0.2).chat.completions.create(model="mock-model", messages=user("hi"))


def test_fault_rates_are_reproducible_with_a_seed():
    def outcomes() -> list[bool]:
        with serving(MockConfig(error_rate=0.5, seed=7, tokens=1)) as server:
            server_client = client(server)
            results = []
            for _ in range(12):
                try:
                    server_client.chat.completions.create(model="mock-model", messages=user("hi"))
                    results.append(True)
                except openai.InternalServerError:
                    results.append(False)
            return results

    first = outcomes()
    assert first == outcomes()
    assert True in first and False in first


def test_config_is_validated():
    with pytest.raises(ValueError, match="error_rate"):
        MockConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="error_status"):
        MockConfig(error_status=200)


# --- directives -------------------------------------------------------------------------------------


def test_parse_directives():
    directives, text = parse_directives(
        "Hi [[mock:error=429]] there [[mock:drop_after=3]][[mock:tokens=5]] [[mock:ttft_ms=50]] "
        '[[mock:token_delay_ms=2.5]] [[mock:timeout]] [[mock:tool=search {"q": "a]]b"}]]'
    )

    assert directives.error == 429
    assert directives.drop_after == 3
    assert directives.tokens == 5
    assert directives.ttft_ms == 50
    assert directives.token_delay_ms == 2.5
    assert directives.timeout is True
    assert directives.tool == ("search", '{"q":"a]]b"}')
    assert text.split() == ["Hi", "there"]


def test_parse_directives_tool_without_arguments():
    directives, text = parse_directives("[[mock:tool=get_weather]] hello")

    assert directives.tool == ("get_weather", "{}")
    assert text == " hello"


@pytest.mark.parametrize(
    "text",
    [
        "[[mock:error=abc]]",
        "[[mock:error=200]]",
        "[[mock:tokens=-1]]",
        "[[mock:nope]]",
        "[[mock:tokens=3",
        "[[mock:tool=]]",
    ],
)
def test_parse_directives_rejects_malformed(text):
    from integrations.llm.testing.mock_server import DirectiveError

    with pytest.raises(DirectiveError):
        parse_directives(text)


# --- the management command ----------------------------------------------------------------------------


def test_management_command_serves_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mock_llm_server", "--port", "0", "--tokens", "3", "--models", "m1,m2"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("mock LLM server listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        server = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        assert [model.id for model in server.models.list().data] == ["m1", "m2"]
        completion = server.chat.completions.create(model="m1", messages=user("hi"))
        assert len(completion.choices[0].message.content.split()) == 3
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_bodies_that_are_not_json_or_models_that_are_not_errors(mock_server):
    empty = httpx.post(f"{mock_server.base_url}/chat/completions", content=b"")
    not_an_error = httpx.post(
        f"{mock_server.base_url}/chat/completions", json={"model": "mock-error-200", "messages": user("hi")}
    )

    assert empty.status_code == 400
    assert not_an_error.status_code == 404


def test_unknown_paths_and_methods(mock_server):
    assert httpx.get(f"{mock_server.url}/nope").status_code == 404
    assert httpx.get(f"{mock_server.base_url}/chat/completions").status_code == 405
    assert httpx.get(f"{mock_server.url}/health").json() == {"status": "ok"}


def test_run_in_thread_and_stop_ends_open_streams():
    base_url, stop = run_in_thread(MockConfig(tokens=1000, token_delay_ms=50))
    with httpx.stream(
        "POST", f"{base_url}/chat/completions", json={"model": "mock-model", "messages": user("hi"), "stream": True}
    ) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        stop()
        # The 50-second stream is cut, not waited for: reading on fails.
        with pytest.raises(httpx.HTTPError):
            for _ in lines:
                pass
