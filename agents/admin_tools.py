"""Admin for tools: operator-defined HTTP tools, an agent's tool grants (an
inline on the agent page), the tool invocation log and drafts.

Defining an HTTP tool (an outbound call, possibly with a credential) is an
owner's or admin's power; operators see the tools.  The invocation log is
read-only.  Drafts are decided through :mod:`agents.services.drafts`, from
the change-list actions or the form on a draft's page, as the API decides
them: the staff user acts with their role in the draft's organization.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts.admin import (
    ADMIN_ROLES,
    OPERATOR_ROLES,
    ReadOnlyAdminMixin,
    TenantScopedAdmin,
    actor_role,
    managed_organization_ids,
)
from accounts.models import Organization
from agenthub.errors import ApplicationError
from agents import selectors
from agents.admin import AgentAdmin
from agents.models import AgentTool, Draft, DraftStatus, HttpTool, ToolInvocation
from agents.services import drafts as draft_services
from agents.services import grants as grant_services
from agents.services import tools as tool_services
from agents.services.chat import Caller
from integrations.models import Credential

# --- shared -----------------------------------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def _pretty(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


def _has_role_somewhere(request, roles) -> bool:
    return request.user.is_superuser or bool(managed_organization_ids(request.user, roles))


class RoleGatedAdmin(TenantScopedAdmin):
    """A tenant-scoped admin that staff without one of ``staff_roles`` in any
    organization cannot open at all (403), rather than seeing an empty list."""

    def has_module_permission(self, request):
        return super().has_module_permission(request) and _has_role_somewhere(request, self.staff_roles)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and _has_role_somewhere(request, self.staff_roles)


def _write_organizations(request, roles):
    if request.user.is_superuser:
        return Organization.objects.filter(is_active=True)
    return Organization.objects.filter(pk__in=managed_organization_ids(request.user, roles))


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
        checked = {"name", "parameters", "url_template"}
        if checked & set(cleaned):
            errors = tool_services.http_tool_validate(
                organization_id=str(organization.pk),
                name=cleaned.get("name") or "",
                parameters=cleaned.get("parameters"),
                url_template=cleaned.get("url_template") or "",
            )
            for name, problems in errors.items():
                if name in cleaned:  # a field that failed its own checks already shows why
                    self.add_error(name, problems)
        credential = cleaned.get("credential")
        if credential is not None and credential.organization_id != organization.pk:
            self.add_error("credential", "This credential belongs to another organization.")
        name = cleaned.get("name")
        # On change the organization is read-only, which leaves the model's
        # (organization, name) constraint unchecked by the form: check here.
        if (
            name
            and "organization" not in self.fields
            and HttpTool.objects.filter(organization=organization, name=name).exclude(pk=self.instance.pk).exists()
        ):
            self.add_error("name", f"This organization already has a tool named '{name}'.")
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
            kwargs["queryset"] = _write_organizations(request, self.write_roles)
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
            return _has_role_somewhere(request, self.write_roles)
        return actor_role(request, obj.organization_id) in self.write_roles

    def has_add_permission(self, request):
        return super().has_add_permission(request) and _has_role_somewhere(request, self.write_roles)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)


# --- tool grants (an inline on the agent page) --------------------------------------------------


class AgentToolForm(forms.ModelForm):
    class Meta:
        model = AgentTool
        fields = ("tool", "min_role", "requires_approval")

    def __init__(self, *args, catalog=None, offer_choices=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        help_text = "Grants take effect when the agent is published."
        if offer_choices and catalog is not None:
            choices = [(name, f"{name} — {d.description[:60]}") for name, d in sorted(catalog.items())]
            current = "" if self.instance._state.adding else self.instance.tool
            if current and current not in catalog:
                choices.append((current, f"{current} (no longer in the catalog)"))
            self.fields["tool"] = forms.ChoiceField(choices=[("", "---------"), *choices], help_text=help_text)
        else:
            self.fields["tool"].help_text = f"A tool name from the organization's catalog. {help_text}"

    def clean_tool(self):
        name = self.cleaned_data["tool"]
        if self.catalog is not None and name not in self.catalog:
            raise forms.ValidationError(
                f"No tool '{name}' in this organization's catalog (the built-ins and its enabled HTTP tools)."
            )
        return name

    def grant(self) -> dict:
        data = self.cleaned_data
        return {
            "tool": data["tool"],
            "min_role": data.get("min_role") or "",
            "requires_approval": data.get("requires_approval"),
        }


class AgentToolFormSet(BaseInlineFormSet):
    """The agent's grants as rows.  Offers the organization's catalog as
    choices on an existing agent and checks each row against it (on a new
    agent: the catalog of the organization chosen in the form); the grants
    are written by :func:`agents.services.grants.agent_tools_set`."""

    request = None  # set per request by AgentToolInline.get_formset

    def __init__(self, data=None, *args, **kwargs):
        prefix = kwargs.get("prefix") or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            # A post without the grants section (a script, or a form made
            # before grants were editable here) leaves the grants as they are.
            data = data.copy()
            data[f"{prefix}-TOTAL_FORMS"] = "0"
            data[f"{prefix}-INITIAL_FORMS"] = "0"
        super().__init__(data, *args, **kwargs)

    def _organization_id(self):
        if self.instance is not None and self.instance.organization_id:
            return str(self.instance.organization_id)
        chosen = (self.data or {}).get("organization")
        if not chosen or self.request is None:
            return None
        allowed = {str(pk) for pk in _write_organizations(self.request, OPERATOR_ROLES).values_list("pk", flat=True)}
        return chosen if chosen in allowed else None  # an invalid choice: the agent form says so

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        if not hasattr(self, "_catalog"):
            organization_id = self._organization_id()
            self._catalog = tool_services.tools_for_organization(organization_id) if organization_id else None
        kwargs["catalog"] = self._catalog
        kwargs["offer_choices"] = bool(self.instance is not None and self.instance.organization_id)
        return kwargs

    def _deleted(self, form) -> bool:
        return self.can_delete and self._should_delete_form(form)

    def _changed(self) -> bool:
        return any(form.has_changed() or self._deleted(form) for form in self.forms)

    def _wanted(self) -> list[dict]:
        """Every grant the agent should have: the rows of this form, and the
        grants that are not on it (added elsewhere meanwhile) as they are."""
        shown = {form.initial.get("tool") for form in self.initial_forms}
        current = [] if self.instance._state.adding else selectors.agent_tool_grants(self.instance)
        wanted = [grant for grant in current if grant["tool"] not in shown]
        for index, form in enumerate(self.forms):
            if self._deleted(form) or (index >= self.initial_form_count() and not form.has_changed()):
                continue
            wanted.append(form.grant())
        return wanted

    def clean(self):
        super().clean()
        organization_id = self._organization_id()
        if organization_id is None or any(self.errors) or not self._changed():
            return
        try:
            grant_services.agent_tools_validate(organization_id=organization_id, grants=self._wanted())
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None

    def save(self, commit=True):
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        if not self._changed():
            return []
        wanted = self._wanted()
        try:
            grant_services.agent_tools_set(agent=self.instance, grants=wanted, user=self.request.user)
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc
        rows = {row.tool: row for row in AgentTool.objects.filter(agent=self.instance)}
        for index, form in enumerate(self.forms):
            if self._deleted(form):
                self.deleted_objects.append(form.instance)
            elif index < self.initial_form_count():
                if form.has_changed() and form.cleaned_data["tool"] in rows:
                    self.changed_objects.append((rows[form.cleaned_data["tool"]], form.changed_data))
            elif form.has_changed() and form.cleaned_data["tool"] in rows:
                self.new_objects.append(rows[form.cleaned_data["tool"]])
        return [*self.new_objects, *(row for row, _ in self.changed_objects)]


class AgentToolInline(admin.TabularInline):
    model = AgentTool
    form = AgentToolForm
    formset = AgentToolFormSet
    fk_name = "agent"
    extra = 0
    fields = ("tool", "min_role", "requires_approval")
    verbose_name = "tool grant"
    verbose_name_plural = "Tool grants (take effect when the agent is next published)"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"request": request})


# agents/admin.py imports this module last; the grants inline joins the
# agent page here so that file keeps its one import line.
AgentAdmin.inlines = [*AgentAdmin.inlines, AgentToolInline]


# --- the invocation log ------------------------------------------------------------------------------


@admin.register(ToolInvocation)
class ToolInvocationAdmin(ReadOnlyAdminMixin, RoleGatedAdmin):
    """Written by the tool runtime; the admin reads it."""

    staff_roles = OPERATOR_ROLES
    list_display = ("tool", "status", "execution", "duration_ms", "conversation", "draft", "role", "created_at")
    list_filter = ("status", "tool", "execution")
    list_select_related = ("conversation__agent", "draft")
    search_fields = ("tool", "request_id")
    fields = (
        "organization",
        "tool",
        "status",
        "execution",
        "duration_ms",
        "agent",
        "conversation",
        "draft",
        "user",
        "api_key",
        "role",
        "call_id",
        "arguments_display",
        "result_display",
        "result_truncated",
        "error",
        "request_id",
        "idempotency_key",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="arguments")
    def arguments_display(self, obj):
        return _pretty(obj.arguments)

    @admin.display(description="result")
    def result_display(self, obj):
        return _result_html(obj.result)


def _result_html(text: str):
    if not text:
        return "—"
    try:
        return _pretty(json.loads(text))
    except ValueError:
        return format_html("<pre>{}</pre>", text)


# --- drafts -----------------------------------------------------------------------------------------


class DraftDecisionForm(forms.Form):
    note = forms.CharField(required=False, max_length=1000)
    edited_arguments = forms.CharField(required=False)


def _label(draft: Draft) -> str:
    return draft.summary or draft.tool


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdminMixin, RoleGatedAdmin):
    """Drafts are made by the chat runtime and decided here (or through the
    API); nothing on a draft is edited directly."""

    staff_roles = OPERATOR_ROLES
    change_form_template = "admin/agents/draft/change_form.html"
    list_display = ("tool", "summary", "status", "requested_by", "decided_by", "expires_at", "created_at")
    list_filter = ("status", "tool")
    list_select_related = ("requested_by", "decided_by")
    search_fields = ("tool", "summary", "request_id")
    actions = ["confirm_selected", "reject_selected"]
    fieldsets = (
        (
            "Proposed action",
            {
                "fields": (
                    "tool",
                    "summary",
                    "arguments_display",
                    "edited_arguments_display",
                    "status",
                    "requested_by",
                    "expires_at",
                )
            },
        ),
        ("Outcome", {"fields": ("result_display", "error", "executed_at", "attempts")}),
        (
            "Decision",
            {
                "fields": (
                    "approver_role",
                    "allow_self_approval",
                    "decided_by",
                    "decided_by_api_key",
                    "decided_at",
                    "decision_note",
                )
            },
        ),
        (
            "Context",
            {
                "fields": (
                    "organization",
                    "agent",
                    "conversation",
                    "requested_by_api_key",
                    "requested_role",
                    "call_id",
                    "request_id",
                    "created_at",
                    "updated_at",
                ),
                "classes": ("collapse",),
            },
        ),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    # --- permissions: read-only (the mixin); deciding is the change permission plus a role

    def has_decide_permission(self, request, obj=None):
        opts = self.opts
        may = request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        return may and self.has_view_permission(request, obj)

    # --- displays

    @admin.display(description="proposed arguments")
    def arguments_display(self, obj):
        return _pretty(obj.arguments)

    @admin.display(description="edited arguments (run instead)")
    def edited_arguments_display(self, obj):
        return "—" if obj.edited_arguments is None else _pretty(obj.edited_arguments)

    @admin.display(description="result")
    def result_display(self, obj):
        return _result_html(obj.result)

    # --- deciding, through the services

    @staticmethod
    def _caller(request, draft: Draft) -> Caller:
        return Caller(
            organization_id=str(draft.organization_id),
            role=actor_role(request, draft.organization_id) or "",
            user_id=str(request.user.pk),
        )

    def _decide_all(self, request, queryset, verb: str, decide) -> None:
        done = []
        drafts = list(queryset)
        for draft in drafts:
            try:
                decide(self._caller(request, draft), draft)
                done.append(_label(draft))
            except ApplicationError as exc:
                self.message_user(request, f"{_label(draft)}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {len(done)} draft(s): {'; '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Confirm selected drafts", permissions=["decide"])
    def confirm_selected(self, request, queryset):
        self._decide_all(
            request,
            queryset,
            "Confirmed",
            lambda caller, draft: draft_services.draft_confirm(caller=caller, draft_id=draft.pk),
        )

    @admin.action(description="Reject selected drafts", permissions=["decide"])
    def reject_selected(self, request, queryset):
        self._decide_all(
            request,
            queryset,
            "Rejected",
            lambda caller, draft: draft_services.draft_reject(caller=caller, draft_id=draft.pk),
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        urls = [
            path(
                "<path:object_id>/confirm/",
                self.admin_site.admin_view(require_POST(self.confirm_view)),
                name="{}_{}_confirm".format(*info),
            ),
            path(
                "<path:object_id>/reject/",
                self.admin_site.admin_view(require_POST(self.reject_view)),
                name="{}_{}_reject".format(*info),
            ),
        ]
        return urls + super().get_urls()

    def _decidable(self, request, object_id) -> Draft:
        if not self.has_decide_permission(request):
            raise PermissionDenied
        draft = self.get_object(request, object_id)  # another organization's draft is not found
        if draft is None:
            raise Http404("No such draft.")
        return draft

    def _back(self, draft: Draft) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:agents_draft_change", args=[draft.pk]))

    def confirm_view(self, request, object_id):
        draft = self._decidable(request, object_id)
        form = DraftDecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, " ".join(e for errors in form.errors.values() for e in errors), messages.ERROR)
            return self._back(draft)
        text = form.cleaned_data["edited_arguments"].strip()
        try:
            edited = tool_services.arguments_parse(text) if text else None
            draft = draft_services.draft_confirm(
                caller=self._caller(request, draft),
                draft_id=draft.pk,
                edited_arguments=edited,
                note=form.cleaned_data["note"],
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._back(draft)
        if draft.status == DraftStatus.FAILED:
            self.message_user(request, f"Confirmed “{_label(draft)}”, but it failed: {draft.error}", messages.ERROR)
        elif draft.status == DraftStatus.EXECUTED:
            self.message_user(request, f"Confirmed and executed “{_label(draft)}”.", messages.SUCCESS)
        else:
            self.message_user(request, f"Confirmed “{_label(draft)}”; it runs shortly.", messages.SUCCESS)
        return self._back(draft)

    def reject_view(self, request, object_id):
        draft = self._decidable(request, object_id)
        form = DraftDecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, " ".join(e for errors in form.errors.values() for e in errors), messages.ERROR)
            return self._back(draft)
        try:
            draft = draft_services.draft_reject(
                caller=self._caller(request, draft), draft_id=draft.pk, note=form.cleaned_data["note"]
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._back(draft)
        self.message_user(request, f"Rejected “{_label(draft)}”; it will not run.", messages.SUCCESS)
        return self._back(draft)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.status == DraftStatus.PENDING and self.has_decide_permission(request, obj):
            context["draft_decision"] = {
                "expired": obj.expires_at <= timezone.now(),
                "confirm_url": reverse("admin:agents_draft_confirm", args=[obj.pk]),
                "reject_url": reverse("admin:agents_draft_reject", args=[obj.pk]),
                "note_max_length": DraftDecisionForm.base_fields["note"].max_length,
            }
        return super().render_change_form(request, context, add, change, form_url, obj)
