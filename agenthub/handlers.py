"""A Django ASGI handler whose middleware chain comes from the list it is
given, not from ``settings.MIDDLEWARE``.

:mod:`agenthub.asgi` serves the token-authenticated chat paths with one built
from ``settings.API_MIDDLEWARE`` beside Django's usual handler; global
settings are never touched to build it.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

logger = logging.getLogger("django.request")


class MiddlewareListASGIHandler(ASGIHandler):
    """``ASGIHandler`` with ``middleware`` (dotted paths, outermost first)
    instead of ``settings.MIDDLEWARE``; everything else is Django's."""

    def __init__(self, middleware: Iterable[str]):
        self.middleware = tuple(middleware)
        super().__init__()  # calls load_middleware(is_async=True)

    def load_middleware(self, is_async=False):
        # BaseHandler.load_middleware (Django 5.2) with self.middleware for
        # settings.MIDDLEWARE: it reads the setting directly.
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []

        get_response = self._get_response_async if is_async else self._get_response
        handler = convert_exception_to_response(get_response)
        handler_is_async = is_async
        for middleware_path in reversed(self.middleware):
            middleware = import_string(middleware_path)
            middleware_can_sync = getattr(middleware, "sync_capable", True)
            middleware_can_async = getattr(middleware, "async_capable", False)
            if not middleware_can_sync and not middleware_can_async:
                raise RuntimeError(
                    f"Middleware {middleware_path} must have at least one of sync_capable/async_capable set to True."
                )
            elif not handler_is_async and middleware_can_sync:
                middleware_is_async = False
            else:
                middleware_is_async = middleware_can_async
            try:
                adapted_handler = self.adapt_method_mode(
                    middleware_is_async,
                    handler,
                    handler_is_async,
                    debug=settings.DEBUG,
                    name=f"middleware {middleware_path}",
                )
                mw_instance = middleware(adapted_handler)
            except MiddlewareNotUsed as exc:
                if settings.DEBUG:
                    if str(exc):
                        logger.debug("MiddlewareNotUsed(%r): %s", middleware_path, exc)
                    else:
                        logger.debug("MiddlewareNotUsed: %r", middleware_path)
                continue
            else:
                handler = adapted_handler

            if mw_instance is None:
                raise ImproperlyConfigured(f"Middleware factory {middleware_path} returned None.")

            if hasattr(mw_instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(is_async, mw_instance.process_view))
            if hasattr(mw_instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(is_async, mw_instance.process_template_response)
                )
            if hasattr(mw_instance, "process_exception"):
                # Django runs the exception stack synchronously.
                self._exception_middleware.append(self.adapt_method_mode(False, mw_instance.process_exception))

            handler = convert_exception_to_response(mw_instance)
            handler_is_async = middleware_is_async

        handler = self.adapt_method_mode(is_async, handler, handler_is_async)
        # Set last: Django reads it as "initialization complete".
        self._middleware_chain = handler


def request_housekeeping_only_for_django_handlers() -> None:
    """Django's per-request housekeeping (closing stale database
    connections, resetting the query log, closing caches, resetting the
    URLconf) is connected to ``request_started`` / ``request_finished`` for
    every sender, and each of those receivers is sync: under ASGI each
    signal costs a hop to a worker thread.  The lean handler serves async
    views only, whose database calls go through :mod:`agenthub.db` (which
    returns its connections itself) and which set no URLconf, so nothing
    there needs it: the receivers are reconnected for Django's own handlers
    only.  Idempotent."""
    from django.core import signals
    from django.core.cache import close_caches
    from django.core.handlers.base import reset_urlconf
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections, reset_queries

    housekeeping = {
        signals.request_started: (reset_queries, close_old_connections),
        signals.request_finished: (close_old_connections, close_caches, reset_urlconf),
    }
    for signal, receivers in housekeeping.items():
        for receiver in receivers:
            if signal.disconnect(receiver):
                for sender in (ASGIHandler, WSGIHandler):
                    signal.connect(receiver, sender=sender)
