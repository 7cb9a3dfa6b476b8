"""An agent's tool grants, as an inline on the agent page."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet

from accounts.admin import (
    OPERATOR_ROLES,
    write_organizations,
)
from agenthub.errors import ApplicationError
from agents import selectors
from agents.models import AgentTool
from agents.services import grants as grant_services
from tools.services import catalog as tool_services

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
        allowed = {str(pk) for pk in write_organizations(self.request, OPERATOR_ROLES).values_list("pk", flat=True)}
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
