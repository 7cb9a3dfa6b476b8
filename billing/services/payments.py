"""Payments of invoices, through a provider: ``manual`` (an admin records a
bank transfer; partial payments add up) or ``stripe`` (a Checkout Session;
Stripe's webhook says when it was paid).

An invoice becomes ``paid`` here and only here, under a lock on the invoice,
so a payment counts once however often its confirmation arrives."""

import logging
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from agenthub.errors import ApplicationError, ConflictError
from billing.metrics import PAYMENTS
from billing.models import Invoice, InvoiceStatus, Payment, PaymentStatus, WebhookEvent
from billing.money import minor_unit

logger = logging.getLogger(__name__)


class PaymentError(ApplicationError):
    code = "invalid_payment"


class InvoiceNotPayable(ConflictError):
    code = "invoice_not_payable"


def _payable(invoice: Invoice) -> None:
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvoiceNotPayable(
            f"Invoice {invoice.number} is {invoice.status}; only an issued invoice can be paid.",
            details={"status": invoice.status},
        )


def _apply(payment: Payment, invoice: Invoice) -> None:
    """Counts a succeeded payment on its (locked) invoice."""
    invoice.amount_paid += payment.amount
    fields = ["amount_paid", "updated_at"]
    if invoice.amount_paid >= invoice.total and invoice.status == InvoiceStatus.ISSUED:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = timezone.now()
        fields += ["status", "paid_at"]
    invoice.save(update_fields=fields)


def payment_record_manual(*, invoice: Invoice, amount, reference: str = "", recorded_by=None) -> Payment:
    """A bank transfer received: counted at once.  Partial payments are
    allowed; more than the balance due is refused."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        raise PaymentError("amount must be a decimal number, e.g. 120.50.") from None
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _payable(invoice)
        if not value.is_finite() or value <= 0:
            raise PaymentError("amount must be more than zero.")
        if value != value.quantize(minor_unit(invoice.currency)):
            raise PaymentError(f"amount has more decimal places than {invoice.currency} allows.")
        if value > invoice.balance_due:
            raise PaymentError(
                f"amount {value} is more than the balance due of {invoice.balance_due} {invoice.currency}.",
                details={"balance_due": str(invoice.balance_due)},
            )
        payment = Payment.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            provider="manual",
            status=PaymentStatus.SUCCEEDED,
            amount=value,
            currency=invoice.currency,
            reference=(reference or "")[:200],
            recorded_by_id=str(recorded_by.pk) if recorded_by else "",
            recorded_by_label=(recorded_by.email or recorded_by.get_username()) if recorded_by else "",
            succeeded_at=timezone.now(),
        )
        _apply(payment, invoice)
    PAYMENTS.labels(provider="manual", status="succeeded").inc()
    return payment


def payment_start_stripe(*, invoice: Invoice) -> Payment:
    """A Stripe Checkout Session for the invoice's balance due."""
    from billing import stripe_gateway

    invoice = Invoice.objects.get(pk=invoice.pk)
    _payable(invoice)
    if invoice.balance_due <= 0:
        raise InvoiceNotPayable(f"Invoice {invoice.number} has nothing left to pay.")
    session = stripe_gateway.checkout_session_create(invoice)
    try:
        payment = Payment.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            provider="stripe",
            status=PaymentStatus.PENDING,
            amount=invoice.balance_due,
            currency=invoice.currency,
            external_id=session["id"],
            checkout_url=session.get("url") or "",
        )
    except IntegrityError:
        payment = Payment.objects.get(provider="stripe", external_id=session["id"])
    PAYMENTS.labels(provider="stripe", status="pending").inc()
    return payment


def stripe_event_apply(*, event_id: str, event_type: str, obj: dict) -> str:
    """Applies a verified Stripe event once.  Returns what happened:
    ``paid``, ``failed``, ``duplicate``, ``ignored``, ``unknown_payment`` or
    ``mismatch``."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                WebhookEvent.objects.create(provider="stripe", event_id=event_id, event_type=event_type)
        except IntegrityError:
            return "duplicate"
        if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            if obj.get("payment_status") not in ("paid", "no_payment_required"):
                return "ignored"  # an asynchronous method: the succeeded event follows
            outcome = _settle(obj.get("id", ""), obj.get("amount_total"), obj.get("currency"), succeeded=True)
        elif event_type in ("checkout.session.async_payment_failed", "checkout.session.expired"):
            outcome = _settle(obj.get("id", ""), None, None, succeeded=False)
        else:
            return "ignored"
    if outcome in ("paid", "failed"):
        PAYMENTS.labels(provider="stripe", status="succeeded" if outcome == "paid" else "failed").inc()
    return outcome


def _settle(session_id: str, amount_minor, currency, *, succeeded: bool) -> str:
    payment = Payment.objects.select_for_update().filter(provider="stripe", external_id=session_id).first()
    if payment is None:
        logger.warning("Stripe event for an unknown checkout session", extra={"session": session_id[:80]})
        return "unknown_payment"
    if payment.status != PaymentStatus.PENDING:
        return "duplicate"  # another event for the same payment counted it already
    if not succeeded:
        payment.status = PaymentStatus.FAILED
        payment.save(update_fields=["status"])
        return "failed"
    from billing import stripe_gateway

    expected = stripe_gateway.minor_units(payment.amount, payment.currency)
    if amount_minor != expected or str(currency or "").upper() != payment.currency:
        logger.error(
            "Stripe reported another amount than the payment asked for; not counted",
            extra={"payment": str(payment.pk), "expected": expected, "reported": amount_minor},
        )
        payment.reference = f"amount mismatch: Stripe reported {amount_minor} {currency}"[:200]
        payment.save(update_fields=["reference"])
        return "mismatch"
    invoice = Invoice.objects.select_for_update().get(pk=payment.invoice_id)
    payment.status = PaymentStatus.SUCCEEDED
    payment.succeeded_at = timezone.now()
    payment.save(update_fields=["status", "succeeded_at"])
    _apply(payment, invoice)
    return "paid"


# --- providers ------------------------------------------------------------------------------------


class PaymentProvider:
    """How an invoice is paid through one provider: ``start`` makes the
    Payment (succeeded at once, or pending until the provider confirms)."""

    name = ""

    def start(self, *, invoice: Invoice, amount=None, reference: str = "", actor=None) -> Payment:
        raise NotImplementedError


class ManualProvider(PaymentProvider):
    """A bank transfer an admin records; partial payments add up."""

    name = "manual"

    def start(self, *, invoice, amount=None, reference="", actor=None):
        if amount is None:
            raise PaymentError("A manual payment needs the amount received.")
        return payment_record_manual(invoice=invoice, amount=amount, reference=reference, recorded_by=actor)


class StripeProvider(PaymentProvider):
    """A Stripe Checkout Session for the balance due; the webhook confirms."""

    name = "stripe"

    def start(self, *, invoice, amount=None, reference="", actor=None):
        if amount is not None:
            raise PaymentError("A Stripe payment is for the balance due; leave out amount.")
        return payment_start_stripe(invoice=invoice)


PROVIDERS: dict[str, PaymentProvider] = {p.name: p for p in (ManualProvider(), StripeProvider())}


def payment_start(*, provider: str, invoice: Invoice, amount=None, reference: str = "", actor=None) -> Payment:
    try:
        chosen = PROVIDERS[provider]
    except KeyError:
        raise PaymentError(f"Unknown payment provider '{provider}'; use one of {', '.join(PROVIDERS)}.") from None
    return chosen.start(invoice=invoice, amount=amount, reference=reference, actor=actor)
