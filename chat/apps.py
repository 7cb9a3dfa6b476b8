from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = "Conversations"

    def ready(self):
        from agenthub import journal
        from agenthub.drain import register_activity
        from agenthub.health import register_informational_check
        from chat import receivers  # noqa: F401  (drafts' news reaches their conversations)
        from chat.runtime.hub import running_turns_here
        from chat.runtime.records import JOURNAL_KIND, exchanges_apply

        register_activity("turns", running_turns_here)
        journal.register(JOURNAL_KIND, exchanges_apply)
        register_informational_check("journal", journal.health)
