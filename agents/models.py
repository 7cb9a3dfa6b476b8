"""What an agent is: its definition, immutable published versions and the
tools granted to it."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import TenantOwned
from accounts.roles import Role
from tools.models import TOOL_NAME_VALIDATOR


class AgentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class ResponseCache(models.TextChoices):
    OFF = "off", "Off"
    DETERMINISTIC = "deterministic", "When the temperature is 0"
    ALWAYS = "always", "Always, whatever the temperature"


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
    response_cache = models.CharField(
        max_length=16,
        choices=ResponseCache.choices,
        default=ResponseCache.OFF,
        help_text="Answer an exactly repeated conversation (same messages, tools and settings) from the cache "
        "instead of calling the model again; a cached answer costs nothing and is kept for an hour by default "
        "(RESPONSE_CACHE_TTL_SECONDS).",
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
    response_cache = models.CharField(max_length=16, choices=ResponseCache.choices, default=ResponseCache.OFF)
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
