"""A budget's current period and what was spent in it, from Postgres (the
truth; Redis keeps only counters rebuilt from here)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from billing.models import Budget, BudgetPeriod, BudgetScope, UsageDaily, UsageRecord

_SCOPE_FIELD = {BudgetScope.USER: "user_id", BudgetScope.API_KEY: "api_key_id", BudgetScope.AGENT: "agent_id"}


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, UTC
    end: datetime | None  # exclusive; None for a total budget (it never resets)

    @property
    def key(self) -> str:
        return self.start.strftime("%Y%m%d") if self.end else "total"


def budget_period(budget: Budget, at: datetime | None = None) -> Period:
    at = (at or timezone.now()).astimezone(UTC)
    if budget.period == BudgetPeriod.DAY:
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return Period(start, start + timedelta(days=1))
    if budget.period == BudgetPeriod.MONTH:
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return Period(start, end)
    return Period(datetime(2000, 1, 1, tzinfo=UTC), None)


def _scoped(queryset, budget: Budget):
    field = _SCOPE_FIELD.get(budget.scope_kind)
    if field:
        queryset = queryset.filter(**{field: budget.scope_id})
    return queryset.filter(organization_id=budget.organization_id, currency=budget.currency)


def budget_spent(budget: Budget, at: datetime | None = None) -> tuple[Decimal, int]:
    """The money and tokens spent against ``budget`` in its current period,
    from the ledger (whole days from the daily rollup)."""
    period = budget_period(budget, at)
    counts_from = period.start
    if budget.starts_at is not None and budget.starts_at > counts_from:
        counts_from = budget.starts_at
    whole_days_from = counts_from
    if counts_from != counts_from.replace(hour=0, minute=0, second=0, microsecond=0):
        whole_days_from = (counts_from + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rollup = _scoped(UsageDaily.objects.filter(day__gte=whole_days_from.date()), budget)
    if period.end is not None:
        rollup = rollup.filter(day__lt=period.end.date())
    totals = rollup.aggregate(cost=Sum("cost"), inp=Sum("input_tokens"), out=Sum("output_tokens"))
    cost = totals["cost"] or Decimal(0)
    tokens = (totals["inp"] or 0) + (totals["out"] or 0)
    if whole_days_from != counts_from:  # the part day the budget started in, from the ledger
        partial = _scoped(
            UsageRecord.objects.filter(occurred_at__gte=counts_from, occurred_at__lt=whole_days_from), budget
        ).aggregate(cost=Sum("cost"), inp=Sum("input_tokens"), out=Sum("output_tokens"))
        cost += partial["cost"] or Decimal(0)
        tokens += (partial["inp"] or 0) + (partial["out"] or 0)
    return Decimal(cost), int(tokens)
