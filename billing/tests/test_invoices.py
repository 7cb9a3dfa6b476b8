"""Invoices: lines from the ledger to the cent, numbering without gaps under
concurrency, idempotent generation (service, API, command, beat task),
transitions, the printable page and the PDF."""

import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing import tasks
from billing.models import BillingAccount, Invoice, InvoiceStatus
from billing.money import to_minor
from billing.services import invoices as invoice_services
from billing.services.accounts import billing_account_for
from billing.tests.factories import usage_row

INVOICES = "/api/v1/invoices"
LAST_MONTH = invoice_services.previous_month()


def in_last_month(day=3, hour=10):
    return datetime(LAST_MONTH.year, LAST_MONTH.month, day, hour, tzinfo=UTC)


def error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()["error"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.mark.parametrize("seed", range(5))
def test_allocation_sums_exactly_to_the_total_rounded_once(seed):
    rng = random.Random(seed)
    costs = [Decimal(rng.randint(1, 10**9)) / Decimal(10**10) for _ in range(rng.randint(1, 60))]
    amounts = invoice_services.allocate(costs, "USD")
    assert sum(amounts) == to_minor(sum(costs), "USD")
    assert all(abs(a - c) < Decimal("0.01") for a, c in zip(amounts, costs, strict=True))
    # Rounding each line on its own would drift from the total.
    assert invoice_services.allocate([Decimal("0.004")] * 3, "USD") == [
        Decimal("0.01"),
        Decimal("0.00"),
        Decimal("0.00"),
    ]
    assert invoice_services.allocate([Decimal("0.6")] * 2, "JPY") == [Decimal("1"), Decimal("0")]


@pytest.mark.django_db
def test_the_lines_equal_the_ledger_to_the_cent(org_a):
    org = org_a.organization
    rng = random.Random(7)
    rows = []
    for i in range(240):
        model = rng.choice(["mock-model", "gpt-4o", "gpt-4o-mini"])
        agent = rng.choice([("a1", "Support"), ("a2", "Sales"), ("", "")])
        rows.append(
            usage_row(
                org,
                at=in_last_month(day=1 + i % 27),
                model=model,
                inp=rng.randint(1, 5000),
                out=rng.randint(1, 900),
                agent_id=agent[0],
                agent_name=agent[1],
                ip=rng.choice(["0.15", "2.5"]),
                op="0.6",
            )
        )
    usage_row(org, at=in_last_month() - timedelta(days=40))  # another month: not on this invoice
    BillingAccount.objects.filter(organization=org).update(tax_rate=Decimal("19"))
    billing_account_for(organization_id=org.pk)
    BillingAccount.objects.filter(organization=org).update(tax_rate=Decimal("19"))

    invoice = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH).invoice
    ledger = sum((r.cost for r in rows), Decimal(0))
    lines = list(invoice.lines.all())
    assert invoice.ledger_cost == ledger and sum(line.cost for line in lines) == ledger
    assert sum(line.amount for line in lines) == invoice.subtotal == to_minor(ledger, "USD")
    assert sum(line.calls for line in lines) == 240
    assert invoice.tax == to_minor(invoice.subtotal * Decimal("0.19"), "USD")
    assert invoice.total == invoice.subtotal + invoice.tax
    assert invoice.status == "draft" and invoice.number == f"INV-{LAST_MONTH.year}-00001"
    assert invoice.period_end.month == LAST_MONTH.month and invoice.period_end.day >= 28


@pytest.mark.django_db
def test_a_price_change_in_the_month_makes_two_lines(org_a):
    org = org_a.organization
    usage_row(org, at=in_last_month(day=2), ip="1.00", op="2.00", agent_id="a1", agent_name="Support")
    usage_row(org, at=in_last_month(day=20), ip="1.50", op="2.00", agent_id="a1", agent_name="Support")
    invoice = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH).invoice
    prices = sorted(line.input_price for line in invoice.lines.all())
    assert prices == [Decimal("1.00"), Decimal("1.50")]


@pytest.mark.django_db
def test_generation_is_idempotent_and_refuses_months_not_over(org_a):
    org = org_a.organization
    usage_row(org, at=in_last_month())
    first = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH)
    again = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH)
    assert first.created and not again.created and again.invoice.pk == first.invoice.pk
    assert Invoice.objects.count() == 1
    this_month = timezone.now().date().replace(day=1)
    with pytest.raises(invoice_services.InvoicePeriodError):
        invoice_services.invoice_generate(organization=org, period_start=this_month)
    with pytest.raises(invoice_services.InvoicePeriodError):
        invoice_services.invoice_generate(organization=org, period_start=date(2999, 1, 1))
    # A month without usage makes no invoice (and uses no number).
    empty = invoice_services.invoice_generate(organization=org, period_start=date(2024, 1, 1))
    assert empty.invoice is None
    assert BillingAccount.objects.get(organization=org).next_invoice_number == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_generation_numbers_without_gaps(org_a, org_b):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need Postgres")
    org = org_a.organization
    months = [(LAST_MONTH - timedelta(days=31 * i)).replace(day=1) for i in range(6)]
    for month in months:
        usage_row(org, at=datetime(month.year, month.month, 5, tzinfo=UTC))
    barrier = threading.Barrier(12)
    errors = []

    def run(month):
        try:
            barrier.wait()
            invoice_services.invoice_generate(organization=org, period_start=month)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(m,)) for m in months * 2]  # each month twice at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sequences = sorted(Invoice.objects.filter(organization=org).values_list("sequence", flat=True))
    assert sequences == list(range(1, 7))
    assert BillingAccount.objects.get(organization=org).next_invoice_number == 7


@pytest.mark.django_db
def test_issue_and_void(org_a):
    org = org_a.organization
    usage_row(org, at=in_last_month(), inp=4_000_000)
    invoice = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH).invoice
    issued = invoice_services.invoice_issue(invoice=invoice)
    assert issued.status == "issued" and issued.due_date == issued.issued_at.date() + timedelta(days=30)
    with pytest.raises(invoice_services.InvoiceStateError):
        invoice_services.invoice_issue(invoice=issued)
    voided = invoice_services.invoice_void(invoice=issued)
    assert voided.status == "void"
    with pytest.raises(invoice_services.InvoiceStateError):
        invoice_services.invoice_void(invoice=voided)
    # A voided month can be invoiced again, with the next number.
    again = invoice_services.invoice_generate(organization=org, period_start=LAST_MONTH).invoice
    assert again.pk != invoice.pk and again.sequence == 2


@pytest.mark.django_db
def test_an_invoice_with_nothing_to_pay_is_paid_when_issued(org_a):
    usage_row(org_a.organization, at=in_last_month(), inp=10, out=1)  # a fraction of a cent
    invoice = invoice_services.invoice_generate(organization=org_a.organization, period_start=LAST_MONTH).invoice
    assert invoice.total == 0
    issued = invoice_services.invoice_issue(invoice=invoice)
    assert issued.status == "paid" and issued.paid_at is not None


@pytest.mark.django_db
def test_the_api_generates_issues_renders_and_voids(org_a):
    org = org_a.organization
    usage_row(org, at=in_last_month(), agent_id="a1", agent_name="Support desk", inp=4_000_000)
    client = org_a.client("admin")
    error(org_a.client("operator").post(f"{INVOICES}/generate", {"period": f"{LAST_MONTH:%Y-%m}"}, format="json"), 403)
    made = client.post(f"{INVOICES}/generate", {"period": f"{LAST_MONTH:%Y-%m}"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "draft" and body["lines"][0]["description"] == "mock-model · Support desk"
    again = client.post(f"{INVOICES}/generate", {"period": f"{LAST_MONTH:%Y-%m}"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    error(client.post(f"{INVOICES}/generate", {"period": "2999-01"}, format="json"), 400, "invalid_period")
    error(client.post(f"{INVOICES}/generate", {"period": "November"}, format="json"), 400)
    assert client.post(f"{INVOICES}/generate", {"period": "2024-02"}, format="json").status_code == 204
    url = f"{INVOICES}/{body['id']}"
    assert client.post(f"{url}/issue").json()["status"] == "issued"
    error(client.post(f"{url}/issue"), 409, "invoice_state")
    pdf = client.get(f"{url}.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert body["number"] in pdf["Content-Disposition"]
    assert client.get(url, {"format": "pdf"}).content.startswith(b"%PDF")
    page = client.get(url, {"format": "html"})
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert body["number"] in text and "Support desk" in text and body["total"] in text
    error(client.get(url, {"format": "xml"}), 400, "invalid_format")
    listed = client.get(INVOICES, {"status": "issued"}).json()
    assert listed["count"] == 1 and listed["results"][0]["number"] == body["number"]
    error(org_a.client("member").get(INVOICES), 403)
    assert client.post(f"{url}/void").json()["status"] == "void"


@pytest.mark.django_db
def test_the_command_is_idempotent_and_the_beat_task_makes_last_months(org_a, org_b, capsys):
    usage_row(org_a.organization, at=in_last_month(), inp=4_000_000)
    usage_row(org_b.organization, at=in_last_month(), inp=4_000_000)
    call_command("invoices_generate", "--period", f"{LAST_MONTH:%Y-%m}", "--org", "alpha", "--issue")
    out = capsys.readouterr().out
    assert "made INV-" in out and "1 made" in out
    assert Invoice.objects.get(organization=org_a.organization).status == "issued"
    result = tasks.invoices_generate_previous_month.apply().get()
    assert result == {"period": f"{LAST_MONTH:%Y-%m}", "made": 1, "existing": 1}
    call_command("invoices_generate", "--period", f"{LAST_MONTH:%Y-%m}")
    assert "0 made, 2 already there" in capsys.readouterr().out
    assert Invoice.objects.count() == 2
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="has not ended"):
        call_command("invoices_generate", "--period", f"{timezone.now():%Y-%m}")
    entry = settings.CELERY_BEAT_SCHEDULE["billing-invoices-monthly"]
    assert entry["task"] == "billing.tasks.invoices_generate_previous_month"
    assert entry["schedule"].day_of_month == {1}
    assert settings.CELERY_TASK_ROUTES["billing.tasks.*"]["queue"] == "billing"


@pytest.mark.django_db
def test_the_admin_lists_invoices_and_serves_their_documents(client, org_a):
    from django.contrib.auth.models import Permission

    usage_row(org_a.organization, at=in_last_month(), inp=10_000_000)  # 12.50 USD
    invoice = invoice_services.invoice_generate(organization=org_a.organization, period_start=LAST_MONTH).invoice
    staff = org_a.users["admin"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="billing"))
    client.force_login(staff)
    page = client.get("/admin/billing/invoice/")
    assert page.status_code == 200 and invoice.number in page.content.decode()
    assert client.get(f"/admin/billing/invoice/{invoice.pk}/document.pdf").content.startswith(b"%PDF")
    done = client.post("/admin/billing/invoice/", {"action": "issue", "_selected_action": [str(invoice.pk)]})
    assert done.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    for url in (
        "/admin/billing/usagerecord/",
        "/admin/billing/budget/",
        "/admin/billing/price/",
        "/admin/billing/payment/",
        "/admin/billing/billingaccount/",
        "/admin/billing/budgetalert/",
    ):
        assert client.get(url).status_code == 200, url
    added = client.post(
        "/admin/billing/payment/add/", {"invoice": str(invoice.pk), "amount": invoice.total, "reference": "SEPA 123"}
    )
    assert added.status_code == 302, (
        added.context_data["adminform"].form.errors if hasattr(added, "context_data") else added
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.payments.get().reference == "SEPA 123"
    too_much = client.post("/admin/billing/payment/add/", {"invoice": str(invoice.pk), "amount": "1", "reference": ""})
    assert too_much.status_code == 200  # the form again, with the error
