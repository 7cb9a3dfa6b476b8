"""An ASGI wrapper that holds every HTTP request body to ``API_MAX_BODY_BYTES``
before Django reads it, whatever the server (daphne, uvicorn) and however
the body is sent.

- A ``Content-Length`` above the limit is refused with 413 at once, unread.
- A body without ``Content-Length`` (``Transfer-Encoding: chunked``) is read
  here, counting bytes, and refused with 413 as soon as it passes the limit.
  Below the limit it is handed on in one piece with its ``Content-Length``
  set: Django and DRF size bodies by that header, and without it DRF reads a
  chunked body as empty ("field required" for every field).
- A body longer than its own ``Content-Length`` is cut off for the
  application (it sees the client disconnect) and answered with 413 too.

The refusal is in the API's error shape with the request's id.
"""

import json

from django.conf import settings

from agenthub.errors import error_body
from agenthub.requestid import clean_request_id, reset_request_id, set_request_id


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


async def _send_error(scope, send, status: int, code: str, message: str, details: dict | None = None):
    request_id = clean_request_id((_header(scope, b"x-request-id") or b"").decode("latin-1"))
    token = set_request_id(request_id)
    try:
        body = json.dumps(error_body(code, message, details)).encode()
    finally:
        reset_request_id(token)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                # The rest of the body may still be on its way: do not reuse the connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def too_large_message(limit: int, size: int | None = None) -> str:
    if size is None:
        return f"The request body is larger than {limit} bytes, the limit. Send less data."
    return f"The request body is {size} bytes; the limit is {limit} bytes."


class BodyLimitMiddleware:
    """Wraps the HTTP application (see :mod:`agenthub.asgi`)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.API_MAX_BODY_BYTES
        declared = _header(scope, b"content-length")
        if declared is None:
            return await self._unsized(scope, receive, send, limit)
        try:
            length = int(declared)
            if length < 0:
                raise ValueError
        except ValueError:
            return await _send_error(scope, send, 400, "bad_request", "The Content-Length header is not a number.")
        if length > limit:
            return await _send_error(
                scope, send, 413, "payload_too_large", too_large_message(limit, length), {"limit_bytes": limit}
            )
        return await self._sized(scope, receive, send, min(length, limit))

    async def _sized(self, scope, receive, send, allowed: int):
        received = 0
        overflow = False
        started = False

        async def counting_receive():
            nonlocal received, overflow
            if overflow:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    overflow = True
                    return {"type": "http.disconnect"}
            return message

        async def watching_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, watching_send)
        if overflow and not started:
            limit = settings.API_MAX_BODY_BYTES
            await _send_error(
                scope,
                send,
                413,
                "payload_too_large",
                "The request body is longer than its Content-Length header says.",
                {"limit_bytes": limit},
            )

    async def _unsized(self, scope, receive, send, limit: int):
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _send_error(
                    scope, send, 413, "payload_too_large", too_large_message(limit), {"limit_bytes": limit}
                )
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = [(k, v) for k, v in scope.get("headers") or () if k.lower() != b"transfer-encoding"]
        headers.append((b"content-length", str(len(body)).encode()))
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the disconnect

        return await self.app({**scope, "headers": headers}, replay, send)
