"""Async DRF views.

DRF's views are synchronous, and Django runs synchronous views one at a time
in a single thread under ASGI, so a view that waits for a model for seconds
would hold up every other one.  :class:`AsyncAPIView` keeps DRF's
authentication, permissions, throttling, parsing and error handling (run on a
worker thread, since they touch the database) and lets the handler itself be
a coroutine that awaits the chat runtime.
"""

from rest_framework.views import APIView

from agenthub.db import db


class AsyncAPIView(APIView):
    async def dispatch(self, request, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            await db(self._initial_and_parse, request, *args, **kwargs)
            handler = getattr(self, request.method.lower(), None)
            if request.method.lower() not in self.http_method_names or handler is None:
                handler = self.http_method_not_allowed
                response = handler(request, *args, **kwargs)
            else:
                response = await handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _initial_and_parse(self, request, *args, **kwargs):
        self.initial(request, *args, **kwargs)
        if request.method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            request.data  # noqa: B018  (parse now, off the event loop)

    async def options(self, request, *args, **kwargs):
        return super().options(request, *args, **kwargs)
