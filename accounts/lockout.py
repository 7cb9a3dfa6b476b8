"""One rule for failed logins, at every door (the API's token endpoint and
the admin's login page), and for failed API keys.

Failures are counted per account and per client address (the address from
``agenthub.clientip``, so a forged ``X-Forwarded-For`` changes nothing). When
either count reaches its limit within the window, that account or address is
locked: every login through it is refused with 429 and ``Retry-After``
before any password is checked, the right one included (otherwise the lock
would tell a guesser when they got it right). Each further lock of the same
account or address lasts twice as long as the one before, up to a maximum.
A successful login clears the account's count (not the address's: a guesser
with one account of their own must not be able to reset it).

Counters live in the Django cache (Redis in production), so every process
shares them. ``manage.py login_unlock`` lifts a lock.

Where it plugs in: :class:`LockoutModelBackend` refuses locked logins and
clears counts on success; the ``user_login_failed`` signal (sent by Django's
``authenticate()`` for both doors) counts failures.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

from agenthub.clientip import client_ip
from agenthub.errors import ApplicationError

logger = logging.getLogger(__name__)


class LoginLocked(ApplicationError):
    status_code = 429
    code = "too_many_login_failures"

    def __init__(self, retry_after: int):
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"Too many failed logins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            details={"retry_after_seconds": retry_after},
        )
        self.retry_after = retry_after


class ApiKeyGuessing(ApplicationError):
    status_code = 429
    code = "too_many_invalid_api_keys"

    def __init__(self, retry_after: int):
        super().__init__(
            "Too many invalid API keys from your address. Retry after the time in the Retry-After header.",
            details={"retry_after_seconds": retry_after},
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rule:
    kind: str  # "account", "address" or "apikey"
    limit: int


def _rules() -> dict[str, Rule]:
    return {
        "account": Rule("account", settings.LOGIN_FAILURES_PER_ACCOUNT),
        "address": Rule("address", settings.LOGIN_FAILURES_PER_ADDRESS),
        "apikey": Rule("apikey", settings.API_KEY_FAILURES_PER_ADDRESS),
    }


def _ident(value: str) -> str:
    # Usernames and addresses are hashed: cache keys never hold them.
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def _keys(kind: str, value: str) -> tuple[str, str, str]:
    ident = _ident(value)
    return f"lockout:{kind}:fail:{ident}", f"lockout:{kind}:lock:{ident}", f"lockout:{kind}:strikes:{ident}"


def locked_for(kind: str, value: str) -> int:
    """Seconds until ``value`` (an account or address) may try again; 0 when free."""
    _, lock_key, _ = _keys(kind, value)
    until = cache.get(lock_key)
    if not until:
        return 0
    return max(0, math.ceil(until - time.time()))


def record_failure(kind: str, value: str) -> int:
    """Counts one failure; returns the lock's length in seconds when this
    failure locked ``value``, else 0."""
    fail_key, lock_key, strikes_key = _keys(kind, value)
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    cache.add(fail_key, 0, timeout=window)
    try:
        count = cache.incr(fail_key)
    except ValueError:  # expired between add and incr
        cache.set(fail_key, 1, timeout=window)
        count = 1
    if count < _rules()[kind].limit:
        return 0
    cache.delete(fail_key)
    cache.add(strikes_key, 0, timeout=settings.LOGIN_LOCKOUT_MEMORY_SECONDS)
    try:
        strikes = cache.incr(strikes_key)
    except ValueError:
        strikes = 1
        cache.set(strikes_key, 1, timeout=settings.LOGIN_LOCKOUT_MEMORY_SECONDS)
    seconds = min(settings.LOGIN_LOCKOUT_SECONDS * 2 ** (strikes - 1), settings.LOGIN_LOCKOUT_MAX_SECONDS)
    cache.set(lock_key, time.time() + seconds, timeout=seconds)
    logger.warning("locked after repeated failures", extra={"lockout_kind": kind, "lockout_seconds": seconds})
    return seconds


def clear_failures(kind: str, value: str) -> None:
    fail_key, _, _ = _keys(kind, value)
    cache.delete(fail_key)


def unlock(kind: str, value: str) -> None:
    """Lifts a lock and forgets its history (``manage.py login_unlock``)."""
    cache.delete_many(list(_keys(kind, value)))


def _username(credentials: dict) -> str:
    return str(credentials.get("username") or credentials.get("email") or "")[:254]


def check_login_allowed(request, username: str) -> None:
    """Raises :class:`LoginLocked` while the account or the address is locked."""
    waits = [locked_for("address", client_ip(request))] if request is not None else []
    if username:
        waits.append(locked_for("account", username))
    wait = max(waits, default=0)
    if wait:
        raise LoginLocked(wait)


class LockoutModelBackend(ModelBackend):
    """Django's model backend behind the lock-out rule."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        name = username or kwargs.get(self._username_field(), "") or ""
        check_login_allowed(request, str(name))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and name:
            clear_failures("account", str(name))
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


@receiver(user_login_failed, dispatch_uid="agenthub-login-failed")
def _count_login_failure(sender, credentials, request=None, **kwargs):
    username = _username(credentials)
    locks = []
    if username:
        locks.append(record_failure("account", username))
    if request is not None:
        locks.append(record_failure("address", client_ip(request)))
    if any(locks):
        # The failure that locks is answered as a lock, so a client learns it now.
        raise LoginLocked(max(locks))


def check_api_key_allowed(request) -> None:
    wait = locked_for("apikey", client_ip(request))
    if wait:
        raise ApiKeyGuessing(wait)


def record_api_key_failure(request) -> None:
    seconds = record_failure("apikey", client_ip(request))
    if seconds:
        raise ApiKeyGuessing(seconds)
