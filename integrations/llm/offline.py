"""The offline model: a deterministic stand-in built into AgentHub.

It runs with no model server, so the embedded demo and the tests see the whole
chat path work (streaming, usage, tool calls).  The same request always gets
the same answer:

- the last message is a tool result → a sentence that reports the result;
- the request offers tools and the last user message names one → a call to
  that tool (arguments from ``name({...})`` / ``name {...}`` right after the
  name, else ``{}``), finishing with ``tool_calls``;
- otherwise → a short paragraph that acknowledges and summarises the last
  user message.

Text streams word by word, ``token_delay_ms`` apart.  Usage is an estimate:
prompt tokens are the words of every message, completion tokens the words
emitted.
"""

import asyncio
import re
from collections.abc import AsyncIterator

from integrations.llm.scripted import count_words, find_tool_mention, split_tokens, stable_hex, tool_call_id
from integrations.llm.types import ChatMessage, ChatRequest, Finish, StreamEvent, TextDelta, ToolCall, Usage

_TOPIC_WORDS = 8
_TERM_COUNT = 3
_TOOL_RESULT_MAX_CHARS = 1000
_STOPWORD_TEXT = """about above after again also always because been before being between both could does doing during each
    from have having here into just like more most much need only other over please same should some such than
    thank thanks that their them then there these they this those through under until very want what when where
    which while will with would your yours hello"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_OPENERS = (
    'You asked: "{topic}"',
    'Your message was: "{topic}"',
    'Here is my reply to "{topic}"',
)
_SELF = "I am the offline demo model built into AgentHub, so I can only reflect your words."
_CLOSERS = (
    "Connect an OpenAI-compatible model server for real answers; streaming, usage metering and tool calls already work.",
    "Set OPENAI_BASE_URL or OPENAI_API_KEY to use a real model; everything around it already works end to end.",
    "A real model gives real answers; until one is configured, this reply shows the whole chat path working.",
)
_GREETING = (
    "Hello! I am the offline demo model built into AgentHub. Send me a message and I will answer it here, "
    "one word at a time."
)


def _topic(text: str) -> str:
    words = text.split()
    topic = " ".join(words[:_TOPIC_WORDS]).rstrip(".,;:!?")
    return topic + "…" if len(words) > _TOPIC_WORDS else topic


def _key_terms(text: str) -> list[str]:
    seen: dict[str, int] = {}
    for position, word in enumerate(re.findall(r"[^\W_]+", text.lower())):
        if len(word) >= 4 and word not in _STOPWORDS and not word.isdigit() and word not in seen:
            seen[word] = position
    longest = sorted(seen, key=lambda word: (-len(word), seen[word]))[:_TERM_COUNT]
    return sorted(longest, key=seen.__getitem__)


def _terms_sentence(text: str) -> str:
    terms = _key_terms(text)
    if not terms:
        words = count_words(text)
        return f"Your message is {words} word{'s' if words != 1 else ''} long."
    if len(terms) == 1:
        return f"The term that stands out is {terms[0]}."
    return f"The terms that stand out are {', '.join(terms[:-1])} and {terms[-1]}."


def answer_text(prompt: str) -> str:
    """The offline model's paragraph for a user message (30-60 words)."""
    prompt = prompt.strip()
    if not prompt:
        return _GREETING
    choice = int(stable_hex(prompt, length=8), 16)
    opener = _OPENERS[choice % len(_OPENERS)].format(topic=_topic(prompt))
    closer = _CLOSERS[(choice // len(_OPENERS)) % len(_CLOSERS)]
    return f"{opener}. {_SELF} {_terms_sentence(prompt)} {closer}"


def tool_result_text(messages: tuple[ChatMessage, ...]) -> str:
    """A sentence per trailing tool result, naming the tool that produced it."""
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message)
    results.reverse()
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    sentences = []
    for result in results:
        name = names.get(result.tool_call_id or "", "requested")
        content = result.content.strip()
        if not content:
            sentences.append(f"The {name} tool returned no output.")
            continue
        if len(content) > _TOOL_RESULT_MAX_CHARS:
            content = content[:_TOOL_RESULT_MAX_CHARS].rstrip() + "…"
        if content[-1] not in ".!?…":
            content += "."
        sentences.append(f"The {name} tool returned: {content}")
    return " ".join(sentences)


def prompt_token_estimate(messages: tuple[ChatMessage, ...]) -> int:
    """Words of every message and tool call: an estimate, not a tokenizer count."""
    total = 0
    for message in messages:
        total += count_words(message.content)
        for call in message.tool_calls:
            total += 1 + count_words(call.arguments)
    return total


def _last_user_text(messages: tuple[ChatMessage, ...]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


class OfflineProvider:
    """The built-in deterministic model (``"offline"``)."""

    def __init__(self, *, name: str = "offline", token_delay_ms: float = 25):
        if token_delay_ms < 0:
            raise ValueError("token_delay_ms must be >= 0")
        self.name = name
        self.token_delay_ms = token_delay_ms

    def __repr__(self) -> str:
        return f"OfflineProvider(name={self.name!r}, token_delay_ms={self.token_delay_ms})"

    async def _pause(self) -> None:
        if self.token_delay_ms:
            await asyncio.sleep(self.token_delay_ms / 1000)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        messages = request.messages
        prompt_tokens = prompt_token_estimate(messages)
        last = messages[-1] if messages else None

        if last is not None and last.role == "user" and request.tools:
            mention = find_tool_mention(last.content, [tool.name for tool in request.tools])
            if mention is not None:
                name, arguments = mention
                await self._pause()
                yield ToolCall(
                    id=tool_call_id(len(messages), last.content, name, arguments), name=name, arguments=arguments
                )
                usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=1 + count_words(arguments))
                yield Finish(reason="tool_calls", usage=usage, model=request.model)
                return

        if last is not None and last.role == "tool":
            text = tool_result_text(messages)
        else:
            text = answer_text(_last_user_text(messages))

        tokens = split_tokens(text)
        reason = "stop"
        if request.max_output_tokens is not None and len(tokens) > request.max_output_tokens:
            tokens = tokens[: max(request.max_output_tokens, 0)]
            reason = "length"
        for index, token in enumerate(tokens):
            if index:
                await self._pause()
            yield TextDelta(token)
        yield Finish(
            reason=reason,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(tokens)),
            model=request.model,
        )
