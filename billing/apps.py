from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from agenthub import journal
        from billing import demo  # noqa: F401  (registers billing's demo data with seed_demo)
        from billing.services.ledger import usage_rows_apply
        from billing.services.metering import USAGE_JOURNAL_KIND

        journal.register(USAGE_JOURNAL_KIND, usage_rows_apply)
