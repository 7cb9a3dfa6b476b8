"""The provider interface.

A provider turns a :class:`ChatRequest` into an async stream of events:
:class:`TextDelta` (a piece of the answer), :class:`ToolCall` (a complete tool
call, emitted once its arguments have fully streamed), and one final
:class:`Finish` with the reason and the usage the model server reported.
Failures raise :class:`LLMError` with a ``kind`` the router uses for retries,
fallbacks and metrics.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it

    def as_openai(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role == "tool"

    def as_openai(self) -> dict:
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.as_openai() for call in self.tool_calls]
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_openai(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_output_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    # Who the call is for (not sent to the model): the gateway holds each
    # organization to MODEL_MAX_CONCURRENT_PER_ORGANIZATION calls in flight.
    organization_id: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, served from the provider's cache
    reported: bool = True  # False when the provider sent no usage at all
    cache_hit: bool = False  # replayed from the response cache: no model call

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finish:
    reason: str  # "stop", "length", "tool_calls", ...
    usage: Usage
    model: str  # the model that actually answered
    provider: str = ""  # the provider (deployment) that answered; "cache" for a replay


StreamEvent = TextDelta | ToolCall | Finish


class LLMError(Exception):
    """A model call failed.  ``kind`` is one of: ``rate_limited``,
    ``server_error``, ``timeout``, ``connection``, ``stream_dropped``,
    ``bad_request``, ``auth``, ``unknown_model``, ``circuit_open`` (every
    deployment of the model is skipped after repeated failures),
    ``capacity_exceeded`` (no call slot freed in time: ``details`` says whose
    cap, ``deployment`` or ``organization``, and ``retry_after_ms``)."""

    RETRYABLE = frozenset(
        {"rate_limited", "server_error", "timeout", "connection", "circuit_open", "capacity_exceeded"}
    )

    def __init__(
        self, message: str, *, kind: str, provider: str, status_code: int | None = None, details: dict | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.provider = provider
        self.status_code = status_code
        self.details = details or {}

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


class Provider(Protocol):
    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...


DEFAULT_CONTEXT_WINDOW = 8192


@dataclass(frozen=True)
class ModelInfo:
    """A model operators may choose (``settings.AGENTHUB_MODELS``)."""

    name: str
    provider: str  # the provider that serves it: "offline" or "openai"
    context_window: int = DEFAULT_CONTEXT_WINDOW  # tokens
