"""Prices, the usage ledger and its daily rollup, budgets, invoices, payments.

Billing sits just above accounts and integrations: it keeps ids and name
snapshots of agents, conversations and workflow runs (never foreign keys into
the apps above it), so a ledger row outlives what it was charged for."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.models import Organization, TenantOwned

MONEY = {"max_digits": 20, "decimal_places": 10}  # ledger precision
BILLED = {"max_digits": 16, "decimal_places": 2}  # what people pay (minor units)
UNIT_PRICE = {"max_digits": 16, "decimal_places": 6}  # per million tokens


class BillingAccount(TenantOwned):
    """An organization's billing settings: its currency, tax rate, invoice
    numbering and who the invoices are addressed to."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="billing_account")
    currency = models.CharField(max_length=3, default="USD")
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=0, help_text="Percent, e.g. 20 for 20 %.")
    billing_name = models.CharField(max_length=200, blank=True)
    billing_email = models.EmailField(blank=True)
    billing_address = models.TextField(blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    invoice_prefix = models.CharField(max_length=16, default="INV")
    # The number the next invoice gets; taken under a row lock, so numbers
    # have no gaps even when invoices are generated concurrently.
    next_invoice_number = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Billing account of {self.organization}"


class Price(TenantOwned):
    """A model's price from ``effective_from`` until the next price of the same
    model (and organization) starts.  Global when ``organization`` is empty;
    an organization's own price overrides the global one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    model = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, default="USD")
    input_per_million = models.DecimalField(**UNIT_PRICE)
    cached_input_per_million = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    output_per_million = models.DecimalField(**UNIT_PRICE)
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "model", "effective_from"],
                name="billing_price_unique_start",
                condition=Q(organization__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["model", "effective_from"],
                name="billing_price_unique_start_global",
                condition=Q(organization__isnull=True),
            ),
        ]
        indexes = [models.Index(fields=["model", "effective_from"], name="billing_price_model_from")]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"


class UsageStatus(models.TextChoices):
    OK = "ok"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class UsageRecord(TenantOwned):
    """One model call: the ledger.  Append-only: a row is written once, with
    the unit prices it was charged at frozen in it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call_id = models.CharField(max_length=120, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_records")
    occurred_at = models.DateTimeField(db_index=True)
    # Who and what, as ids and name snapshots (no foreign keys upward).
    agent_id = models.CharField(max_length=36, blank=True)
    agent_name = models.CharField(max_length=200, blank=True)
    version_id = models.CharField(max_length=36, blank=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    subject_kind = models.CharField(max_length=32, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    subject_label = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=36, blank=True)
    user_label = models.CharField(max_length=254, blank=True)
    api_key_id = models.CharField(max_length=36, blank=True)
    api_key_label = models.CharField(max_length=100, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=32)
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(default=False, help_text="The provider reported no usage; counted by rule.")
    cache_hit = models.BooleanField(
        default=False,
        db_default=False,  # rows written by SQL (manage.py usage_generate) too
        help_text="Replayed from the agent's response cache: no model call, no cost.",
    )
    currency = models.CharField(max_length=3)
    input_price = models.DecimalField(**UNIT_PRICE, default=0)
    cached_input_price = models.DecimalField(**UNIT_PRICE, default=0)
    output_price = models.DecimalField(**UNIT_PRICE, default=0)
    priced = models.BooleanField(default=True, help_text="False when no price was in force for the model.")
    cost = models.DecimalField(**MONEY, default=0)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=32, default=UsageStatus.OK)
    error_kind = models.CharField(max_length=32, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    turn_id = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="billing_usage_org_time"),
            models.Index(fields=["organization", "user_id", "occurred_at"], name="billing_usage_org_user"),
            models.Index(fields=["organization", "api_key_id", "occurred_at"], name="billing_usage_org_key"),
            models.Index(fields=["organization", "agent_id", "occurred_at"], name="billing_usage_org_agent"),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("The usage ledger is append-only: a charged call is never rewritten.")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.model} × {self.input_tokens}+{self.output_tokens} tokens"


class UsageDaily(TenantOwned):
    """The ledger summed per day, organization, agent, model, channel, user,
    API key and currency; kept up to date in the transaction that writes each
    ledger row, so summaries over millions of calls read a few rows."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent_id = models.CharField(max_length=36, default="", blank=True)
    model = models.CharField(max_length=100)
    channel = models.CharField(max_length=32)
    user_id = models.CharField(max_length=36, default="", blank=True)
    api_key_id = models.CharField(max_length=36, default="", blank=True)
    currency = models.CharField(max_length=3)
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "agent_id", "model", "channel", "user_id", "api_key_id", "currency"],
                name="billing_usagedaily_key",
            )
        ]
        indexes = [models.Index(fields=["organization", "day"], name="billing_usagedaily_org_day")]


class BudgetScope(models.TextChoices):
    ORGANIZATION = "organization"
    USER = "user"
    API_KEY = "api_key"
    AGENT = "agent"


class BudgetPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


class BudgetAction(models.TextChoices):
    BLOCK = "block"
    WARN = "warn"


class Budget(TenantOwned):
    """A limit on spending (and optionally tokens) for a scope named by kind
    and id, per day, per month or in total; ``block`` refuses calls that could
    exceed it, ``warn`` only records the threshold crossings."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=100)
    scope_kind = models.CharField(max_length=16, choices=BudgetScope.choices, default=BudgetScope.ORGANIZATION)
    scope_id = models.CharField(max_length=36, blank=True, help_text="Empty for the organization scope.")
    scope_label = models.CharField(max_length=254, blank=True)
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    currency = models.CharField(max_length=3, default="USD")
    limit_amount = models.DecimalField(max_digits=18, decimal_places=6)
    limit_tokens = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=8, choices=BudgetAction.choices, default=BudgetAction.BLOCK)
    thresholds = models.JSONField(default=list, blank=True, help_text="Percentages, e.g. [50, 80, 100].")
    enabled = models.BooleanField(default=True)
    # A budget created mid-period counts from its start: spend before it
    # does not count against it.
    starts_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["organization", "enabled"], name="billing_budget_org_enabled")]

    def __str__(self) -> str:
        return self.name


class BudgetAlert(TenantOwned):
    """A warning threshold crossed, recorded once per budget, period and
    threshold."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    metric = models.CharField(max_length=8, default="amount")  # "amount" or "tokens"
    spent = models.DecimalField(**MONEY)
    limit = models.DecimalField(max_digits=20, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold", "metric"], name="billing_budgetalert_once"
            )
        ]


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"


class Invoice(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invoices")
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=40)
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    period_start = models.DateField()
    period_end = models.DateField(help_text="The last day of the period (inclusive).")
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**BILLED, default=0)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    tax = models.DecimalField(**BILLED, default=0)
    total = models.DecimalField(**BILLED, default=0)
    amount_paid = models.DecimalField(**BILLED, default=0)
    # The ledger's exact cost for the period, before rounding to cents.
    ledger_cost = models.DecimalField(**MONEY, default=0)
    bill_to = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="billing_invoice_unique_sequence"),
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=~Q(status="void"),
                name="billing_invoice_one_per_period",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def balance_due(self):
        return self.total - self.amount_paid


class InvoiceLine(models.Model):
    """The ledger of a period grouped by model, agent and the unit prices in
    force (a price change mid-period makes two lines)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=300)
    model = models.CharField(max_length=100)
    agent_id = models.CharField(max_length=36, blank=True)
    agent_name = models.CharField(max_length=200, blank=True)
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    input_price = models.DecimalField(**UNIT_PRICE, default=0)
    cached_input_price = models.DecimalField(**UNIT_PRICE, default=0)
    output_price = models.DecimalField(**UNIT_PRICE, default=0)
    cost = models.DecimalField(**MONEY, default=0)  # exact, from the ledger
    amount = models.DecimalField(**BILLED, default=0)  # billed, in minor units

    class Meta:
        ordering = ["invoice", "position"]

    def __str__(self) -> str:
        return self.description


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Payment(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=16)  # "manual", "stripe"
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount = models.DecimalField(**BILLED)
    currency = models.CharField(max_length=3)
    external_id = models.CharField(max_length=255, blank=True, help_text="The provider's id (e.g. a PaymentIntent).")
    reference = models.CharField(max_length=200, blank=True, help_text="A bank reference, a note.")
    checkout_url = models.URLField(max_length=2000, blank=True)
    recorded_by_id = models.CharField(max_length=36, blank=True)
    recorded_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                condition=~Q(external_id=""),
                name="billing_payment_unique_external",
            )
        ]


class WebhookEvent(models.Model):
    """A payment provider's event, kept by id so a redelivery is a no-op."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="billing_webhookevent_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"
