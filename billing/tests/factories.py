"""Ledger rows, prices and invoices for billing's tests."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.models import Invoice, InvoiceLine, Price, UsageDaily, UsageRecord
from billing.money import to_ledger, token_cost
from billing.services.ledger import rollup_rebuild

_calls = itertools.count(1)


def list_price(model="mock-model", inp="1.25", out="2.50", **fields):
    values = {
        "organization": None,
        "model": model,
        "currency": "USD",
        "input_per_million": Decimal(inp),
        "output_per_million": Decimal(out),
        "effective_from": datetime(2020, 1, 1, tzinfo=UTC),
    }
    values.update(fields)
    return Price.objects.create(**values)


def usage_row(organization, *, at=None, model="mock-model", inp=1000, out=100, ip="1.25", op="2.50", **fields):
    """One ledger row priced like the meter prices it."""
    ip, op = Decimal(ip), Decimal(op)
    values = {
        "call_id": f"test:{next(_calls)}",
        "organization": organization,
        "occurred_at": at or datetime.now(UTC) - timedelta(minutes=5),
        "channel": "rest",
        "model": model,
        "input_tokens": inp,
        "output_tokens": out,
        "currency": "USD",
        "input_price": ip,
        "output_price": op,
        "cost": to_ledger(token_cost(inp, ip) + token_cost(out, op)),
    }
    values.update(fields)
    return UsageRecord.objects.create(**values)


def rollup(organization) -> None:
    UsageDaily.objects.filter(organization=organization).delete()
    rollup_rebuild(organization_id=organization.pk)


def issued_invoice(organization, *, total="100.00", currency="USD", period=(2026, 10), sequence=None, **fields):
    year, month = period
    sequence = sequence or Invoice.objects.filter(organization=organization).count() + 1
    invoice = Invoice.objects.create(
        organization=organization,
        sequence=sequence,
        number=f"INV-{year}-{sequence:05d}",
        status=fields.pop("status", "issued"),
        period_start=datetime(year, month, 1).date(),
        period_end=(datetime(year, month, 28)).date(),
        currency=currency,
        subtotal=Decimal(total),
        total=Decimal(total),
        **fields,
    )
    InvoiceLine.objects.create(invoice=invoice, position=1, description="mock-model · Support", amount=Decimal(total))
    return invoice
