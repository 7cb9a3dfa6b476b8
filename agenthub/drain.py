"""Graceful shutdown of a web process (SIGTERM, see :mod:`agenthub.server`).

Draining, the process:

1. starts no new work: ``/health/ready`` answers 503 (the load balancer
   stops sending traffic here), a new chat turn on any surface is refused
   with 503 ``server_draining`` and ``Retry-After``, and a new websocket is
   closed with 4503 so its client connects elsewhere;
2. lets the turns already running finish (their tokens keep streaming to
   their clients), up to ``DRAIN_TIMEOUT_SECONDS``;
3. closes every websocket with 4503: clients reconnect to another process
   and resume from the last event they hold (``?conversation=…&after=N``),
   so no token is lost or repeated;
4. stops.

Apps above register what counts as running work and the connections to
close (``register_activity``, ``connection_opened``/``connection_closed``);
this module imports none of them.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Like 1012 (service restart), which servers may not send (autobahn allows
# 1000 and 3000-4999): 4503, as the API's 4xxx codes mirror HTTP statuses.
CLOSE_SERVICE_RESTART = 4503
RETRY_AFTER_SECONDS = 1

_state = {"draining": False, "since": 0.0}
_activity: dict[str, Callable[[], int]] = {}
_connections: "weakref.WeakSet" = weakref.WeakSet()


def draining() -> bool:
    return _state["draining"]


def register_activity(name: str, count: Callable[[], int]) -> None:
    """``count()`` is how much of ``name`` still runs in this process."""
    _activity[name] = count


def connection_opened(consumer) -> None:
    """A websocket consumer (with an async ``close(code)``) to close at the end of a drain."""
    _connections.add(consumer)


def connection_closed(consumer) -> None:
    _connections.discard(consumer)


def running() -> dict[str, int]:
    return {name: count() for name, count in _activity.items()}


async def drain(timeout: float) -> dict[str, int]:
    """Drains this process (see the module's docstring); returns the work
    still running when it gave up waiting (empty when everything finished)."""
    _state.update(draining=True, since=time.monotonic())
    logger.warning("Draining: no new turns; waiting up to %g s for %s", timeout, running())
    deadline = time.monotonic() + timeout
    left = {name: n for name, n in running().items() if n}
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        left = {name: n for name, n in running().items() if n}
    if left:
        logger.warning("Drain timeout: stopping with work still running: %s", left)
    connections = list(_connections)
    for consumer in connections:
        try:
            await consumer.close(code=CLOSE_SERVICE_RESTART)
        except Exception:  # a connection closing on its own meanwhile
            logger.debug("could not close a websocket while draining", exc_info=True)
    if connections:
        await asyncio.sleep(0.3)  # let the close frames go out
    logger.warning("Drained: %d websocket(s) told to reconnect elsewhere", len(connections))
    return left


def reset() -> None:
    """Back to serving (tests)."""
    _state.update(draining=False, since=0.0)
