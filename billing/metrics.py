"""Prometheus metrics of billing: money spent, calls refused by budgets."""

from decimal import Decimal

from prometheus_client import Counter

from agenthub.metrics import tenant_label

llm_cost = Counter(
    "agenthub_llm_cost_total",
    "Money charged for model calls, in the organization's currency (organization shown only with "
    "METRICS_TENANT_LABELS).",
    ["model", "organization", "currency"],
)
budget_blocked = Counter(
    "agenthub_budget_blocked_total", "Model calls refused because a budget had no room.", ["scope"]
)
budget_unchecked = Counter(
    "agenthub_budget_unchecked_total",
    "Model calls run without a budget check because the budget store was unreachable (BILLING_FAIL_OPEN).",
)


def cost_observed(model: str, organization_id, amount: Decimal, currency: str) -> None:
    llm_cost.labels(model=model[:100], organization=tenant_label(str(organization_id)), currency=currency).inc(
        float(amount)
    )


PAYMENTS = Counter("agenthub_payments_total", "Invoice payments by provider and outcome.", ["provider", "status"])
invoices_generated = Counter("agenthub_invoices_generated_total", "Invoices generated.")
