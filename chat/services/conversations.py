"""Conversations: who may chat, opening one (an existing one the caller may
see, or a new one), and deleting one."""

import uuid
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from accounts.callers import Caller, row_visible_to
from accounts.roles import Role
from agenthub.db import db
from agenthub.errors import ForbiddenError, NotFoundError
from chat.models import Conversation, ConversationStatus
from chat.runtime.context import AgentSnapshot
from chat.runtime.hub import get_hub

CHAT_ROLE = Role.MEMBER


def caller_require_chat(caller: Caller) -> None:
    if not caller.has_role(CHAT_ROLE):
        raise ForbiddenError("Your role does not allow chatting with agents (member or above is needed).")


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    last_seq: int
    created: bool


def _conversation_open(
    caller: Caller, agent: AgentSnapshot, conversation_id: str | None, channel: str, metadata: dict
) -> ConversationInfo:
    if conversation_id:
        try:
            uuid.UUID(str(conversation_id))
        except ValueError:
            raise NotFoundError("No conversation with this id.", code="session_not_found") from None
        row = (
            Conversation.objects.filter(pk=conversation_id, organization_id=caller.organization_id)
            .values("id", "agent_id", "user_id", "api_key_id", "visitor_id", "last_seq", "status")
            .first()
        )
        visible = row is not None and row_visible_to(
            caller, user_id=row["user_id"], api_key_id=row["api_key_id"], visitor_id=row["visitor_id"]
        )
        # A deleted (closed) conversation is gone for its users; it stays in
        # the database for audit.
        if not visible or row["status"] == ConversationStatus.CLOSED:
            raise NotFoundError("No conversation with this id.", code="session_not_found")
        if str(row["agent_id"]) != agent.agent_id:
            raise NotFoundError("No conversation with this id for this agent.", code="session_not_found")
        return ConversationInfo(str(row["id"]), row["last_seq"], created=False)
    conversation = Conversation.objects.create(
        organization_id=caller.organization_id,
        agent_id=agent.agent_id,
        version_id=agent.version_id,
        user_id=caller.user_id,
        api_key_id=caller.api_key_id,
        visitor_id=caller.visitor_id,
        channel=channel,
        metadata=metadata or {},
    )
    return ConversationInfo(str(conversation.pk), 0, created=True)


async def conversation_open(
    *, caller: Caller, agent: AgentSnapshot, conversation_id: str | None, channel: str, metadata: dict | None = None
) -> ConversationInfo:
    """An existing conversation the caller may use, or a new one."""
    caller_require_chat(caller)
    return await db(_conversation_open, caller, agent, conversation_id, channel, metadata or {})


async def _conversation_forget(conversation_id: str) -> None:
    hub = get_hub()
    await hub.request_cancel(conversation_id)
    await hub.store.drop_conversation(conversation_id)


def conversation_delete(*, conversation_id: str) -> None:
    """Closes the conversation (messages stay for audit and billing), stops
    its running turn and drops its cached history and replay log.  Sync:
    called from sync views; its async part touches only Redis."""
    Conversation.objects.filter(pk=conversation_id).update(status=ConversationStatus.CLOSED)
    async_to_sync(_conversation_forget)(conversation_id)
