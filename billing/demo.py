"""Billing's part of ``manage.py seed_demo``: list prices for the configured
models, a monthly budget for the demo organization, last month's usage of the
demo agents and its invoice, so a newcomer sees money move, a budget meter
and an invoice in the admin within minutes.

Prices and the budget are seeded by the seeder registered here; the usage
needs the demo agents, which live in a higher app, so the agents' demo
seeder hands them to :func:`demo_usage_seed`."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from accounts.models import Organization, User
from accounts.roles import Role
from accounts.services_demo import register_demo_seeder
from billing.calls import ModelCall, ModelUsage
from billing.models import Budget, InvoiceStatus, UsageRecord
from billing.services.invoices import invoice_generate, invoice_issue
from billing.services.ledger import usage_record
from billing.services.prices import prices_seed_defaults
from integrations.llm.router import available_models

DEMO_BUDGET = "Demo monthly budget"
DEMO_CALLS = 160
# Small, like the demo's prices: this month's demo calls fill a few percent of it.
DEMO_BUDGET_LIMIT = Decimal("0.05")
DEMO_CALLS_THIS_MONTH = 24  # so the budget meter moves


@register_demo_seeder
@transaction.atomic
def seed_demo_billing(organization: Organization, users: dict[str, User], *, reset: bool = False) -> list[str]:
    prices_seed_defaults([m.name for m in available_models()] + ["mock-model"])
    lines = ["prices       list prices of the configured models — see /admin/billing/price/"]
    budget = Budget.objects.filter(organization=organization, name=DEMO_BUDGET).first()
    if budget is None or reset:
        Budget.objects.update_or_create(
            organization=organization,
            name=DEMO_BUDGET,
            defaults={
                "scope_kind": "organization",
                "scope_id": "",
                "period": "month",
                "currency": "USD",
                "limit_amount": DEMO_BUDGET_LIMIT,
                "action": "block",
                "thresholds": [50, 80, 100],
                "enabled": True,
            },
        )
    lines.append(f"budget       {DEMO_BUDGET}: {DEMO_BUDGET_LIMIT} USD a month, blocking — see /admin/billing/budget/")
    return lines


def last_month(today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def demo_usage_seed(
    organization: Organization, users: dict[str, User], *, agents: list[tuple[str, str, str, int, str]], reset: bool
) -> list[str]:
    """Last month's calls of the demo ``agents`` ((id, name, version id,
    version number, model) each) and a few of this month's, each month once,
    and last month's invoice, issued."""
    start = last_month()
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    line = (
        f"usage        {DEMO_CALLS} calls of the demo agents in {start:%B %Y} and {DEMO_CALLS_THIS_MONTH} this month "
        "— see /api/v1/usage/summary"
    )
    people = [users[role] for role in (Role.MEMBER, Role.OPERATOR, Role.ADMIN) if role in users]
    begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    # The ledger is append-only: once seeded, a month's demo calls stay (reset too).
    _seed_month(organization, agents, people, begin, month_start, DEMO_CALLS)
    _seed_month(organization, agents, people, month_start, datetime.now(UTC), DEMO_CALLS_THIS_MONTH)
    return [line, _demo_invoice(organization, start)]


def _seed_month(organization, agents, people, begin: datetime, end: datetime, calls: int) -> None:
    prefix = f"demo:{organization.pk}:{begin:%Y-%m}:"
    if UsageRecord.objects.filter(organization=organization, call_id__startswith=prefix).exists():
        return
    rng = random.Random(f"{organization.pk}:{begin:%Y-%m}")
    channels = ["websocket", "rest", "openai", "admin"]
    span = max((end - begin).total_seconds(), 1.0)
    for index in range(calls):
        agent_id, agent_name, version_id, version_number, model = rng.choice(agents)
        call = ModelCall(
            call_id=f"{prefix}{index}",
            organization_id=str(organization.pk),
            model=model,
            channel=rng.choice(channels),
            caller=_Caller(str(rng.choice(people).pk)),
            agent_id=agent_id,
            agent_name=agent_name,
            version_id=version_id,
            version_number=version_number,
            subject_kind="conversation",
        )
        usage = ModelUsage(
            model=model,
            prompt_tokens=rng.randint(300, 2400),
            completion_tokens=rng.randint(40, 600),
            latency_ms=round(rng.uniform(400, 2500), 1),
            ttft_ms=round(rng.uniform(80, 400), 1),
            status="ok",
        )
        usage_record(call=call, usage=usage, occurred_at=begin + timedelta(seconds=rng.uniform(0, span - 1)))


def _demo_invoice(organization: Organization, start: date) -> str:
    """Last month's invoice, issued (the existing one when there is one)."""
    result = invoice_generate(organization=organization, period_start=start)
    invoice = result.invoice
    if invoice is None:
        return "invoice      none: no usage last month"
    if invoice.status == InvoiceStatus.DRAFT:
        invoice = invoice_issue(invoice=invoice)
    return (
        f"invoice      {invoice.number} for {start:%B %Y}: {invoice.total} {invoice.currency}, {invoice.status} "
        f"— see /admin/billing/invoice/"
    )


class _Caller:
    def __init__(self, user_id: str):
        self.user_id, self.api_key_id, self.visitor_id = user_id, None, ""
