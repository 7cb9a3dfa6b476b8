from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self):
        from accounts import (
            lockout,  # noqa: F401  (counts failed logins)
            schema,  # noqa: F401  (registers the OpenAPI extension)
        )
        from agenthub import security  # noqa: F401  (registers the deploy checks)
