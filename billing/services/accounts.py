"""An organization's billing account: its currency, tax rate, numbering."""

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from accounts.models import Organization
from accounts.roles import Role, role_at_least
from agenthub.errors import ApplicationError, ForbiddenError
from billing.models import BillingAccount, Budget, Invoice, UsageRecord
from billing.money import CurrencyError, default_currency, normalize_currency


def billing_account_for(*, organization_id) -> BillingAccount:
    """The organization's account, created with the defaults on first use."""
    account = BillingAccount.objects.filter(organization_id=organization_id).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return BillingAccount.objects.create(organization_id=organization_id, currency=default_currency())
    except IntegrityError:
        return BillingAccount.objects.get(organization_id=organization_id)


def billing_account_update(*, organization: Organization, actor_role: str, **fields) -> BillingAccount:
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only admins and owners can change billing settings.")
    account = billing_account_for(organization_id=organization.pk)
    if "currency" in fields:
        try:
            currency = normalize_currency(fields["currency"])
        except CurrencyError as exc:
            raise ApplicationError(str(exc), code="invalid_currency") from exc
        organization_id = account.organization_id
        if currency != account.currency and (
            Invoice.objects.filter(organization_id=organization_id).exists()
            or Budget.objects.filter(organization_id=organization_id).exists()
            or UsageRecord.objects.filter(organization_id=organization_id).exists()
        ):
            raise ApplicationError(
                f"The organization is billed in {account.currency}: its usage, budgets or invoices count in it, "
                "so the currency cannot change any more.",
                code="currency_locked",
                status_code=409,
            )
        account.currency = currency
    if "tax_rate" in fields:
        try:
            rate = Decimal(str(fields["tax_rate"]))
        except (InvalidOperation, ValueError) as exc:
            raise ApplicationError("tax_rate must be a number of percent.", code="invalid_tax_rate") from exc
        if not rate.is_finite() or rate < 0 or rate > 100:
            raise ApplicationError("tax_rate is a percentage from 0 to 100.", code="invalid_tax_rate")
        account.tax_rate = rate
    for name in ("billing_name", "billing_email", "billing_address", "payment_terms_days", "invoice_prefix"):
        if name in fields:
            setattr(account, name, fields[name])
    account.full_clean()
    account.save()
    return account
