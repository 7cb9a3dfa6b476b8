"""The offline model: deterministic answers, tool calls, tool results, usage."""

import json
import re

from integrations.llm.offline import OfflineProvider, answer_text
from integrations.llm.scripted import find_tool_mention
from integrations.llm.types import ChatMessage, ChatRequest, Finish, TextDelta, ToolCall, ToolSpec, Usage
from integrations.tests.helpers import collect, user_request

SEARCH = ToolSpec(name="search_docs", description="Search the documentation.")
WEATHER = ToolSpec(name="get_weather", description="Weather for a city.")
PROMPT = "How do I reset my password on the admin site when the email never arrives?"


def offline_request(text: str, **kwargs) -> ChatRequest:
    return user_request(text, model="offline", **kwargs)


async def test_answers_the_last_user_message_word_by_word():
    events = await collect(OfflineProvider(token_delay_ms=0).stream(offline_request(PROMPT)))

    *deltas, finish = events
    text = "".join(delta.text for delta in deltas)
    assert text == answer_text(PROMPT)
    assert all(isinstance(delta, TextDelta) and len(delta.text.split()) == 1 for delta in deltas)
    assert 30 <= len(deltas) <= 60
    assert finish == Finish(
        reason="stop", usage=Usage(prompt_tokens=len(PROMPT.split()), completion_tokens=len(deltas)), model="offline"
    )


def test_the_answer_acknowledges_and_summarises_the_prompt():
    text = answer_text(PROMPT)

    assert '"How do I reset my password on the…"' in text
    # The three longest words (ties: the first), in the order of the prompt.
    assert re.search(r"stand out are (\w+), (\w+) and (\w+)\.", text).groups() == ("reset", "password", "arrives")


def test_same_input_same_output_and_different_inputs_differ():
    assert answer_text(PROMPT) == answer_text(PROMPT)
    assert answer_text(PROMPT) != answer_text("Summarise the quarterly revenue report for the board")


def test_every_answer_is_30_to_60_words():
    prompts = [PROMPT, "hi", "Summarise the quarterly revenue report", "a " * 200, "¿Dónde está la estación?", "42"]
    for prompt in prompts:
        assert 30 <= len(answer_text(prompt).split()) <= 60, prompt


async def test_without_a_user_message_it_greets():
    request = ChatRequest(model="offline", messages=(ChatMessage(role="system", content="Be helpful."),))

    events = await collect(OfflineProvider(token_delay_ms=0).stream(request))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith("Hello!")
    assert events[-1].usage.prompt_tokens == 2


async def test_calls_a_tool_the_user_names():
    request = offline_request('Please run get_weather({"city": "Lima"}) for me', tools=(SEARCH, WEATHER))

    events = await collect(OfflineProvider(token_delay_ms=0).stream(request))

    assert len(events) == 2
    call, finish = events
    assert isinstance(call, ToolCall)
    assert re.fullmatch(r"call_[0-9a-f]{24}", call.id)
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Lima"})
    assert finish.reason == "tool_calls"
    assert finish.usage.completion_tokens == 2  # the name and the compact arguments
    # Deterministic, including the id.
    assert await collect(OfflineProvider(token_delay_ms=0).stream(request)) == events


async def test_a_named_tool_without_arguments_gets_empty_arguments():
    events = await collect(
        OfflineProvider(token_delay_ms=0).stream(offline_request("use search_docs", tools=(SEARCH,)))
    )

    assert events[0] == ToolCall(id=events[0].id, name="search_docs", arguments="{}")


async def test_no_tool_call_when_the_named_tool_is_not_offered():
    events = await collect(
        OfflineProvider(token_delay_ms=0).stream(offline_request("use search_docs", tools=(WEATHER,)))
    )

    assert not any(isinstance(event, ToolCall) for event in events)
    assert events[-1].reason == "stop"


async def test_answers_a_tool_result_with_its_content():
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Lima"}')
    request = ChatRequest(
        model="offline",
        messages=(
            ChatMessage(role="user", content="weather in Lima with get_weather"),
            ChatMessage(role="assistant", tool_calls=(call,)),
            ChatMessage(role="tool", content="Cloudy, 18 C", tool_call_id="call_1"),
        ),
        tools=(WEATHER,),
    )

    events = await collect(OfflineProvider(token_delay_ms=0).stream(request))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The get_weather tool returned: Cloudy, 18 C."
    # Words of every message and tool call: 5 + (1 + 2) + 3.
    assert events[-1] == Finish(reason="stop", usage=Usage(prompt_tokens=11, completion_tokens=7), model="offline")


async def test_max_output_tokens_cuts_the_answer():
    events = await collect(OfflineProvider(token_delay_ms=0).stream(offline_request(PROMPT, max_output_tokens=4)))

    assert len(events) == 5
    assert events[-1].reason == "length"
    assert events[-1].usage.completion_tokens == 4


async def test_token_delay_paces_the_stream(monkeypatch):
    sleeps = []

    async def fake_sleep(seconds):
        sleeps.append(seconds)

    monkeypatch.setattr("integrations.llm.offline.asyncio.sleep", fake_sleep)
    events = await collect(OfflineProvider(token_delay_ms=25).stream(offline_request(PROMPT)))

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert sleeps == [0.025] * (len(deltas) - 1)


def test_find_tool_mention():
    names = ["get_weather", "search", "search_docs"]

    assert find_tool_mention("try search_docs then search", names) == ("search_docs", "{}")
    assert find_tool_mention("research this", names) is None
    assert find_tool_mention('get_weather {"city": "Oslo"}', names) == ("get_weather", '{"city":"Oslo"}')
    assert find_tool_mention("get_weather(not json)", names) == ("get_weather", "{}")
    assert find_tool_mention("get_weather([1, 2])", names) == ("get_weather", "{}")
    assert find_tool_mention("nothing here", []) is None
