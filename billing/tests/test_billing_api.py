"""The billing API that reads and configures: the ledger and its summaries,
budgets and alerts, prices and the billing account; roles, bad input, and
the cross-organization sweep of every billing path."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import api_key_create
from billing.models import Budget, BudgetAlert, Invoice, Payment, Price, UsageRecord
from billing.services import metering
from billing.tests.factories import issued_invoice, list_price, rollup, usage_row

pytestmark = pytest.mark.django_db

USAGE, SUMMARY, BUDGETS, ALERTS = "/api/v1/usage", "/api/v1/usage/summary", "/api/v1/budgets", "/api/v1/budgets/alerts"
PRICES, ACCOUNT = "/api/v1/billing/prices", "/api/v1/billing/account"
INVOICES, PAYMENTS = "/api/v1/invoices", "/api/v1/payments"

# Every path of the billing API; accounts/tests/test_tenant_isolation.py adds
# them to its guard, and test_cross_organization_sweep below covers them.
BILLING_SWEPT = {
    "/api/v1/usage",
    "/api/v1/usage/{id}",
    "/api/v1/usage/summary",
    "/api/v1/budgets",
    "/api/v1/budgets/{id}",
    "/api/v1/budgets/alerts",
    "/api/v1/budgets/alerts/{id}",
    "/api/v1/budgets/alerts/{id}/acknowledge",
    "/api/v1/billing/prices",
    "/api/v1/billing/prices/{id}",
    "/api/v1/billing/account",
    "/api/v1/invoices",
    "/api/v1/invoices/{id}",
    "/api/v1/invoices/generate",
    "/api/v1/invoices/{id}/issue",
    "/api/v1/invoices/{id}/void",
    "/api/v1/invoices/{id}/pay",
    "/api/v1/payments",
    "/api/v1/payments/{id}",
}


def error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()["error"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture
def ledger(org_a):
    """Calls of two members and an API key over three days."""
    org = org_a.organization
    member, admin = org_a.users["member"], org_a.users["admin"]
    key, _ = api_key_create(organization=org, name="batch", actor_role="owner")
    now = datetime.now(UTC) - timedelta(seconds=30)
    rows = [
        usage_row(
            org,
            at=now - timedelta(days=2),
            user_id=str(member.pk),
            user_label="member@a",
            agent_id="a1",
            agent_name="Support",
            channel="websocket",
        ),
        usage_row(
            org,
            at=now - timedelta(days=1),
            user_id=str(member.pk),
            user_label="member@a",
            agent_id="a1",
            agent_name="Support",
            inp=5000,
            out=700,
        ),
        usage_row(
            org,
            at=now - timedelta(days=1),
            user_id=str(admin.pk),
            user_label="admin@a",
            agent_id="a2",
            agent_name="Sales",
            model="gpt-4o",
            ip="2.5",
            op="10",
            channel="openai",
        ),
        usage_row(
            org,
            at=now,
            api_key_id=str(key.pk),
            api_key_label="batch",
            agent_id="a2",
            agent_name="Sales",
            channel="openai",
        ),
    ]
    rollup(org)
    return {"rows": rows, "key": key}


def test_admins_list_every_call_and_members_only_their_own(org_a, ledger):
    everything = org_a.client("admin").get(USAGE).json()
    assert everything["count"] == 4
    mine = org_a.client("member").get(USAGE).json()
    assert mine["count"] == 2 and {r["user_label"] for r in mine["results"]} == {"member@a"}
    row = mine["results"][0]
    assert isinstance(row["cost"], str) and isinstance(row["input_price"], str)
    error(org_a.client("viewer").get(USAGE), 403)
    # An API key with the member role sees the calls made with it.
    key_client = org_a.client("member")
    key_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org_a.organization, name='m', actor_role='owner', role='member')[1]}"
    )
    assert key_client.get(USAGE).json()["count"] == 0


def test_usage_filters(org_a, ledger):
    client = org_a.client("owner")
    assert client.get(USAGE, {"model": "gpt-4o"}).json()["count"] == 1
    assert client.get(USAGE, {"channel": "openai"}).json()["count"] == 2
    assert client.get(USAGE, {"agent": "a1"}).json()["count"] == 2
    assert client.get(USAGE, {"api_key": str(ledger["key"].pk)}).json()["count"] == 1
    assert client.get(USAGE, {"user": str(org_a.users["admin"].pk)}).json()["count"] == 1
    since = (datetime.now(UTC) - timedelta(hours=13)).isoformat()
    assert client.get(USAGE, {"from": since}).json()["count"] == 1
    error(client.get(USAGE, {"from": "yesterday"}), 400)
    error(client.get(USAGE, {"status": "bogus"}), 400)


@pytest.mark.parametrize("group_by", ["day", "agent", "model", "user", "api_key", "channel"])
def test_the_summary_equals_the_ledger_exactly(org_a, ledger, group_by):
    body = org_a.client("admin").get(SUMMARY, {"group_by": group_by}).json()
    rows = UsageRecord.objects.filter(organization=org_a.organization)
    cost = sum((r.cost for r in rows), Decimal(0))
    totals = body["totals"]["USD"]
    assert Decimal(totals["cost"]) == cost
    assert totals["calls"] == 4 and totals["input_tokens"] == sum(r.input_tokens for r in rows)
    assert sum(Decimal(g["cost"]) for g in body["groups"]) == cost
    assert sum(g["calls"] for g in body["groups"]) == 4
    if group_by == "agent":
        assert {g["label"] for g in body["groups"]} == {"Support", "Sales"}


def test_members_summarize_only_their_own_usage(org_a, ledger):
    body = org_a.client("member").get(SUMMARY, {"group_by": "model"}).json()
    own = [r for r in ledger["rows"] if r.user_id == str(org_a.users["member"].pk)]
    assert Decimal(body["totals"]["USD"]["cost"]) == sum((r.cost for r in own), Decimal(0))
    assert body["totals"]["USD"]["calls"] == 2


def test_summary_ranges_and_bad_input(org_a, ledger):
    client = org_a.client("admin")
    today = timezone.now().date()
    body = client.get(SUMMARY, {"group_by": "day", "from": str(today), "to": str(today)}).json()
    assert body["totals"]["USD"]["calls"] == 1
    assert error(client.get(SUMMARY, {"group_by": "week"}), 400)["details"]
    error(client.get(SUMMARY, {"from": "2026-13-01"}), 400)
    error(client.get(SUMMARY, {"from": "2026-12-02", "to": "2026-12-01"}), 400)
    error(client.get(SUMMARY, {"from": "1900-01-01", "to": "2026-12-01"}), 400)


# --- budgets ---------------------------------------------------------------------------------


def test_admins_create_budgets_that_apply_at_once(org_a):
    org_id = str(org_a.organization.pk)
    metering._budgets.put(org_id, ())  # the gate has cached "no budgets"
    client = org_a.client("admin")
    created = client.post(
        BUDGETS, {"name": "Team", "limit_amount": "25.50", "thresholds": [80, 50, 100, 80]}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["limit_amount"] == "25.5" and body["thresholds"] == [50, 80, 100]
    assert body["spent"] == "0" and body["remaining"] == "25.5" and body["resets_at"].endswith("Z")
    assert body["currency"] == "USD" and body["scope_label"] == org_a.organization.name
    # The gate sees it on the next call (the cache was cleared).
    assert metering._budgets.get(org_id) is None
    changed = client.patch(f"{BUDGETS}/{body['id']}", {"limit_amount": "30", "action": "warn"}, format="json")
    assert changed.json()["action"] == "warn" and changed.json()["limit_amount"] == "30"
    assert client.delete(f"{BUDGETS}/{body['id']}").status_code == 204
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    "payload,field_or_code",
    [
        ({"limit_amount": "-1"}, "limit_amount"),
        ({"limit_amount": "0"}, "invalid_limit"),
        ({"limit_amount": "99999999999"}, "limit_amount"),
        ({"limit_amount": "NaN"}, "limit_amount"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"currency": "EUR"}, "invalid_currency"),
        ({"thresholds": [0]}, "thresholds"),
        ({"thresholds": [150]}, "thresholds"),
        ({"scope_kind": "user"}, "invalid_scope"),
        ({"scope_kind": "user", "scope_id": "not-a-uuid"}, "invalid_scope"),
        ({"scope_kind": "organization", "scope_id": "x"}, "invalid_scope"),
        ({"scope_kind": "galaxy"}, "scope_kind"),
        ({"period": "week"}, "period"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_budgets_are_refused_and_nothing_is_saved(org_a, payload, field_or_code):
    body = {"name": "Bad", "limit_amount": "10", **payload}
    err = error(org_a.client("owner").post(BUDGETS, body, format="json"), 400)
    assert field_or_code in (err["code"], *err["details"].get("fields", {}))
    assert not Budget.objects.exists()


def test_a_budget_scope_must_belong_to_the_organization(org_a, org_b):
    client = org_a.client("owner")
    foreign_user = org_b.users["member"]
    error(
        client.post(
            BUDGETS,
            {"name": "x", "limit_amount": "1", "scope_kind": "user", "scope_id": str(foreign_user.pk)},
            format="json",
        ),
        400,
        "invalid_scope",
    )
    foreign_key, _ = api_key_create(organization=org_b.organization, name="b", actor_role="owner")
    error(
        client.post(
            BUDGETS,
            {"name": "x", "limit_amount": "1", "scope_kind": "api_key", "scope_id": str(foreign_key.pk)},
            format="json",
        ),
        400,
        "invalid_scope",
    )
    own = org_a.users["member"]
    made = client.post(
        BUDGETS, {"name": "Member", "limit_amount": "1", "scope_kind": "user", "scope_id": str(own.pk)}, format="json"
    )
    assert made.status_code == 201 and made.json()["scope_label"]


def test_members_read_the_budgets_that_apply_to_them_and_cannot_write(org_a):
    client = org_a.client("owner")
    for name, kind, scope in [
        ("Org", "organization", ""),
        ("Mine", "user", str(org_a.users["member"].pk)),
        ("Theirs", "user", str(org_a.users["operator"].pk)),
    ]:
        assert (
            client.post(
                BUDGETS, {"name": name, "limit_amount": "5", "scope_kind": kind, "scope_id": scope}, format="json"
            ).status_code
            == 201
        )
    seen = {b["name"] for b in org_a.client("member").get(BUDGETS).json()["results"]}
    assert seen == {"Org", "Mine"}
    theirs = Budget.objects.get(name="Theirs")
    error(org_a.client("member").get(f"{BUDGETS}/{theirs.pk}"), 404)
    for role in ("member", "operator"):
        error(org_a.client(role).post(BUDGETS, {"name": "x", "limit_amount": "1"}, format="json"), 403)
        error(org_a.client(role).patch(f"{BUDGETS}/{theirs.pk}", {"limit_amount": "1"}, format="json"), 403)
    assert org_a.client("admin").get(BUDGETS).json()["count"] == 3


def test_budget_spent_comes_from_the_ledger_and_alerts_are_acknowledged(org_a):
    client = org_a.client("owner")
    budget_id = client.post(BUDGETS, {"name": "B", "limit_amount": "1"}, format="json").json()["id"]
    usage_row(org_a.organization, at=timezone.now(), inp=400_000, out=0)  # 0.5 USD
    rollup(org_a.organization)
    body = client.get(f"{BUDGETS}/{budget_id}").json()
    assert body["spent"] == "0.5" and body["remaining"] == "0.5"
    alert = BudgetAlert.objects.create(
        organization=org_a.organization,
        budget_id=budget_id,
        period_start=timezone.now(),
        threshold=50,
        spent=Decimal("0.5"),
        limit=Decimal("1"),
    )
    listed = client.get(ALERTS).json()["results"]
    assert listed[0]["budget_name"] == "B" and listed[0]["acknowledged_at"] is None
    error(org_a.client("member").get(ALERTS), 403)
    done = client.post(f"{ALERTS}/{alert.pk}/acknowledge")
    assert done.status_code == 200 and done.json()["acknowledged_at"]


# --- prices and the account -------------------------------------------------------------------------


def test_prices_are_read_by_everyone_and_written_by_admins(org_a, org_b):
    list_price()
    Price.objects.create(
        organization=org_b.organization,
        model="mock-model",
        currency="USD",
        input_per_million=9,
        output_per_million=9,
        effective_from=timezone.now(),
    )
    seen = org_a.client("viewer").get(PRICES).json()
    assert seen["count"] == 1 and seen["results"][0]["scope"] == "global"
    start = (timezone.now() + timedelta(days=1)).isoformat()
    payload = {"model": "mock-model", "input_per_million": "2", "output_per_million": "4", "effective_from": start}
    for role in ("member", "operator"):
        error(org_a.client(role).post(PRICES, payload, format="json"), 403)
    created = org_a.client("admin").post(PRICES, payload, format="json")
    assert created.status_code == 201 and created.json()["scope"] == "organization"
    price_id = created.json()["id"]
    assert (
        org_a.client("admin")
        .patch(f"{PRICES}/{price_id}", {"output_per_million": "5"}, format="json")
        .json()["output_per_million"]
        == "5"
    )
    # Same start again: a conflict; a start in the past: refused; a global price: not theirs.
    error(org_a.client("admin").post(PRICES, payload, format="json"), 409, "price_overlap")
    past = {**payload, "effective_from": "2020-01-01T00:00:00Z"}
    error(org_a.client("admin").post(PRICES, past, format="json"), 400, "price_in_past")
    error(org_a.client("admin").post(PRICES, {**payload, "currency": "ZZZ"}, format="json"), 400, "invalid_currency")
    error(org_a.client("admin").post(PRICES, {**payload, "input_per_million": "-1"}, format="json"), 400)
    error(org_a.client("admin").post(PRICES, {**payload, "input_per_million": "1e9"}, format="json"), 400)
    global_id = Price.objects.get(organization__isnull=True).pk
    error(org_a.client("owner").patch(f"{PRICES}/{global_id}", {"note": "x"}, format="json"), 403)
    error(org_a.client("owner").delete(f"{PRICES}/{global_id}"), 403)
    assert org_a.client("admin").delete(f"{PRICES}/{price_id}").status_code == 204


def test_a_price_in_force_is_never_edited(org_a):
    price = Price.objects.create(
        organization=org_a.organization,
        model="mock-model",
        currency="USD",
        input_per_million=1,
        output_per_million=1,
        effective_from=timezone.now(),
    )
    error(
        org_a.client("owner").patch(f"{PRICES}/{price.pk}", {"input_per_million": "9"}, format="json"),
        409,
        "price_in_force",
    )
    error(org_a.client("owner").delete(f"{PRICES}/{price.pk}"), 409, "price_in_force")


def test_the_billing_account_is_for_admins(org_a):
    error(org_a.client("operator").get(ACCOUNT), 403)
    client = org_a.client("admin")
    assert client.get(ACCOUNT).json()["currency"] == "USD"
    changed = client.patch(
        ACCOUNT,
        {"tax_rate": "20", "billing_name": "Alpha GmbH", "currency": "eur", "invoice_prefix": "ALP"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["currency"], changed.json()["tax_rate"]) == ("EUR", "20.000")
    error(client.patch(ACCOUNT, {"tax_rate": "101"}, format="json"), 400)
    error(client.patch(ACCOUNT, {"currency": "ABC"}, format="json"), 400, "invalid_currency")
    error(client.patch(ACCOUNT, {"invoice_prefix": "bad prefix!"}, format="json"), 400)
    usage_row(org_a.organization, currency="EUR")
    error(client.patch(ACCOUNT, {"currency": "USD"}, format="json"), 409, "currency_locked")


# --- another organization ------------------------------------------------------------------------------


@pytest.fixture
def b_billing(org_b):
    org = org_b.organization
    row = usage_row(org, user_id=str(org_b.users["member"].pk), agent_name="Bravo secret")
    rollup(org)
    budget = Budget.objects.create(organization=org, name="Bravo budget", limit_amount=Decimal("5"))
    alert = BudgetAlert.objects.create(
        organization=org, budget=budget, period_start=timezone.now(), threshold=50, spent=Decimal(1), limit=Decimal(5)
    )
    price = Price.objects.create(
        organization=org,
        model="mock-model",
        currency="USD",
        input_per_million=7,
        output_per_million=7,
        effective_from=timezone.now() + timedelta(days=2),
    )
    invoice = issued_invoice(org, status="draft")
    payment = Payment.objects.create(
        organization=org, invoice=invoice, provider="manual", amount=Decimal(1), currency="USD", status="succeeded"
    )
    return {"row": row, "budget": budget, "alert": alert, "price": price, "invoice": invoice, "payment": payment}


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_cross_organization_sweep(org_a, org_b, b_billing, role):
    client = org_a.client(role)
    b = b_billing
    detail_reads = [
        f"{USAGE}/{b['row'].pk}",
        f"{BUDGETS}/{b['budget'].pk}",
        f"{ALERTS}/{b['alert'].pk}",
        f"{PRICES}/{b['price'].pk}",
        f"{INVOICES}/{b['invoice'].pk}",
        f"{INVOICES}/{b['invoice'].pk}.pdf",
        f"{PAYMENTS}/{b['payment'].pk}",
    ]
    writes = [
        client.patch(f"{BUDGETS}/{b['budget'].pk}", {"limit_amount": "1"}, format="json"),
        client.delete(f"{BUDGETS}/{b['budget'].pk}"),
        client.post(f"{ALERTS}/{b['alert'].pk}/acknowledge"),
        client.patch(f"{PRICES}/{b['price'].pk}", {"note": "x"}, format="json"),
        client.delete(f"{PRICES}/{b['price'].pk}"),
        client.post(f"{INVOICES}/{b['invoice'].pk}/issue"),
        client.post(f"{INVOICES}/{b['invoice'].pk}/void"),
        client.post(f"{INVOICES}/{b['invoice'].pk}/pay", {"provider": "manual", "amount": "1"}, format="json"),
    ]
    admin_only = {ALERTS, INVOICES, PAYMENTS}
    for path in detail_reads:
        status = client.get(path).status_code
        needs_admin = any(path.startswith(p) for p in admin_only)
        assert status == (403 if needs_admin and role == "member" else 404), (path, status)
    for response in writes:
        assert response.status_code in (403, 404), response.content
        if role != "member":
            assert response.status_code == 404
    # Lists hold only the caller's rows.
    for path in (USAGE, BUDGETS, PRICES) + ((ALERTS, INVOICES, PAYMENTS) if role != "member" else ()):
        text = client.get(path).content.decode()
        assert "Bravo" not in text and str(b["row"].pk) not in text, path
    summary = client.get(SUMMARY, {"group_by": "agent"}).json()
    assert summary["totals"] == {} and summary["groups"] == []
    b["budget"].refresh_from_db(), b["invoice"].refresh_from_db(), b["alert"].refresh_from_db()
    assert b["budget"].limit_amount == 5 and b["invoice"].status == "draft" and b["alert"].acknowledged_at is None
    assert Invoice.objects.get(pk=b["invoice"].pk).amount_paid == 0 and Price.objects.filter(pk=b["price"].pk).exists()
