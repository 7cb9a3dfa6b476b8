"""agenthub.asgi's two Django stacks: the lean one (the token-authenticated
chat paths) is built from API_MIDDLEWARE without touching
settings.MIDDLEWARE, and skips the browser middleware (sessions)."""

import asyncio
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, markcoroutinefunction
from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware

from agenthub.handlers import MiddlewareListASGIHandler


class MiddlewareProbe:
    """Records ``settings.MIDDLEWARE`` as its handler builds the chain."""

    sync_capable = False
    async_capable = True
    seen: list = []

    def __init__(self, get_response):
        MiddlewareProbe.seen.append(list(settings.MIDDLEWARE))
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        return await self.get_response(request)


def get(path: str) -> int:
    """One GET through ``agenthub.asgi.application``; returns the status."""
    from agenthub.asgi import application

    sent = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays until the response is sent

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    async_to_sync(application)(scope, receive, send)
    return next(m for m in sent if m["type"] == "http.response.start")["status"]


def test_building_a_handler_from_a_list_leaves_settings_middleware_alone():
    before = list(settings.MIDDLEWARE)
    MiddlewareProbe.seen = []
    handler = MiddlewareListASGIHandler([f"{__name__}.MiddlewareProbe", *settings.API_MIDDLEWARE])
    # The probe was built mid-load: the setting was the full stack then, and after.
    assert MiddlewareProbe.seen == [before]
    assert list(settings.MIDDLEWARE) == before
    assert handler.middleware == (f"{__name__}.MiddlewareProbe", *settings.API_MIDDLEWARE)
    assert handler._middleware_chain is not None


@pytest.mark.django_db  # each request closes stale connections first
def test_lean_paths_skip_the_session_middleware_and_other_paths_run_it():
    calls = []
    original = SessionMiddleware.process_request

    def spy(self, request):
        calls.append(request.path)
        return original(self, request)

    with mock.patch.object(SessionMiddleware, "process_request", spy):
        assert get("/v1/models") == 401  # lean: bearer tokens only
        assert get("/api/v1/chat") == 401
        assert calls == []
        assert get("/health/live") == 200  # the full stack
        assert calls == ["/health/live"]
