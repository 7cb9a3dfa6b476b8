"""Drafts: actions an agent proposed that a person confirms or rejects.

State machine: ``pending → confirmed → executing → executed | failed``, or
``pending → rejected | expired``.  Every transition is one conditional UPDATE
(``WHERE status = <expected>``), so of twenty concurrent confirmations one
wins and the rest get a clear conflict.  The winner enqueues the execution on
commit; the execution claims the draft (``confirmed → executing``), runs the
tool with the draft's id as idempotency key, and records the outcome as the
tool invocation carrying that key in the same transaction that marks the
draft executed.  A redelivered execution (a worker killed mid-task) finds
either that record — the action completed, nothing is repeated — or none,
and runs the action again, up to the redelivery cap.
"""

from __future__ import annotations

import copy
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.roles import role_at_least
from agenthub.errors import ConflictError, ForbiddenError, NotFoundError
from agenthub.loops import run_on_server_loop
from agenthub.requestid import get_request_id
from tools import events, metrics, queueing, signals
from tools.models import Draft, DraftStatus, InvocationStatus, ToolExecution, ToolInvocation
from tools.registry import ToolContext, ToolDefinition
from tools.services.catalog import tool_definition_get
from tools.services.execution import ToolResult, arguments_validate, invocation_record, tool_run

if TYPE_CHECKING:
    from accounts.callers import Caller

logger = logging.getLogger(__name__)

OPEN_STATUSES = (DraftStatus.PENDING, DraftStatus.CONFIRMED, DraftStatus.EXECUTING)
RESULT_EVENT_CHARS = 2000


def operators_group(organization_id: str) -> str:
    return f"operators.{organization_id}"


def draft_payload(draft: Draft) -> dict:
    """A draft as events and the API show it."""
    return {
        "id": str(draft.pk),
        "tool": draft.tool,
        "status": draft.status,
        "summary": draft.summary,
        "arguments": draft.arguments,
        "edited_arguments": draft.edited_arguments,
        "conversation_id": str(draft.conversation_id) if draft.conversation_id else None,
        "agent_id": str(draft.agent_id) if draft.agent_id else None,
        "approver_role": draft.approver_role,
        "expires_at": draft.expires_at.isoformat() if draft.expires_at else None,
        "decided_by": str(draft.decided_by_id) if draft.decided_by_id else None,
        "decision_note": draft.decision_note,
        "result": draft.result[:RESULT_EVENT_CHARS],
        "error": draft.error,
    }


def draft_summary(definition: ToolDefinition, arguments: dict) -> str:
    parts = ", ".join(f"{k}={_short(v)}" for k, v in list(arguments.items())[:6])
    return f"{definition.name}({parts})"[:500]


def _short(value) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


# --- events ---------------------------------------------------------------------------


def draft_events_publish(draft: Draft, event_type: str) -> None:
    """``draft.updated`` to the organization's operators and, through
    :data:`tools.signals.draft_changed`, to the draft's subject."""
    payload = draft_payload(draft)
    try:
        run_on_server_loop(_operators_send, str(draft.organization_id), event_type, payload)
    except Exception:
        logger.exception("could not notify operators of draft %s", draft.pk)
    signals.draft_changed.send(sender=Draft, draft=draft, event_type=event_type, payload=payload)


async def _operators_send(organization_id: str, event_type: str, payload: dict) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(
            operators_group(organization_id), {"type": "operator.event", "event": event_type, "draft": payload}
        )


async def operators_notify(organization_id: str, event_type: str, payload: dict) -> None:
    """From async code (the turn)."""
    try:
        await _operators_send(organization_id, event_type, payload)
    except Exception:
        logger.exception("could not notify operators (%s)", event_type)


# --- creation (by the turn) ---------------------------------------------------------------


def draft_create(
    *,
    definition: ToolDefinition,
    arguments: dict,
    context: ToolContext,
    call_id: str,
    invocation_id: str,
) -> Draft:
    """A pending draft for a call that needs approval, and its invocation row."""
    with transaction.atomic():
        draft = Draft.objects.create(
            organization_id=context.organization_id,
            conversation_id=context.conversation_id,
            agent_id=context.agent_id,
            tool=definition.name,
            call_id=call_id[:100],
            summary=draft_summary(definition, arguments),
            arguments=arguments,
            requested_by_id=context.user_id,
            requested_by_api_key_id=context.api_key_id,
            requested_role=context.role or "",
            approver_role=definition.approver_role,
            allow_self_approval=definition.allow_self_approval,
            expires_at=timezone.now() + timedelta(seconds=settings.DRAFT_TTL_SECONDS),
            request_id=context.request_id or "",
        )
        invocation_record(
            invocation_id=invocation_id,
            definition_name=definition.name,
            context=context,
            arguments=arguments,
            result=ToolResult(InvocationStatus.DRAFTED, text=f"draft {draft.pk} awaits approval"),
            execution=definition.execution,
            call_id=call_id,
            draft_id=str(draft.pk),
        )
    return draft


# --- decisions ----------------------------------------------------------------------------------


def draft_get_for(*, caller: Caller, draft_id) -> Draft:
    """The caller's organization's draft, or 404 (another organization's too)."""
    try:
        uuid.UUID(str(draft_id))
    except ValueError:
        raise NotFoundError("No draft with this id.", code="draft_not_found") from None
    draft = Draft.objects.filter(pk=draft_id, organization_id=caller.organization_id).first()
    if draft is None:
        raise NotFoundError("No draft with this id.", code="draft_not_found")
    return draft


def _require_decider(caller: Caller, draft: Draft) -> None:
    if not role_at_least(caller.role, draft.approver_role):
        raise ForbiddenError(
            f"Deciding this draft needs the {draft.approver_role} role or above; you are {caller.role}.",
            code="draft_forbidden",
        )
    if not draft.allow_self_approval:
        own = (caller.user_id is not None and str(draft.requested_by_id) == caller.user_id) or (
            caller.api_key_id is not None and str(draft.requested_by_api_key_id) == caller.api_key_id
        )
        if own:
            raise ForbiddenError(
                "This tool's drafts must be decided by someone other than the person who asked for them.",
                code="self_approval_forbidden",
            )


def _not_pending_error(draft_id) -> ConflictError:
    current = Draft.objects.filter(pk=draft_id).values_list("status", flat=True).first()
    if current == DraftStatus.PENDING:  # pending but past its expiry
        _expire_one(draft_id)
        current = DraftStatus.EXPIRED
    return ConflictError(
        f"This draft is {current}; only a pending draft can be decided.",
        code="draft_not_pending",
        details={"status": current},
    )


def draft_confirm(*, caller: Caller, draft_id, edited_arguments: dict | None = None, note: str = "") -> Draft:
    """Confirms a pending draft (optionally with edited arguments, checked
    against the tool's schema again) and enqueues its execution once."""
    draft = draft_get_for(caller=caller, draft_id=draft_id)
    _require_decider(caller, draft)
    if edited_arguments is not None:
        definition = tool_definition_get(str(draft.organization_id), draft.tool)
        if definition is None:
            raise ConflictError(f"The tool '{draft.tool}' no longer exists.", code="tool_not_found")
        edited_arguments = arguments_validate(definition, edited_arguments)
    now = timezone.now()
    with transaction.atomic():
        won = Draft.objects.filter(pk=draft.pk, status=DraftStatus.PENDING, expires_at__gt=now).update(
            status=DraftStatus.CONFIRMED,
            decided_by_id=caller.user_id,
            decided_by_api_key_id=caller.api_key_id,
            decided_at=now,
            decision_note=(note or "")[:1000],
            edited_arguments=edited_arguments,
            updated_at=now,
        )
        if won:
            draft.refresh_from_db()
            confirmed = copy.copy(draft)
            # After commit, in this order: announce the confirmation, then
            # enqueue the execution (which may run at once with eager Celery).
            transaction.on_commit(lambda: draft_events_publish(confirmed, events.DRAFT_UPDATED))
            transaction.on_commit(lambda: queueing.task(queueing.DRAFT_EXECUTE).delay(str(confirmed.pk)))
    if not won:
        # Outside the transaction: the expiry it may record must stay.
        raise _not_pending_error(draft.pk)
    metrics.draft_decisions.labels(tool=metrics.tool_label(draft.tool), outcome="confirmed").inc()
    draft.refresh_from_db()
    return draft


def draft_reject(*, caller: Caller, draft_id, note: str = "") -> Draft:
    draft = draft_get_for(caller=caller, draft_id=draft_id)
    _require_decider(caller, draft)
    now = timezone.now()
    won = Draft.objects.filter(pk=draft.pk, status=DraftStatus.PENDING, expires_at__gt=now).update(
        status=DraftStatus.REJECTED,
        decided_by_id=caller.user_id,
        decided_by_api_key_id=caller.api_key_id,
        decided_at=now,
        decision_note=(note or "")[:1000],
        updated_at=now,
    )
    if not won:
        raise _not_pending_error(draft.pk)
    draft.refresh_from_db()
    metrics.draft_decisions.labels(tool=metrics.tool_label(draft.tool), outcome="rejected").inc()
    _post_outcome_message(draft, f"The person reviewing it rejected the draft{_note(draft)}. It was not run.")
    draft_events_publish(draft, events.DRAFT_UPDATED)
    return draft


def draft_decide(*, caller: Caller, draft_id, decision: str, note: str = "", edited_arguments=None) -> Draft:
    if decision == "confirm":
        return draft_confirm(caller=caller, draft_id=draft_id, note=note, edited_arguments=edited_arguments)
    if decision == "reject":
        return draft_reject(caller=caller, draft_id=draft_id, note=note)
    raise ConflictError('decision must be "confirm" or "reject".', code="invalid_decision", status_code=400)


def draft_decide_in_conversation(
    *, caller: Caller, conversation_id: str, draft_id, decision: str, note: str = "", edited_arguments=None
) -> Draft:
    """A decision from the chat: only drafts of this conversation."""
    draft = draft_get_for(caller=caller, draft_id=draft_id)
    if str(draft.conversation_id) != str(conversation_id):
        raise NotFoundError("No draft with this id in this conversation.", code="draft_not_found")
    return draft_decide(
        caller=caller, draft_id=draft.pk, decision=decision, note=note, edited_arguments=edited_arguments
    )


def drafts_pending_payloads(organization_id: str, limit: int = 50) -> list[dict]:
    drafts = Draft.objects.filter(organization_id=organization_id, status=DraftStatus.PENDING).order_by("created_at")
    return [draft_payload(draft) for draft in drafts[:limit]]


def _note(draft: Draft) -> str:
    return f' (note: "{draft.decision_note}")' if draft.decision_note else ""


# --- expiry ---------------------------------------------------------------------------------------


def _expire_one(draft_id) -> bool:
    now = timezone.now()
    won = Draft.objects.filter(pk=draft_id, status=DraftStatus.PENDING, expires_at__lte=now).update(
        status=DraftStatus.EXPIRED, updated_at=now
    )
    if won:
        draft = Draft.objects.get(pk=draft_id)
        metrics.draft_decisions.labels(tool=metrics.tool_label(draft.tool), outcome="expired").inc()
        _post_outcome_message(draft, "Nobody decided the draft in time; it expired and was not run.")
        draft_events_publish(draft, events.DRAFT_UPDATED)
    return bool(won)


def drafts_expire(*, limit: int = 500) -> int:
    """Expires pending drafts past their expiry (Celery beat, every minute)."""
    due = list(
        Draft.objects.filter(status=DraftStatus.PENDING, expires_at__lte=timezone.now()).values_list("pk", flat=True)[
            :limit
        ]
    )
    return sum(1 for draft_id in due if _expire_one(draft_id))


# --- execution (Celery, tools queue) -----------------------------------------------------------


def _claim(draft_id) -> Draft | None:
    """Moves the draft to executing for this delivery, or says why not."""
    now = timezone.now()
    if Draft.objects.filter(pk=draft_id, status=DraftStatus.CONFIRMED).update(
        status=DraftStatus.EXECUTING, attempts=F("attempts") + 1, updated_at=now
    ):
        return Draft.objects.get(pk=draft_id)
    draft = Draft.objects.filter(pk=draft_id).first()
    if draft is None or draft.status != DraftStatus.EXECUTING:
        return None  # executed, failed, or never confirmed: nothing to do
    # An earlier delivery died while executing (the task is redelivered).
    if draft.attempts >= settings.CELERY_TASK_MAX_DELIVERIES:
        _finish(draft, ToolResult(InvocationStatus.ERROR, error=f"Gave up after {draft.attempts} attempts."), None)
        return None
    if not Draft.objects.filter(pk=draft_id, status=DraftStatus.EXECUTING, attempts=draft.attempts).update(
        attempts=F("attempts") + 1, updated_at=now
    ):
        return None  # another delivery took it meanwhile
    draft.refresh_from_db()
    return draft


def draft_execute(*, draft_id) -> str:
    """Runs a confirmed draft's action once; safe to call again for the same
    draft (a redelivered task).  Returns the draft's final status."""
    draft = _claim(draft_id)
    if draft is None:
        return Draft.objects.filter(pk=draft_id).values_list("status", flat=True).first() or "missing"
    key = str(draft.pk)
    done = ToolInvocation.objects.filter(idempotency_key=key).first()
    if done is not None:
        # The action completed on an earlier delivery; only the draft's
        # bookkeeping is left.
        result = ToolResult(done.status, done.result, done.result_truncated, done.error, done.duration_ms or 0)
        _finish(draft, result, None)
        return draft.status
    definition = tool_definition_get(str(draft.organization_id), draft.tool)
    context = ToolContext(
        organization_id=str(draft.organization_id),
        role=draft.requested_role,
        conversation_id=str(draft.conversation_id) if draft.conversation_id else None,
        agent_id=str(draft.agent_id) if draft.agent_id else None,
        user_id=str(draft.requested_by_id) if draft.requested_by_id else None,
        api_key_id=str(draft.requested_by_api_key_id) if draft.requested_by_api_key_id else None,
        request_id=get_request_id() or draft.request_id,
        idempotency_key=key,
        draft_id=key,
    )
    if definition is None:
        result = ToolResult(InvocationStatus.ERROR, error=f"The tool '{draft.tool}' no longer exists.")
    else:
        result = tool_run(definition, draft.effective_arguments, context)
    _finish(draft, result, context)
    return draft.status


def _finish(draft: Draft, result: ToolResult, context: ToolContext | None) -> None:
    final = DraftStatus.EXECUTED if result.status == InvocationStatus.OK else DraftStatus.FAILED
    now = timezone.now()
    with transaction.atomic():
        if context is not None:
            try:
                with transaction.atomic():
                    invocation_record(
                        invocation_id=_invocation_id(draft),
                        definition_name=draft.tool,
                        context=context,
                        arguments=draft.effective_arguments,
                        result=result,
                        execution=ToolExecution.CELERY,
                        call_id=draft.call_id,
                        draft_id=str(draft.pk),
                        idempotency_key=str(draft.pk),
                    )
            except IntegrityError:
                return  # another delivery recorded the outcome first
        won = Draft.objects.filter(pk=draft.pk, status=DraftStatus.EXECUTING).update(
            status=final,
            result=result.text if result.status == InvocationStatus.OK else "",
            error=result.error,
            executed_at=now,
            updated_at=now,
        )
    if not won:
        return
    draft.refresh_from_db()
    metrics.draft_decisions.labels(tool=metrics.tool_label(draft.tool), outcome=final).inc()
    if final == DraftStatus.EXECUTED:
        text = f"The draft was confirmed{_by(draft)} and executed. Result: {result.for_model()[:4000]}"
    else:
        text = f"The draft was confirmed{_by(draft)} but failed: {result.error}"
    _post_outcome_message(draft, text)
    draft_events_publish(draft, events.DRAFT_UPDATED)


def _invocation_id(draft: Draft) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agenthub:draft:{draft.pk}"))


def _by(draft: Draft) -> str:
    return f" by {draft.decided_by.get_username()}" if draft.decided_by_id else ""


def _post_outcome_message(draft: Draft, text: str) -> None:
    """What came of the draft, for its subject (a note in the conversation
    that the agent sees on its next turn)."""
    signals.draft_outcome.send(sender=Draft, draft=draft, text=text)
