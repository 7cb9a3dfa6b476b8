"""The OpenAI-compatible provider against the mock server (the real SDK over
HTTP), and against hand-written streams for what the mock never sends."""

import asyncio
import json

import httpx2
import pytest

from agenthub.testing import free_port
from integrations.llm.openai_provider import OpenAICompatibleProvider
from integrations.llm.testing.mock_server import MockConfig, answer_tokens, serving
from integrations.llm.types import ChatMessage, ChatRequest, Finish, LLMError, TextDelta, ToolCall, ToolSpec, Usage
from integrations.tests.helpers import MOCK_TOKENS, collect, user_request

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
async def provider(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, api_key="", timeout=5, max_retries=0)
    yield provider
    await provider.aclose()


async def failure(provider, request) -> tuple[LLMError, list]:
    """The LLMError the stream raises and the events yielded before it."""
    events = []
    with pytest.raises(LLMError) as caught:
        async for event in provider.stream(request):
            events.append(event)
    return caught.value, events


# --- streams ----------------------------------------------------------------------------


async def test_streams_text_then_finish_with_usage(provider):
    events = await collect(provider.stream(user_request("Tell me about streaming")))

    assert events == [
        *(TextDelta(token) for token in answer_tokens("Tell me about streaming", MOCK_TOKENS)),
        Finish(reason="stop", usage=Usage(prompt_tokens=4, completion_tokens=MOCK_TOKENS), model="mock-model"),
    ]


async def test_request_body():
    bodies = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(400, json={"error": {"message": "stop here"}})

    provider = OpenAICompatibleProvider(base_url="http://model.test/v1", transport=httpx2.MockTransport(handler))
    await failure(provider, user_request("hi"))
    await failure(provider, user_request("hi", max_output_tokens=50, temperature=0.2, tools=(WEATHER,)))

    assert bodies[0] == {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert bodies[1] == {**bodies[0], "max_tokens": 50, "temperature": 0.2, "tools": [WEATHER.as_openai()]}


async def test_max_output_tokens_cuts_the_answer(provider):
    request = user_request("hi [[mock:tokens=6]]", max_output_tokens=2, temperature=0.2)

    events = await collect(provider.stream(request))

    assert [type(event) for event in events] == [TextDelta, TextDelta, Finish]
    assert events[-1].reason == "length"
    assert events[-1].usage.completion_tokens == 2


async def test_assembles_a_streamed_tool_call(provider):
    request = user_request('Call get_weather({"city": "Reykjavík, Iceland"}) now', tools=(WEATHER,))

    events = await collect(provider.stream(request))

    assert len(events) == 2
    call, finish = events
    assert isinstance(call, ToolCall)
    assert call.id.startswith("call_")
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Reykjavík, Iceland"}
    assert finish.reason == "tool_calls"
    assert finish.usage.prompt_tokens == 5


async def test_answers_a_tool_result(provider):
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')
    request = ChatRequest(
        model="mock-model",
        messages=(
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="weather in Oslo via get_weather"),
            ChatMessage(role="assistant", tool_calls=(call,)),
            ChatMessage(role="tool", content="Rain, 9 C", tool_call_id="call_1"),
        ),
        tools=(WEATHER,),
    )

    events = await collect(provider.stream(request))

    assert "".join(event.text for event in events if isinstance(event, TextDelta)) == (
        "The get_weather tool returned: Rain, 9 C."
    )
    assert events[-1].reason == "stop"


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "kind", "status"),
    [
        ("[[mock:error=429]]", "rate_limited", 429),
        ("[[mock:error=500]]", "server_error", 500),
        ("[[mock:error=503]]", "server_error", 503),
        ("[[mock:error=400]]", "bad_request", 400),
        ("[[mock:error=422]]", "bad_request", 422),
        ("[[mock:error=401]]", "auth", 401),
        ("[[mock:error=403]]", "auth", 403),
        ("[[mock:error=404]]", "unknown_model", 404),
        ("[[mock:error=408]]", "timeout", 408),
        ("[[mock:tokens=x]]", "bad_request", 400),
    ],
)
async def test_maps_error_statuses_to_kinds(provider, directive, kind, status):
    error, events = await failure(provider, user_request(f"hi {directive}"))

    assert (error.kind, error.status_code, error.provider) == (kind, status, "openai")
    assert events == []


async def test_unknown_model(provider):
    error, _ = await failure(provider, user_request("hi", model="gpt-5-nope"))

    assert error.kind == "unknown_model"
    assert "gpt-5-nope" in str(error)
    assert not error.retryable


async def test_timeout(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, timeout=0.2, max_retries=0)
    try:
        error, _ = await failure(provider, user_request("hi [[mock:timeout]]"))
    finally:
        await provider.aclose()

    assert error.kind == "timeout"
    assert error.retryable


async def test_timeout_between_tokens(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, timeout=0.2, max_retries=0)
    try:
        error, events = await failure(provider, user_request("hi [[mock:tokens=3]] [[mock:token_delay_ms=600]]"))
    finally:
        await provider.aclose()

    assert error.kind == "timeout"
    assert events == [TextDelta(answer_tokens("hi", 3)[0])]


async def test_dropped_stream_after_tokens(provider):
    error, events = await failure(provider, user_request("hi [[mock:drop_after=3]]"))

    assert error.kind == "stream_dropped"
    assert not error.retryable
    assert events == [TextDelta(token) for token in answer_tokens("hi", MOCK_TOKENS)[:3]]


async def test_dropped_stream_before_any_token(provider):
    error, events = await failure(provider, user_request("hi [[mock:drop_after=0]]"))

    assert error.kind == "stream_dropped"
    assert events == []


async def test_connection_refused():
    provider = OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=1, max_retries=0)
    try:
        error, _ = await failure(provider, user_request("hi"))
    finally:
        await provider.aclose()

    assert error.kind == "connection"
    assert error.retryable


async def test_rate_limit_is_retried_by_the_sdk_before_it_surfaces(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, max_retries=2)
    before = mock_server.app.stats["chat_completions"]
    try:
        error, _ = await failure(provider, user_request("hi [[mock:error=429]]"))
    finally:
        await provider.aclose()

    assert error.kind == "rate_limited"
    assert mock_server.app.stats["chat_completions"] - before == 3


async def test_openai_without_a_key_fails_before_any_request():
    provider = OpenAICompatibleProvider(base_url="", api_key="")

    error, _ = await failure(provider, user_request("hi"))

    assert error.kind == "auth"
    assert "OPENAI_API_KEY" in str(error)


async def test_the_api_key_never_appears_in_errors_or_repr():
    secret = "sk-test-very-secret-0123456789"

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["authorization"] == f"Bearer {secret}"
        body = {"error": {"message": f"Incorrect API key provided: {secret}.", "type": "invalid_request_error"}}
        return httpx2.Response(401, json=body)

    provider = OpenAICompatibleProvider(api_key=secret, max_retries=0, transport=httpx2.MockTransport(handler))
    error, _ = await failure(provider, user_request("hi"))

    assert error.kind == "auth"
    assert secret not in str(error)
    assert "Incorrect API key provided: ***" in str(error)
    assert secret not in repr(provider)


# --- streams the mock server never sends ----------------------------------------------------------


def raw_sse_provider(body: str) -> OpenAICompatibleProvider:
    """A provider whose server answers with exactly this event stream."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())

    return OpenAICompatibleProvider(
        base_url="http://model.test/v1", max_retries=0, transport=httpx2.MockTransport(handler)
    )


def sse_provider(*chunks: dict | str) -> OpenAICompatibleProvider:
    """A provider whose server answers with these SSE data lines."""
    return raw_sse_provider("".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks))


def chunk(delta: dict | None = None, finish_reason: str | None = None, **extra) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "served-name",
        "choices": choices,
        **extra,
    }


async def test_a_stream_without_a_finish_reason_is_dropped():
    provider = sse_provider(chunk({"role": "assistant", "content": "Hi"}), "[DONE]")

    error, events = await failure(provider, user_request("hi"))

    assert error.kind == "stream_dropped"
    assert events == [TextDelta("Hi")]


async def test_no_usage_reported_is_said_so_and_the_served_model_is_named():
    provider = sse_provider(chunk({"content": "Hi"}), chunk({}, "stop"), "[DONE]")

    events = await collect(provider.stream(user_request("hi", model="alias")))

    # Billing then counts the call's tokens by rule and marks the row estimated.
    assert events == [TextDelta("Hi"), Finish(reason="stop", usage=Usage(0, 0, reported=False), model="served-name")]


async def test_cached_prompt_tokens_are_read_from_the_usage_details():
    usage = {"prompt_tokens": 120, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 100}}
    provider = sse_provider(chunk({"content": "Hi"}), chunk({}, "stop"), chunk(usage=usage), "[DONE]")

    events = await collect(provider.stream(user_request("hi")))

    assert events[-1].usage == Usage(prompt_tokens=120, completion_tokens=3, cached_tokens=100)


async def test_parallel_tool_calls_are_assembled_by_index_and_stop_becomes_tool_calls():
    def part(index, **fields):
        return {"tool_calls": [{"index": index, **fields}]}

    provider = sse_provider(
        chunk(part(0, id="call_a", type="function", function={"name": "search", "arguments": ""})),
        chunk(part(1, id="call_b", type="function", function={"name": "get_weather", "arguments": '{"ci'})),
        chunk(part(0, function={"arguments": '{"q": '})),
        chunk(part(1, function={"arguments": 'ty": "Rome"}'})),
        chunk(part(0, function={"arguments": '"x"}'})),
        chunk({}, "stop"),
        chunk(usage={"prompt_tokens": 7, "completion_tokens": 11, "total_tokens": 18}),
        "[DONE]",
    )

    events = await collect(provider.stream(user_request("hi")))

    assert events == [
        ToolCall(id="call_a", name="search", arguments='{"q": "x"}'),
        ToolCall(id="call_b", name="get_weather", arguments='{"city": "Rome"}'),
        Finish(reason="tool_calls", usage=Usage(7, 11), model="served-name"),
    ]


async def test_an_error_event_inside_the_stream_is_a_server_error():
    provider = sse_provider(chunk({"content": "Hi"}), {"error": {"message": "overloaded", "type": "server_error"}})

    error, events = await failure(provider, user_request("hi"))

    assert error.kind == "server_error"
    assert "overloaded" in str(error)
    assert events == [TextDelta("Hi")]


async def test_reads_any_well_formed_event_stream():
    """CRLF line ends, comments, ``data:`` without a space, JSON split over
    two data lines, an event type, and no blank line after [DONE]."""
    first = json.dumps(chunk({"content": "Hello"}))
    body = (
        ": keep-alive\r\n\r\n"
        f"data:{first}\r\n\r\n"
        'event: message\ndata: {"id": "c1", "model": "m", "choices": [{"index": 0,\n'
        'data: "delta": {"content": " world"}, "finish_reason": "stop"}]}\n\n'
        "data: [DONE]"
    )

    events = await collect(raw_sse_provider(body).stream(user_request("hi")))

    assert events == [
        TextDelta("Hello"),
        TextDelta(" world"),
        Finish(reason="stop", usage=Usage(0, 0, reported=False), model="m"),
    ]


async def test_other_choices_are_ignored():
    provider = sse_provider(
        {
            "model": "m",
            "choices": [{"index": 1, "delta": {"content": "no"}}, {"index": 0, "delta": {"content": "yes"}}],
        },
        chunk({}, "stop"),
        "[DONE]",
    )

    events = await collect(provider.stream(user_request("hi")))

    assert events[0] == TextDelta("yes")
    assert len(events) == 2


@pytest.mark.parametrize("data", ["{not json", "[1, 2]"])
async def test_a_malformed_chunk_is_a_server_error(data):
    error, _ = await failure(sse_provider(data), user_request("hi"))

    assert error.kind == "server_error"


async def test_connect_timeout_says_so():
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectTimeout("timed out", request=request)

    provider = OpenAICompatibleProvider(
        base_url="http://model.test/v1", connect_timeout=1.5, max_retries=0, transport=httpx2.MockTransport(handler)
    )
    error, _ = await failure(provider, user_request("hi"))

    assert error.kind == "timeout"
    assert "could not connect to the model server within 1.5 s" in str(error)


def test_connections_are_reused_across_streams():
    async def three_streams(server):
        provider = OpenAICompatibleProvider(base_url=server.base_url, max_retries=0)
        seen = []
        for _ in range(3):
            events = await collect(provider.stream(user_request("hi [[mock:tokens=2]]")))
            assert events[-1].reason == "stop"
            await asyncio.sleep(0.05)  # a closed connection would be gone by now
            seen.append(server.connection_ids)
        await provider.aclose()
        return seen

    with serving(MockConfig()) as server:
        seen = asyncio.run(three_streams(server))
    assert len(seen[0]) == 1
    assert seen == [seen[0]] * 3


async def test_a_stream_closed_early_releases_its_connection(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, max_retries=0)
    stream = provider.stream(user_request("hi [[mock:tokens=100]] [[mock:token_delay_ms=10]]"))

    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()
    events = await collect(provider.stream(user_request("again")))

    assert events[-1].reason == "stop"
    await provider.aclose()


# --- clients per event loop -----------------------------------------------------------------------


def test_one_client_per_event_loop(mock_server):
    provider = OpenAICompatibleProvider(base_url=mock_server.base_url, max_retries=0)

    async def client_of_this_loop():
        return provider.client()

    async def stream_then_close():
        client = provider.client()
        events = await collect(provider.stream(user_request("hi [[mock:tokens=1]]")))
        assert provider.client() is client
        assert len(provider._clients) == 1  # the closed first loop's client was dropped
        await provider.aclose()
        return client, events

    first = asyncio.run(client_of_this_loop())
    second, events = asyncio.run(stream_then_close())

    assert second is not first
    assert events[-1].reason == "stop"
    assert provider._clients == {}


async def test_many_concurrent_streams_share_one_client(provider, mock_server):
    results = await asyncio.gather(*(collect(provider.stream(user_request(f"q{i}"))) for i in range(50)))

    assert all(len(events) == MOCK_TOKENS + 1 and events[-1].reason == "stop" for events in results)
    assert len(provider._clients) == 1


async def _events_of(chunks: list[bytes]) -> list[tuple[str, str]]:
    import httpx2

    from integrations.llm.openai_provider import sse_events

    class Stream(httpx2.AsyncByteStream):
        async def __aiter__(self):
            for chunk in chunks:
                yield chunk

    response = httpx2.Response(200, stream=Stream())
    return [item async for item in sse_events(response)]


async def test_server_sent_events_are_read_across_any_chunk_boundary():
    body = ': keep-alive\r\n\r\ndata: {"a": "héllo"}\r\n\r\nevent: error\ndata: one\ndata: two\n\ndata: [DONE]'.encode()
    expected = [("message", '{"a": "héllo"}'), ("error", "one\ntwo"), ("message", "[DONE]")]
    assert await _events_of([body]) == expected
    # Cut anywhere, even inside a CRLF or a multi-byte character, the events are the same.
    for cut in range(1, len(body)):
        assert await _events_of([body[:cut], body[cut:]]) == expected, cut
    assert await _events_of([bytes([b]) for b in body]) == expected
