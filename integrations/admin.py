"""Admin for an organization's connections to the outside world: credentials
(the secret is write-only, stored encrypted, never shown again) and the
egress allowlist of internal hosts its HTTP tools may reach.  Both are owner
and admin powers."""

import ipaddress
import re

from django import forms
from django.contrib import admin

from accounts.admin import ADMIN_ROLES, TenantScopedAdmin
from integrations.models import (
    Credential,
    CredentialKind,
    EgressAllowedHost,
    ModelDeployment,
    ModelProvider,
    ModelRoute,
)

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class OrganizationFixedOnChange:
    """The organization is chosen on add and fixed afterwards: a credential
    or an allowlist entry never moves to another tenant."""

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("organization", *self.readonly_fields)
        return self.readonly_fields


def _organization(form: forms.ModelForm):
    if "organization" in form.fields:
        return form.cleaned_data.get("organization")
    return form.instance.organization if form.instance.organization_id else None


def _check_unique(form: forms.ModelForm, field: str, label: str) -> None:
    """The (organization, ``field``) constraint, which the form leaves
    unchecked once the organization is read-only."""
    value = form.cleaned_data.get(field)
    organization = _organization(form)
    if value and organization is not None and "organization" not in form.fields:
        model = form._meta.model
        taken = model.objects.filter(organization=organization, **{field: value}).exclude(pk=form.instance.pk)
        if taken.exists():
            form.add_error(field, f"This organization already has {label} '{value}'.")


# --- credentials -------------------------------------------------------------------------------


class CredentialAdminForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
    )

    class Meta:
        model = Credential
        fields = ("organization", "name", "kind", "header_name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["secret"]
        if self.instance._state.adding:
            field.required = True
            field.help_text = "Stored encrypted; it is never shown again. For basic auth: user:password."
        else:
            field.help_text = "Leave blank to keep the stored secret; type a new one to replace it."

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == CredentialKind.HEADER and not cleaned.get("header_name"):
            self.add_error("header_name", "A custom header credential needs the header's name, e.g. X-Api-Key.")
        secret = cleaned.get("secret")
        if secret and cleaned.get("kind") == CredentialKind.BASIC and ":" not in secret:
            self.add_error("secret", "Basic auth takes user:password.")
        _check_unique(self, "name", "a credential named")
        return cleaned

    def save(self, commit=True):
        credential = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            credential.set_secret(self.cleaned_data["secret"])
        if commit:
            credential.save()
        return credential


@admin.register(Credential)
class CredentialAdmin(OrganizationFixedOnChange, TenantScopedAdmin):
    staff_roles = ADMIN_ROLES
    form = CredentialAdminForm
    list_display = ("name", "organization", "kind", "header_name", "created_at")
    list_filter = ("kind", "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "header_name")
    ordering = ("organization__name", "name")
    readonly_fields = ("secret_state", "created_at", "updated_at")
    fields = ("organization", "name", "kind", "header_name", "secret", "secret_state", "created_at", "updated_at")

    @admin.display(description="stored secret")
    def secret_state(self, obj):
        return "Stored, encrypted (never shown)" if obj and obj.secret_encrypted else "—"


# --- egress allowlist -------------------------------------------------------------------------


def normalize_host(value: str) -> str:
    """A host name, an IP literal or ``*.domain``, lower-cased, without a
    trailing dot; raises ``ValidationError`` for anything else (a URL, a
    port, a path)."""
    host = (value or "").strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    name = host[2:] if host.startswith("*.") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        raise forms.ValidationError(
            "Enter a host name (api.example.internal), an IP address (10.0.0.5) or *.example.internal "
            "for its subdomains: no scheme, port or path."
        )
    return host


class EgressAllowedHostAdminForm(forms.ModelForm):
    class Meta:
        model = EgressAllowedHost
        fields = ("organization", "host", "note")

    def clean_host(self):
        return normalize_host(self.cleaned_data.get("host", ""))

    def clean(self):
        cleaned = super().clean()
        _check_unique(self, "host", "the host")
        return cleaned


@admin.register(EgressAllowedHost)
class EgressAllowedHostAdmin(OrganizationFixedOnChange, TenantScopedAdmin):
    """Internal hosts (private, loopback or link-local addresses) the
    organization's HTTP tools may reach; public hosts need no entry."""

    staff_roles = ADMIN_ROLES
    form = EgressAllowedHostAdminForm
    list_display = ("host", "note", "organization", "created_at")
    list_filter = ("organization",)
    list_select_related = ("organization",)
    search_fields = ("host", "note")
    ordering = ("organization__name", "host")
    readonly_fields = ("created_at",)


# --- the model gateway (platform-wide: superusers only) -------------------------------


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Providers, deployments and routes serve every organization: only a
    superuser sees or edits them."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class ModelProviderForm(forms.ModelForm):
    api_key = forms.CharField(
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        help_text="Stored encrypted; never shown again. Leave blank to keep the stored key (or for servers without one).",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)

    class Meta:
        model = ModelProvider
        fields = ("name", "base_url", "timeout_seconds", "connect_timeout_seconds", "enabled")

    def clean(self):
        cleaned = super().clean()
        has_key = bool(cleaned.get("api_key")) or (
            bool(self.instance.api_key_encrypted) and not cleaned.get("clear_api_key")
        )
        if not cleaned.get("base_url") and not has_key:
            self.add_error("api_key", "api.openai.com needs an API key; or give the base URL of a self-hosted server.")
        timeout, connect = cleaned.get("timeout_seconds"), cleaned.get("connect_timeout_seconds")
        if timeout is not None and connect is not None and connect > timeout:
            self.add_error("connect_timeout_seconds", "The connect timeout cannot be longer than the timeout.")
        return cleaned

    def save(self, commit=True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            provider.set_api_key(self.cleaned_data["api_key"])
        elif self.cleaned_data.get("clear_api_key"):
            provider.set_api_key("")
        if commit:
            provider.save()
        return provider


@admin.register(ModelProvider)
class ModelProviderAdmin(SuperuserOnlyAdmin):
    form = ModelProviderForm
    list_display = ("name", "base_url", "enabled", "key_state", "deployment_count")
    list_filter = ("enabled",)
    search_fields = ("name", "base_url")
    readonly_fields = ("key_state", "created_at", "updated_at")
    fields = (
        "name",
        "base_url",
        "api_key",
        "clear_api_key",
        "key_state",
        "timeout_seconds",
        "connect_timeout_seconds",
        "enabled",
        "created_at",
        "updated_at",
    )

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:  # nothing stored yet
            fields = [name for name in fields if name not in ("clear_api_key", "key_state", "created_at", "updated_at")]
        return fields

    @admin.display(description="stored API key")
    def key_state(self, obj):
        return "Stored, encrypted (never shown)" if obj and obj.api_key_encrypted else "—"

    @admin.display(description="deployments")
    def deployment_count(self, obj):
        return obj.deployments.count()


@admin.register(ModelDeployment)
class ModelDeploymentAdmin(SuperuserOnlyAdmin):
    list_display = ("model_name", "served_by", "circuit", "in_flight", "weight", "priority", "enabled")
    list_filter = ("enabled", "provider", "model_name")
    list_select_related = ("provider",)
    search_fields = ("model_name", "upstream_model", "provider__name")
    readonly_fields = ("circuit", "in_flight", "created_at", "updated_at")
    actions = ["close_circuits"]
    fieldsets = (
        (None, {"fields": ("model_name", "provider", "upstream_model", "enabled")}),
        ("Routing and quotas", {"fields": ("weight", "priority", "max_in_flight", "rpm_limit", "tpm_limit")}),
        (
            "Circuit breaker",
            {
                "fields": ("breaker_threshold", "breaker_timeout_seconds", "circuit", "in_flight"),
                "description": "Empty fields use CIRCUIT_BREAKER_THRESHOLD and CIRCUIT_BREAKER_TIMEOUT_SECS.",
            },
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_changelist_instance(self, request):
        # One Redis call for the page's circuits, not two per row.
        from integrations.llm.breaker import breakers

        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        for row, stats in zip(rows, breakers.status_sync([str(r.pk) for r in rows]), strict=True):
            row._circuit_stats = stats
        return changelist

    def _stats(self, obj):
        from integrations.llm.breaker import breakers

        if getattr(obj, "_circuit_stats", None) is None:
            obj._circuit_stats = breakers.status_sync([str(obj.pk)])[0]
        return obj._circuit_stats

    @admin.display(description="served by", ordering="provider__name")
    def served_by(self, obj):
        return f"{obj.provider.name} / {obj.upstream_model or obj.model_name}"

    @admin.display(description="circuit")
    def circuit(self, obj):
        from django.utils.html import format_html

        from integrations.llm.breaker import CLOSED, OPEN, STATE_NAMES

        if obj is None or obj.pk is None:
            return "—"
        stats = self._stats(obj)
        text = STATE_NAMES[stats.state].replace("_", "-")
        if stats.retry_in_ms:
            text += f" (probe in {stats.retry_in_ms / 1000:.0f} s)"
        colour = {CLOSED: "#2e7d32", OPEN: "#c62828"}.get(stats.state, "#ef6c00")
        return format_html('<strong style="color: {}">{}</strong>', colour, text)

    @admin.display(description="in flight")
    def in_flight(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return self._stats(obj).in_flight

    @admin.action(description="Close the circuits of the selected deployments")
    def close_circuits(self, request, queryset):
        from integrations.llm.breaker import breakers

        keys = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        breakers.reset_sync(keys)
        self.message_user(request, f"Closed {len(keys)} circuit(s); their failure counts start again from zero.")


@admin.register(ModelRoute)
class ModelRouteAdmin(SuperuserOnlyAdmin):
    list_display = ("model_name", "strategy", "updated_at")
    list_filter = ("strategy",)
    search_fields = ("model_name",)
