from django.apps import AppConfig


class ToolsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tools"
    verbose_name = "Tools and drafts"

    def ready(self):
        # Registers the Celery tasks in every process: services enqueue them
        # by name (tools.queueing) without importing this module.
        from tools import tasks  # noqa: F401
