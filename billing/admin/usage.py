"""Prices, the usage ledger (read-only), budgets with what they have spent,
alerts and billing accounts.  Writes go through billing's services, with the
staff user's role in the row's organization."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.utils.html import format_html

from accounts.admin import ADMIN_ROLES, ReadOnlyAdminMixin, RoleGatedAdmin, actor_role
from agenthub.errors import ApplicationError
from billing.models import BillingAccount, Budget, BudgetAlert, Price, UsageRecord
from billing.money import money_str
from billing.services import budgets as budget_services
from billing.services import prices as price_services
from billing.services.budgets import budget_state


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = (
            "organization",
            "model",
            "currency",
            "input_per_million",
            "cached_input_per_million",
            "output_per_million",
            "effective_from",
            "note",
        )

    def clean(self):
        data = super().clean()
        try:
            for name in ("input_per_million", "output_per_million", "cached_input_per_million"):
                if data.get(name) is not None:
                    price_services.check_unit_price(data[name], name)
            start = data.get("effective_from")
            if start is not None and (not self.instance.pk or "effective_from" in self.changed_data):
                price_services.check_start(start)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Price)
class PriceAdmin(RoleGatedAdmin):
    """List prices (no organization) are the platform's, set by superusers;
    an organization's admins add its own.  A price in force is never edited:
    a change is a new price from a later time."""

    staff_roles = ADMIN_ROLES
    form = PriceForm
    list_display = (
        "model",
        "organization",
        "currency",
        "input_per_million",
        "cached_input_per_million",
        "output_per_million",
        "effective_from",
    )
    list_filter = ("model", "currency")
    search_fields = ("model",)

    def get_queryset(self, request):
        queryset = Price.objects.all()
        if request.user.is_superuser:
            return queryset
        own = super().get_queryset(request)
        return queryset.filter(pk__in=own.values("pk")) | queryset.filter(organization__isnull=True)

    def _may_write(self, request, obj) -> bool:
        if obj is None:
            return True
        if obj.organization_id is None:
            return request.user.is_superuser
        return actor_role(request, obj.organization_id) in ADMIN_ROLES or request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)

    def save_model(self, request, obj, form, change):
        role = "superuser" if request.user.is_superuser and obj.organization_id is None else None
        if obj.organization_id is not None:
            role = actor_role(request, obj.organization_id)
        try:
            if change:
                fields = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
                price_services.price_update(price=Price.objects.get(pk=obj.pk), actor_role=role, **fields)
            else:
                created = price_services.price_create(
                    organization_id=obj.organization_id,
                    actor_role=role,
                    model=obj.model,
                    currency=obj.currency,
                    input_per_million=obj.input_per_million,
                    cached_input_per_million=obj.cached_input_per_million,
                    output_per_million=obj.output_per_million,
                    effective_from=obj.effective_from,
                    note=obj.note,
                )
                obj.pk = created.pk
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_model(self, request, obj):
        role = "superuser" if obj.organization_id is None else actor_role(request, obj.organization_id)
        price_services.price_delete(price=obj, actor_role=role)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, RoleGatedAdmin):
    """The ledger: one row per model call, written by the meter."""

    staff_roles = ADMIN_ROLES
    list_display = (
        "occurred_at",
        "agent_name",
        "model",
        "channel",
        "user_label",
        "input_tokens",
        "output_tokens",
        "cost_display",
        "status",
        "estimated",
    )
    list_filter = ("channel", "model", "status", "estimated", "cache_hit", "currency")
    search_fields = ("agent_name", "user_label", "api_key_label", "call_id", "request_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    @admin.display(description="cost", ordering="cost")
    def cost_display(self, obj):
        return f"{money_str(obj.cost)} {obj.currency}"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if changelist is not None:
            totals = changelist.queryset.aggregate(
                calls=Count("id"), cost=Sum("cost"), inp=Sum("input_tokens"), out=Sum("output_tokens")
            )
            currencies = sorted(set(changelist.queryset.values_list("currency", flat=True).distinct()[:3]))
            cost = Decimal(totals["cost"] or 0).quantize(Decimal("0.0001"))
            response.context_data["title"] = (
                f"Usage: {totals['calls']:,} calls · {totals['inp'] or 0:,} input and {totals['out'] or 0:,} output "
                f"tokens · {money_str(cost)} {'/'.join(currencies)} charged"
            )
        return response


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = (
            "organization",
            "name",
            "scope_kind",
            "scope_id",
            "period",
            "limit_amount",
            "limit_tokens",
            "action",
            "thresholds",
            "enabled",
        )

    def clean(self):
        data = super().clean()
        try:
            if data.get("limit_amount") is not None:
                budget_services.check_limit(data["limit_amount"])
            data["thresholds"] = budget_services.check_thresholds(data.get("thresholds"))
            if not self.instance.pk and data.get("organization"):
                budget_services.check_scope(data["organization"], data.get("scope_kind"), data.get("scope_id") or "")
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Budget)
class BudgetAdmin(RoleGatedAdmin):
    staff_roles = ADMIN_ROLES
    form = BudgetForm
    list_display = ("name", "organization", "applies_to", "period", "limit", "spent", "used", "action", "enabled")
    list_filter = ("period", "action", "enabled", "scope_kind")
    search_fields = ("name", "scope_label")

    @admin.display(description="limit")
    def limit(self, obj):
        return f"{money_str(obj.limit_amount)} {obj.currency}"

    @admin.display(description="spent this period")
    def spent(self, obj):
        return f"{money_str(budget_state(obj).spent.quantize(Decimal('0.0001')))} {obj.currency}"

    @admin.display(description="applies to")
    def applies_to(self, obj):
        if obj.scope_kind == "organization":
            return "the whole organization"
        return f"{obj.get_scope_kind_display()}: {obj.scope_label or obj.scope_id}"

    @admin.display(description="used")
    def used(self, obj):
        state = budget_state(obj)
        percent = min(float(state.spent / obj.limit_amount * 100), 100.0) if obj.limit_amount else 0.0
        colour = "#15803d" if percent < 80 else ("#d97706" if percent < 100 else "#b91c1c")
        return format_html(
            '<div style="width:110px;height:8px;background:#e4e7eb;border-radius:4px;display:inline-block">'
            '<div style="width:{}%;height:8px;background:{};border-radius:4px"></div></div> {} %',
            f"{percent:.0f}",
            colour,
            f"{percent:.1f}" if percent < 10 else f"{percent:.0f}",
        )

    def save_model(self, request, obj, form, change):
        role = actor_role(request, obj.organization_id)
        data = {name: form.cleaned_data[name] for name in form.fields if name in form.cleaned_data}
        organization = data.pop("organization")
        try:
            if change:
                for name in ("scope_kind", "scope_id"):
                    data.pop(name, None)
                saved = budget_services.budget_update(budget=Budget.objects.get(pk=obj.pk), actor_role=role, **data)
            else:
                saved = budget_services.budget_create(organization=organization, actor_role=role, **data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            raise PermissionDenied(exc.message) from exc
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        budget_services.budget_delete(budget=obj, actor_role=actor_role(request, obj.organization_id))


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdminMixin, RoleGatedAdmin):
    staff_roles = ADMIN_ROLES
    list_display = ("budget", "threshold", "metric", "spent", "limit", "period_start", "created_at", "acknowledged_at")
    list_filter = ("threshold", "metric")


@admin.register(BillingAccount)
class BillingAccountAdmin(RoleGatedAdmin):
    staff_roles = ADMIN_ROLES
    list_display = ("organization", "currency", "tax_rate", "billing_name", "next_invoice_number")
    fields = (
        "organization",
        "currency",
        "tax_rate",
        "billing_name",
        "billing_email",
        "billing_address",
        "payment_terms_days",
        "invoice_prefix",
        "next_invoice_number",
    )
    readonly_fields = ("organization", "next_invoice_number")

    def has_add_permission(self, request):
        return False  # made with the organization's first billing activity

    def has_delete_permission(self, request, obj=None):
        return False
