from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = "Conversations"

    def ready(self):
        from chat import receivers  # noqa: F401  (drafts' news reaches their conversations)
