"""Development and the embedded demo: debug on, pretty logs, a dev secret."""

from .base import *
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-in-production-0123456789")
LOG_FORMAT = env.str("LOG_FORMAT", default="pretty")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "pretty"
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
METRICS_ALLOW_ANONYMOUS = env.bool("METRICS_ALLOW_ANONYMOUS", default=True)  # the demo's /metrics link
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic
