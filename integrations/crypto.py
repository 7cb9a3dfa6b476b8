"""Secrets at rest: integration credentials are encrypted with Fernet
(cryptography) under ``FIELD_ENCRYPTION_KEY`` (derived from ``SECRET_KEY`` when unset).
Several keys may be given, comma-separated; the first encrypts, all decrypt,
so keys can be rotated."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet_key(raw: str) -> bytes:
    """A Fernet key as given, or one derived from any other passphrase."""
    raw = raw.strip()
    try:
        if len(base64.urlsafe_b64decode(raw.encode())) == 32:
            return raw.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest())


@lru_cache(maxsize=4)
def _cipher(keys: str) -> MultiFernet:
    parts = [part for part in keys.split(",") if part.strip()]
    if not parts:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty; integration credentials cannot be stored.")
    return MultiFernet([Fernet(_fernet_key(part)) for part in parts])


def encrypt(plaintext: str) -> str:
    return _cipher(settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _cipher(settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored credential cannot be decrypted with FIELD_ENCRYPTION_KEY (was the key changed "
            "without keeping the old one after a comma?)."
        ) from None
