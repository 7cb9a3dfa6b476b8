"""What the model sees: the agent's system prompt, recent history (from the
Redis cache, falling back to the database) and the new message, trimmed to
the model's context window."""

from dataclasses import dataclass

from django.conf import settings

from agenthub.db import db
from agenthub.errors import ApplicationError
from chat.models import Message, MessageRole, MessageStatus
from integrations.llm.router import model_info
from integrations.llm.types import DEFAULT_CONTEXT_WINDOW, ChatMessage, ToolCall

# A rough, conservative estimate: the model server reports real usage after
# the call; before it, ~4 characters per token plus per-message overhead.
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


@dataclass(frozen=True)
class AgentSnapshot:
    """The published version a turn runs against."""

    organization_id: str
    agent_id: str
    slug: str
    name: str
    version_id: str
    version_number: int
    system_prompt: str
    model: str
    fallback_models: tuple[str, ...]
    temperature: float
    max_output_tokens: int
    max_tool_rounds: int
    tools: tuple[str, ...] = ()
    response_cache: str = "off"


def estimate_tokens(message: ChatMessage) -> int:
    size = len(message.content) + sum(len(c.arguments) + len(c.name) for c in message.tool_calls)
    return size // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def context_window_of(model: str) -> int:
    info = model_info(model)
    return info.context_window if info else DEFAULT_CONTEXT_WINDOW


def check_prompt_fits(agent: AgentSnapshot, messages: list[ChatMessage]) -> None:
    """Refuses, before anything is stored or sent, messages that cannot fit
    the agent's model: with the agent's system prompt and the tokens kept
    for the answer they must stay within its context window (estimated as
    :func:`fit_to_window` does).  Earlier history a server keeps is trimmed
    to fit; messages a client sends are the prompt it asked for, so they are
    refused whole (as OpenAI does), not cut."""
    window = context_window_of(agent.model)
    system = estimate_tokens(ChatMessage("system", agent.system_prompt)) if agent.system_prompt else 0
    reserve = agent.max_output_tokens
    allowed = window - reserve - system
    tokens = sum(estimate_tokens(m) for m in messages)
    if tokens <= allowed:
        return
    chars = sum(len(m.content) for m in messages)
    subject = "The messages total" if len(messages) > 1 else "The message is"
    raise ApplicationError(
        f"{subject} {chars} characters (about {tokens} tokens); the model {agent.model} accepts at most "
        f"{window} tokens, of which {reserve} are kept for the answer and {system} hold the agent's instructions, "
        f"leaving {max(allowed, 0)} tokens (about {max(allowed, 0) * CHARS_PER_TOKEN} characters). "
        "Send fewer or shorter messages.",
        code="context_length_exceeded",
        details={
            "param": "messages",
            "total_chars": chars,
            "estimated_tokens": tokens,
            "limit_tokens": max(allowed, 0),
            "context_window_tokens": window,
            "model": agent.model,
        },
    )


def history_entry(message: ChatMessage) -> dict:
    entry = {"role": message.role, "content": message.content}
    if message.tool_calls:
        entry["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    if message.tool_call_id:
        entry["tool_call_id"] = message.tool_call_id
    return entry


def from_history_entry(entry: dict) -> ChatMessage:
    return ChatMessage(
        role=entry["role"],
        content=entry.get("content") or "",
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in entry.get("tool_calls") or ()),
        tool_call_id=entry.get("tool_call_id"),
    )


def _history_from_database(conversation_id: str, exclude_message_id: str | None) -> list[dict]:
    limit = settings.CHAT_HISTORY_MAX_MESSAGES
    rows = (
        Message.objects.filter(conversation_id=conversation_id)
        .exclude(pk=exclude_message_id)
        .exclude(status=MessageStatus.ERROR, content="")
        .order_by("-created_at")
        .values("role", "content", "tool_calls", "tool_call_id")[:limit]
    )
    history = []
    for row in reversed(list(rows)):
        entry = {"role": row["role"], "content": row["content"]}
        if row["tool_calls"]:
            entry["tool_calls"] = row["tool_calls"]
        if row["tool_call_id"]:
            entry["tool_call_id"] = row["tool_call_id"]
        history.append(entry)
    return _drop_orphan_tool_messages(history)


def _drop_orphan_tool_messages(history: list[dict]) -> list[dict]:
    """A window may start in the middle of a tool exchange; models refuse
    tool results without the call that asked for them."""
    while history and history[0]["role"] == MessageRole.TOOL:
        history.pop(0)
    return history


async def load_history(store, conversation_id: str, exclude_message_id: str | None) -> list[dict]:
    history = await store.get_history(conversation_id)
    if history is None:
        history = await db(_history_from_database, conversation_id, exclude_message_id)
        await store.set_history(conversation_id, history)
    return history


def trim_history(history: list[dict]) -> list[dict]:
    return _drop_orphan_tool_messages(list(history[-settings.CHAT_HISTORY_MAX_MESSAGES :]))


def fit_to_window(
    system: ChatMessage | None, history: list[ChatMessage], current: list[ChatMessage], window: int, reserve: int
) -> list[ChatMessage]:
    """Drops the oldest history until the prompt fits ``window`` tokens with
    ``reserve`` left for the answer.  The system prompt and the current
    message are always kept."""
    budget = window - reserve - sum(estimate_tokens(m) for m in current)
    if system is not None:
        budget -= estimate_tokens(system)
    kept: list[ChatMessage] = []
    for message in reversed(history):
        cost = estimate_tokens(message)
        if cost > budget:
            break
        kept.append(message)
        budget -= cost
    kept.reverse()
    while kept and kept[0].role == MessageRole.TOOL:
        kept.pop(0)
    return ([system] if system is not None else []) + kept + current
