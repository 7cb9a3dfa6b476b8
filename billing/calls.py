"""What the budget gate and the usage meter are told about one model call.

Plain values with no Django in them: the chat runtime (and later workflow
steps, and tools that call models) builds a :class:`ModelCall` before the
call and a :class:`ModelUsage` after it, and hands both to whatever gate and
meter it was given.  Billing's gate and meter (:mod:`billing.services.meter`)
are the production ones."""

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class ModelCall:
    """One model call, as the gate and the meter see it.  ``call_id`` is the
    idempotency key of its ledger row: a retried write never charges twice."""

    call_id: str
    organization_id: str
    model: str
    channel: str
    caller: object | None = None  # accounts.callers.Caller
    agent_id: str = ""
    agent_name: str = ""  # a snapshot: the ledger outlives the agent
    version_id: str = ""
    version_number: int | None = None
    subject_kind: str = "conversation"  # or "workflow_run", "tool_invocation"...
    subject_id: str = ""
    subject_label: str = ""
    turn_id: str = ""
    round: int = 0
    request_id: str | None = None
    # The worst case the gate reserves: the prompt as estimated without a
    # tokenizer, plus every token the call may write.
    prompt_tokens_estimate: int = 0
    max_output_tokens: int = 0


@dataclass(frozen=True)
class ModelUsage:
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    status: str  # "ok", "interrupted", or the error kind
    cached_tokens: int = 0
    provider: str = ""
    estimated: bool = False  # the provider reported no usage; counted by rule
    cache_hit: bool = False  # replayed from the response cache: no model call, no cost


@dataclass(frozen=True)
class Charge:
    """What the meter charged for a call (returned to the runtime, which puts
    the cost in ``turn.finished`` and the REST answer)."""

    amount: Decimal
    currency: str
    usage_id: str | None = None
    priced: bool = True


@dataclass
class Reservation:
    """What the gate set aside for a call, settled by the meter."""

    call_id: str
    currency: str = "USD"
    holds: list = field(default_factory=list)  # [(budget key, units, tokens)]
    cost_units: int = 0
    tokens: int = 0
