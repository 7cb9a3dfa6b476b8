"""Admin for billing: prices, the usage ledger, budgets and alerts, billing
accounts, invoices and payments."""

from billing.admin import invoices, usage  # noqa: F401  (registers the admins)
