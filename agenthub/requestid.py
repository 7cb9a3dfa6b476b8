"""Request ids: accepted from ``X-Request-ID`` or generated, returned on every
response, attached to every log record and carried into Celery tasks."""

import contextvars
import logging
import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(candidate: str | None) -> str:
    """The caller's id when it is a sane token, a fresh one otherwise."""
    if candidate and _VALID.match(candidate):
        return candidate
    return new_request_id()


class RequestIdMiddleware:
    """Sets the request id for the duration of the request (sync or async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _begin(self, request):
        request_id = clean_request_id(request.META.get(META_KEY))
        request.request_id = request_id
        return set_request_id(request_id)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = self._begin(request)
        try:
            response = self.get_response(request)
            response[HEADER] = request.request_id
            return response
        finally:
            reset_request_id(token)

    async def __acall__(self, request):
        token = self._begin(request)
        try:
            response = await self.get_response(request)
            response[HEADER] = request.request_id
            return response
        finally:
            reset_request_id(token)


class RequestIdLogFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs after the middleware has returned; its
            # records carry the request itself.
            request = getattr(record, "request", None)
            record.request_id = get_request_id() or getattr(request, "request_id", None) or "-"
        return True
