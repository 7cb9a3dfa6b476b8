"""Rate limits backed by the cache (Redis in production), one bucket per
caller: an API key, a user, or an anonymous client address."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from agenthub import ratelimit
from agenthub.clientip import client_ip


class PrincipalRateThrottle(SimpleRateThrottle):
    cache_format = "throttle:%(scope)s:%(ident)s"

    def __init__(self):
        # The scope, and so the rate, depends on the caller: set per request.
        pass

    def allow_request(self, request, view):
        self.scope = self._scope_for(request)
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None or not settings.REDIS_URL:
            return super().allow_request(request, view)  # DRF's window, in the local cache
        # With Redis: a token bucket of num_requests refilling over duration,
        # in one round trip (DRF's window re-reads and re-writes every
        # request's timestamp on each request).
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self._wait = ratelimit.take_sync(
            ratelimit.Bucket(self.key, self.num_requests / self.duration, self.num_requests)
        )
        return self._wait == 0

    def wait(self):
        if getattr(self, "_wait", None) is not None:
            return self._wait
        return super().wait()

    @staticmethod
    def _scope_for(request) -> str:
        if getattr(request.user, "api_key", None) is not None:
            return "api_key"
        if request.user and request.user.is_authenticated:
            return "user"
        return "anon"

    def get_rate(self):
        # Read on every request so that settings overrides apply at once.
        return settings.THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view):
        if self.scope == "api_key":
            ident = str(request.user.api_key.pk)
        elif self.scope == "user":
            ident = str(request.user.pk)
        else:
            ident = client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
