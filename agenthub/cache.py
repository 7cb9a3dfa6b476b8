"""Django's Redis cache with one connection pool per process.

Django keeps a cache backend per thread, and under ASGI every request runs
its sync code in a thread of its own: with the stock backend nearly every
request (each rate-limit check) opened a new Redis connection.  Here the
backends of all threads share one client, and so one pool, per location."""

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.utils.functional import cached_property

_clients: dict = {}
_lock = threading.Lock()


class RedisCache(DjangoRedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
