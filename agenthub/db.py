"""Database calls from async code (the chat runtime, async API views).

Django's async ORM hops to one shared thread, so every request's queries
wait in one line.  The chat runtime instead runs its short, independent
queries on a small pool of threads.  With Postgres each call borrows a
connection from psycopg's pool and returns it; a connection that broke (a
database restart) is dropped and the call retried once on a fresh one.

Never ``await db(...)`` inside ``async_to_sync`` from a thread that holds a
connection (a sync view): with a bounded pool, threads that each hold one
connection and wait for another deadlock.  Make the view async instead.
"""

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agenthub-db")


def _guarded(func, args, kwargs):
    try:
        try:
            return func(*args, **kwargs)
        except (InterfaceError, OperationalError):
            if connection.in_atomic_block:
                raise
            connection.close()
            return func(*args, **kwargs)
        except DatabaseError:
            close_old_connections()
            raise
    finally:
        if settings.DATABASE_POOL and not connection.in_atomic_block:
            connection.close()  # back to the pool


async def db(func, *args, **kwargs):
    """``await db(func, ...)``: run a sync ORM function on the pool's threads
    (with the caller's context variables, e.g. the request id)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _executor, functools.partial(context.run, _guarded, func, args, kwargs)
    )


def close_pool_connections() -> None:
    """Closes the database connection of every pool thread (tests, before
    the test database is dropped; shutdown hooks)."""
    import threading

    from django.db import connections

    workers = _executor._max_workers
    barrier = threading.Barrier(workers)

    def close():
        connections.close_all()
        barrier.wait(timeout=5)

    futures = [_executor.submit(close) for _ in range(workers)]
    for future in futures:
        future.result(timeout=10)
