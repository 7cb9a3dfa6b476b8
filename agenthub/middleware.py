"""Project-wide HTTP middleware."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.middleware.common import CommonMiddleware as _Common
from django.middleware.security import SecurityMiddleware as _Security
from django_prometheus.middleware import PrometheusAfterMiddleware as _PrometheusAfter
from django_prometheus.middleware import PrometheusBeforeMiddleware as _PrometheusBefore
from whitenoise.middleware import WhiteNoiseMiddleware as _WhiteNoise

from agenthub.errors import error_response


class BodySizeLimitMiddleware:
    """Refuses bodies above ``API_MAX_BODY_BYTES`` with 413 before any view
    reads them, in the API's error shape.  Under ASGI
    :mod:`agenthub.bodylimit` already did, for chunked bodies too; this
    covers WSGI and the test client (it sees only ``Content-Length``)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _refusal(self, request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response("bad_request", "The Content-Length header is not a number.", 400)
        limit = settings.API_MAX_BODY_BYTES
        if length > limit:
            return error_response(
                "payload_too_large",
                f"The request body is {length} bytes; the limit is {limit} bytes.",
                413,
                {"limit_bytes": limit},
            )
        return None

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._refusal(request) or self.get_response(request)

    async def __acall__(self, request):
        return self._refusal(request) or await self.get_response(request)


class InlineHooksMixin:
    """For ``MiddlewareMixin`` middleware whose ``process_request`` and
    ``process_response`` do no I/O (they set headers, read cookies, count
    metrics): under ASGI run them on the event loop instead of hopping to a
    thread for each, which costs about 0.2 ms per hop and per request.
    Middleware that may touch the database or a cache (sessions, messages)
    is not wrapped, nor are the security, CSRF and clickjacking middleware
    that ``check --deploy`` looks for by name."""

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


def _inline(base):
    return type(base.__name__, (InlineHooksMixin, base), {"__module__": __name__, "__doc__": base.__doc__})


PrometheusBeforeMiddleware = _inline(_PrometheusBefore)
PrometheusAfterMiddleware = _inline(_PrometheusAfter)
CommonMiddleware = _inline(_Common)
AuthenticationMiddleware = _inline(_Authentication)


class WhiteNoiseMiddleware(_WhiteNoise):
    """whitenoise, able to run async.  whitenoise is sync-only, and one
    sync-only middleware makes Django run the whole chain around it in a
    thread and hop back to the event loop for the rest, on every request.
    Here only static files go to a thread (to be found and served); every
    other request passes straight through."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=None):
        if settings is None:
            super().__init__(get_response)
        else:
            super().__init__(get_response, settings)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:  # development: looks at the file system
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


# --- the lean stack of the token-authenticated chat paths (agenthub.asgi) -------------


class ApiSecurityMiddleware(InlineHooksMixin, _Security):
    """Django's security headers and HTTPS redirect, inline (no I/O)."""


class ApiPrometheusAfterMiddleware(InlineHooksMixin, _PrometheusAfter):
    """django-prometheus's counting, view hooks included, on the event loop:
    only used by the lean handler, which is always async."""

    async def process_view(self, request, view_func, *view_args, **view_kwargs):
        return super().process_view(request, view_func, *view_args, **view_kwargs)

    async def process_exception(self, request, exception):
        return super().process_exception(request, exception)
