"""Running one tool: argument validation against its schema, execution with
a result limit, and the invocation log."""

import json
import logging
import time
from dataclasses import dataclass

from django.db import transaction
from jsonschema import Draft202012Validator

from agenthub.errors import ApplicationError
from tools import metrics
from tools.models import InvocationStatus, ToolInvocation
from tools.registry import ToolContext, ToolDefinition, ToolFailed
from tools.services.catalog import tool_definition_get

logger = logging.getLogger(__name__)


# --- arguments ----------------------------------------------------------------------------


class InvalidArguments(ApplicationError):
    status_code = 400
    code = "invalid_arguments"


def arguments_parse(raw) -> dict:
    """The model's argument text (or an already parsed object) as a dict."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise InvalidArguments("The arguments are not valid JSON.", details={"errors": ["not JSON"]}) from None
    if not isinstance(value, dict):
        raise InvalidArguments("The arguments must be a JSON object.", details={"errors": ["not an object"]})
    return value


def arguments_validate(definition: ToolDefinition, raw) -> dict:
    """Parsed and checked against the tool's JSON schema, before anything runs."""
    arguments = arguments_parse(raw)
    validator = Draft202012Validator(definition.parameters, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if problems:
        errors = [f"{'/'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message}" for e in problems[:10]]
        raise InvalidArguments(
            f"The arguments for '{definition.name}' do not match its schema: {'; '.join(errors)}",
            details={"errors": errors},
        )
    return arguments


# --- execution -------------------------------------------------------------------------------


@dataclass
class ToolResult:
    status: str  # InvocationStatus value
    text: str = ""
    truncated: bool = False
    error: str = ""
    duration_ms: float = 0.0

    def for_model(self) -> str:
        if self.status == InvocationStatus.OK:
            return self.text + ("\n[result truncated]" if self.truncated else "")
        return json.dumps({"error": self.error})

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "text": self.text,
            "truncated": self.truncated,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


def result_text(value, limit: int) -> tuple[str, bool]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        return text[:limit], True
    return text, False


def tool_run(definition: ToolDefinition, arguments: dict, context: ToolContext) -> ToolResult:
    """Runs the tool's handler here (a thread of the turn, or a worker) and
    reports the outcome; it never raises."""
    started = time.perf_counter()
    try:
        value = definition.handler(arguments, context)
        text, truncated = result_text(value, definition.max_result_chars)
        result = ToolResult(InvocationStatus.OK, text, truncated)
    except ToolFailed as exc:
        result = ToolResult(InvocationStatus.ERROR, error=str(exc))
    except Exception:
        logger.exception("tool %s failed", definition.name)
        result = ToolResult(InvocationStatus.ERROR, error=f"The tool '{definition.name}' failed unexpectedly.")
    result.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    return result


def invocation_record(
    *,
    invocation_id: str,
    definition_name: str,
    context: ToolContext,
    arguments: dict,
    result: ToolResult,
    execution: str,
    call_id: str = "",
    draft_id: str | None = None,
    idempotency_key: str | None = None,
) -> ToolInvocation:
    """Writes (or overwrites: a late worker result replaces the turn's
    'timeout') the invocation's row, and counts it."""
    fields = {
        "organization_id": context.organization_id,
        "tool": definition_name,
        "call_id": call_id[:100],
        "agent_id": context.agent_id,
        "conversation_id": context.conversation_id,
        "draft_id": draft_id,
        "user_id": context.user_id,
        "api_key_id": context.api_key_id,
        "role": context.role or "",
        "arguments": arguments if isinstance(arguments, dict) else {"raw": str(arguments)[:2000]},
        "result": result.text,
        "result_truncated": result.truncated,
        "status": result.status,
        "error": result.error[:4000],
        "execution": execution,
        "duration_ms": result.duration_ms or None,
        "request_id": context.request_id or "",
        "idempotency_key": idempotency_key,
    }
    # One INSERT … ON CONFLICT (id) DO UPDATE, not update_or_create's
    # select-then-write in a savepoint: this is on the tool's hot path.
    (invocation,) = ToolInvocation.objects.bulk_create(
        [ToolInvocation(id=invocation_id, **fields)],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=list(fields),
    )
    metrics.tool_executions.labels(
        tool=metrics.tool_label(definition_name), execution=execution, status=result.status
    ).inc()
    if result.status in (InvocationStatus.OK, InvocationStatus.ERROR, InvocationStatus.TIMEOUT):
        metrics.tool_duration.labels(tool=metrics.tool_label(definition_name), execution=execution).observe(
            result.duration_ms / 1000
        )
    return invocation


def invocation_record_if_absent(**kwargs) -> None:
    """The turn's own record of a call whose worker never answered; a worker
    that did answer meanwhile keeps its row."""
    with transaction.atomic():
        if not ToolInvocation.objects.filter(pk=kwargs["invocation_id"]).exists():
            invocation_record(**kwargs)


def tool_execute_remote(payload: dict, notify) -> ToolResult:
    """A tool call of a turn, run by a Celery worker (or, with eager Celery,
    by a thread of the turn's process).  ``notify`` carries ``tool.started``
    and ``tool.finished`` back to the waiting turn."""
    context = ToolContext(**payload["context"])
    started_at = time.time()
    if notify is not None:
        notify({"type": "tool.started", "started_at": started_at, "enqueued_at": payload.get("enqueued_at")})
    definition = tool_definition_get(context.organization_id, payload["tool"])
    arguments = payload.get("arguments") or {}
    if definition is None:
        result = ToolResult(InvocationStatus.ERROR, error=f"The tool '{payload['tool']}' no longer exists.")
    else:
        try:
            arguments = arguments_validate(definition, arguments)
            result = tool_run(definition, arguments, context)
        except InvalidArguments as exc:
            result = ToolResult(InvocationStatus.INVALID, error=exc.message)
    invocation_record(
        invocation_id=payload["invocation_id"],
        definition_name=payload["tool"],
        context=context,
        arguments=arguments,
        result=result,
        execution="celery",
        call_id=payload.get("call_id", ""),
    )
    if notify is not None:
        notify({"type": "tool.finished", "result": result.as_dict(), "started_at": started_at})
    return result
