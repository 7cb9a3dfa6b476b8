"""What the agent loop is handed instead of importing services and tasks.

A turn needs tools (a session of the tools the caller may use, from the
tools app's one tool-call service), a place for its events (the hub), and
two slots for billing: a gate asked before every model call (it reserves
the call's worst case against budgets, or refuses it), and a meter told the
usage of every model call (it charges it and settles the reservation).  The
values they exchange are billing's (:mod:`billing.calls`).  :func:`chat.services.turns.turn_start`
assembles them; tests and later workflows assemble their own.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from billing.calls import Charge, ModelCall, ModelUsage, Reservation
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


class BudgetGate(Protocol):
    async def check(self, call: ModelCall) -> Reservation | None:
        """Reserves the call's worst case, or raises
        :class:`agenthub.errors.ApplicationError` to refuse the call."""


class UsageMeter(Protocol):
    async def record(self, call: ModelCall, usage: ModelUsage, reservation: Reservation | None) -> Charge | None:
        """Charges the call (and settles its reservation)."""


@dataclass(frozen=True)
class TurnPorts:
    open_tools: OpenTools
    gate: BudgetGate | None = None
    meter: UsageMeter | None = None
