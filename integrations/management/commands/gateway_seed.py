"""``manage.py gateway_seed``: writes the model server of the environment
(``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` / ``LLM_*``) into the database as a
provider, with one deployment per configured model that has none, so that an
operator can then add deployments, weights and breaker thresholds in the
admin.  Idempotent: existing providers and deployments are never changed."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.llm.router import OFFLINE_MODEL, available_models
from integrations.models import ModelDeployment, ModelProvider, validate_base_url


class Command(BaseCommand):
    help = "Create a provider from OPENAI_BASE_URL/OPENAI_API_KEY and a deployment for each model in AGENTHUB_MODELS."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="default", help="The provider's name (default: default).")

    @transaction.atomic
    def handle(self, *args, name, **options):
        base_url, api_key = settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY
        if not base_url and not api_key:
            raise CommandError("Set OPENAI_BASE_URL (a self-hosted server) or OPENAI_API_KEY (api.openai.com) first.")
        if base_url:
            validate_base_url(base_url)
        provider = ModelProvider.objects.filter(name=name).first()
        if provider is None:
            provider = ModelProvider(
                name=name,
                base_url=base_url,
                timeout_seconds=settings.LLM_TIMEOUT_SECONDS,
                connect_timeout_seconds=settings.LLM_CONNECT_TIMEOUT_SECONDS,
            )
            provider.set_api_key(api_key)
            provider.save()
            self.stdout.write(f"provider {name}: {base_url or 'api.openai.com'}")
        else:
            self.stdout.write(f"provider {name} exists; left as it is")
        for info in available_models():
            if info.name == OFFLINE_MODEL:
                continue
            if ModelDeployment.objects.filter(model_name=info.name).exists():
                self.stdout.write(f"{info.name}: has deployments; left as they are")
                continue
            ModelDeployment.objects.create(model_name=info.name, provider=provider)
            self.stdout.write(f"{info.name}: deployed on {name}")
