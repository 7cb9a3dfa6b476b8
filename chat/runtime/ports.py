"""What the agent loop is handed instead of importing services and tasks.

A turn needs tools (a session of the tools the caller may use, from the
tools app's one tool-call service), a place for its events (the hub), and
two slots for billing: a gate asked before every model call, and a meter
told the usage of every model call.  :func:`chat.services.turns.turn_start`
assembles them; tests and later workflows assemble their own.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from integrations.llm.types import ToolCall, ToolSpec
from tools.registry import ToolContext


class ToolCallOutcome(Protocol):
    content: str  # what the model is told
    summary: dict  # what the turn records about the call
    draft: dict | None  # the draft, when the call became one


class ToolSession(Protocol):
    def specs(self) -> tuple[ToolSpec, ...]: ...

    async def call(self, call: ToolCall, context: ToolContext, report: Callable[..., None]) -> ToolCallOutcome: ...


# open_tools(organization_id, grants, role) -> the session for one turn
OpenTools = Callable[[str, tuple, str | None], Awaitable[ToolSession]]


@dataclass(frozen=True)
class ModelCall:
    """One model call of a turn, as the gate and the meter see it."""

    organization_id: str
    agent_id: str
    version_id: str
    conversation_id: str
    channel: str
    model: str
    turn_id: str
    round: int
    caller: object | None  # accounts.callers.Caller
    request_id: str | None = None


@dataclass(frozen=True)
class ModelUsage:
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    status: str  # "ok", or the error kind


class BudgetGate(Protocol):
    async def check(self, call: ModelCall) -> None:
        """Raises :class:`agenthub.errors.ApplicationError` to refuse the call."""


class UsageMeter(Protocol):
    async def record(self, call: ModelCall, usage: ModelUsage) -> None: ...


@dataclass(frozen=True)
class TurnPorts:
    open_tools: OpenTools
    gate: BudgetGate | None = None
    meter: UsageMeter | None = None
