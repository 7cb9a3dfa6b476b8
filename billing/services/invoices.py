"""Invoices: the ledger of a calendar month rolled into lines, numbered
without gaps, issued, voided.  (Payments and the move to ``paid`` are
billing/services/payments.py.)

Generation reads the period's ledger in one aggregate query (grouped by
model, agent and the unit prices charged), rounds the lines to the currency's
minor unit so that they sum exactly to the ledger's total rounded once
(largest remainder), and takes the next number under a lock on the billing
account, so concurrent runs neither skip a number nor make a second invoice
for a period."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Organization
from agenthub.errors import ApplicationError, ConflictError
from billing.metrics import invoices_generated
from billing.models import BillingAccount, Invoice, InvoiceLine, InvoiceStatus, UsageRecord
from billing.money import minor_unit, to_minor
from billing.services.accounts import billing_account_for


class InvoicePeriodError(ApplicationError):
    code = "invalid_period"


class InvoiceStateError(ConflictError):
    code = "invoice_state"


@dataclass(frozen=True)
class Generated:
    invoice: Invoice | None
    created: bool


def parse_period(value: str) -> date:
    """``2026-11`` → 2026-11-01; a clear error for anything else."""
    try:
        year, month = (int(part) for part in str(value).split("-"))
        return date(year, month, 1)
    except (ValueError, TypeError):
        raise InvoicePeriodError(f"'{value}' is not a month; give it as YYYY-MM, e.g. 2026-11.") from None


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def previous_month(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def check_period(period_start: date) -> None:
    if period_start.day != 1:
        raise InvoicePeriodError("An invoice period starts on the first of a month.")
    if next_month(period_start) > timezone.now().astimezone(UTC).date():
        raise InvoicePeriodError(
            f"{period_start:%Y-%m} has not ended yet; invoices are made for months that are over.",
            details={"period": f"{period_start:%Y-%m}"},
        )


def _bounds(period_start: date) -> tuple[datetime, datetime]:
    start = datetime(period_start.year, period_start.month, 1, tzinfo=UTC)
    end_day = next_month(period_start)
    return start, datetime(end_day.year, end_day.month, 1, tzinfo=UTC)


def _ledger_lines(organization_id, currency: str, start: datetime, end: datetime) -> list[dict]:
    return list(
        UsageRecord.objects.filter(
            organization_id=organization_id, currency=currency, occurred_at__gte=start, occurred_at__lt=end
        )
        .values("model", "agent_id", "input_price", "cached_input_price", "output_price")
        .annotate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            cached_input_tokens=Sum("cached_input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by("model", "agent_id", "input_price", "output_price", "cached_input_price")
    )


def allocate(costs: list[Decimal], currency: str) -> list[Decimal]:
    """Each cost rounded to the minor unit so that the amounts sum exactly to
    the total rounded once: round every cost down, then give the cents left
    over to the largest remainders (ties to the earlier line)."""
    unit = minor_unit(currency)
    total = to_minor(sum(costs, Decimal(0)), currency)
    floors = [c.quantize(unit, rounding=ROUND_FLOOR) for c in costs]
    left = int(((total - sum(floors, Decimal(0))) / unit).to_integral_value())
    order = sorted(range(len(costs)), key=lambda i: (-(costs[i] - floors[i]), i))
    for i in order[: max(left, 0)]:
        floors[i] += unit
    return floors


def _agent_names(organization_id, agent_ids: set[str], start, end) -> dict[str, str]:
    names = {}
    rows = UsageRecord.objects.filter(organization_id=organization_id, occurred_at__gte=start, occurred_at__lt=end)
    for agent_id in agent_ids:
        if agent_id:
            names[agent_id] = (
                rows.filter(agent_id=agent_id).order_by("-occurred_at").values_list("agent_name", flat=True).first()
                or ""
            )
    return names


def _number(account: BillingAccount, period_start: date, sequence: int) -> str:
    return f"{account.invoice_prefix}-{period_start.year}-{sequence:05d}"


def invoice_generate(*, organization: Organization, period_start: date) -> Generated:
    """The organization's invoice for the month starting ``period_start``: the
    existing one if there is one, a new draft otherwise, or none when the
    month has no usage."""
    check_period(period_start)
    existing = Invoice.objects.filter(organization=organization, period_start=period_start).exclude(
        status=InvoiceStatus.VOID
    )
    found = existing.first()
    if found is not None:
        return Generated(found, False)
    account = billing_account_for(organization_id=organization.pk)
    start, end = _bounds(period_start)
    groups = _ledger_lines(organization.pk, account.currency, start, end)
    if not groups:
        return Generated(None, False)
    names = _agent_names(organization.pk, {g["agent_id"] for g in groups}, start, end)
    costs = [Decimal(g["cost"] or 0) for g in groups]
    amounts = allocate(costs, account.currency)
    ledger_cost = sum(costs, Decimal(0))
    subtotal = sum(amounts, Decimal(0))
    tax = to_minor(subtotal * account.tax_rate / Decimal(100), account.currency)
    try:
        with transaction.atomic():
            account = BillingAccount.objects.select_for_update().get(pk=account.pk)
            found = existing.first()  # made by a concurrent run while we waited for the lock
            if found is not None:
                return Generated(found, False)
            sequence = account.next_invoice_number
            invoice = Invoice.objects.create(
                organization=organization,
                sequence=sequence,
                number=_number(account, period_start, sequence),
                period_start=period_start,
                period_end=next_month(period_start) - timedelta(days=1),
                currency=account.currency,
                subtotal=subtotal,
                tax_rate=account.tax_rate,
                tax=tax,
                total=subtotal + tax,
                ledger_cost=ledger_cost,
                bill_to={
                    "name": account.billing_name or organization.name,
                    "email": account.billing_email,
                    "address": account.billing_address,
                    "organization": organization.slug,
                },
            )
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    invoice=invoice,
                    position=position,
                    description=_describe(group, names.get(group["agent_id"], "")),
                    model=group["model"],
                    agent_id=group["agent_id"],
                    agent_name=names.get(group["agent_id"], ""),
                    calls=group["calls"],
                    input_tokens=group["input_tokens"] or 0,
                    cached_input_tokens=group["cached_input_tokens"] or 0,
                    output_tokens=group["output_tokens"] or 0,
                    input_price=group["input_price"],
                    cached_input_price=group["cached_input_price"],
                    output_price=group["output_price"],
                    cost=cost,
                    amount=amount,
                )
                for position, (group, cost, amount) in enumerate(zip(groups, costs, amounts, strict=True), start=1)
            )
            account.next_invoice_number = sequence + 1
            account.save(update_fields=["next_invoice_number", "updated_at"])
    except IntegrityError:
        # Another process made the period's invoice between our check and insert.
        return Generated(existing.get(), False)
    invoices_generated.inc()
    return Generated(invoice, True)


def _describe(group: dict, agent_name: str) -> str:
    who = agent_name or ("no agent" if not group["agent_id"] else group["agent_id"][:8])
    return f"{group['model']} · {who}"[:300]


def invoice_issue(*, invoice: Invoice) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != InvoiceStatus.DRAFT:
            raise InvoiceStateError(
                f"Invoice {invoice.number} is {invoice.status}; only a draft can be issued.",
                details={"status": invoice.status},
            )
        account = billing_account_for(organization_id=invoice.organization_id)
        invoice.status = InvoiceStatus.ISSUED
        invoice.issued_at = timezone.now()
        invoice.due_date = invoice.issued_at.date() + timedelta(days=account.payment_terms_days)
        if invoice.total <= 0:  # less than a cent of usage: nothing to pay
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, invoice.issued_at
        invoice.save(update_fields=["status", "issued_at", "due_date", "paid_at", "updated_at"])
    return invoice


def invoice_void(*, invoice: Invoice) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.ISSUED) or invoice.amount_paid > 0:
            raise InvoiceStateError(
                f"Invoice {invoice.number} is {invoice.status}"
                + (" and partly paid" if invoice.amount_paid > 0 and invoice.status != "paid" else "")
                + "; only an unpaid draft or issued invoice can be voided.",
                details={"status": invoice.status},
            )
        invoice.status = InvoiceStatus.VOID
        invoice.voided_at = timezone.now()
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
    return invoice


def organizations_with_usage(period_start: date):
    start, end = _bounds(period_start)
    ids = (
        UsageRecord.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    return Organization.objects.filter(pk__in=ids).order_by("slug")
