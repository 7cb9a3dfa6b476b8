"""AgentHub's ASGI server: daphne, with its command line unchanged, that
closes a websocket breaking the transport limits with a close frame.

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

from daphne.cli import CommandLineInterface
from daphne.server import Server


class AgentHubServer(Server):
    def __init__(self, *args, ready_callable=None, **kwargs):
        super().__init__(*args, ready_callable=self._configure_websockets, **kwargs)
        self._then_ready = ready_callable

    def _configure_websockets(self):
        # Called by Server.run once the websocket factory exists, before the
        # reactor accepts any connection.
        self.ws_factory.setProtocolOptions(failByDrop=False)
        if self._then_ready is not None:
            self._then_ready()


class AgentHubCommandLine(CommandLineInterface):
    description = "AgentHub HTTP/WebSocket server (daphne)"
    server_class = AgentHubServer


if __name__ == "__main__":
    AgentHubCommandLine.entrypoint()
