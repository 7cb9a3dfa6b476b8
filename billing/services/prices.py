"""Prices: which price is in force for a model at a moment, and the writes
that add new prices without ever rewriting what was charged."""

import bisect
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Role, role_at_least
from agenthub.errors import ApplicationError, ConflictError, ForbiddenError
from billing.models import Price
from billing.money import MAX_UNIT_PRICE, CurrencyError, normalize_currency
from billing.services.accounts import billing_account_for

# A new price may start at most this far in the past (clock skew between the
# operator and the server); earlier would re-price calls already charged.
PAST_TOLERANCE = timedelta(minutes=1)


@dataclass(frozen=True)
class Quote:
    """The unit prices (per million tokens) a call is charged at."""

    price_id: str
    currency: str
    input: Decimal
    cached_input: Decimal
    output: Decimal

    def cost(self, *, input_tokens: int, cached_tokens: int, output_tokens: int) -> Decimal:
        cached = min(max(cached_tokens, 0), input_tokens)
        total = (
            Decimal(input_tokens - cached) * self.input
            + Decimal(cached) * self.cached_input
            + Decimal(output_tokens) * self.output
        )
        return total / Decimal(1_000_000)


@dataclass(frozen=True)
class _Schedule:
    starts: list  # sorted effective_from timestamps
    quotes: list  # the quote starting at each


class _PriceCache:
    """Per-process price schedules per (organization, model), refreshed after
    BILLING_CONFIG_CACHE_SECONDS and dropped at once by this process's own
    writes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, tuple[_Schedule, _Schedule]]] = {}

    def get(self, organization_id: str, model: str) -> tuple[_Schedule, _Schedule]:
        key = (organization_id, model)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        schedules = (_load(organization_id, model), _load(None, model))
        with self._lock:
            self._entries[key] = (now + settings.BILLING_CONFIG_CACHE_SECONDS, schedules)
        return schedules

    def fresh(self, organization_id: str, model: str) -> bool:
        with self._lock:
            entry = self._entries.get((organization_id, model))
        return entry is not None and entry[0] > time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _PriceCache()


def price_cached(organization_id, model: str) -> bool:
    """Whether :func:`price_in_force` would answer from memory (async callers
    may then call it on the event loop)."""
    return _cache.fresh(str(organization_id), model)


def _load(organization_id, model: str) -> _Schedule:
    rows = Price.objects.filter(organization_id=organization_id, model=model).order_by("effective_from")
    starts, quotes = [], []
    for price in rows:
        starts.append(price.effective_from)
        quotes.append(
            Quote(
                price_id=str(price.pk),
                currency=price.currency,
                input=price.input_per_million,
                cached_input=(
                    price.cached_input_per_million
                    if price.cached_input_per_million is not None
                    else price.input_per_million
                ),
                output=price.output_per_million,
            )
        )
    return _Schedule(starts, quotes)


def _in_force(schedule: _Schedule, at: datetime) -> Quote | None:
    index = bisect.bisect_right(schedule.starts, at) - 1
    return schedule.quotes[index] if index >= 0 else None


def price_in_force(*, organization_id, model: str, at: datetime | None = None, currency: str) -> Quote | None:
    """The organization's own price for ``model`` at ``at`` (now by default),
    else the global one; only a price in the organization's ``currency``
    counts.  None when the model has no price."""
    at = at or timezone.now()
    own, shared = _cache.get(str(organization_id), model)
    for schedule in (own, shared):
        quote = _in_force(schedule, at)
        if quote is not None and quote.currency == currency:
            return quote
    return None


def prices_changed() -> None:
    _cache.clear()


def _unit_price(value, field: str, *, required: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise ApplicationError(f"{field} is required.", code="invalid_price")
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ApplicationError(f"{field} must be a decimal number.", code="invalid_price") from exc
    if not amount.is_finite() or amount < 0:
        raise ApplicationError(f"{field} must be zero or more.", code="invalid_price")
    if amount > MAX_UNIT_PRICE:
        raise ApplicationError(
            f"{field} is {amount} per million tokens; the most accepted is {MAX_UNIT_PRICE}.", code="invalid_price"
        )
    if amount != amount.quantize(Decimal("0.000001")):
        raise ApplicationError(f"{field} has more than 6 decimal places.", code="invalid_price")
    return amount


def check_unit_price(value, field: str) -> Decimal | None:
    return _unit_price(value, field, required=False)


def check_start(start: datetime) -> None:
    if timezone.is_naive(start) or start < timezone.now() - PAST_TOLERANCE:
        raise ApplicationError(
            "A price cannot start in the past: calls already charged keep the prices they were charged at.",
            code="price_in_past",
        )


def _check_writer(actor_role: str | None, organization_id) -> None:
    if organization_id is None:
        if actor_role != "superuser":
            raise ForbiddenError("Only the platform's superusers set global prices.")
    elif not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only admins and owners can set prices.")


def price_create(
    *,
    organization_id,
    actor_role: str | None,
    model: str,
    input_per_million,
    output_per_million,
    cached_input_per_million=None,
    currency: str | None = None,
    effective_from: datetime | None = None,
    note: str = "",
    allow_past: bool = False,
) -> Price:
    """A new price for ``model`` from ``effective_from`` (now by default).
    Prices already in force are never edited: a change is a new price."""
    _check_writer(actor_role, organization_id)
    model = (model or "").strip()
    if not model or len(model) > 100:
        raise ApplicationError("model must be a model name of 1 to 100 characters.", code="invalid_price")
    now = timezone.now()
    effective_from = effective_from or now
    if timezone.is_naive(effective_from):
        raise ApplicationError("effective_from needs a time zone (e.g. 2026-12-01T00:00:00Z).", code="invalid_price")
    if not allow_past and effective_from < now - PAST_TOLERANCE:
        raise ApplicationError(
            "A price cannot start in the past: calls already charged keep the prices they were charged at. "
            "Give an effective_from from now on.",
            code="price_in_past",
        )
    try:
        code = normalize_currency(currency or _currency_of(organization_id))
    except CurrencyError as exc:
        raise ApplicationError(str(exc), code="invalid_currency") from exc
    if organization_id is not None and code != _currency_of(organization_id):
        raise ApplicationError(
            f"The organization is billed in {_currency_of(organization_id)}; its prices must be too.",
            code="invalid_currency",
        )
    price = Price(
        organization_id=organization_id,
        model=model,
        currency=code,
        input_per_million=_unit_price(input_per_million, "input_per_million"),
        cached_input_per_million=_unit_price(cached_input_per_million, "cached_input_per_million", required=False),
        output_per_million=_unit_price(output_per_million, "output_per_million"),
        effective_from=effective_from,
        note=(note or "")[:200],
    )
    try:
        with transaction.atomic():
            price.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"A price for {model} already starts at {effective_from.isoformat()}; choose another effective_from.",
            code="price_overlap",
        ) from exc
    transaction.on_commit(prices_changed)
    prices_changed()
    return price


def _currency_of(organization_id) -> str:
    if organization_id is None:
        return settings.BILLING_DEFAULT_CURRENCY
    return billing_account_for(organization_id=organization_id).currency


def _check_not_in_force(price: Price) -> None:
    if price.effective_from <= timezone.now():
        raise ConflictError(
            "This price is already in force and calls were charged at it; add a new price with a later "
            "effective_from instead.",
            code="price_in_force",
        )


def price_update(*, price: Price, actor_role: str | None, **fields) -> Price:
    """Changes a price that has not started yet."""
    _check_writer(actor_role, price.organization_id)
    _check_not_in_force(price)
    for name in ("input_per_million", "output_per_million"):
        if name in fields:
            setattr(price, name, _unit_price(fields[name], name))
    if "cached_input_per_million" in fields:
        price.cached_input_per_million = _unit_price(
            fields["cached_input_per_million"], "cached_input_per_million", required=False
        )
    if "note" in fields:
        price.note = (fields["note"] or "")[:200]
    if "effective_from" in fields:
        start = fields["effective_from"]
        if start is None or timezone.is_naive(start) or start < timezone.now() - PAST_TOLERANCE:
            raise ApplicationError("effective_from must be a time from now on, with a time zone.", code="price_in_past")
        price.effective_from = start
    try:
        with transaction.atomic():
            price.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"A price for {price.model} already starts at {price.effective_from.isoformat()}.", code="price_overlap"
        ) from exc
    prices_changed()
    return price


def price_delete(*, price: Price, actor_role: str | None) -> None:
    """Withdraws a price that has not started yet."""
    _check_writer(actor_role, price.organization_id)
    _check_not_in_force(price)
    price.delete()
    prices_changed()


# List prices (USD per million tokens: input, cached input, output) of the
# models AgentHub is configured with out of the box.  The offline model and
# the mock server's model get a small price so the demo shows money moving.
LIST_PRICES: dict[str, tuple[str, str, str]] = {
    "offline": ("0.10", "0.05", "0.40"),
    "mock-model": ("0.10", "0.05", "0.40"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
}
LIST_PRICES_FROM = datetime(2020, 1, 1, tzinfo=UTC)


def prices_seed_defaults(models: list[str]) -> tuple[list[Price], list[str]]:
    """A global USD price from LIST_PRICES for each of ``models`` that has no
    global price yet.  Returns the prices created and the models left without
    a price (no list price known)."""
    created, unknown = [], []
    for model in dict.fromkeys(models):
        if Price.objects.filter(organization__isnull=True, model=model).exists():
            continue
        if model not in LIST_PRICES:
            unknown.append(model)
            continue
        input_price, cached_price, output_price = LIST_PRICES[model]
        created.append(
            price_create(
                organization_id=None,
                actor_role="superuser",
                model=model,
                currency="USD",
                input_per_million=input_price,
                cached_input_per_million=cached_price,
                output_per_million=output_price,
                effective_from=LIST_PRICES_FROM,
                note="List price (seeded)",
                allow_past=True,
            )
        )
    return created, unknown
