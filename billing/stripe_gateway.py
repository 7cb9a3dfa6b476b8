"""Stripe through its official SDK: Checkout Sessions for invoices and the
verification of webhook signatures.  ``STRIPE_API_BASE`` points the SDK
elsewhere (the tests' local fake Stripe)."""

from decimal import Decimal

import stripe
from django.conf import settings

from agenthub.errors import ApplicationError, ConflictError
from billing.models import Invoice
from billing.money import CURRENCIES


class StripeNotConfigured(ConflictError):
    code = "stripe_not_configured"


class StripeUnavailable(ApplicationError):
    code = "payment_provider_error"
    status_code = 502


def minor_units(amount: Decimal, currency: str) -> int:
    """Stripe's integer amount: cents for USD, whole yen for JPY."""
    return int((Decimal(amount) * (10 ** CURRENCIES.get(currency, 2))).to_integral_value())


def _client() -> stripe.StripeClient:
    key = settings.STRIPE_SECRET_KEY
    if not key:
        raise StripeNotConfigured(
            "Stripe is not configured here (STRIPE_SECRET_KEY is empty); record the payment manually."
        )
    base = settings.STRIPE_API_BASE.rstrip("/")
    return stripe.StripeClient(
        key,
        base_addresses={"api": base},
        max_network_retries=1,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


def checkout_session_create(invoice: Invoice) -> dict:
    client = _client()
    params = {
        "mode": "payment",
        "client_reference_id": str(invoice.pk),
        "success_url": settings.STRIPE_SUCCESS_URL,
        "cancel_url": settings.STRIPE_CANCEL_URL,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": invoice.currency.lower(),
                    "unit_amount": minor_units(invoice.balance_due, invoice.currency),
                    "product_data": {"name": f"Invoice {invoice.number}"},
                },
            }
        ],
        "metadata": {"invoice_id": str(invoice.pk), "organization_id": str(invoice.organization_id)},
    }
    try:
        session = client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"invoice-{invoice.pk}-{invoice.amount_paid}"}
        )
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe refused the checkout: {exc.user_message or type(exc).__name__}.") from exc
    return {"id": session.id, "url": getattr(session, "url", None)}


def webhook_event(payload: bytes, signature: str) -> dict:
    """The verified event, or an error: a bad or missing signature, or a
    timestamp older than the tolerance (a replay)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET is empty).")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            "The Stripe-Signature header does not verify (wrong secret, altered body, or an event older than "
            f"{settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS} s).",
            code="invalid_signature",
        ) from exc
    except ValueError as exc:
        raise ApplicationError("The webhook body is not a Stripe event.", code="invalid_payload") from exc
    return event.to_dict() if hasattr(event, "to_dict") else dict(event)
