"""Serializers of the billing API: the ledger, summaries, prices, budgets,
the billing account, invoices and payments.

Money goes out as decimal strings (never floats); input serializers are
strict (an unknown field is a 400) and the services hold the rules."""

from rest_framework import serializers

from agenthub.api.serializers import StrictSerializer
from billing.models import (
    BillingAccount,
    Budget,
    BudgetAction,
    BudgetAlert,
    BudgetPeriod,
    BudgetScope,
    Invoice,
    InvoiceLine,
    Payment,
    Price,
    UsageRecord,
)
from billing.money import MAX_LIMIT, money_str


class MoneyField(serializers.DecimalField):
    """A Decimal as a string without exponent or trailing zeros."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 30)
        kwargs.setdefault("decimal_places", 10)
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return money_str(value)


# --- the ledger ---------------------------------------------------------------------------------


class UsageRecordSerializer(serializers.ModelSerializer):
    cost = MoneyField()
    input_price = MoneyField(help_text="Per million input tokens, frozen at the call.")
    cached_input_price = MoneyField()
    output_price = MoneyField()

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "call_id",
            "occurred_at",
            "agent_id",
            "agent_name",
            "version_id",
            "version_number",
            "subject_kind",
            "subject_id",
            "subject_label",
            "user_id",
            "user_label",
            "api_key_id",
            "api_key_label",
            "visitor_id",
            "channel",
            "model",
            "provider",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "estimated",
            "cache_hit",
            "currency",
            "input_price",
            "cached_input_price",
            "output_price",
            "priced",
            "cost",
            "latency_ms",
            "ttft_ms",
            "status",
            "error_kind",
            "request_id",
        ]
        read_only_fields = fields


class UsageTotalsSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = MoneyField()


class UsageGroupSerializer(UsageTotalsSerializer):
    key = serializers.CharField(help_text="The day (YYYY-MM-DD), or the id or name of what is grouped.")
    label = serializers.CharField(help_text="A readable name of the group (a snapshot from the ledger).")
    currency = serializers.CharField()


class UsageSummarySerializer(serializers.Serializer):
    group_by = serializers.CharField()
    date_from = serializers.DateField(source="start", allow_null=True)
    date_to = serializers.DateField(source="end", allow_null=True)
    totals = serializers.DictField(child=UsageTotalsSerializer(), help_text="Totals by currency.")
    groups = UsageGroupSerializer(many=True)


# --- prices -------------------------------------------------------------------------------------


class PriceSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    input_per_million = MoneyField()
    cached_input_per_million = MoneyField(allow_null=True)
    output_per_million = MoneyField()

    class Meta:
        model = Price
        fields = [
            "id",
            "scope",
            "model",
            "currency",
            "input_per_million",
            "cached_input_per_million",
            "output_per_million",
            "effective_from",
            "note",
            "created_at",
        ]
        read_only_fields = fields

    def get_scope(self, price) -> str:
        return "global" if price.organization_id is None else "organization"


class PriceWriteSerializer(StrictSerializer):
    model = serializers.CharField(max_length=100)
    currency = serializers.CharField(max_length=3, required=False)
    input_per_million = serializers.DecimalField(max_digits=16, decimal_places=6, min_value=0)
    cached_input_per_million = serializers.DecimalField(
        max_digits=16, decimal_places=6, min_value=0, required=False, allow_null=True
    )
    output_per_million = serializers.DecimalField(max_digits=16, decimal_places=6, min_value=0)
    effective_from = serializers.DateTimeField(required=False, help_text="From now on; now when left out.")
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class PriceUpdateSerializer(PriceWriteSerializer):
    model = None
    currency = None
    input_per_million = serializers.DecimalField(max_digits=16, decimal_places=6, min_value=0, required=False)
    output_per_million = serializers.DecimalField(max_digits=16, decimal_places=6, min_value=0, required=False)


# --- budgets ------------------------------------------------------------------------------------


class BudgetSerializer(serializers.ModelSerializer):
    limit_amount = MoneyField()
    period_start = serializers.SerializerMethodField()
    resets_at = serializers.SerializerMethodField()
    spent = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    tokens_spent = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "scope_kind",
            "scope_id",
            "scope_label",
            "period",
            "currency",
            "limit_amount",
            "limit_tokens",
            "action",
            "thresholds",
            "enabled",
            "starts_at",
            "period_start",
            "resets_at",
            "spent",
            "remaining",
            "tokens_spent",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _state(self, budget):
        from billing.services.budgets import budget_state

        cache = self.context.setdefault("_budget_states", {})
        if budget.pk not in cache:
            cache[budget.pk] = budget_state(budget)
        return cache[budget.pk]

    def get_period_start(self, budget) -> str:
        return self._state(budget).period_start.isoformat().replace("+00:00", "Z")

    def get_resets_at(self, budget) -> str | None:
        end = self._state(budget).resets_at
        return end.isoformat().replace("+00:00", "Z") if end else None

    def get_spent(self, budget) -> str:
        return money_str(self._state(budget).spent)

    def get_remaining(self, budget) -> str:
        return money_str(self._state(budget).remaining)

    def get_tokens_spent(self, budget) -> int:
        return self._state(budget).tokens


class BudgetWriteSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scope_kind = serializers.ChoiceField(choices=BudgetScope.choices, default=BudgetScope.ORGANIZATION)
    scope_id = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")
    period = serializers.ChoiceField(choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    currency = serializers.CharField(max_length=3, required=False)
    limit_amount = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=0, max_value=MAX_LIMIT)
    limit_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**15)
    action = serializers.ChoiceField(choices=BudgetAction.choices, default=BudgetAction.BLOCK)
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100), required=False, max_length=10
    )
    enabled = serializers.BooleanField(required=False, default=True)


class BudgetUpdateSerializer(BudgetWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)
    scope_kind = None
    scope_id = None
    currency = None
    period = serializers.ChoiceField(choices=BudgetPeriod.choices, required=False)
    limit_amount = serializers.DecimalField(
        max_digits=18, decimal_places=6, min_value=0, max_value=MAX_LIMIT, required=False
    )
    action = serializers.ChoiceField(choices=BudgetAction.choices, required=False)
    enabled = serializers.BooleanField(required=False)


class BudgetAlertSerializer(serializers.ModelSerializer):
    budget_name = serializers.CharField(source="budget.name", read_only=True)
    spent = MoneyField()
    limit = MoneyField()

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "budget_name",
            "period_start",
            "threshold",
            "metric",
            "spent",
            "limit",
            "created_at",
            "acknowledged_at",
        ]
        read_only_fields = fields


# --- the billing account ---------------------------------------------------------------------------


class BillingAccountSerializer(serializers.ModelSerializer):
    tax_rate = serializers.DecimalField(max_digits=6, decimal_places=3, min_value=0, max_value=100, required=False)

    class Meta:
        model = BillingAccount
        fields = [
            "currency",
            "tax_rate",
            "billing_name",
            "billing_email",
            "billing_address",
            "payment_terms_days",
            "invoice_prefix",
            "next_invoice_number",
            "updated_at",
        ]
        read_only_fields = ["next_invoice_number", "updated_at"]


class BillingAccountWriteSerializer(StrictSerializer):
    currency = serializers.CharField(max_length=3, required=False)
    tax_rate = serializers.DecimalField(max_digits=6, decimal_places=3, min_value=0, max_value=100, required=False)
    billing_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    billing_email = serializers.EmailField(required=False, allow_blank=True)
    billing_address = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    invoice_prefix = serializers.RegexField(r"^[A-Za-z0-9-]{1,16}$", required=False)


# --- invoices and payments ----------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.ModelSerializer):
    input_price = MoneyField()
    cached_input_price = MoneyField()
    output_price = MoneyField()
    cost = MoneyField(help_text="Exact, from the ledger.")
    amount = MoneyField(help_text="Billed, in the currency's minor unit.")

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "description",
            "model",
            "agent_id",
            "agent_name",
            "calls",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "input_price",
            "cached_input_price",
            "output_price",
            "cost",
            "amount",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    subtotal = MoneyField()
    tax_rate = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    amount_paid = MoneyField()
    balance_due = MoneyField()
    ledger_cost = MoneyField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "period_start",
            "period_end",
            "currency",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "amount_paid",
            "balance_due",
            "ledger_cost",
            "bill_to",
            "issued_at",
            "due_date",
            "paid_at",
            "voided_at",
            "created_at",
        ]
        read_only_fields = fields


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines"]
        read_only_fields = fields


class InvoiceGenerateSerializer(StrictSerializer):
    period = serializers.RegexField(
        r"^\d{4}-\d{2}$", help_text="The month, e.g. 2026-11.", error_messages={"invalid": "Give a month as YYYY-MM."}
    )
    issue = serializers.BooleanField(required=False, default=False)


class PaymentSerializer(serializers.ModelSerializer):
    amount = MoneyField()
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "invoice",
            "invoice_number",
            "provider",
            "status",
            "amount",
            "currency",
            "external_id",
            "reference",
            "checkout_url",
            "recorded_by_label",
            "created_at",
            "succeeded_at",
        ]
        read_only_fields = fields


class PayRequestSerializer(StrictSerializer):
    provider = serializers.ChoiceField(choices=[("manual", "manual"), ("stripe", "stripe")])
    amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=0, required=False, help_text="Manual payments: the amount received."
    )
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True)
