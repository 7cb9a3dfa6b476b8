"""The REST API: DRF defaults, throttle rates, request size limits and the
OpenAPI schema (drf-spectacular)."""

from .agenthub import AGENTHUB_VERSION
from .environment import env

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
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.roles.Role",
        "AgentStatusEnum": "agents.models.AgentStatus",
        "UsageStatusEnum": "billing.models.UsageStatus",
        "InvoiceStatusEnum": "billing.models.InvoiceStatus",
        "PaymentStatusEnum": "billing.models.PaymentStatus",
        "BudgetActionEnum": "billing.models.BudgetAction",
        "BudgetPeriodEnum": "billing.models.BudgetPeriod",
        "BudgetScopeEnum": "billing.models.BudgetScope",
        "AgentBulkActionEnum": "agents.services.agents.BulkAction.CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "agenthub.api.schema.add_error_responses",
    ],
}
