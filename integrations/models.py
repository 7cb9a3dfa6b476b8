"""Connections to the outside world that an organization configures:
credentials for its backends (encrypted at rest) and the internal hosts its
HTTP tools may reach."""

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import TenantOwned
from integrations import crypto


class CredentialKind(models.TextChoices):
    BEARER = "bearer", "Bearer token (Authorization: Bearer …)"
    HEADER = "header", "Custom header (name: value)"
    BASIC = "basic", "Basic auth (user:password)"


class Credential(TenantOwned):
    """A secret an HTTP tool sends to an organization's backend.  The secret
    is stored encrypted and never shown again or logged."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, help_text="How HTTP tools refer to this credential.")
    kind = models.CharField(max_length=16, choices=CredentialKind.choices, default=CredentialKind.BEARER)
    header_name = models.CharField(
        max_length=100, blank=True, help_text="For a custom header: its name, e.g. X-Api-Key."
    )
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="integrations_credential_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def auth_headers(self) -> dict[str, str]:
        """The headers that carry this credential (decrypted here, only)."""
        import base64

        secret = crypto.decrypt(self.secret_encrypted)
        if self.kind == CredentialKind.BEARER:
            return {"Authorization": f"Bearer {secret}"}
        if self.kind == CredentialKind.BASIC:
            return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
        return {self.header_name or "X-Api-Key": secret}


class EgressAllowedHost(TenantOwned):
    """A host the organization's HTTP tools may reach although it resolves to
    a private, loopback or link-local address (its internal backend).  Exact
    host name or IP literal, or ``*.example.internal`` for subdomains."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.CharField(max_length=255)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host"]
        verbose_name = "egress allowed host"
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="integrations_egress_unique_host")]

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs):
        self.host = self.host.strip().lower().rstrip(".")
        super().save(*args, **kwargs)


# --- the model gateway ---------------------------------------------------------------
# Platform-wide (not per organization): which servers answer the model names
# agents use.  Edited by superusers in the admin; the router reads them.


def validate_base_url(value: str) -> None:
    """An http(s) URL with a host (single-label hosts such as a Kubernetes
    service name are fine), without credentials, a query or a fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValidationError("The port is not a number between 0 and 65535.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Give an http:// or https:// URL with a host, e.g. http://vllm:8000/v1.")
    if parts.username or parts.password:
        raise ValidationError("Put the API key in the API key field, not in the URL.")
    if parts.query or parts.fragment:
        raise ValidationError("The base URL takes no query string or fragment.")


class ModelProvider(models.Model):
    """An OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama…)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, unique=True, help_text="Shown in metrics, logs and the usage ledger.")
    base_url = models.CharField(
        "base URL",
        max_length=500,
        blank=True,
        validators=[validate_base_url],
        help_text="e.g. http://vllm:8000/v1. Empty means api.openai.com.",
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.FloatField(
        "timeout (seconds)",
        default=60.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(600)],
        help_text="Longest wait for the server, including between two streamed chunks.",
    )
    connect_timeout_seconds = models.FloatField(
        "connect timeout (seconds)", default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(60)]
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model provider"

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, api_key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(api_key) if api_key else ""

    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""


class ModelDeployment(models.Model):
    """One way to serve a model name that agents use: a provider's upstream
    model, with a share of the traffic.  Several deployments may serve one
    name; the router picks among the healthy ones."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_name = models.CharField(max_length=100, db_index=True, help_text="The name agents use, e.g. gpt-4o-mini.")
    provider = models.ForeignKey(ModelProvider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="The model name the provider knows. Empty: the same name."
    )
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Share of the traffic among deployments of the same priority (weighted routing).",
    )
    priority = models.PositiveSmallIntegerField(
        default=0, help_text="Lower is tried first; higher priorities serve when the lower ones are unavailable."
    )
    max_in_flight = models.PositiveIntegerField(
        "max calls in flight",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Most calls in flight at once, across every process. Empty: no cap.",
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10_000_000)],
        help_text="Most requests per minute (the provider's quota). Empty: no limit.",
    )
    tpm_limit = models.PositiveIntegerField(
        "tokens per minute",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(2_000_000_000)],
        help_text="Most tokens per minute, prompt and completion (the provider's quota). Empty: no limit.",
    )
    breaker_threshold = models.PositiveSmallIntegerField(
        "failures that open the circuit",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Failures within the window that open the circuit. Empty: CIRCUIT_BREAKER_THRESHOLD.",
    )
    breaker_timeout_seconds = models.PositiveIntegerField(
        "probe after (seconds)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds an open circuit waits before one probe call. Empty: CIRCUIT_BREAKER_TIMEOUT_SECS.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_name", "priority", "-weight"]
        verbose_name = "model deployment"
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "provider", "upstream_model"], name="integrations_deployment_unique"
            )
        ]

    def __str__(self) -> str:
        upstream = self.upstream_model or self.model_name
        return f"{self.model_name} → {self.provider.name}/{upstream}"


class RoutingStrategy(models.TextChoices):
    WEIGHTED = "weighted", "Weighted (by each deployment's weight)"
    LEAST_BUSY = "least_busy", "Least busy (fewest calls in flight, across processes)"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency (time to first token, moving average)"


class ModelRoute(models.Model):
    """How the router chooses among a model name's deployments (weighted
    when a model has no route)."""

    model_name = models.CharField(max_length=100, unique=True)
    strategy = models.CharField(max_length=20, choices=RoutingStrategy.choices, default=RoutingStrategy.WEIGHTED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_name"]
        verbose_name = "model route"

    def __str__(self) -> str:
        return f"{self.model_name}: {self.get_strategy_display()}"
