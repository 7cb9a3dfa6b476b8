"""Budgets: create, change and remove them (admins and owners), what one has
spent in its current period, and acknowledging threshold alerts.

A change applies to the next model call in this process at once and in every
other process within ``BILLING_CONFIG_CACHE_SECONDS``."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Membership, Organization
from accounts.roles import Role, role_at_least
from agenthub.errors import ApplicationError, ConflictError, ForbiddenError
from billing.models import Budget, BudgetAlert, BudgetScope
from billing.money import MAX_LIMIT, CurrencyError, normalize_currency
from billing.services.accounts import billing_account_for
from billing.services.metering import budgets_cache_clear
from billing.services.periods import budget_period, budget_spent

MAX_BUDGETS_PER_ORGANIZATION = 200


@dataclass(frozen=True)
class BudgetState:
    period_start: datetime
    resets_at: datetime | None
    spent: Decimal
    remaining: Decimal
    tokens: int


def budget_state(budget: Budget, at: datetime | None = None) -> BudgetState:
    period = budget_period(budget, at)
    start = period.start
    if budget.starts_at is not None and budget.starts_at > start:
        start = budget.starts_at
    spent, tokens = budget_spent(budget, at)
    return BudgetState(start, period.end, spent, max(budget.limit_amount - spent, Decimal(0)), tokens)


def _check_admin(actor_role: str) -> None:
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only admins and owners can change budgets.")


def check_scope(organization: Organization, kind: str, scope_id: str) -> tuple[str, str]:
    """The scope's id, checked against the organization, and a readable label."""
    if kind == BudgetScope.ORGANIZATION:
        if scope_id:
            raise ApplicationError("An organization budget has no scope_id; leave it empty.", code="invalid_scope")
        return "", organization.name
    if not scope_id:
        raise ApplicationError(f"A {kind} budget needs the {kind}'s id in scope_id.", code="invalid_scope")
    try:
        key = str(uuid.UUID(str(scope_id)))
    except (ValueError, TypeError, AttributeError):
        raise ApplicationError(f"scope_id '{scope_id}' is not a {kind} id.", code="invalid_scope") from None
    if kind == BudgetScope.USER:
        membership = Membership.objects.filter(organization=organization, user_id=key).select_related("user").first()
        if membership is None:
            raise ApplicationError("scope_id is not a member of this organization.", code="invalid_scope")
        return key, membership.user.email or membership.user.get_username()
    if kind == BudgetScope.API_KEY:
        api_key = ApiKey.objects.filter(organization=organization, pk=key).first()
        if api_key is None:
            raise ApplicationError("scope_id is not an API key of this organization.", code="invalid_scope")
        return key, api_key.name
    # An agent: billing sits below the agents app and keeps the id it is given.
    return key, ""


def check_thresholds(values) -> list[int]:
    if values is None:
        return [50, 80, 100]
    result = sorted({int(v) for v in values})
    if any(not 1 <= v <= 100 for v in result):
        raise ApplicationError("thresholds are whole percentages from 1 to 100.", code="invalid_thresholds")
    return result


def check_limit(value) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite() or amount <= 0:
        raise ApplicationError("limit_amount must be more than zero.", code="invalid_limit")
    if amount > MAX_LIMIT:
        raise ApplicationError(f"limit_amount can be at most {MAX_LIMIT}.", code="invalid_limit")
    return amount


def _changed() -> None:
    budgets_cache_clear()
    transaction.on_commit(budgets_cache_clear)


def budget_create(*, organization: Organization, actor_role: str, **fields) -> Budget:
    _check_admin(actor_role)
    if Budget.objects.filter(organization=organization).count() >= MAX_BUDGETS_PER_ORGANIZATION:
        raise ConflictError(
            f"An organization has at most {MAX_BUDGETS_PER_ORGANIZATION} budgets.", code="too_many_budgets"
        )
    account_currency = billing_account_for(organization_id=organization.pk).currency
    try:
        currency = normalize_currency(fields.get("currency") or account_currency)
    except CurrencyError as exc:
        raise ApplicationError(str(exc), code="invalid_currency") from exc
    if currency != account_currency:
        raise ApplicationError(
            f"The organization is billed in {account_currency}; its budgets count in it too.", code="invalid_currency"
        )
    kind = fields.get("scope_kind") or BudgetScope.ORGANIZATION
    scope_id, label = check_scope(organization, kind, fields.get("scope_id") or "")
    budget = Budget.objects.create(
        organization=organization,
        name=fields["name"],
        scope_kind=kind,
        scope_id=scope_id,
        scope_label=label,
        period=fields.get("period") or "month",
        currency=currency,
        limit_amount=check_limit(fields["limit_amount"]),
        limit_tokens=fields.get("limit_tokens"),
        action=fields.get("action") or "block",
        thresholds=check_thresholds(fields.get("thresholds")),
        enabled=fields.get("enabled", True),
        starts_at=timezone.now(),
    )
    _changed()
    return budget


def budget_update(*, budget: Budget, actor_role: str, **fields) -> Budget:
    _check_admin(actor_role)
    if "limit_amount" in fields:
        budget.limit_amount = check_limit(fields["limit_amount"])
    if "thresholds" in fields:
        budget.thresholds = check_thresholds(fields["thresholds"])
    for name in ("name", "period", "limit_tokens", "action", "enabled"):
        if name in fields:
            setattr(budget, name, fields[name])
    budget.save()
    _changed()
    return budget


def budget_delete(*, budget: Budget, actor_role: str) -> None:
    _check_admin(actor_role)
    budget.delete()
    _changed()


def budget_alert_acknowledge(*, alert: BudgetAlert, actor_role: str) -> BudgetAlert:
    _check_admin(actor_role)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.save(update_fields=["acknowledged_at"])
    return alert
