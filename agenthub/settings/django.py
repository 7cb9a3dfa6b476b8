"""Django's own wiring: apps, middleware stacks, URLs, templates, static
files, i18n and email."""

from .environment import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_celery_beat",
    "channels",
    "accounts",
    "integrations",
    "billing",
    "tools",
    "agents",
    "chat",
]

# Django's own middleware hop to a thread for each hook under ASGI; the
# ones whose hooks do no I/O run inline instead (agenthub.middleware).
MIDDLEWARE = [
    "agenthub.middleware.PrometheusBeforeMiddleware",
    "agenthub.requestid.RequestIdMiddleware",
    "agenthub.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "agenthub.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "agenthub.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "agenthub.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "agenthub.middleware.PrometheusAfterMiddleware",
]

# The chat paths that take bearer tokens only (/api/v1/chat, the session
# event streams, /v1/...) run through this shorter, fully async stack: no
# sessions, messages or CSRF (they are for browsers and the admin), whose
# hooks would each hop to a thread (agenthub.asgi routes by path).
API_MIDDLEWARE = [
    "agenthub.middleware.PrometheusBeforeMiddleware",
    "agenthub.requestid.RequestIdMiddleware",
    "agenthub.middleware.BodySizeLimitMiddleware",
    "agenthub.middleware.ApiSecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "agenthub.middleware.ApiPrometheusAfterMiddleware",
]

ROOT_URLCONF = "agenthub.urls"
WSGI_APPLICATION = "agenthub.wsgi.application"
ASGI_APPLICATION = "agenthub.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- email (send_email tool) ----------------------------------------------------------
# e.g. smtp+tls://user:password@smtp.example.com:587; the console by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AgentHub <agenthub@localhost>")
