"""ASGI entry point: HTTP to Django, websockets through the ticket/visitor
authentication middleware to the Channels consumers of each app."""

import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agenthub.settings.local")
django_asgi_app = get_asgi_application()

# Everything below imports models, so it comes after Django is set up.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.channels_auth import WebsocketAuthMiddleware  # noqa: E402
from agenthub.bodylimit import BodyLimitMiddleware  # noqa: E402
from agenthub.handlers import MiddlewareListASGIHandler, request_housekeeping_only_for_django_handlers  # noqa: E402
from agenthub.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Browsers always send ``Origin`` on websockets; it must be one of
    ALLOWED_HOSTS (cross-site websocket hijacking).  Other clients (servers,
    the terminal) send none and authenticate with a ticket like everyone."""

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or super().valid_origin(parsed_origin)


# Chat paths that take bearer tokens only (JWT or API key): the hot path,
# served by Django with settings.API_MIDDLEWARE.
lean_asgi_app = MiddlewareListASGIHandler(settings.API_MIDDLEWARE)
request_housekeeping_only_for_django_handlers()
LEAN_PATHS = re.compile(r"^(/api/v1/chat|/api/v1/sessions/[^/]+/events|/v1/.*)$")


def http_router(full, lean):
    async def route(scope, receive, send):
        app = lean if LEAN_PATHS.match(scope.get("path", "")) else full
        return await app(scope, receive, send)

    return route


def _allowed_origins():
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return ["localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


application = ProtocolTypeRouter(
    {
        # Bodies are held to API_MAX_BODY_BYTES here, before either Django stack reads them.
        "http": BodyLimitMiddleware(http_router(django_asgi_app, lean_asgi_app)),
        "websocket": BrowserOriginValidator(
            WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns)), _allowed_origins()
        ),
    }
)
