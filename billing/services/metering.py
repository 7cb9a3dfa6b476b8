"""The budget gate and the usage meter the runtime is handed.

Before a model call, :meth:`Metering.check` finds the budgets that apply to
it (the organization's, the caller's user or API key, the agent), prices the
call's worst case (its prompt, estimated without a tokenizer, plus every
output token it may write, at the price in force) and reserves that in every
budget at once, atomically (:mod:`billing.reservations`).  A blocking budget
without room refuses the call with ``budget_exceeded`` before it reaches the
model.  After the call, :meth:`Metering.record` writes the ledger row (the
truth, in Postgres), replaces the reservation with the actual cost, and
records warning thresholds crossed.  So concurrent calls can never together
spend more than a budget allows, unless a call uses more tokens than its
worst case was estimated at.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import redis.exceptions
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agenthub.db import db
from agenthub.errors import ApplicationError
from billing import metrics, reservations
from billing.calls import Charge, ModelCall, ModelUsage, Reservation
from billing.models import Budget, BudgetAction, BudgetAlert, BudgetScope
from billing.money import from_redis_units, money_str, to_redis_units
from billing.services.ledger import (
    labels,
    organization_currency,
    usage_record,
    usage_row_build,
    usage_row_payload,
    usage_row_ready,
)
from billing.services.periods import Period, budget_period, budget_spent
from billing.services.prices import price_cached, price_in_force, prices_changed

logger = logging.getLogger(__name__)

# A reservation outlives the longest possible call, then lapses by itself.
HOLD_MARGIN_SECONDS = 60
TOTAL_COUNTER_TTL = 35 * 86400  # a total budget's counter, refreshed by use


@dataclass(frozen=True)
class _Budget:
    id: str
    name: str
    scope_kind: str
    scope_id: str
    period: str
    currency: str
    limit_amount: Decimal
    limit_tokens: int | None
    block: bool
    thresholds: tuple[int, ...]
    starts_at: datetime | None
    model: Budget  # for the period and spend helpers (never saved from here)

    def applies_to(self, call: ModelCall) -> bool:
        caller = call.caller
        if self.scope_kind == BudgetScope.ORGANIZATION:
            return True
        if self.scope_kind == BudgetScope.USER:
            return bool(getattr(caller, "user_id", None)) and str(caller.user_id) == self.scope_id
        if self.scope_kind == BudgetScope.API_KEY:
            return bool(getattr(caller, "api_key_id", None)) and str(caller.api_key_id) == self.scope_id
        if self.scope_kind == BudgetScope.AGENT:
            return bool(call.agent_id) and call.agent_id == self.scope_id
        return False


class _BudgetCache:
    """Each organization's enabled budgets, per process, for
    BILLING_CONFIG_CACHE_SECONDS (cleared at once by this process's writes)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, tuple[_Budget, ...]]] = {}

    def get(self, organization_id: str) -> tuple[float, tuple[_Budget, ...]] | None:
        with self._lock:
            entry = self._entries.get(organization_id)
        return entry if entry is not None and entry[0] > time.monotonic() else None

    def put(self, organization_id: str, budgets: tuple[_Budget, ...]) -> None:
        with self._lock:
            self._entries[organization_id] = (time.monotonic() + settings.BILLING_CONFIG_CACHE_SECONDS, budgets)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_budgets = _BudgetCache()


def budgets_cache_clear() -> None:
    _budgets.clear()


def billing_caches_clear() -> None:
    """Forget every cached price, budget and label, and the in-process
    counters (tests; a process that changed billing data at a low level)."""
    _budgets.clear()
    prices_changed()
    labels.clear()
    reservations.reset_local_state()


def _load_budgets(organization_id: str) -> tuple[_Budget, ...]:
    rows = Budget.objects.filter(organization_id=organization_id, enabled=True)
    return tuple(
        _Budget(
            id=str(b.pk),
            name=b.name,
            scope_kind=b.scope_kind,
            scope_id=b.scope_id,
            period=b.period,
            currency=b.currency,
            limit_amount=b.limit_amount,
            limit_tokens=b.limit_tokens,
            block=b.action == BudgetAction.BLOCK,
            thresholds=tuple(sorted({int(t) for t in (b.thresholds or []) if 0 < int(t) <= 100})),
            starts_at=b.starts_at,
            model=b,
        )
        for b in rows
    )


def _counter_ttl(period: Period, now: datetime) -> int:
    if period.end is None:
        return TOTAL_COUNTER_TTL
    return int((period.end - now).total_seconds()) + 86400


def budget_exceeded_error(budget: _Budget, period: Period, refusal: reservations.Refusal, worst: Decimal):
    period_word = {"day": "today", "month": "this month", "total": "in total"}[budget.period]
    resets = period.end.isoformat().replace("+00:00", "Z") if period.end else None
    if refusal.metric == "tokens":
        spent_text = f"{refusal.spent} of {budget.limit_tokens} tokens used {period_word}"
        limit, spent, reserved = budget.limit_tokens, refusal.spent, refusal.reserved
    else:
        spent_amount = from_redis_units(refusal.spent)
        limit, spent, reserved = (
            money_str(budget.limit_amount),
            money_str(spent_amount),
            money_str(from_redis_units(refusal.reserved)),
        )
        spent_text = f"{spent_amount.quantize(Decimal('0.01'))} of {budget.limit_amount.normalize():f} {budget.currency} spent {period_word}"
    message = f"The budget '{budget.name}' has no room for this call: {spent_text}"
    message += f"; it resets at {resets}." if resets else "; it does not reset."
    metrics.budget_blocked.labels(scope=budget.scope_kind).inc()
    return ApplicationError(
        message,
        code="budget_exceeded",
        status_code=402,
        details={
            "budget_id": budget.id,
            "budget": budget.name,
            "scope": budget.scope_kind,
            "scope_id": budget.scope_id,
            "metric": refusal.metric,
            "limit": limit,
            "spent": spent,
            "reserved": reserved,
            "call_worst_case": money_str(worst) if refusal.metric == "amount" else None,
            "currency": budget.currency,
            "period": budget.period,
            "period_start": period.start.isoformat().replace("+00:00", "Z"),
            "resets_at": resets,
        },
    )


def billing_unavailable_error() -> ApplicationError:
    return ApplicationError(
        "Budgets cannot be checked right now (the budget store is unreachable), so the model was not called. "
        "Try again shortly.",
        code="billing_unavailable",
        status_code=503,
    )


class Metering:
    """The runtime's budget gate (:meth:`check`) and usage meter
    (:meth:`record`)."""

    async def _budgets_for(self, organization_id: str) -> tuple[_Budget, ...]:
        cached = _budgets.get(organization_id)
        if cached is not None:
            return cached[1]
        budgets = await db(_load_budgets, organization_id)
        _budgets.put(organization_id, budgets)
        return budgets

    async def check(self, call: ModelCall) -> Reservation | None:
        """Reserves the call's worst case in every budget that applies, or
        raises ``budget_exceeded`` (402) without reserving anything."""
        budgets = [b for b in await self._budgets_for(call.organization_id) if b.applies_to(call)]
        if not budgets:
            return None
        now = timezone.now()
        currency = await _currency(call.organization_id)
        budgets = [b for b in budgets if b.currency == currency]
        if not budgets:
            return None
        quote = (
            price_in_force(organization_id=call.organization_id, model=call.model, at=now, currency=currency)
            if price_cached(call.organization_id, call.model)
            else await db(
                price_in_force, organization_id=call.organization_id, model=call.model, at=now, currency=currency
            )
        )
        max_output = call.max_output_tokens or settings.BILLING_DEFAULT_MAX_OUTPUT_TOKENS
        worst_tokens = max(call.prompt_tokens_estimate, 0) + max_output
        worst = (
            quote.cost(input_tokens=max(call.prompt_tokens_estimate, 0), cached_tokens=0, output_tokens=max_output)
            if quote
            else Decimal(0)
        )
        units = to_redis_units(worst, round_up=True)
        periods = [budget_period(b.model, now) for b in budgets]
        holds = [
            reservations.Hold(
                key=reservations.period_key(b.id, p.key),
                limit_units=to_redis_units(b.limit_amount),
                limit_tokens=b.limit_tokens if b.limit_tokens is not None else -1,
                block=b.block,
                units=units,
                tokens=worst_tokens,
                ttl=_counter_ttl(p, now),
            )
            for b, p in zip(budgets, periods, strict=True)
        ]
        hold_seconds = settings.CHAT_TURN_TIMEOUT_SECONDS + HOLD_MARGIN_SECONDS
        try:
            for _attempt in range(len(holds) + 2):
                try:
                    refusal, generations = await reservations.reserve(call.call_id, holds, hold_seconds=hold_seconds)
                    break
                except reservations.Missing as missing:
                    await self._rebuild(budgets[missing.index], periods[missing.index], holds[missing.index], now)
            else:  # pragma: no cover - counters vanishing faster than they are rebuilt
                raise billing_unavailable_error()
        except ApplicationError:
            raise
        except Exception as exc:
            if not _is_store_failure(exc):
                raise
            if settings.BILLING_FAIL_OPEN:
                logger.warning("budget store unreachable; call %s runs unchecked (BILLING_FAIL_OPEN)", call.call_id)
                metrics.budget_unchecked.inc()
                return None
            logger.error("budget store unreachable; call %s refused", call.call_id)
            raise billing_unavailable_error() from exc
        if refusal is not None:
            raise budget_exceeded_error(budgets[refusal.index], periods[refusal.index], refusal, worst)
        return Reservation(
            call_id=call.call_id,
            currency=currency,
            holds=[(h.key, b, g) for h, b, g in zip(holds, budgets, generations, strict=True)],
            cost_units=units,
            tokens=worst_tokens,
        )

    async def _rebuild(self, budget: _Budget, period: Period, hold: reservations.Hold, now: datetime) -> None:
        spent, tokens = await db(budget_spent, budget.model, now)
        await reservations.initialize(hold.key, spent_units=to_redis_units(spent), tokens=tokens, ttl=hold.ttl)

    async def _write(self, call: ModelCall, usage: ModelUsage):
        """The ledger row, written (``(row, created)``)."""
        recorded = await db(usage_record, call=call, usage=usage)
        return recorded.record, recorded.created

    async def record(self, call: ModelCall, usage: ModelUsage, reservation: Reservation | None = None) -> Charge:
        """Writes the ledger row, settles the reservation with the actual
        cost, and records warning thresholds crossed."""
        row, created = await self._write(call, usage)
        if created and row.cost:
            metrics.cost_observed(row.model, row.organization_id, row.cost, row.currency)
        if reservation is not None and reservation.holds:
            actual_units = to_redis_units(row.cost) if created else 0
            actual_tokens = (row.input_tokens + row.output_tokens) if created else 0
            try:
                settled = await reservations.settle(
                    call.call_id, [(key, actual_units, actual_tokens, gen) for key, _b, gen in reservation.holds]
                )
            except Exception as exc:
                if not _is_store_failure(exc):
                    raise
                logger.error("budget store unreachable; the reservation of call %s lapses by itself", call.call_id)
                settled = []
            crossings = []
            for (_key, budget, _gen), result in zip(reservation.holds, settled, strict=False):
                if result.counted and budget.thresholds:
                    crossings += _crossed(budget, result, actual_units, actual_tokens)
            if crossings:
                await db(_alerts_record, crossings, row.occurred_at)
        return Charge(amount=row.cost, currency=row.currency, usage_id=str(row.pk), priced=row.priced)


USAGE_JOURNAL_KIND = "billing.usage"


class WriteBehindMetering(Metering):
    """The same gate and meter, with the ledger row written behind
    (:mod:`agenthub.journal`): priced here from the cached prices, its cost
    settled against the budgets at once, the row itself written in a batch
    soon after.  A call id journaled twice is written once."""

    async def _write(self, call: ModelCall, usage: ModelUsage):
        from agenthub import journal

        if usage_row_ready(call, usage):
            row = usage_row_build(call=call, usage=usage)
        else:  # a price or label not cached yet: loaded (and cached) in a thread
            row = await db(usage_row_build, call=call, usage=usage)
        await journal.append(USAGE_JOURNAL_KIND, usage_row_payload(row))
        return row, True


def _crossed(budget: _Budget, settled: reservations.Settled, units: int, tokens: int) -> list[tuple]:
    crossings = []
    limit_units = to_redis_units(budget.limit_amount)
    before, after = settled.spent - units, settled.spent
    for threshold in budget.thresholds:
        mark = limit_units * threshold / 100
        if before < mark <= after:
            crossings.append((budget, threshold, "amount", from_redis_units(after), budget.limit_amount))
    if budget.limit_tokens:
        before, after = settled.tokens - tokens, settled.tokens
        for threshold in budget.thresholds:
            mark = budget.limit_tokens * threshold / 100
            if before < mark <= after:
                crossings.append((budget, threshold, "tokens", Decimal(after), Decimal(budget.limit_tokens)))
    return crossings


def _alerts_record(crossings: list[tuple], at: datetime) -> None:
    for budget, threshold, metric, spent, limit in crossings:
        period = budget_period(budget.model, at)
        try:
            with transaction.atomic():
                BudgetAlert.objects.create(
                    organization_id=budget.model.organization_id,
                    budget_id=budget.id,
                    period_start=period.start,
                    threshold=threshold,
                    metric=metric,
                    spent=spent,
                    limit=limit,
                )
        except IntegrityError:
            continue  # already recorded this period
        logger.warning("budget %s crossed %s%% of its %s limit (%s of %s)", budget.id, threshold, metric, spent, limit)


async def _currency(organization_id: str) -> str:
    return labels.peek("currency", str(organization_id)) or await db(organization_currency, organization_id)


def _is_store_failure(exc: BaseException) -> bool:
    return isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | OSError)


METERING = Metering()
WRITE_BEHIND_METERING = WriteBehindMetering()
