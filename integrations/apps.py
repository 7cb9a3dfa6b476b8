from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations and models"

    def ready(self):
        from agenthub.health import register_informational_check
        from agenthub.metrics import register_scrape_collector
        from integrations.llm import deployments, status

        deployments.connect_signals()
        register_informational_check("model_deployments", status.health_check)
        register_scrape_collector(status.CircuitStateCollector())
