"""One asyncio Redis client per event loop (the web process has one loop;
tests and management commands may create several)."""

import asyncio
import weakref

from django.conf import settings

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = weakref.WeakKeyDictionary()


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


def get_redis():
    """The loop's ``redis.asyncio.Redis`` client (bytes in, bytes out)."""
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # A bounded pool that waits for a free connection (the default pool
        # fails at once when exhausted, e.g. 500 turns starting together).
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=1000,
            timeout=30,
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=30,
            # Given once: without it every new connection reads redis-py's
            # version from the package metadata (about a millisecond of CPU
            # each, when a burst of turns grows the pool).
            driver_info=_driver_info(),
        )
        client = aioredis.Redis(connection_pool=pool)
        _clients[loop] = client
    return client


def _driver_info():
    import redis
    from redis.driver_info import DriverInfo

    return DriverInfo(lib_version=redis.__version__)


_scripts: "weakref.WeakKeyDictionary[object, dict[str, object]]" = weakref.WeakKeyDictionary()


def script(source: str):
    """The Lua ``source`` registered with the loop's client: called by SHA
    (EVALSHA), so its text is not sent on every call."""
    client = get_redis()
    registered = _scripts.setdefault(client, {})
    if source not in registered:
        registered[source] = client.register_script(source)
    return registered[source]
