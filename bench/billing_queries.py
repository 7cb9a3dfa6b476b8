"""Billing at scale: the usage summary over 10,000,000 ledger rows and
invoice generation over 1,000,000 rows of one month.

Rows are made by ``manage.py usage_generate`` (priced like real calls, the
daily rollup rebuilt after).  The summary is asked through the API
(``GET /api/v1/usage/summary``, Django's test client in-process: routing,
authentication, the view and the rollup query) for 90 days and for the whole
range, grouped by day, agent and model.  ``invoices_generate`` is timed for a
month that holds a million calls of another organization.

    .venv/bin/python bench/billing_queries.py [--rows 10000000] [--invoice-rows 1000000] [--reuse]

Targets: summary p50 <= 200 ms over 10M rows; invoice generation <= 10 s over
1M rows.  Uses its own database (agenthub_bench_billing); --reuse keeps the
rows of an earlier run.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "agenthub_bench_billing"


def configure(args) -> None:
    import psycopg

    parts = urlsplit(args.database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and not args.reuse:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        if not exists or not args.reuse:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agenthub.settings.local")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("billing_seed_prices", verbosity=0)


def organization(slug: str):
    from accounts.models import Membership, Organization, User

    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    user, _ = User.objects.get_or_create(username=f"{slug}-owner", defaults={"email": f"{slug}@example.com"})
    Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "owner"})
    return org, user


def generate(slug: str, rows: int, days: int, end: str) -> float:
    from django.core.management import call_command

    from billing.models import UsageRecord

    org, _ = organization(slug)
    if UsageRecord.objects.filter(organization=org).count() >= rows:
        print(f"{slug}: {rows:,} rows already there (--reuse)")
        return 0.0
    started = time.perf_counter()
    call_command("usage_generate", "--org", slug, "--rows", str(rows), "--days", str(days), "--end", end)
    took = time.perf_counter() - started
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_usagerecord")
        cursor.execute("VACUUM ANALYZE billing_usagedaily")
    print(f"{slug}: {rows:,} rows generated and rolled up in {took:.1f} s")
    return took


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary_timings(slug: str, runs: int) -> list[tuple[str, list[float]]]:
    from rest_framework.test import APIClient

    _, user = organization(slug)
    client = APIClient(SERVER_NAME="localhost")
    client.force_authenticate(user)
    today = datetime.now(UTC).date()
    results = []
    for label, params in (
        ("90 days by day", {"group_by": "day", "from": str(today - timedelta(days=89)), "to": str(today)}),
        ("90 days by agent", {"group_by": "agent", "from": str(today - timedelta(days=89)), "to": str(today)}),
        ("90 days by model", {"group_by": "model", "from": str(today - timedelta(days=89)), "to": str(today)}),
        ("all by day", {"group_by": "day"}),
        ("all by agent", {"group_by": "agent"}),
        ("all by model", {"group_by": "model"}),
    ):
        for _ in range(3):  # warm-up
            response = client.get("/api/v1/usage/summary", params, HTTP_X_ORGANIZATION=slug)
            assert response.status_code == 200, response.content
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get("/api/v1/usage/summary", params, HTTP_X_ORGANIZATION=slug)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
        results.append((label, times))
    return results


def invoice_timing(slug: str, period: str) -> tuple[float, object]:
    from billing.models import Invoice
    from billing.services.invoices import invoice_generate, parse_period

    org, _ = organization(slug)
    Invoice.objects.filter(organization=org).delete()
    started = time.perf_counter()
    result = invoice_generate(organization=org, period_start=parse_period(period))
    return time.perf_counter() - started, result.invoice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--invoice-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="Keep the database and rows of an earlier run.")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    configure(args)

    today = datetime.now(UTC).date()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    generate("bench-summary", args.rows, 365, str(today))
    generate("bench-invoice", args.invoice_rows, last_month_end.day, str(last_month_end))

    print(f"\nusage summary over {args.rows:,} ledger rows ({args.runs} runs each, GET /api/v1/usage/summary)\n")
    print(f"{'query':<20}{'p50 ms':>10}{'p99 ms':>10}")
    worst = 0.0
    for label, times in summary_timings("bench-summary", args.runs):
        worst = max(worst, statistics.median(times))
        print(f"{label:<20}{statistics.median(times):>10.1f}{pct(times, 99):>10.1f}")
    print(f"slowest p50 {worst:.1f} ms   target <= 200 ms: {'met' if worst <= 200 else 'MISSED'}")

    took, invoice = invoice_timing("bench-invoice", f"{last_month_end:%Y-%m}")
    print(
        f"\ninvoice over {args.invoice_rows:,} rows of {last_month_end:%Y-%m}: {took:.2f} s "
        f"({invoice.lines.count()} lines, total {invoice.total} {invoice.currency})   "
        f"target <= 10 s: {'met' if took <= 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
