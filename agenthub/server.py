"""AgentHub's ASGI server: daphne, with its command line unchanged, that
refuses request bodies over ``API_MAX_BODY_BYTES`` while they arrive,
closes a websocket breaking the transport limits with a close frame,
leaves static files out of the access log, and drains on SIGTERM (running
turns finish, websockets are told to reconnect elsewhere; see
:mod:`agenthub.drain`).

daphne holds websocket frames and messages to 1 MiB
(``--websocket-max-frame-size``, ``--websocket-max-message-size``) through
autobahn, whose default on any failure (``failByDrop``) is to drop the TCP
connection: the client sees the socket vanish (1006), not why.  Here
autobahn sends a close frame instead: 1009 "message too big" with the
reason, or 1002/1007 for protocol errors.  Frames under the limit reach the
consumer, which answers oversized ones (``MAX_FRAME_CHARS``) with an
``error`` frame and keeps the socket.

Run it as daphne::

    python -m agenthub.server -b 0.0.0.0 -p 8000 agenthub.asgi:application
"""

import asyncio
import json
import logging
import signal

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.server import Server


class BodyLimitedRequest(WebRequest):
    """daphne hands a request to the application only once twisted has
    received the whole body (into a temporary file, without a limit).  This
    request refuses a body past ``API_MAX_BODY_BYTES`` while it arrives: at
    once for a ``Content-Length`` over the limit, at the limit for a chunked
    body, with 413 in the API's error shape, and closes the connection.
    (:mod:`agenthub.bodylimit` does the same at the ASGI layer for any
    server.)"""

    def gotLength(self, length):
        self._body_received = 0
        self._body_refused = False
        if length is not None and length > self._body_limit():
            self._refuse_body()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._body_refused:
            return
        self._body_received += len(data)
        if self._body_received > self._body_limit():
            self._refuse_body()
            return
        super().handleContentChunk(data)

    @staticmethod
    def _body_limit() -> int:
        from django.conf import settings  # set up by the time requests arrive

        return settings.API_MAX_BODY_BYTES

    def _refuse_body(self):
        from agenthub.bodylimit import too_large_message
        from agenthub.errors import error_body
        from agenthub.requestid import clean_request_id, reset_request_id, set_request_id

        self._body_refused = True
        limit = self._body_limit()
        raw_id = (self.requestHeaders.getRawHeaders(b"x-request-id") or [b""])[0]
        request_id = clean_request_id(raw_id.decode("latin-1"))
        token = set_request_id(request_id)
        try:
            body = error_body("payload_too_large", too_large_message(limit), {"limit_bytes": limit})
        finally:
            reset_request_id(token)
        payload = json.dumps(body).encode()
        head = (
            "HTTP/1.1 413 Request Entity Too Large\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"X-Request-ID: {request_id}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head.encode("latin-1") + payload)
        self.channel.transport.loseConnection()


class StaticQuietAccessLog(AccessLogGenerator):
    """daphne's access log without a line per static file (under
    ``STATIC_URL``, served by WhiteNoise); every other request is logged."""

    def __call__(self, protocol, action, details):
        from agenthub.logfilters import is_static_path

        if protocol == "http" and action == "complete" and is_static_path(details.get("path", "")):
            return
        super().__call__(protocol, action, details)


logger = logging.getLogger("agenthub.server")


class AgentHubServer(Server):
    """daphne, plus: SIGTERM drains the process (:mod:`agenthub.drain`) before
    it stops, instead of cancelling every running turn at once."""

    def __init__(self, *args, ready_callable=None, action_logger=None, **kwargs):
        if type(action_logger) is AccessLogGenerator:  # what the command line builds
            action_logger = StaticQuietAccessLog(action_logger.stream)
        super().__init__(*args, ready_callable=self._configure, action_logger=action_logger, **kwargs)
        self._then_ready = ready_callable
        self._drain_task = None

    def _install_drain(self):
        # Runs once the reactor runs, after Twisted installed its own
        # handlers (which would stop the reactor at once).
        if self.signal_handlers:
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame):
        from twisted.internet import reactor

        if self._drain_task is not None:  # a second SIGTERM stops now
            reactor.callFromThread(reactor.stop)
            return
        reactor.callFromThread(self._start_drain)

    def _start_drain(self):
        from django.conf import settings
        from twisted.internet import reactor

        from agenthub.drain import drain

        self._drain_task = asyncio.ensure_future(drain(settings.DRAIN_TIMEOUT_SECONDS))

        def stop(task):
            if task.exception() is not None:
                logger.error("draining failed", exc_info=task.exception())
            reactor.stop()

        self._drain_task.add_done_callback(stop)

    def _configure(self):
        # Called by Server.run once both factories exist, before the reactor
        # accepts any connection.
        self.ws_factory.setProtocolOptions(failByDrop=False)
        build = self.http_factory.buildProtocol

        def build_protocol(addr):
            protocol = build(addr)
            if protocol is not None:
                protocol.requestFactory = BodyLimitedRequest
            return protocol

        self.http_factory.buildProtocol = build_protocol
        from twisted.internet import reactor

        reactor.callWhenRunning(self._install_drain)
        if self._then_ready is not None:
            self._then_ready()


class AgentHubCommandLine(CommandLineInterface):
    description = "AgentHub HTTP/WebSocket server (daphne)"
    server_class = AgentHubServer


if __name__ == "__main__":
    AgentHubCommandLine.entrypoint()
