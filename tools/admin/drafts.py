"""Admin for the tool invocation log (read-only) and drafts.  Drafts are
decided through :mod:`tools.services.drafts`, from the change-list actions or
the form on a draft's page, as the API decides them: the staff user acts with
their role in the draft's organization."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts.admin import (
    OPERATOR_ROLES,
    ReadOnlyAdminMixin,
    RoleGatedAdmin,
    actor_role,
    pretty_json,
)
from accounts.callers import Caller
from agenthub.errors import ApplicationError
from tools.models import Draft, DraftStatus, ToolInvocation
from tools.services import drafts as draft_services
from tools.services import execution as tool_services

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
        return pretty_json(obj.arguments)

    @admin.display(description="result")
    def result_display(self, obj):
        return _result_html(obj.result)


def _result_html(text: str):
    if not text:
        return "—"
    try:
        return pretty_json(json.loads(text))
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
    change_form_template = "admin/tools/draft/change_form.html"
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
        return pretty_json(obj.arguments)

    @admin.display(description="edited arguments (run instead)")
    def edited_arguments_display(self, obj):
        return "—" if obj.edited_arguments is None else pretty_json(obj.edited_arguments)

    @admin.display(description="result")
    def result_display(self, obj):
        return _result_html(obj.result)

    # --- deciding, through the services

    @staticmethod
    def _caller(request, draft: Draft) -> Caller:
        return Caller.from_member(
            organization_id=draft.organization_id,
            role=actor_role(request, draft.organization_id),
            user_id=request.user.pk,
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
        return HttpResponseRedirect(reverse("admin:tools_draft_change", args=[draft.pk]))

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
                "confirm_url": reverse("admin:tools_draft_confirm", args=[obj.pk]),
                "reject_url": reverse("admin:tools_draft_reject", args=[obj.pk]),
                "note_max_length": DraftDecisionForm.base_fields["note"].max_length,
            }
        return super().render_change_form(request, context, add, change, form_url, obj)
