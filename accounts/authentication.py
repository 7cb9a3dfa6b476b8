"""API key authentication for DRF.

Keys look like ``ahk_<prefix>_<secret>`` and are sent as
``Authorization: Bearer ahk_...`` (so any OpenAI client can use one) or in
``X-API-Key``.  Anything else is left to the JWT and session authenticators.
"""

import hashlib
import hmac
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework_simplejwt import authentication as jwt_authentication

from accounts.models import ApiKey

KEY_PREFIX = "ahk_"


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def split_api_key(raw: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, None otherwise."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret or len(prefix) > 16 or len(secret) > 128:
        return None
    return prefix, secret


class ApiKeyPrincipal:
    """``request.user`` for a request made with an API key: authenticated,
    not a person, acting in the key's organization with the key's role."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.username = f"apikey:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False


class _VerifiedKeys:
    """Keys verified recently, by the hash of the raw key, per process, for
    API_KEY_CACHE_SECONDS: the hot path (every /v1 call) skips the database.
    Revoking a key or disabling an organization clears this process's
    cache at once; other processes drop the entry when it expires."""

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, ApiKey]] = {}

    def get(self, digest: str) -> ApiKey | None:
        with self._lock:
            hit = self._entries.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, digest: str, key: ApiKey) -> None:
        ttl = settings.API_KEY_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_verified = _VerifiedKeys()


def api_keys_forget() -> None:
    """Drops every cached key verification of this process (a key revoked,
    an organization disabled)."""
    _verified.clear()


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key for ``raw``; AuthenticationFailed otherwise."""
    parts = split_api_key(raw)
    if parts is None:
        raise exceptions.AuthenticationFailed("Malformed API key.", code="invalid_api_key")
    digest = hash_api_key(raw)
    key = _verified.get(digest)
    cached = key is not None
    if key is None:
        key = ApiKey.objects.select_related("organization").filter(prefix=parts[0]).first()
        if key is None or not hmac.compare_digest(key.hashed_key, digest):
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    now = timezone.now()
    if key.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
    if not key.organization.is_active:
        raise exceptions.AuthenticationFailed("This organization is disabled.", code="organization_disabled")
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if key.last_used_at is None or now - key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    if not cached:
        _verified.put(digest, key)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        raw = request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw:
            header = authentication.get_authorization_header(request).decode("latin-1").split()
            if len(header) == 2 and header[0].lower() == "bearer" and header[1].startswith(KEY_PREFIX):
                raw = header[1]
        if not raw:
            return None
        # Guessing keys is throttled per client address. (Imported here: this
        # module is loaded by DRF's settings, before the error layer exists.)
        from accounts.lockout import check_api_key_allowed, record_api_key_failure

        check_api_key_allowed(request)
        try:
            key = api_key_authenticate(raw)
        except exceptions.AuthenticationFailed as exc:
            if exc.get_codes() == "invalid_api_key":
                record_api_key_failure(request)
            raise
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def revoked_access_key(jti: str) -> str:
    return f"jwt:revoked:{jti}"


def access_token_revoke(token) -> None:
    """Refuses the access token ``token`` (a validated simplejwt token) from
    now until it expires: logging out ends it at once, not 15 minutes later."""
    jti = token.get("jti")
    if not jti:
        return
    remaining = int(token.get("exp", 0) - time.time()) + 1
    if remaining > 0:
        cache.set(revoked_access_key(jti), 1, timeout=remaining)


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """simplejwt's authentication, refusing access tokens revoked by logout."""

    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        jti = token.get("jti")
        if jti and cache.get(revoked_access_key(jti)):
            raise exceptions.AuthenticationFailed("This token was revoked by logging out.", code="token_revoked")
        return token
