"""``manage.py invoices_generate --period 2026-11 [--org SLUG] [--issue]``:
the month's invoice of every organization with usage in it (or of one).
Idempotent: an organization that already has the month's invoice keeps it."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import Organization
from agenthub.errors import ApplicationError
from billing.models import InvoiceStatus
from billing.services import invoices as invoice_services


class Command(BaseCommand):
    help = "Generate (and optionally issue) the invoices of a month that is over."

    def add_arguments(self, parser):
        parser.add_argument("--period", help="The month as YYYY-MM (default: last month).")
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--issue", action="store_true", help="Issue the new invoices (they stay drafts otherwise).")

    def handle(self, *args, period, org, issue, **options):
        try:
            start = invoice_services.parse_period(period) if period else invoice_services.previous_month()
            invoice_services.check_period(start)
            if org:
                organization = Organization.objects.filter(slug=org).first()
                if organization is None:
                    raise CommandError(f"No organization with the slug '{org}'.")
                organizations = [organization]
            else:
                organizations = list(invoice_services.organizations_with_usage(start))
            made, existing, empty = [], [], []
            for organization in tqdm(
                organizations, unit="org", disable=options["verbosity"] < 1 or len(organizations) < 2
            ):
                result = invoice_services.invoice_generate(organization=organization, period_start=start)
                if result.invoice is None:
                    empty.append(organization.slug)
                    continue
                invoice = result.invoice
                if issue and result.created and invoice.status == InvoiceStatus.DRAFT:
                    invoice = invoice_services.invoice_issue(invoice=invoice)
                (made if result.created else existing).append(invoice)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for invoice in made:
            self.stdout.write(
                f"made {invoice.number} for {invoice.organization.slug}: {invoice.total} {invoice.currency} "
                f"({invoice.lines.count()} lines, {invoice.status})"
            )
        for invoice in existing:
            self.stdout.write(f"kept {invoice.number} for {invoice.organization.slug} (already made, {invoice.status})")
        for slug in empty:
            self.stdout.write(f"no usage for {slug} in {start:%Y-%m}: no invoice")
        self.stdout.write(f"{start:%Y-%m}: {len(made)} made, {len(existing)} already there, {len(empty)} without usage")
