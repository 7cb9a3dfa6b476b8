"""Agents, their immutable published versions, conversations and messages."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.models import TenantOwned
from accounts.roles import Role


class AgentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class Agent(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64)
    description = models.TextField(blank=True, max_length=2000)
    industry = models.CharField(max_length=40, blank=True, help_text="An industry id from /api/v1/industries.")
    system_prompt = models.TextField(max_length=20000, blank=True)
    model = models.CharField(max_length=100)
    fallback_models = models.JSONField(
        default=list, blank=True, help_text="Models tried in order when the model fails."
    )
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_output_tokens = models.PositiveIntegerField(
        default=1024, validators=[MinValueValidator(1), MaxValueValidator(32768)]
    )
    max_tool_rounds = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(0), MaxValueValidator(20)]
    )
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.DRAFT)
    live_version = models.ForeignKey(
        "agents.AgentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="agents_agent_unique_slug")]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return self.name


class AgentVersion(TenantOwned):
    """An immutable snapshot of an agent, made on publish.  Chats run against
    a version and record it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    system_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=100)
    fallback_models = models.JSONField(default=list, blank=True)
    temperature = models.FloatField()
    max_output_tokens = models.PositiveIntegerField()
    max_tool_rounds = models.PositiveSmallIntegerField()
    tools = models.JSONField(
        default=list, blank=True, help_text="The tool grants at publish time: [{tool, min_role, requires_approval}]."
    )
    note = models.CharField(max_length=500, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["agent", "number"], name="agents_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.agent} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Agent versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class Channel(models.TextChoices):
    WEBSOCKET = "websocket", "Websocket"
    REST = "rest", "REST"
    OPENAI = "openai", "OpenAI-compatible"
    ADMIN = "admin", "Admin test chat"
    CLI = "cli", "Terminal"


class ConversationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class Conversation(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="conversations")
    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="conversations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    visitor_id = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.ACTIVE)
    last_seq = models.BigIntegerField(default=0, help_text="Sequence number of the last event of the last turn.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["organization", "agent", "-updated_at"])]

    def __str__(self) -> str:
        return f"{self.agent} / {self.pk}"


class MessageRole(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    TOOL = "tool", "Tool"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"
    ERROR = "error", "Error"


class Message(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    tool_call_id = models.CharField(max_length=100, blank=True)
    # NULL, not "", when absent: the uniqueness constraint below ignores NULLs.
    client_msg_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    model = models.CharField(max_length=100, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=models.Q(client_msg_id__isnull=False),
                name="agents_message_unique_client_msg_id",
            )
        ]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


# --- tools ------------------------------------------------------------------------------


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
        ordering = ["name"]
        verbose_name = "HTTP tool"
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="agents_httptool_unique_name")]

    def __str__(self) -> str:
        return self.name


class AgentTool(TenantOwned):
    """A tool granted to an agent, optionally with a stricter (or looser)
    minimum role or approval rule than the tool's own.  Grants are copied
    into a version when the agent is published."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_grants")
    tool = models.CharField(
        max_length=64, validators=[TOOL_NAME_VALIDATOR], help_text="A tool name from /api/v1/tools."
    )
    min_role = models.CharField(
        max_length=16, choices=Role.choices, blank=True, help_text="Blank: the tool's own minimum role."
    )
    requires_approval = models.BooleanField(null=True, blank=True, help_text="Empty: the tool's own rule.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tool"]
        constraints = [models.UniqueConstraint(fields=["agent", "tool"], name="agents_agenttool_unique_tool")]

    def __str__(self) -> str:
        return f"{self.agent} → {self.tool}"

    def as_grant(self) -> dict:
        return {"tool": self.tool, "min_role": self.min_role or None, "requires_approval": self.requires_approval}


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
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_invocations"
    )
    draft = models.ForeignKey(
        "agents.Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="invocations"
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
    are conditional updates (see agents.services.drafts): pending →
    confirmed → executing → executed | failed, or pending → rejected |
    expired."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts"
    )
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts")
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
