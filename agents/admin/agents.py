"""Admin for agents and their published versions.

Every write goes through the services (create, update, delete, publish,
deploy, status), so the admin obeys the same rules as the API.  Versions are
read-only.  "Create from template" (linked from the agent change list) renders
an industry template into a new draft agent.
"""

import copy

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from accounts.admin import OPERATOR_ROLES, ReadOnlyAdminMixin, TenantScopedAdmin, actor_role, managed_organization_ids
from accounts.models import Organization
from agenthub.errors import ApplicationError
from agents import catalog, selectors
from agents.admin.grants import AgentToolInline
from agents.definition import BEHAVIOUR_FIELDS
from agents.models import Agent, AgentStatus, AgentVersion
from agents.services import agents as agent_services
from agents.services import publishing, templates

# --- forms ---------------------------------------------------------------------------------


def _model_choices():
    return [(m.name, f"{m.name} ({m.provider}, {m.context_window:,} tokens)") for m in selectors.available_models()]


def _industry_choices():
    return [("", "(none)"), *((i.id, i.name) for i in catalog.industry_list())]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _apply_errors(form: forms.Form, exc: ApplicationError, aliases: dict[str, str] | None = None) -> None:
    """Shows a service error on the form fields it names."""
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not fields:
        form.add_error(None, exc.message)
        return
    for name, errors in fields.items():
        target = (aliases or {}).get(name, name)
        form.add_error(target if target in form.fields else None, errors)


class AgentAdminForm(forms.ModelForm):
    model = forms.ChoiceField(choices=())
    industry = forms.ChoiceField(choices=(), required=False)
    fallback_models = forms.CharField(
        required=False, help_text="Comma-separated model names, tried in order when the model fails."
    )

    class Meta:
        model = Agent
        fields = ["organization", *agent_services.EDITABLE_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from django.conf import settings

        self.fields["model"].choices = _model_choices()
        self.fields["industry"].choices = _industry_choices()
        if self.instance.pk is None:
            self.fields["model"].initial = settings.AGENTHUB_DEFAULT_MODEL
        else:
            self.initial["fallback_models"] = ", ".join(self.instance.fallback_models or [])
        if "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Unique in the organization; derived from the name when left blank."

    def clean_fallback_models(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data.get("fallback_models", "").split(",") if name.strip()]

    def _post_clean(self):
        # The services validate and write (see clean() and AgentAdmin.save_model);
        # the model's own full_clean would refuse the blank slug they derive.
        pass

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        if organization is None or self.errors:
            return cleaned
        candidate = copy.copy(self.instance)
        candidate.organization = organization
        changed = [name for name in agent_services.EDITABLE_FIELDS if name in cleaned]
        if "slug" in changed and not cleaned["slug"]:
            changed.remove("slug")  # derived from the name (new agent) or kept (existing one)
        for name in changed:
            setattr(candidate, name, cleaned[name])
        try:
            agent_services.agent_validate(agent=candidate, changed=changed)
        except ApplicationError as exc:
            _apply_errors(self, exc)
        return cleaned


class AgentFromTemplateForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none())
    template = forms.ChoiceField(choices=())
    name = forms.CharField(max_length=120, help_text="The agent's name.")
    slug = forms.SlugField(max_length=64, required=False, help_text="Derived from the name when left blank.")
    model = forms.ChoiceField(choices=())
    company_name = forms.CharField(max_length=catalog.COMPANY_NAME_MAX)
    tone = forms.ChoiceField(choices=(), required=False)
    goals = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One goal per line; blank for the template's suggested goals.",
    )
    do = forms.CharField(
        label="Always do", widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One item per line."
    )
    dont = forms.CharField(
        label="Never do", widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One item per line."
    )
    extra = forms.CharField(
        label="Additional context",
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        max_length=catalog.EXTRA_MAX,
        help_text="Facts the assistant should know: hours, policies, contacts.",
    )

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        from django.conf import settings

        self.fields["organization"].queryset = organizations
        if organizations.count() == 1:
            self.fields["organization"].initial = organizations.first().pk
        self.fields["template"].choices = [
            (industry.name, [(t.id, t.name) for t in catalog.template_list(industry=industry.id)])
            for industry in catalog.industry_list()
        ]
        self.fields["model"].choices = _model_choices()
        self.fields["model"].initial = settings.AGENTHUB_DEFAULT_MODEL
        self.fields["tone"].choices = [("", "(the template's tone)"), *((t, t.title()) for t in catalog.TONES)]

    def answers(self) -> dict:
        data = self.cleaned_data
        answers = {"company_name": data["company_name"], "do": _lines(data["do"]), "dont": _lines(data["dont"])}
        if data.get("tone"):
            answers["tone"] = data["tone"]
        if _lines(data.get("goals", "")):
            answers["goals"] = _lines(data["goals"])
        if data.get("extra"):
            answers["extra"] = data["extra"]
        return answers


# --- agents ------------------------------------------------------------------------------------


class IndustryListFilter(admin.SimpleListFilter):
    title = "industry"
    parameter_name = "industry"

    def lookups(self, request, model_admin):
        return [("-", "(none)"), *((i.id, i.name) for i in catalog.industry_list())]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "-":
            return queryset.filter(industry="")
        if value:
            return queryset.filter(industry=value)
        return queryset


class AgentVersionInline(admin.TabularInline):
    """Read-only: versions are immutable."""

    model = AgentVersion
    fk_name = "agent"
    extra = 0
    fields = ("number", "is_live", "name", "model", "note", "published_by", "published_at")
    readonly_fields = fields
    ordering = ("-number",)
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True, description="live")
    def is_live(self, obj):
        return obj.agent.live_version_id == obj.pk


@admin.register(Agent)
class AgentAdmin(TenantScopedAdmin):
    staff_roles = OPERATOR_ROLES  # operators build and test agents
    form = AgentAdminForm
    change_list_template = "admin/agents/agent/change_list.html"
    list_display = ("name", "slug", "organization", "status", "model", "industry", "live_version_column", "updated_at")
    list_filter = ("status", IndustryListFilter, "model", "organization")
    list_select_related = ("organization", "live_version")
    search_fields = ("name", "slug", "description")
    ordering = ("organization__name", "name")
    inlines = [AgentVersionInline, AgentToolInline]
    actions = ["publish_selected", "deploy_selected", "enable_selected", "disable_selected"]
    readonly_fields = (
        "status",
        "live_version_display",
        "unpublished_changes",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("organization", "name", "slug", "description", "industry")}),
        ("Model", {"fields": tuple(name for name in BEHAVIOUR_FIELDS if name != "system_prompt")}),
        ("Prompt", {"fields": ("system_prompt",)}),
        (
            "Publishing",
            {
                "fields": ("status", "live_version_display", "unpublished_changes"),
                "description": "Use the actions on the agent list to publish, deploy, enable or disable.",
            },
        ),
        ("History", {"fields": ("created_by", "created_at", "updated_by", "updated_at"), "classes": ("collapse",)}),
    )
    # The live test chat: a panel on the change page that gets a ticket
    # (session auth) and talks to the agent over the chat websocket.
    change_form_template = "admin/agents/agent/change_form.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["test_chat"] = {
                "slug": obj.slug,
                "organization_id": str(obj.organization_id),
                "available": obj.status == "active" and obj.live_version_id is not None,
                "version": obj.live_version.number if obj.live_version_id else None,
                "can_chat": actor_role(request, obj.organization) in ("owner", "admin", "operator"),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # an agent never moves to another organization
            return ("organization", *self.readonly_fields)
        return self.readonly_fields

    # --- displays

    @admin.display(description="live version", ordering="live_version__number")
    def live_version_column(self, obj):
        return f"v{obj.live_version.number}" if obj.live_version else "—"

    @admin.display(description="live version")
    def live_version_display(self, obj):
        version = obj.live_version if obj and obj.pk else None
        if version is None:
            return "Not published"
        url = reverse("admin:agents_agentversion_change", args=[version.pk])
        who = f" by {version.published_by}" if version.published_by else ""
        return format_html(
            '<a href="{}">v{}</a> published {}{}{}',
            url,
            version.number,
            version.published_at.strftime("%Y-%m-%d %H:%M UTC"),
            who,
            f" — {version.note}" if version.note else "",
        )

    @admin.display(description="unpublished changes", boolean=True)
    def unpublished_changes(self, obj):
        if obj is None or obj.pk is None:
            return None
        return selectors.agent_has_unpublished_changes(obj)

    # --- writes through the services

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in agent_services.EDITABLE_FIELDS if name in form.cleaned_data}
        try:
            if change:
                current = Agent.objects.get(pk=obj.pk)
                changed = {name: value for name, value in data.items() if name in form.changed_data}
                if "slug" in changed and not changed["slug"]:
                    changed.pop("slug")
                agent_services.agent_update(agent=current, user=request.user, data=changed)
            else:
                data["slug"] = data.get("slug") or None
                agent = agent_services.agent_create(
                    organization=form.cleaned_data["organization"], user=request.user, **data
                )
                obj.pk = agent.pk
                obj._state.adding = False
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Versions cannot be deleted on their own, only with their agent.
        perms_needed.discard(AgentVersion._meta.verbose_name)
        # Conversations protect the versions they ran against, but they are
        # deleted with their agent (first, by agent_delete): not an obstacle.
        conversation_model = Agent._meta.get_field("conversations").related_model
        conversation = f"{capfirst(conversation_model._meta.verbose_name)}: "
        protected = [item for item in protected if not str(item).startswith(conversation)]
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        agent_services.agent_delete(agent=obj)

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            agent_services.agent_delete(agent=agent)

    def _run(self, request, queryset, verb: str, func) -> None:
        done, failed = [], []
        for agent in queryset.select_related("live_version"):
            try:
                func(agent)
                done.append(agent.name)
            except ApplicationError as exc:
                failed.append(agent.name)
                self.message_user(request, f"{agent.name}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {len(done)} agent(s): {', '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Publish selected agents (new version, made live)", permissions=["change"])
    def publish_selected(self, request, queryset):
        self._run(request, queryset, "Published", lambda a: publishing.agent_publish(agent=a, user=request.user))

    @admin.action(description="Deploy selected agents (publish and activate)", permissions=["change"])
    def deploy_selected(self, request, queryset):
        self._run(request, queryset, "Deployed", lambda a: publishing.agent_deploy(agent=a, user=request.user))

    @admin.action(description="Enable selected agents", permissions=["change"])
    def enable_selected(self, request, queryset):
        self._run(
            request,
            queryset,
            "Enabled",
            lambda a: agent_services.agent_set_status(agent=a, user=request.user, status=AgentStatus.ACTIVE),
        )

    @admin.action(description="Disable selected agents", permissions=["change"])
    def disable_selected(self, request, queryset):
        self._run(
            request,
            queryset,
            "Disabled",
            lambda a: agent_services.agent_set_status(agent=a, user=request.user, status=AgentStatus.DISABLED),
        )

    # --- create from template

    def get_urls(self):
        urls = [
            path(
                "from-template/",
                self.admin_site.admin_view(self.from_template_view),
                name="agents_agent_from_template",
            ),
        ]
        return urls + super().get_urls()

    def _organizations(self, request):
        if request.user.is_superuser:
            return Organization.objects.filter(is_active=True)
        return Organization.objects.filter(pk__in=managed_organization_ids(request.user, OPERATOR_ROLES))

    def from_template_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        organizations = self._organizations(request)
        form = AgentFromTemplateForm(request.POST or None, organizations=organizations)
        preview = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            aliases = {f"answers.{name}": name for name in templates.ANSWER_KEYS}
            try:
                if "_preview" in request.POST:
                    preview = templates.template_preview(template_id=data["template"], answers=form.answers())
                else:
                    agent = templates.agent_create_from_template(
                        organization=data["organization"],
                        user=request.user,
                        template_id=data["template"],
                        name=data["name"],
                        slug=data["slug"] or None,
                        model=data["model"],
                        answers=form.answers(),
                    )
                    self.log_addition(request, agent, [{"added": {}}])
                    self.message_user(
                        request,
                        f"Created the draft agent “{agent.name}” from a template. Review it, then publish or deploy.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:agents_agent_change", args=[agent.pk]))
            except ApplicationError as exc:
                _apply_errors(form, exc, aliases)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Create an agent from a template",
            "form": form,
            "preview": preview,
            "industries": [(i, catalog.template_list(industry=i.id)) for i in catalog.industry_list()],
        }
        return TemplateResponse(request, "admin/agents/agent/from_template.html", context)


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Read-only: a version is an immutable record of what was published."""

    staff_roles = OPERATOR_ROLES  # operators build and test agents
    list_display = ("agent", "number", "organization", "model", "published_by", "published_at")
    list_filter = ("organization", "model")
    list_select_related = ("agent", "organization", "published_by")
    search_fields = ("agent__name", "agent__slug", "note")
    ordering = ("agent__name", "-number")
    fields = (
        "organization",
        "agent",
        "number",
        "name",
        *(name for name in BEHAVIOUR_FIELDS if name != "system_prompt"),
        "tools",
        "system_prompt",  # last: it is long
        "note",
        "published_by",
        "published_at",
    )
    readonly_fields = fields
