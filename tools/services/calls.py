"""The one place a tool call is decided: the service a chat turn uses, and a
workflow step will use, to run what a model asked for.

For each call: the tool must be granted and the caller's role must allow it
(or it is refused and the model is told so); the arguments must match the
tool's JSON schema (or the model is told what is wrong); a tool that needs
approval becomes a pending draft; anything else runs inline, in a thread of
the caller's process, or on the Celery ``tools`` queue, bounded by the
tool's timeout.  Every outcome is logged as a tool invocation.

The service needs no conversation: what it knows of the caller is a
:class:`~tools.registry.ToolContext` (whose ``conversation_id`` may be
empty), and it reports progress through a ``report(event_type, **fields)``
callback that the chat runtime turns into stream events.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from agenthub.db import db
from integrations.llm.types import ToolCall, ToolSpec
from tools import events, queueing
from tools.models import InvocationStatus
from tools.registry import CELERY, INLINE, ToolContext, ToolDefinition
from tools.services.catalog import tools_granted, tools_offered
from tools.services.drafts import draft_create, draft_payload, operators_notify
from tools.services.execution import (
    InvalidArguments,
    ToolResult,
    arguments_validate,
    invocation_record,
    invocation_record_if_absent,
    tool_run,
)

logger = logging.getLogger(__name__)

TOOL_EVENT_RESULT_CHARS = 2000  # a tool result in a report; the model and the log get more
WORKER_GRACE_SECONDS = 2.0  # waiting for a Celery tool: its timeout plus time to reach a worker

Report = Callable[..., None]  # report(event_type, **fields)


@dataclass
class CallOutcome:
    """What came of one call: what the model is told, a summary for the
    caller's record, and the draft when one was created."""

    content: str
    summary: dict = field(default_factory=dict)
    draft: dict | None = None


class ToolSession:
    """The tools one caller may use in one run (a chat turn, later a workflow
    step): the granted tools with the grants' overrides, and those the
    caller's role may use, which are all the model is offered."""

    def __init__(self, granted: dict[str, ToolDefinition], role: str | None):
        self.granted = granted
        self.offered = tools_offered(granted, role)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(definition.spec() for definition in self.offered.values())

    async def call(self, call: ToolCall, context: ToolContext, report: Report) -> CallOutcome:
        """One call of the model: refused, invalid, drafted or run."""
        invocation_id = str(uuid.uuid4())
        summary = {"id": call.id, "tool": call.name, "invocation_id": invocation_id}
        definition = self.offered.get(call.name)
        if definition is None:
            return await self._refuse(call, context, invocation_id, summary, report)
        try:
            arguments = arguments_validate(definition, call.arguments)
        except InvalidArguments as exc:
            await _record(
                invocation_id,
                call,
                context,
                _raw_arguments(call.arguments),
                ToolResult(InvocationStatus.INVALID, error=exc.message),
            )
            report(
                events.TOOL_FINISHED,
                tool=call.name,
                call_id=call.id,
                status=InvocationStatus.INVALID,
                error=exc.message,
            )
            summary.update(status=InvocationStatus.INVALID, error=exc.message)
            return CallOutcome(
                json.dumps({"error": exc.message, "hint": "Fix the arguments and call the tool again."}), summary
            )
        summary["arguments"] = arguments
        if definition.requires_approval:
            return await _draft(definition, arguments, call, context, invocation_id, summary, report)
        timing: dict = {}  # a worker's round trip, for tool.finished
        if definition.execution == CELERY and not settings.CELERY_TASK_ALWAYS_EAGER:
            result = await _run_on_worker(definition, arguments, call, context, invocation_id, report, timing)
        else:
            report(events.TOOL_STARTED, tool=call.name, call_id=call.id, execution=definition.execution)
            result = await _run_here(definition, arguments, call, context, invocation_id)
        report(
            events.TOOL_FINISHED,
            tool=call.name,
            call_id=call.id,
            status=result.status,
            result=result.text[:TOOL_EVENT_RESULT_CHARS],
            truncated=result.truncated or len(result.text) > TOOL_EVENT_RESULT_CHARS,
            error=result.error,
            duration_ms=result.duration_ms,
            **timing,
        )
        summary.update(status=result.status, error=result.error, duration_ms=result.duration_ms)
        return CallOutcome(result.for_model(), summary)

    async def _refuse(self, call, context, invocation_id, summary, report) -> CallOutcome:
        granted = self.granted
        reason = f"it needs the {granted[call.name].min_role} role" if call.name in granted else "it is not granted"
        logger.warning(
            "refused tool call %s for agent %s, role %s: %s", call.name, context.agent_id, context.role, reason
        )
        refusal = f"The tool '{call.name}' is not available to you; answer without it."
        await _record(
            invocation_id,
            call,
            context,
            {"raw": call.arguments[:2000]},
            ToolResult(InvocationStatus.REFUSED, error=f"{refusal} ({reason})"),
        )
        report(events.TOOL_FINISHED, tool=call.name, call_id=call.id, status=InvocationStatus.REFUSED, error=refusal)
        summary.update(status=InvocationStatus.REFUSED, error=refusal)
        return CallOutcome(json.dumps({"error": refusal}), summary)


async def tool_session_open(organization_id: str, grants, role: str | None) -> ToolSession:
    """The session for a caller with ``role`` under ``grants`` (a published
    version's grants; a workflow's later)."""
    granted = await db(tools_granted, organization_id, grants) if grants else {}
    return ToolSession(granted, role)


async def _record(invocation_id, call, context, arguments, result, execution=INLINE) -> None:
    with contextlib.suppress(Exception):
        await db(
            invocation_record,
            invocation_id=invocation_id,
            definition_name=call.name[:64],
            context=context,
            arguments=arguments,
            result=result,
            execution=execution,
            call_id=call.id,
        )


async def _draft(definition, arguments, call, context, invocation_id, summary, report) -> CallOutcome:
    draft = await db(
        draft_create,
        definition=definition,
        arguments=arguments,
        context=context,
        call_id=call.id,
        invocation_id=invocation_id,
    )
    payload = draft_payload(draft)
    report(events.DRAFT_CREATED, draft=payload)
    await operators_notify(context.organization_id, events.DRAFT_CREATED, payload)
    report(
        events.TOOL_FINISHED, tool=call.name, call_id=call.id, status=InvocationStatus.DRAFTED, draft_id=payload["id"]
    )
    summary.update(status=InvocationStatus.DRAFTED, draft_id=payload["id"])
    content = json.dumps(
        {
            "status": "awaiting_approval",
            "draft_id": payload["id"],
            "message": "This action was NOT performed yet: it is a draft that a person must confirm. "
            "Tell the user it awaits confirmation.",
        }
    )
    return CallOutcome(content, summary, payload)


async def _run_here(definition, arguments, call, context, invocation_id) -> ToolResult:
    try:
        result = await asyncio.wait_for(db(tool_run, definition, arguments, context), definition.timeout_seconds)
    except TimeoutError:
        result = ToolResult(
            InvocationStatus.TIMEOUT,
            error=f"The tool did not finish within {definition.timeout_seconds:g} s.",
            duration_ms=definition.timeout_seconds * 1000,
        )
    await _record(invocation_id, call, context, arguments, result, definition.execution)
    return result


async def _run_on_worker(definition, arguments, call, context, invocation_id, report, timing) -> ToolResult:
    """Enqueues the call on the tools queue and waits (bounded by the tool's
    timeout) for the worker's reports on a channel of its own.  ``timing``
    gets ``round_trip_ms``: enqueue to the worker's result received here."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    reply_to = await layer.new_channel("agenthub.tool.")
    payload = {
        "invocation_id": invocation_id,
        "tool": definition.name,
        "call_id": call.id,
        "arguments": arguments,
        "context": dataclasses.asdict(context),
        "reply_to": reply_to,
        "enqueued_at": time.time(),
    }
    timeout = definition.timeout_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout + WORKER_GRACE_SECONDS
    await asyncio.to_thread(
        queueing.task(queueing.TOOL_EXECUTE).apply_async,
        kwargs={"payload": payload},
        expires=timeout,
        soft_time_limit=timeout,
        time_limit=timeout + 5,
        # What Celery logs for the task: never the arguments (they may be
        # personal data), and no saferepr of the payload on the hot path.
        argsrepr="()",
        kwargsrepr=f"{{'payload': <{definition.name} call {call.id}>}}",
    )
    started = False
    try:
        while True:
            message = await asyncio.wait_for(layer.receive(reply_to), max(deadline - loop.time(), 0.001))
            if message.get("type") == "tool.started" and not started:
                started = True
                queued_ms = (message["started_at"] - payload["enqueued_at"]) * 1000
                report(
                    events.TOOL_STARTED,
                    tool=call.name,
                    call_id=call.id,
                    execution=CELERY,
                    queued_ms=round(max(queued_ms, 0.0), 2),
                )
            elif message.get("type") == "tool.finished":
                timing["round_trip_ms"] = round(max(time.time() - payload["enqueued_at"], 0.0) * 1000, 2)
                return ToolResult(**message["result"])
    except TimeoutError:
        error = (
            f"The tool did not finish within {timeout:g} s."
            if started
            else f"No worker started the tool within {timeout:g} s; try again later."
        )
        result = ToolResult(InvocationStatus.TIMEOUT, error=error, duration_ms=timeout * 1000)
        with contextlib.suppress(Exception):
            await db(
                invocation_record_if_absent,
                invocation_id=invocation_id,
                definition_name=definition.name,
                context=context,
                arguments=arguments,
                result=result,
                execution=CELERY,
                call_id=call.id,
            )
        return result


def _raw_arguments(raw: str) -> dict:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"raw": str(raw)[:2000]}
    return value if isinstance(value, dict) else {"raw": str(raw)[:2000]}
