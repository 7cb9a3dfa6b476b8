"""The tool registry.

A tool is a :class:`ToolDefinition`: name, description, JSON-schema
parameters, the minimum role that may use it, whether it needs a person's
approval (and whose), where it runs (inline in the turn or on the Celery
``tools`` queue), a timeout and a result size limit.

Python tools register with :func:`tool`; the modules listed in
``settings.AGENTHUB_TOOL_MODULES`` are imported at start-up (web and worker
alike).  Operators add HTTP tools in the admin (:class:`agents.models.HttpTool`);
:func:`tools_for_organization` returns both kinds.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from accounts.roles import Role, role_at_least
from integrations.llm.types import ToolSpec

INLINE = "inline"
CELERY = "celery"


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows about the call it serves."""

    organization_id: str
    role: str
    conversation_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    request_id: str | None = None
    # Set when a confirmed draft runs: the same key on every delivery, so an
    # action that honours it (an Idempotency-Key header, a Message-ID) is not
    # repeated by a redelivered task.
    idempotency_key: str | None = None
    draft_id: str | None = None


Handler = Callable[[dict, ToolContext], Any]


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    parameters: dict
    min_role: str = Role.MEMBER
    requires_approval: bool = False
    approver_role: str = Role.OPERATOR
    allow_self_approval: bool = True
    execution: str = INLINE
    timeout_seconds: float = 10.0
    max_result_chars: int = 16000
    source: str = "builtin"  # "builtin" (a Python tool) or "http" (an operator's HTTP tool)
    handler: Handler | None = field(default=None, compare=False, repr=False)
    http_tool_id: str | None = None

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def granted(self, grant: dict | None) -> "ToolDefinition":
        """This tool under an agent's grant: the grant may override the
        minimum role and the approval rule."""
        if not grant:
            return self
        changes: dict[str, Any] = {}
        if grant.get("min_role"):
            changes["min_role"] = grant["min_role"]
        if grant.get("requires_approval") is not None:
            changes["requires_approval"] = bool(grant["requires_approval"])
        return replace(self, **changes) if changes else self

    def allowed_for(self, role: str | None) -> bool:
        return role_at_least(role, self.min_role)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "min_role": self.min_role,
            "requires_approval": self.requires_approval,
            "approver_role": self.approver_role,
            "allow_self_approval": self.allow_self_approval,
            "execution": self.execution,
            "timeout_seconds": self.timeout_seconds,
            "max_result_chars": self.max_result_chars,
            "source": self.source,
        }


_registry: dict[str, ToolDefinition] = {}


def check_schema(parameters: dict) -> None:
    """Raises ``ValueError`` unless ``parameters`` is a JSON schema of an object."""
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise ValueError('The parameters must be a JSON schema with "type": "object".')
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        raise ValueError(f"The parameters are not a valid JSON schema: {exc.message}") from None


def tool(
    name: str,
    *,
    description: str,
    parameters: dict | None = None,
    min_role: str = Role.MEMBER,
    requires_approval: bool = False,
    approver_role: str = Role.OPERATOR,
    allow_self_approval: bool = True,
    execution: str = INLINE,
    timeout_seconds: float | None = None,
    max_result_chars: int | None = None,
) -> Callable[[Handler], Handler]:
    """Registers a Python function ``f(arguments: dict, context: ToolContext)``
    as a tool.  Its return value (text or anything JSON-serialisable) is the
    result the model sees; raising :class:`ToolFailed` reports a clear error."""
    parameters = parameters or {"type": "object", "properties": {}, "additionalProperties": False}
    check_schema(parameters)
    if execution not in (INLINE, CELERY):
        raise ValueError(f"execution must be '{INLINE}' or '{CELERY}'")

    def register(handler: Handler) -> Handler:
        _registry[name] = ToolDefinition(
            name=name,
            description=description,
            parameters=parameters,
            min_role=min_role,
            requires_approval=requires_approval,
            approver_role=approver_role,
            allow_self_approval=allow_self_approval,
            execution=execution,
            timeout_seconds=timeout_seconds or settings.TOOL_DEFAULT_TIMEOUT_SECONDS,
            max_result_chars=max_result_chars or settings.TOOL_RESULT_MAX_CHARS,
            handler=handler,
        )
        return handler

    return register


class ToolFailed(Exception):
    """A tool's clear, user-facing failure (the model is told the message)."""


_loaded = False


def load_tool_modules() -> None:
    global _loaded
    if _loaded:
        return
    for module in settings.AGENTHUB_TOOL_MODULES:
        importlib.import_module(module)
    _loaded = True


def builtin_tools() -> dict[str, ToolDefinition]:
    load_tool_modules()
    return dict(_registry)


def builtin_tool(name: str) -> ToolDefinition | None:
    load_tool_modules()
    return _registry.get(name)
