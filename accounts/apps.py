from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from accounts import (
            lockout,  # noqa: F401  (counts failed logins)
            schema,  # noqa: F401  (registers the OpenAPI extension)
        )
        from accounts.models import ApiKey, Organization
        from agenthub import security  # noqa: F401  (registers the deploy checks)

        # A key or an organization saved or deleted here: no cached
        # verification of this process outlives it.
        for model in (ApiKey, Organization):
            post_save.connect(_forget_api_keys, sender=model, dispatch_uid=f"forget-api-keys-save-{model.__name__}")
            post_delete.connect(_forget_api_keys, sender=model, dispatch_uid=f"forget-api-keys-del-{model.__name__}")


def _forget_api_keys(sender, **kwargs):
    from accounts.authentication import api_keys_forget

    api_keys_forget()
