"""Settings shared by every environment, read from the process environment.

With nothing set, AgentHub runs on SQLite, the in-memory channel layer, a
local-memory cache and eager Celery.  ``DATABASE_URL`` switches the database,
``REDIS_URL`` switches the cache, the channel layer and the Celery broker to
Redis.  Every variable read here is documented in ``.env.example``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

AGENTHUB_VERSION = "0.1.0"

# --- core -------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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

# --- database -----------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Under ASGI every request runs its sync code in a thread of its own, so
# persistent per-thread connections would pile up: Postgres connections come
# from psycopg's pool instead (a connection goes back to it after each use).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASE_POOL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
)
if DATABASE_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: cache, channel layer, celery broker -------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "agenthub.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "agenthub",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default 5 s read timeout equals channels-redis's 5 s
            # blocking pop: give reads room, or idle consumers crash.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 2}],
                "prefix": "agenthub:ch",
                "capacity": 1000,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- celery -------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=270)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a prefork worker's database connection across tasks (Celery's Django
# fixup otherwise closes the whole connection pool after every task: a new
# Postgres connection per task, ~12 ms each).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in ("default", "tools", "workflows", "billing")]
# Every task is routed here explicitly (a guard test fails otherwise).
CELERY_TASK_ROUTES = {
    "accounts.tasks.*": {"queue": "default"},
    "agents.tasks.tool_execute": {"queue": "tools"},
    "agents.tasks.draft_execute": {"queue": "tools"},
    "agents.tasks.drafts_expire": {"queue": "default"},
}
# A task delivered more often than this (a poison message that kills its
# worker every time) is dropped with an error log instead of looping.
CELERY_TASK_MAX_DELIVERIES = env.int("CELERY_TASK_MAX_DELIVERIES", default=3)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A late-acked task whose worker died is redelivered after the visibility
# timeout; keep it just above the hard time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60),
    # How often a worker looks for messages whose worker died (past the
    # visibility timeout) and puts them back on their queue.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "accounts-flush-expired-tokens": {
        "task": "accounts.tasks.flush_expired_tokens",
        "schedule": timedelta(hours=6),
    },
    "agents-drafts-expire": {
        "task": "agents.tasks.drafts_expire",
        "schedule": timedelta(minutes=1),
    },
}

# --- auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TTL_SECONDS", default=900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TTL_SECONDS", default=7 * 86400)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

API_KEY_LAST_USED_RESOLUTION_SECONDS = 60

# Failed logins (API and admin alike, accounts.lockout): an account or a client
# address reaching its limit within the window is locked; each further lock
# lasts twice as long, up to the maximum. Failed API keys count per address.
AUTHENTICATION_BACKENDS = ["accounts.lockout.LockoutModelBackend"]
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=20)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=60)
LOGIN_LOCKOUT_MAX_SECONDS = env.int("LOGIN_LOCKOUT_MAX_SECONDS", default=3600)
# How long a lock is remembered when sizing the next one.
LOGIN_LOCKOUT_MEMORY_SECONDS = env.int("LOGIN_LOCKOUT_MEMORY_SECONDS", default=86400)
# Invitations (accounts): how long a link works, how many may be pending per
# organization, how many an organization may send per hour; links point at
# AGENTHUB_PUBLIC_URL (never at the request's Host header).
INVITATION_TTL_SECONDS = env.int("INVITATION_TTL_SECONDS", default=7 * 86400)
INVITATIONS_MAX_PENDING = env.int("INVITATIONS_MAX_PENDING", default=200)
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=50)
AGENTHUB_PUBLIC_URL = env.str("AGENTHUB_PUBLIC_URL", default="http://127.0.0.1:8000")
API_KEY_FAILURES_PER_ADDRESS = env.int("API_KEY_FAILURES_PER_ADDRESS", default=20)
WS_TICKET_TTL_SECONDS = env.int("WS_TICKET_TTL_SECONDS", default=30)

# --- REST framework -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["agenthub.jsonparse.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "agenthub.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["agenthub.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agenthub.errors.api_exception_handler",
}
API_MAX_PAGE_SIZE = 100
# Requests per period for each kind of caller ("N/s", "N/min", "N/hour", "N/day").
THROTTLE_RATES = {
    "user": env.str("THROTTLE_RATE_USER", default="1200/min"),
    "api_key": env.str("THROTTLE_RATE_API_KEY", default="1200/min"),
    "anon": env.str("THROTTLE_RATE_ANON", default="120/min"),
}
# Request bodies above this many bytes are refused with 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# JSON bodies and websocket frames nested deeper than this are refused with
# invalid_json (agenthub.jsonparse).
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=64)

SPECTACULAR_SETTINGS = {
    "TITLE": "AgentHub API",
    "DESCRIPTION": "Run AI agents in production: agents, chat, tools, drafts, usage and billing.",
    "VERSION": AGENTHUB_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {"RoleEnum": "accounts.roles.Role", "AgentStatusEnum": "agents.models.AgentStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "agenthub.api.schema.add_error_responses",
    ],
}

# --- client addresses (agenthub.clientip) -------------------------------------------
# X-Forwarded-For is believed only as far as trusted proxies vouch for it:
# either the number of proxies in front of AgentHub that append to it, or
# the networks those proxies live in. Neither by default: the socket's peer.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=[])

# --- CORS and security headers ---------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "x-api-key",
    "x-organization",
    "x-request-id",
    "x-csrftoken",
    "last-event-id",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

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

# --- model layer (integrations.llm) -------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
# "offline" is the built-in deterministic model of the embedded demo; every
# other name is served by the OpenAI-compatible server at OPENAI_BASE_URL.
AGENTHUB_DEFAULT_MODEL = env.str(
    "AGENTHUB_DEFAULT_MODEL", default="gpt-4o-mini" if (OPENAI_API_KEY or OPENAI_BASE_URL) else "offline"
)
# Models operators may choose, as "name" or "name:context_window_tokens".
AGENTHUB_MODELS = env.list(
    "AGENTHUB_MODELS", default=["offline:8192", "gpt-4o-mini:128000", "gpt-4o:128000", "gpt-4.1-mini:1000000"]
)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60.0)
LLM_CONNECT_TIMEOUT_SECONDS = env.float("LLM_CONNECT_TIMEOUT_SECONDS", default=5.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_OFFLINE_TOKEN_DELAY_MS = env.int("LLM_OFFLINE_TOKEN_DELAY_MS", default=25)

# --- chat runtime (the chat app) ------------------------------------------------------
CONVERSATION_TTL_SECONDS = env.int("CONVERSATION_TTL_SECONDS", default=3600)
CHAT_MAX_PROMPT_CHARS = env.int("CHAT_MAX_PROMPT_CHARS", default=32000)
# The most messages one /v1/chat/completions request may send (the whole prompt must
# also fit the agent's model context window).
CHAT_MAX_MESSAGES = env.int("CHAT_MAX_MESSAGES", default=500)
CHAT_HISTORY_MAX_MESSAGES = env.int("CHAT_HISTORY_MAX_MESSAGES", default=50)
CHAT_REPLAY_MAX_EVENTS = env.int("CHAT_REPLAY_MAX_EVENTS", default=5000)
CHAT_REPLAY_TTL_SECONDS = env.int("CHAT_REPLAY_TTL_SECONDS", default=3600)
CHAT_TURN_TIMEOUT_SECONDS = env.int("CHAT_TURN_TIMEOUT_SECONDS", default=300)
# Limits on chat traffic (agenthub.ratelimit). Websocket frames of any type, per
# connection; websocket messages per connection; messages per user (or API key
# or visitor) across all connections and processes (Redis); turns running at
# once per user, on every surface (websocket, REST/SSE, /v1). 0 turns a limit off.
WS_FRAMES_PER_SECOND = env.float("WS_FRAMES_PER_SECOND", default=10)
WS_FRAME_BURST = env.int("WS_FRAME_BURST", default=30)
WS_MESSAGES_PER_MINUTE_PER_CONNECTION = env.float("WS_MESSAGES_PER_MINUTE_PER_CONNECTION", default=20)
WS_MESSAGE_BURST_PER_CONNECTION = env.int("WS_MESSAGE_BURST_PER_CONNECTION", default=5)
CHAT_MESSAGES_PER_MINUTE_PER_USER = env.float("CHAT_MESSAGES_PER_MINUTE_PER_USER", default=60)
CHAT_MESSAGE_BURST_PER_USER = env.int("CHAT_MESSAGE_BURST_PER_USER", default=10)
CHAT_MAX_CONCURRENT_TURNS_PER_USER = env.int("CHAT_MAX_CONCURRENT_TURNS_PER_USER", default=4)

# --- tools and drafts (the tools app) --------------------------------------------
# Modules whose @tool functions are registered at start-up (the built-ins, plus yours).
AGENTHUB_TOOL_MODULES = ["tools.builtin", *env.list("AGENTHUB_EXTRA_TOOL_MODULES", default=[])]
TOOL_DEFAULT_TIMEOUT_SECONDS = env.int("TOOL_DEFAULT_TIMEOUT_SECONDS", default=30)
TOOL_RESULT_MAX_CHARS = env.int("TOOL_RESULT_MAX_CHARS", default=16000)
# Pending drafts expire after this long (swept by Celery beat every minute).
DRAFT_TTL_SECONDS = env.int("DRAFT_TTL_SECONDS", default=86400)
# Encrypts integration credentials; several keys comma-separated rotate (the
# first encrypts).  Derived from SECRET_KEY when unset.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

# --- email (send_email tool) ----------------------------------------------------------
# e.g. smtp+tls://user:password@smtp.example.com:587; the console by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AgentHub <agenthub@localhost>")

# --- metrics ----------------------------------------------------------------------
# /metrics needs a bearer token or a client address (or network) from the
# allowlist. With neither set it is closed, unless METRICS_ALLOW_ANONYMOUS is
# on (the development default; check --deploy warns about it).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
METRICS_ALLOW_ANONYMOUS = env.bool("METRICS_ALLOW_ANONYMOUS", default=False)
# Labels naming an organization's objects (agent slugs, operator-defined tool
# names) are hidden unless this is on: anyone who can scrape /metrics would
# otherwise learn every tenant's agents and volumes.
METRICS_TENANT_LABELS = env.bool("METRICS_TENANT_LABELS", default=False)
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- logging ------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "agenthub.requestid.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "pretty": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "pretty",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        # One INFO line per model call is noise; failures are logged by us.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
