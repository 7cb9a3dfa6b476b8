"""The usage ledger: one row per model call, written once.

:func:`usage_record` prices the call at the price in force when it started,
freezes those unit prices in the row, and adds the row to the daily rollup in
the same transaction.  The call id is the row's idempotency key: a retried
write returns the first row and charges nothing more."""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from billing.calls import ModelCall, ModelUsage
from billing.models import UsageDaily, UsageRecord, UsageStatus
from billing.money import to_ledger
from billing.services.accounts import billing_account_for
from billing.services.prices import price_cached, price_in_force

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # the tokenizer-free rule when a provider reports no usage


def estimate_tokens_of_text(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass(frozen=True)
class Recorded:
    record: UsageRecord
    created: bool


class _Labels:
    """Name snapshots of users and API keys (and organizations' currencies),
    cached briefly: they are written into every row."""

    TTL = 60.0

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[tuple, tuple[float, str]] = {}

    def get(self, kind: str, key: str, load) -> str:
        now = time.monotonic()
        with self._lock:
            hit = self._values.get((kind, key))
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load(key)
        with self._lock:
            self._values[(kind, key)] = (now + self.TTL, value)
        return value

    def peek(self, kind: str, key: str) -> str | None:
        """The cached value, or None (never loads: safe on an event loop)."""
        with self._lock:
            hit = self._values.get((kind, key))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


labels = _Labels()


def _user_label(user_id: str) -> str:
    row = User.objects.filter(pk=user_id).values_list("email", "username").first()
    return (row[0] or row[1]) if row else ""


def _key_label(key_id: str) -> str:
    row = ApiKey.objects.filter(pk=key_id).values_list("name", "prefix").first()
    return f"{row[0]} ({row[1]})" if row else ""


def organization_currency(organization_id) -> str:
    return labels.get("currency", str(organization_id), lambda oid: billing_account_for(organization_id=oid).currency)


def _status(usage: ModelUsage) -> tuple[str, str]:
    if usage.status == "ok":
        return UsageStatus.OK, ""
    if usage.status in ("interrupted", "cancelled"):
        return UsageStatus.INTERRUPTED, usage.status
    return UsageStatus.ERROR, usage.status


_ROLLUP_SQL = """
INSERT INTO billing_usagedaily
    (organization_id, day, agent_id, model, channel, user_id, api_key_id, currency,
     calls, input_tokens, cached_input_tokens, output_tokens, cost)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (organization_id, day, agent_id, model, channel, user_id, api_key_id, currency) DO UPDATE SET
    calls = billing_usagedaily.calls + EXCLUDED.calls,
    input_tokens = billing_usagedaily.input_tokens + EXCLUDED.input_tokens,
    cached_input_tokens = billing_usagedaily.cached_input_tokens + EXCLUDED.cached_input_tokens,
    output_tokens = billing_usagedaily.output_tokens + EXCLUDED.output_tokens,
    cost = billing_usagedaily.cost + EXCLUDED.cost
"""


def _rollup_add(*records: UsageRecord) -> None:
    """Adds ``records`` to the daily rollup: one upsert per rollup row."""
    groups: dict[tuple, list] = {}
    for record in records:
        organization_id = str(record.organization_id)
        if connection.vendor == "sqlite":
            organization_id = organization_id.replace("-", "")  # how Django stores UUIDs there
        key = (
            organization_id,
            record.occurred_at.date(),
            record.agent_id,
            record.model,
            record.channel,
            record.user_id,
            record.api_key_id,
            record.currency,
        )
        totals = groups.setdefault(key, [0, 0, 0, 0, Decimal(0)])
        totals[0] += 1
        totals[1] += record.input_tokens
        totals[2] += record.cached_input_tokens
        totals[3] += record.output_tokens
        totals[4] += Decimal(record.cost)
    with connection.cursor() as cursor:
        for key, (calls, input_tokens, cached, output_tokens, cost) in groups.items():
            cost = cost if connection.vendor == "postgresql" else str(cost)
            cursor.execute(_ROLLUP_SQL, [*key, calls, input_tokens, cached, output_tokens, cost])


def usage_row_ready(call: ModelCall, usage: ModelUsage) -> bool:
    """Whether :func:`usage_row_build` would answer from memory (every
    price and label it needs is cached), so async code may call it on the
    event loop."""
    organization_id = call.organization_id
    if labels.peek("currency", str(organization_id)) is None:
        return False
    if not price_cached(organization_id, usage.model or call.model) or not price_cached(organization_id, call.model):
        return False
    caller = call.caller
    user_id = str(getattr(caller, "user_id", None) or "")
    api_key_id = str(getattr(caller, "api_key_id", None) or "")
    return (not user_id or labels.peek("user", user_id) is not None) and (
        not api_key_id or labels.peek("key", api_key_id) is not None
    )


def usage_row_build(*, call: ModelCall, usage: ModelUsage, occurred_at: datetime | None = None) -> UsageRecord:
    """The call's ledger row, priced at the price in force when it started
    (not saved)."""
    occurred_at = occurred_at or timezone.now()
    currency = organization_currency(call.organization_id)
    quote = price_in_force(organization_id=call.organization_id, model=usage.model, at=occurred_at, currency=currency)
    if quote is None and usage.model != call.model:  # a fallback answered: price the model asked for if unpriced
        quote = price_in_force(
            organization_id=call.organization_id, model=call.model, at=occurred_at, currency=currency
        )
    input_tokens = max(int(usage.prompt_tokens), 0)
    cached = min(max(int(usage.cached_tokens), 0), input_tokens)
    output_tokens = max(int(usage.completion_tokens), 0)
    cost = (
        to_ledger(quote.cost(input_tokens=input_tokens, cached_tokens=cached, output_tokens=output_tokens))
        if quote
        else Decimal(0)
    )
    if quote is None and (input_tokens or output_tokens):
        logger.warning("no %s price in force for model %s; the call is recorded unpriced", currency, usage.model)
    caller = call.caller
    user_id = str(getattr(caller, "user_id", None) or "")
    api_key_id = str(getattr(caller, "api_key_id", None) or "")
    status, error_kind = _status(usage)
    return UsageRecord(
        call_id=call.call_id,
        organization_id=call.organization_id,
        occurred_at=occurred_at,
        agent_id=call.agent_id or "",
        agent_name=(call.agent_name or "")[:200],
        version_id=call.version_id or "",
        version_number=call.version_number,
        subject_kind=call.subject_kind,
        subject_id=call.subject_id or "",
        subject_label=(call.subject_label or "")[:200],
        user_id=user_id,
        user_label=labels.get("user", user_id, _user_label)[:254] if user_id else "",
        api_key_id=api_key_id,
        api_key_label=labels.get("key", api_key_id, _key_label)[:100] if api_key_id else "",
        visitor_id=str(getattr(caller, "visitor_id", "") or "")[:64],
        channel=call.channel,
        model=usage.model or call.model,
        provider=usage.provider,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        estimated=usage.estimated,
        cache_hit=usage.cache_hit,
        currency=currency,
        input_price=quote.input if quote else 0,
        cached_input_price=quote.cached_input if quote else 0,
        output_price=quote.output if quote else 0,
        priced=quote is not None,
        cost=cost,
        latency_ms=usage.latency_ms,
        ttft_ms=usage.ttft_ms,
        status=status,
        error_kind=error_kind[:32],
        request_id=(call.request_id or "")[:64],
        turn_id=call.turn_id or "",
    )


def usage_record(*, call: ModelCall, usage: ModelUsage, occurred_at: datetime | None = None) -> Recorded:
    """Writes the call's ledger row (once) and adds it to the daily rollup.
    A second write of the same call id finds the first row (the insert fails
    on the unique call id) and charges nothing."""
    record = usage_row_build(call=call, usage=usage, occurred_at=occurred_at)
    try:
        with transaction.atomic():
            record.save(force_insert=True)
            _rollup_add(record)
    except IntegrityError:
        existing = UsageRecord.objects.filter(call_id=call.call_id).first()
        if existing is None:
            raise
        return Recorded(existing, False)
    return Recorded(record, True)


_ROW_FIELDS = None


def usage_row_payload(record: UsageRecord) -> dict:
    """A built row as JSON-able fields (for the write-behind journal)."""
    global _ROW_FIELDS
    if _ROW_FIELDS is None:
        _ROW_FIELDS = [f.attname for f in UsageRecord._meta.concrete_fields]
    return {name: getattr(record, name) for name in _ROW_FIELDS}


def usage_rows_apply(payloads: list[dict]) -> None:
    """The journal's applier for ``billing.usage``: writes the rows not
    written yet (the call id decides) and adds them to the daily rollup, in
    the caller's transaction."""
    records = []
    for fields in payloads:
        record = UsageRecord(**fields)
        # JSON gave strings back; the rollup reads these as values.
        if isinstance(record.occurred_at, str):
            record.occurred_at = datetime.fromisoformat(record.occurred_at)
        record.cost = Decimal(str(record.cost))
        records.append(record)
    existing = set(
        UsageRecord.objects.filter(call_id__in=[r.call_id for r in records]).values_list("call_id", flat=True)
    )
    fresh, seen = [], set()
    for record in records:
        if record.call_id not in existing and record.call_id not in seen:
            seen.add(record.call_id)
            fresh.append(record)
    UsageRecord.objects.bulk_create(fresh)
    _rollup_add(*fresh)


def rollup_rebuild(*, organization_id=None, day_from=None, day_to=None) -> int:
    """Rewrites the daily rollup from the ledger (after a bulk import or a
    repair); returns the number of rollup rows written."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    ledger = UsageRecord.objects.all()
    rollup = UsageDaily.objects.all()
    if organization_id is not None:
        ledger, rollup = ledger.filter(organization_id=organization_id), rollup.filter(organization_id=organization_id)
    if day_from is not None:
        ledger, rollup = ledger.filter(occurred_at__date__gte=day_from), rollup.filter(day__gte=day_from)
    if day_to is not None:
        ledger, rollup = ledger.filter(occurred_at__date__lte=day_to), rollup.filter(day__lte=day_to)
    groups = (
        ledger.annotate(day=TruncDate("occurred_at"))
        .values("organization_id", "day", "agent_id", "model", "channel", "user_id", "api_key_id", "currency")
        .annotate(
            n=Count("id"),
            inp=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            out=Sum("output_tokens"),
            total=Sum("cost"),
        )
        .order_by()
    )
    rows = [
        UsageDaily(
            organization_id=g["organization_id"],
            day=g["day"],
            agent_id=g["agent_id"],
            model=g["model"],
            channel=g["channel"],
            user_id=g["user_id"],
            api_key_id=g["api_key_id"],
            currency=g["currency"],
            calls=g["n"],
            input_tokens=g["inp"] or 0,
            cached_input_tokens=g["cached"] or 0,
            output_tokens=g["out"] or 0,
            cost=g["total"] or 0,
        )
        for g in groups.iterator()
    ]
    with transaction.atomic():
        rollup.delete()
        UsageDaily.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
