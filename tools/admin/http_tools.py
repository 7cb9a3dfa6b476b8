"""Admin for operator-defined HTTP tools: defining one (an outbound call,
possibly with a credential) is an owner's or admin's power; operators see
them."""

from django import forms
from django.contrib import admin

from accounts.admin import (
    ADMIN_ROLES,
    OPERATOR_ROLES,
    PrettyJSONField,
    RoleGatedAdmin,
    actor_role,
    has_role_somewhere,
    managed_organization_ids,
    write_organizations,
)
from integrations.models import Credential
from tools.models import HttpTool
from tools.services import catalog as tool_services

# --- HTTP tools ----------------------------------------------------------------------------------

# Authentication belongs in a credential (encrypted), never in plain headers.


class HttpToolAdminForm(forms.ModelForm):
    class Meta:
        model = HttpTool
        fields = [
            "organization",
            "name",
            "description",
            "enabled",
            "method",
            "url_template",
            "parameters",
            "headers",
            "credential",
            "min_role",
            "requires_approval",
            "approver_role",
            "allow_self_approval",
            "execution",
            "timeout_seconds",
            "max_result_chars",
        ]
        field_classes = {"parameters": PrettyJSONField, "headers": PrettyJSONField}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "url_template": forms.TextInput(attrs={"class": "vLargeTextField"}),
            "parameters": forms.Textarea(attrs={"rows": 12, "class": "vLargeTextField"}),
            "headers": forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.organization_id and "credential" in self.fields:
            credentials = self.fields["credential"].queryset
            self.fields["credential"].queryset = credentials.filter(organization_id=self.instance.organization_id)

    def _organization(self):
        if "organization" in self.fields:
            return self.cleaned_data.get("organization")
        return self.instance.organization if self.instance.organization_id else None

    def clean_headers(self):
        headers = self.cleaned_data.get("headers")
        if headers in (None, ""):
            return {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise forms.ValidationError('The headers must be a JSON object of strings, e.g. {"Accept": "text/csv"}.')
        return headers

    def clean(self):
        cleaned = super().clean()
        organization = self._organization()
        if organization is None:
            return cleaned
        credential = cleaned.get("credential")
        errors = tool_services.http_tool_validate(
            organization_id=str(organization.pk),
            name=cleaned.get("name") or "",
            parameters=cleaned.get("parameters"),
            url_template=cleaned.get("url_template") or "",
            headers=cleaned.get("headers") or {},
            credential_organization_id=str(credential.organization_id) if credential is not None else None,
            tool_id=self.instance.pk if self.instance.organization_id else None,
        )
        for name, problems in errors.items():
            if name in cleaned:  # a field that failed its own checks already shows why
                self.add_error(name, problems)
        return cleaned


@admin.register(HttpTool)
class HttpToolAdmin(RoleGatedAdmin):
    """Owners and admins define HTTP tools; operators may look at them."""

    staff_roles = OPERATOR_ROLES  # who sees them
    write_roles = ADMIN_ROLES  # who defines them: outbound calls are an admin power
    form = HttpToolAdminForm
    list_display = (
        "name",
        "organization",
        "method",
        "url_template",
        "min_role",
        "requires_approval",
        "execution",
        "enabled",
    )
    list_filter = ("enabled", "method", "execution", "requires_approval", "min_role", "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "description", "url_template")
    ordering = ("organization__name", "name")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("organization", "name", "description", "enabled")}),
        (
            "Request",
            {
                "fields": ("method", "url_template", "parameters", "headers", "credential"),
                "description": (
                    "Arguments named in the URL template ({asset_id}) go into the path; the others go into the "
                    "query string (GET, DELETE) or the JSON body (POST, PUT, PATCH).  Internal hosts must be on "
                    "the organization's egress allowlist."
                ),
            },
        ),
        ("Who may use it", {"fields": ("min_role", "requires_approval", "approver_role", "allow_self_approval")}),
        ("Execution", {"fields": ("execution", "timeout_seconds", "max_result_chars")}),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a tool never moves to another organization
            return ("organization", *self.readonly_fields)
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            # Not TenantScopedAdmin's choices (the organizations staff may view).
            kwargs["queryset"] = write_organizations(request, self.write_roles)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        if db_field.name == "credential":
            credentials = Credential.objects.select_related("organization")
            if not request.user.is_superuser:
                credentials = credentials.filter(
                    organization_id__in=managed_organization_ids(request.user, self.write_roles)
                )
            kwargs["queryset"] = credentials
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _may_write(self, request, obj) -> bool:
        if obj is None:
            return has_role_somewhere(request, self.write_roles)
        return actor_role(request, obj.organization_id) in self.write_roles

    def has_add_permission(self, request):
        return super().has_add_permission(request) and has_role_somewhere(request, self.write_roles)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)
