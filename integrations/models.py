"""Connections to the outside world that an organization configures:
credentials for its backends (encrypted at rest) and the internal hosts its
HTTP tools may reach."""

import uuid

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
