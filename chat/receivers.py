"""Drafts proposed in a conversation report back to it (receivers of
:mod:`tools.signals`): their decisions and outcomes reach the conversation's
stream, and the outcome becomes a note the agent reads on its next turn."""

from django.dispatch import receiver

from chat.models import Message, MessageRole
from chat.runtime.outbox import conversation_event_post_sync, conversation_history_forget_sync
from tools.signals import draft_changed, draft_outcome


@receiver(draft_changed, dispatch_uid="chat-draft-changed")
def draft_changed_to_conversation(sender, draft, event_type: str, payload: dict, **kwargs) -> None:
    if draft.conversation_id:
        conversation_event_post_sync(str(draft.conversation_id), event_type, {"draft": payload})


@receiver(draft_outcome, dispatch_uid="chat-draft-outcome")
def draft_outcome_to_conversation(sender, draft, text: str, **kwargs) -> None:
    if not draft.conversation_id:
        return
    Message.objects.create(
        organization_id=draft.organization_id,
        conversation_id=draft.conversation_id,
        role=MessageRole.SYSTEM,
        content=f"[draft {draft.pk} · {draft.tool}] {text}",
    )
    conversation_history_forget_sync(str(draft.conversation_id))
