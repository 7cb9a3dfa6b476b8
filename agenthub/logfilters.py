"""Logging filters named in ``LOGGING`` (agenthub.settings.logging)."""

import logging


class ClientErrorTracebackFilter(logging.Filter):
    """``django.request`` logs a 4xx raised as an exception (a 403 from
    ``PermissionDenied``, a 400 from ``BadRequest``) with its traceback;
    the client's mistake is one warning line, without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
