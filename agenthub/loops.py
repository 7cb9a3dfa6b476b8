"""The server's event loop, for sync code that must reach async state.

In-memory channel layers and the chat hub live on the event loop of the ASGI
server.  Sync code running in that process (a view, the admin, a service in a
thread) hands coroutines to that loop; elsewhere (a Celery worker, a
management command) they run on a loop of their own.
"""

import asyncio

from asgiref.sync import async_to_sync

_home_loop: asyncio.AbstractEventLoop | None = None


def remember(loop: asyncio.AbstractEventLoop) -> None:
    """Called with the loop of the process's first chat hub."""
    global _home_loop
    if _home_loop is None or _home_loop.is_closed():
        _home_loop = loop


def home_loop() -> asyncio.AbstractEventLoop | None:
    """The remembered loop, while it runs."""
    loop = _home_loop
    return loop if loop is not None and loop.is_running() and not loop.is_closed() else None


def _in_loop(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def run_on_server_loop(coroutine_function, *args, timeout: float = 10):
    """Runs ``coroutine_function(*args)`` from sync code: on the server's
    loop inside the server process (where in-memory layers live), else on a
    loop of its own (a Celery worker, a management command)."""
    loop = home_loop()
    if loop is not None and not _in_loop(loop):
        return asyncio.run_coroutine_threadsafe(coroutine_function(*args), loop).result(timeout=timeout)
    return async_to_sync(coroutine_function)(*args)
