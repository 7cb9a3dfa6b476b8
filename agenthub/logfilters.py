"""Logging filters named in ``LOGGING`` (agenthub.settings.logging), and the
static-file test that the access logs share."""

import logging
from urllib.parse import urlsplit


def is_static_path(path: str) -> bool:
    """Whether ``path`` is under ``STATIC_URL`` (what WhiteNoise serves)."""
    from django.conf import settings

    prefix = urlsplit(settings.STATIC_URL or "").path
    return bool(prefix) and prefix != "/" and path.startswith(prefix)


class ClientErrorTracebackFilter(logging.Filter):
    """``django.request`` logs a 4xx raised as an exception (a 403 from
    ``PermissionDenied``, a 400 from ``BadRequest``) with its traceback;
    the client's mistake is one warning line, without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class StaticRequestFilter(logging.Filter):
    """Drops runserver's access lines (daphne's ``django.channels.server``)
    for static files; every other request is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        details = record.args if isinstance(record.args, dict) else {}
        return not is_static_path(str(details.get("path", "")))
