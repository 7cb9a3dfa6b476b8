"""Payments: manual bank transfers (partial, too much, wrong state), Stripe
Checkout through the real ``stripe`` SDK against a local fake Stripe, and
the signed webhook that marks an invoice paid exactly once (forged, replayed,
redelivered, concurrent, mismatched)."""

import json
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing.models import Invoice, Payment, WebhookEvent
from billing.services import payments as payment_services
from billing.tests.factories import issued_invoice
from billing.tests.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, event, sign

WEBHOOK = "/api/v1/billing/webhooks/stripe"
INVOICES, PAYMENTS = "/api/v1/invoices", "/api/v1/payments"


def error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()["error"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture(scope="session")
def stripe_server():
    with FakeStripe() as server:
        yield server


@pytest.fixture
def fake_stripe(stripe_server, settings):
    stripe_server.reset()
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.base_url
    settings.STRIPE_TIMEOUT_SECONDS = 5
    return stripe_server


def deliver(body, *, secret=WEBHOOK_SECRET, timestamp=None, signature=None):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = signature if signature is not None else sign(payload, secret, timestamp)
    return Client().post(WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


# --- manual ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_partial_bank_transfers_add_up_to_paid(org_a):
    invoice = issued_invoice(org_a.organization, total="100.00")
    client = org_a.client("admin")
    first = client.post(
        f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "40.00", "reference": "SEPA 1"}, format="json"
    )
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "succeeded" and first.json()["amount"] == "40"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.balance_due) == ("issued", Decimal("40"), Decimal("60"))
    error(
        client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "60.01"}, format="json"),
        400,
        "invalid_payment",
    )
    error(client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "0"}, format="json"), 400)
    error(client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "1.001"}, format="json"), 400)
    error(client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual"}, format="json"), 400, "invalid_payment")
    error(client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "paypal", "amount": "1"}, format="json"), 400)
    assert (
        client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "60"}, format="json").status_code
        == 201
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None and invoice.balance_due == 0
    error(
        client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "1"}, format="json"),
        409,
        "invoice_not_payable",
    )
    listed = client.get(PAYMENTS, {"invoice": str(invoice.pk)}).json()
    assert listed["count"] == 2 and {p["reference"] for p in listed["results"]} == {"SEPA 1", ""}
    assert client.get(f"{PAYMENTS}/{listed['results'][0]['id']}").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["draft", "void"])
def test_only_issued_invoices_are_paid(org_a, state):
    invoice = issued_invoice(org_a.organization, status=state)
    error(
        org_a.client("owner").post(
            f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "1"}, format="json"
        ),
        409,
        "invoice_not_payable",
    )
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "member", "viewer"])
def test_only_admins_pay_and_see_payments(org_a, role):
    invoice = issued_invoice(org_a.organization)
    client = org_a.client(role)
    error(client.post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "manual", "amount": "1"}, format="json"), 403)
    error(client.get(PAYMENTS), 403)
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == 0


# --- Stripe -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stripe_off_without_keys(org_a, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    invoice = issued_invoice(org_a.organization)
    error(
        org_a.client("owner").post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "stripe"}, format="json"),
        409,
        "stripe_not_configured",
    )
    error(deliver(event("checkout.session.completed", {"id": "cs_1"})), 409, "stripe_not_configured")


def _checkout(org, total="80.00", currency="USD"):
    invoice = issued_invoice(org.organization, total=total, currency=currency)
    response = org.client("owner").post(f"{INVOICES}/{invoice.pk}/pay", {"provider": "stripe"}, format="json")
    assert response.status_code == 201, response.content
    return invoice, Payment.objects.get(pk=response.json()["id"])


@pytest.mark.django_db
def test_checkout_through_the_sdk_then_the_webhook_marks_paid_once(org_a, fake_stripe):
    invoice, payment = _checkout(org_a)
    assert payment.status == "pending" and payment.checkout_url.startswith(fake_stripe.base_url)
    sent = fake_stripe.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {API_KEY}"
    item = sent["form"]["line_items"][0]["price_data"]
    assert (item["unit_amount"], item["currency"]) == ("8000", "usd")
    assert sent["form"]["metadata"]["invoice_id"] == str(invoice.pk)

    body = event("checkout.session.completed", fake_stripe.complete(payment.external_id))
    first = deliver(body)
    assert first.status_code == 200 and first.json()["outcome"] == "paid"
    again = deliver(body)  # Stripe delivers the same event again
    assert again.json()["outcome"] == "duplicate"
    other = deliver(event("checkout.session.completed", fake_stripe.sessions[payment.external_id]))  # a new event id
    assert other.json()["outcome"] == "duplicate"
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == Decimal("80.00")
    assert payment.status == "succeeded" and WebhookEvent.objects.count() == 2  # one per event id


@pytest.mark.django_db
def test_zero_decimal_currencies_are_sent_in_whole_units(org_a, fake_stripe):
    from billing.models import BillingAccount

    BillingAccount.objects.update_or_create(organization=org_a.organization, defaults={"currency": "JPY"})
    _checkout(org_a, total="1200", currency="JPY")
    assert fake_stripe.requests[-1]["form"]["line_items"][0]["price_data"]["unit_amount"] == "1200"


@pytest.mark.django_db
def test_forged_replayed_and_mismatched_events_change_nothing(org_a, fake_stripe):
    invoice, payment = _checkout(org_a)
    body = event("checkout.session.completed", fake_stripe.complete(payment.external_id))
    error(deliver(body, secret="whsec_wrong"), 400, "invalid_signature")
    error(deliver(body, signature=""), 400, "invalid_signature")
    error(deliver(body, timestamp=int(time.time()) - 3600), 400, "invalid_signature")  # an old capture, replayed
    error(deliver(b"not json"), 400)
    tampered = json.loads(json.dumps(body))
    tampered["data"]["object"]["amount_total"] = 1
    assert deliver(tampered).json()["outcome"] == "mismatch"
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.status == "issued" and invoice.amount_paid == 0 and payment.status == "pending"
    unknown = deliver(event("checkout.session.completed", {"id": "cs_unknown", "payment_status": "paid"}))
    assert unknown.json()["outcome"] == "unknown_payment"
    assert deliver(event("customer.created", {"id": "cus_1"})).json()["outcome"] == "ignored"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_count_the_payment_once(org_a, fake_stripe):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need Postgres")
    invoice, payment = _checkout(org_a)
    session = fake_stripe.complete(payment.external_id)
    bodies = [event("checkout.session.completed", session) for _ in range(4)]  # distinct event ids
    bodies += [bodies[0]] * 4  # and one event delivered several times
    barrier = threading.Barrier(len(bodies))
    outcomes = []

    def send(body):
        barrier.wait()
        outcomes.append(deliver(body).json()["outcome"])
        connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("paid") == 1 and len(outcomes) == 8
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == Decimal("80.00")
    assert Payment.objects.filter(status="succeeded").count() == 1


@pytest.mark.django_db
def test_a_failed_async_payment_marks_the_payment_failed(org_a, fake_stripe):
    invoice, payment = _checkout(org_a)
    assert (
        deliver(event("checkout.session.async_payment_failed", {"id": payment.external_id})).json()["outcome"]
        == "failed"
    )
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "failed" and invoice.status == "issued"


def test_provider_registry_names_both_providers():
    assert set(payment_services.PROVIDERS) == {"manual", "stripe"}
    with pytest.raises(payment_services.PaymentError):
        payment_services.payment_start(provider="cash", invoice=None)
