"""Admin for an organization's connections to the outside world: credentials
(the secret is write-only, stored encrypted, never shown again) and the
egress allowlist of internal hosts its HTTP tools may reach.  Both are owner
and admin powers."""

import ipaddress
import re

from django import forms
from django.contrib import admin

from accounts.admin import ADMIN_ROLES, TenantScopedAdmin
from integrations.models import Credential, CredentialKind, EgressAllowedHost

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
