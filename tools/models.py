"""Operator-defined HTTP tools, the log of tool invocations and drafts.
The tables keep the names they had when these models lived in the agents app
(see migration 0001).  A draft or an invocation belongs to a conversation
when a chat turn made it; the conversation and agent are named by string, so
this app never imports the apps above it."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.models import TenantOwned
from accounts.roles import Role


class ToolExecution(models.TextChoices):
    INLINE = "inline", "Inline, in the turn"
    CELERY = "celery", "On the Celery tools queue"


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"
    PUT = "PUT", "PUT"
    PATCH = "PATCH", "PATCH"
    DELETE = "DELETE", "DELETE"


TOOL_NAME_VALIDATOR = RegexValidator(
    r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$", "Letters, digits, _ and -, starting with a letter (at most 64)."
)


def _default_parameters() -> dict:
    return {"type": "object", "properties": {}, "additionalProperties": False}


class HttpTool(TenantOwned):
    """An operator-defined tool that calls one of the organization's HTTP
    endpoints.  Arguments named in the URL template (``{asset_id}``) go into
    the path; the others go into the query string (GET, DELETE) or the JSON
    body (POST, PUT, PATCH)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, validators=[TOOL_NAME_VALIDATOR])
    description = models.TextField(max_length=2000, help_text="What the tool does; the model reads this.")
    parameters = models.JSONField(default=_default_parameters, blank=True, help_text="JSON schema of the arguments.")
    method = models.CharField(max_length=8, choices=HttpMethod.choices, default=HttpMethod.POST)
    url_template = models.CharField(max_length=2000, help_text="e.g. https://api.example.com/assets/{asset_id}")
    headers = models.JSONField(default=dict, blank=True, help_text="Extra request headers (no secrets here).")
    credential = models.ForeignKey(
        "integrations.Credential", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    min_role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    requires_approval = models.BooleanField(default=False)
    approver_role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    allow_self_approval = models.BooleanField(default=True)
    execution = models.CharField(max_length=8, choices=ToolExecution.choices, default=ToolExecution.CELERY)
    # Below the Celery hard time limit (300 s by default) that bounds every task.
    timeout_seconds = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(240)]
    )
    max_result_chars = models.PositiveIntegerField(
        default=16000, validators=[MinValueValidator(100), MaxValueValidator(1_000_000)]
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "agents_httptool"
        ordering = ["name"]
        verbose_name = "HTTP tool"
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="agents_httptool_unique_name")]

    def __str__(self) -> str:
        return self.name


class InvocationStatus(models.TextChoices):
    OK = "ok", "Succeeded"
    ERROR = "error", "Failed"
    TIMEOUT = "timeout", "Timed out"
    REFUSED = "refused", "Refused (not allowed)"
    INVALID = "invalid", "Invalid arguments"
    DRAFTED = "drafted", "Draft created, awaiting approval"


class ToolInvocation(TenantOwned):
    """One tool call: what was asked, by whom, and what came of it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tool = models.CharField(max_length=64, db_index=True)
    call_id = models.CharField(max_length=100, blank=True)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_invocations"
    )
    draft = models.ForeignKey(
        "tools.Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="invocations"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(max_length=16, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True)
    result_truncated = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=InvocationStatus.choices)
    error = models.TextField(blank=True)
    execution = models.CharField(max_length=8, choices=ToolExecution.choices, default=ToolExecution.INLINE)
    duration_ms = models.FloatField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # A confirmed draft's execution records its outcome here once: the row
    # with the draft's key is the proof that the action completed.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "agents_toolinvocation"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"]), models.Index(fields=["organization", "tool"])]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"


class DraftStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class Draft(TenantOwned):
    """An action an agent proposed that a person must confirm.  Transitions
    are conditional updates (see tools.services.drafts): pending →
    confirmed → executing → executed | failed, or pending → rejected |
    expired."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts"
    )
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts")
    tool = models.CharField(max_length=64, db_index=True)
    call_id = models.CharField(max_length=100, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    arguments = models.JSONField(default=dict, help_text="The arguments the agent proposed.")
    edited_arguments = models.JSONField(
        null=True, blank=True, help_text="The arguments as edited by the approver (run instead)."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_role = models.CharField(max_length=16, blank=True)
    approver_role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    allow_self_approval = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=DraftStatus.choices, default=DraftStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.CharField(max_length=1000, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    result = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Deliveries of the execution task.")
    request_id = models.CharField(max_length=64, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "agents_draft"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tool} draft ({self.status})"

    @property
    def effective_arguments(self) -> dict:
        return self.edited_arguments if self.edited_arguments is not None else self.arguments
