"""``manage.py billing_seed_prices``: list prices for the configured models
that have no price yet (idempotent; prices that exist are never touched)."""

from django.core.management.base import BaseCommand

from billing.services.prices import prices_seed_defaults
from integrations.llm.router import available_models


class Command(BaseCommand):
    help = "Create global list prices for the configured models (AGENTHUB_MODELS) that have none."

    def add_arguments(self, parser):
        parser.add_argument("models", nargs="*", help="Model names (default: AGENTHUB_MODELS and mock-model).")

    def handle(self, *args, models, **options):
        names = models or [m.name for m in available_models()] + ["mock-model"]
        created, unknown = prices_seed_defaults(names)
        for price in created:
            self.stdout.write(
                f"priced {price.model}: {price.input_per_million} in / {price.output_per_million} out "
                f"{price.currency} per million tokens"
            )
        for model in unknown:
            self.stderr.write(
                f"no list price known for {model}: add one in the admin or POST /api/v1/billing/prices, "
                "or its calls are recorded unpriced"
            )
        if not created and not unknown:
            self.stdout.write("every configured model already has a price")
