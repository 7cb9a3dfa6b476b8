"""Billing's Celery tasks (queue ``billing``)."""

import logging

from celery import shared_task

from billing.services import invoices as invoice_services

logger = logging.getLogger(__name__)


@shared_task(name="billing.tasks.invoices_generate_previous_month", ignore_result=True)
def invoices_generate_previous_month() -> dict:
    """Beat runs this on the first of each month: the invoice of last month
    for every organization with usage (drafts; admins issue them).  Running it
    again makes no second invoice."""
    period = invoice_services.previous_month()
    made = skipped = 0
    for organization in invoice_services.organizations_with_usage(period):
        result = invoice_services.invoice_generate(organization=organization, period_start=period)
        made += result.created
        skipped += not result.created
    logger.info("Invoices generated", extra={"period": f"{period:%Y-%m}", "made": made, "existing": skipped})
    return {"period": f"{period:%Y-%m}", "made": made, "existing": skipped}
