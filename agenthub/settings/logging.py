"""Logging: one console handler, on the root logger only, writing JSON lines
(or ``LOG_FORMAT=pretty``) tagged with the request id."""

from .environment import env

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "agenthub.requestid.RequestIdLogFilter"},
        "no_client_error_traceback": {"()": "agenthub.logfilters.ClientErrorTracebackFilter"},
        "no_static_requests": {"()": "agenthub.logfilters.StaticRequestFilter"},
    },
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
        # Django's default logging gives "django" a console handler of its own
        # (live under DEBUG) besides propagating to the root's: every record
        # was written twice.  Configured here, it has none.
        "django": {"level": "INFO"},
        # A 4xx is one warning line; Django attaches a traceback to a 403
        # (PermissionDenied) or 400 (BadRequest).
        "django.request": {"filters": ["no_client_error_traceback"]},
        # runserver's access log: no line per static file.
        "django.channels.server": {"filters": ["no_static_requests"]},
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        # One INFO line per model call is noise; failures are logged by us.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
        # WeasyPrint logs each layout step of every invoice PDF at INFO;
        # fontTools each font it subsets.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # The stripe SDK logs each request at INFO (with ids, never the key).
        "stripe": {"level": "WARNING"},
    },
}
