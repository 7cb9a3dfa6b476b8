"""The mock model server's vocabulary: its configuration, the ``[[mock:…]]``
directives, deterministic answers and OpenAI-style error bodies."""

import contextvars
import json
import re
from dataclasses import dataclass
from typing import Any

from integrations.llm.scripted import count_words, stable_hex
from integrations.llm.types import ChatMessage, ToolCall

DEFAULT_MODELS = ("mock-model", "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
MAX_BODY_BYTES = 32 * 1024 * 1024
_ERROR_MODEL = re.compile(r"mock-error-([45]\d\d)")
_DIRECTIVE = re.compile(r"\[\[mock:([a-z_]+)")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_VOCABULARY_TEXT = (
    "the agent reads your request and answers with a short deterministic reply that streams one token at a "
    "time so clients can measure latency throughput usage and cost while every tool call draft and workflow "
    "step runs exactly as it would against a real model server in production"
)
_VOCABULARY = _VOCABULARY_TEXT.split()
_ARGUMENT_PIECE = 12  # characters of tool call arguments per streamed chunk


@dataclass
class MockConfig:
    """How the mock server behaves; every field is also a command-line flag."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    models: tuple[str, ...] = DEFAULT_MODELS
    any_model: bool = False  # serve names not in ``models`` instead of 404
    tokens: int = 16  # answer length, in tokens
    ttft_ms: float = 0.0  # time to first token
    token_delay_ms: float = 0.0  # between two tokens
    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    drop_after: int = 3
    retry_after_ms: int = 50  # Retry-After(-Ms) sent with injected errors
    api_key: str | None = None  # when set, requests need "Authorization: Bearer <key>"
    seed: int | None = None  # for the random faults

    def __post_init__(self) -> None:
        self.models = tuple(self.models)
        for rate in ("error_rate", "timeout_rate", "drop_rate"):
            if not 0.0 <= getattr(self, rate) <= 1.0:
                raise ValueError(f"{rate} must be between 0 and 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        for name in ("tokens", "drop_after", "retry_after_ms", "ttft_ms", "token_delay_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


class DirectiveError(ValueError):
    pass


@dataclass
class Directives:
    error: int | None = None
    timeout: bool = False
    drop_after: int | None = None
    tokens: int | None = None
    ttft_ms: float | None = None
    token_delay_ms: float | None = None
    tool: tuple[str, str] | None = None  # name, arguments (JSON text)


def _number(key: str, value: str | None, kind: type, minimum: float = 0) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise DirectiveError(f"[[mock:{key}=...]] needs a number, got {value!r}") from None
    if number < minimum:
        raise DirectiveError(f"[[mock:{key}=...]] must be >= {minimum}")
    return number


def parse_directives(text: str) -> tuple[Directives, str]:
    """The ``[[mock:...]]`` directives in ``text``, and ``text`` without them."""
    directives = Directives()
    if "[[mock:" not in text:
        return directives, text
    kept: list[str] = []
    position = 0
    while (match := _DIRECTIVE.search(text, position)) is not None:
        kept.append(text[position : match.start()])
        key, cursor = match.group(1), match.end()
        if key == "tool":
            if not text.startswith("=", cursor):
                raise DirectiveError("[[mock:tool=NAME]] needs a tool name")
            name_match = _TOOL_NAME.match(text, cursor + 1)
            if name_match is None:
                raise DirectiveError("[[mock:tool=NAME]] needs a tool name")
            cursor = name_match.end()
            arguments = "{}"
            rest = text[cursor:].lstrip()
            if rest.startswith("{"):
                try:
                    value, length = json.JSONDecoder().raw_decode(rest)
                except ValueError as exc:
                    raise DirectiveError(f"[[mock:tool=NAME {{...}}]]: the arguments are not JSON ({exc})") from None
                arguments = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                cursor = len(text) - len(rest) + length
            end = text.find("]]", cursor)
            if end < 0 or text[cursor:end].strip():
                raise DirectiveError("[[mock:tool=...]] is not closed by ]]")
            directives.tool = (name_match.group(0), arguments)
        else:
            end = text.find("]]", cursor)
            if end < 0:
                raise DirectiveError(f"[[mock:{key}...]] is not closed by ]]")
            raw = text[cursor:end]
            value = raw[1:].strip() if raw.startswith("=") else None
            if raw and value is None:
                raise DirectiveError(f"[[mock:{key}...]] is malformed")
            if key == "error":
                status = _number(key, value, int, 400)
                if status > 599:
                    raise DirectiveError("[[mock:error=STATUS]] needs a 4xx or 5xx status")
                directives.error = status
            elif key == "timeout":
                directives.timeout = True
            elif key == "drop_after":
                directives.drop_after = _number(key, value, int)
            elif key == "tokens":
                directives.tokens = _number(key, value, int)
            elif key == "ttft_ms":
                directives.ttft_ms = _number(key, value, float)
            elif key == "token_delay_ms":
                directives.token_delay_ms = _number(key, value, float)
            else:
                raise DirectiveError(f"unknown directive [[mock:{key}]]")
        position = end + 2
    kept.append(text[position:])
    return directives, "".join(kept)


def answer_tokens(prompt: str, count: int) -> list[str]:
    """``count`` deterministic word tokens for ``prompt`` (leading spaces
    included), ending with a full stop."""
    if count <= 0:
        return []
    start = int(stable_hex(prompt, length=8), 16)
    words = [_VOCABULARY[(start + i) % len(_VOCABULARY)] for i in range(count)]
    words[0] = words[0].capitalize()
    words[-1] += "."
    return [words[0], *(" " + word for word in words[1:])]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _as_chat_message(message: dict) -> ChatMessage:
    calls = tuple(
        ToolCall(id=str(call.get("id", "")), name=str(call.get("function", {}).get("name", "")), arguments="")
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    )
    return ChatMessage(
        role=message.get("role", "user"),
        content=_text_of(message.get("content")),
        tool_calls=calls,
        tool_call_id=message.get("tool_call_id"),
    )


def _prompt_tokens(messages: list[dict]) -> int:
    total = 0
    for message in messages:
        total += count_words(_text_of(message.get("content")))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                total += 1 + count_words(str(call.get("function", {}).get("arguments", "")))
    return total


def _error_body(status: int, message: str | None = None, code: str | None = None) -> dict:
    kinds = {
        400: ("invalid_request_error", None, "The request is invalid."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("invalid_request_error", "unsupported_country_region_territory", "Access to this model is denied."),
        404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
        408: ("timeout", None, "The request timed out."),
        409: ("conflict", None, "The request conflicted with another request."),
        413: ("invalid_request_error", None, "The request body is too large."),
        422: ("invalid_request_error", None, "The request could not be processed."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again shortly."),
    }
    kind, default_code, default_message = kinds.get(
        status,
        ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": None,
            "code": code or default_code,
        }
    }


# Set by the app when it closes a response on purpose (dropped stream,
# shutdown), so uvicorn's "returned without completing response" is not logged.
_intentional_abort: contextvars.ContextVar[bool] = contextvars.ContextVar("mock_llm_abort", default=False)
