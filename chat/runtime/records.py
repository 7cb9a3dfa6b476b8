"""What a turn leaves in the database: its outcome, the rows of its
messages, and how they are written: in one transaction after the turn
(:func:`persist_outcome`), or for a private turn with its new conversation
through the write-behind journal (:func:`exchange_journal`, applied in
batches by :func:`exchanges_apply`)."""

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from agenthub import journal
from billing.calls import Charge
from billing.money import money_str
from chat.models import Conversation, Message, MessageRole, MessageStatus
from integrations.llm.types import ChatMessage


@dataclass
class TurnOutcome:
    status: str = MessageStatus.COMPLETE
    text: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    model: str = ""
    error: dict | None = None
    tool_messages: list[ChatMessage] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)  # what each call came to
    drafts: list[dict] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    currency: str = ""

    @property
    def content(self) -> str:
        return "".join(self.text)

    def charge(self, charge: Charge | None) -> None:
        if charge is not None:
            self.cost += charge.amount
            self.currency = charge.currency

    def usage(self) -> dict:
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.currency:  # what the turn cost, when a meter charged it
            usage["cost"] = money_str(self.cost)
            usage["currency"] = self.currency
        return usage


def message_rows(
    *,
    organization_id: str,
    conversation_id: str,
    message_id: str,
    reply_to_id: str,
    outcome: TurnOutcome,
    latency_ms: float,
    channel_model: str,
) -> list[dict]:
    """The rows of a turn's tool exchanges and answer, as ``Message`` fields."""
    base = {"organization_id": organization_id, "conversation_id": conversation_id, "reply_to_id": reply_to_id}
    rows = [
        {
            **base,
            "id": str(uuid.uuid4()),
            "role": tool_message.role,
            "content": tool_message.content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in tool_message.tool_calls],
            "tool_call_id": tool_message.tool_call_id or "",
            "status": MessageStatus.COMPLETE,
        }
        for tool_message in outcome.tool_messages
    ]
    rows.append(
        {
            **base,
            "id": message_id,
            "role": MessageRole.ASSISTANT,
            "content": outcome.content,
            "model": outcome.model or channel_model,
            "tokens_in": outcome.prompt_tokens,
            "tokens_out": outcome.completion_tokens,
            "ttft_ms": outcome.ttft_ms,
            "latency_ms": latency_ms,
            "status": outcome.status,
            "error": outcome.error or {},
        }
    )
    return rows


def persist_outcome(*, conversation_id: str, rows: list[dict], last_seq: int, version_id: str) -> None:
    """Writes a turn's rows (:func:`message_rows`) and where its
    conversation's events stand, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        for row in rows:
            Message.objects.create(**row)
        Conversation.objects.filter(pk=conversation_id).update(last_seq=last_seq, version_id=version_id, updated_at=now)


@dataclass(frozen=True)
class NewConversation:
    """A conversation written after its turn, with the user's message
    (write-behind: :func:`chat.services.turns.turn_start_private`)."""

    row: dict  # Conversation fields
    user_message: dict  # Message fields


JOURNAL_KIND = "chat.exchange"


def conversation_write(new: NewConversation) -> None:
    """Writes a new conversation and its user's message now (a turn whose
    tool calls and drafts will point at the conversation while it runs)."""
    with transaction.atomic():
        Conversation.objects.create(**new.row)
        Message.objects.create(**new.user_message)


async def exchange_journal(new: NewConversation, rows: list[dict], last_seq: int) -> None:
    """The new conversation, the user's message and the turn's rows, in one
    journal entry (written to the database in a batch, soon after)."""
    await journal.append(
        JOURNAL_KIND,
        {"conversation": {**new.row, "last_seq": last_seq}, "messages": [new.user_message, *rows]},
    )


def exchanges_apply(payloads: list[dict]) -> None:
    """The journal's applier for :data:`JOURNAL_KIND` (idempotent: rows
    carry their ids)."""
    Conversation.objects.bulk_create([Conversation(**p["conversation"]) for p in payloads], ignore_conflicts=True)
    Message.objects.bulk_create([Message(**row) for p in payloads for row in p["messages"]], ignore_conflicts=True)
