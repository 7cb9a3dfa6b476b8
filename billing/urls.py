"""Routes of the billing API under /api/v1/ (no trailing slashes)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from billing.apis import budgets, invoices, prices, usage

router = SimpleRouter(trailing_slash=False)
router.register("usage", usage.UsageViewSet, basename="usage")
router.register("budgets/alerts", budgets.BudgetAlertViewSet, basename="budget-alert")
router.register("budgets", budgets.BudgetViewSet, basename="budget")
router.register("billing/prices", prices.PriceViewSet, basename="price")
router.register("invoices", invoices.InvoiceViewSet, basename="invoice")
router.register("payments", invoices.PaymentViewSet, basename="payment")

urlpatterns = [
    path("usage/summary", usage.UsageSummaryApi.as_view(), name="usage-summary"),
    path("billing/account", prices.BillingAccountApi.as_view(), name="billing-account"),
    path("billing/webhooks/stripe", invoices.StripeWebhookApi.as_view(), name="stripe-webhook"),
    re_path(
        r"^invoices/(?P<pk>[0-9a-fA-F-]{36})\.(?P<document>pdf|html)$",
        invoices.InvoiceDocumentViewSet.as_view({"get": "retrieve"}),
        name="invoice-document",
    ),
    *router.urls,
]
