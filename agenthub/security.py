"""Start-up and deploy-time guards for secrets and exposed endpoints.

Production refuses a ``SECRET_KEY`` that anybody can read: one written in
this repository (the development and test keys, examples in docs, Docker
files), or one too short or too uniform to be random.  A key that signs JWTs
and sessions and is public lets anyone forge an owner's token.

``manage.py check --deploy`` reports the same (``agenthub.E001``) and warns
when ``/metrics`` is open to anonymous callers (``agenthub.W001``).
"""

import os
from pathlib import Path

from django.core import checks

# Folders that are not the project's source (installed packages, build output).
_SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "staticfiles", ".ruff_cache", ".pytest_cache"}
_TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".ini", ".cfg", ".yaml", ".yml", ".json", ".sh", ".example", ".env"}
_TEXT_NAMES = {"Dockerfile", "Makefile", ".env.example", ".dockerignore", "run", "test"}
_MAX_FILE_BYTES = 2 * 1024 * 1024
MIN_LENGTH = 50
MIN_UNIQUE_CHARACTERS = 10


def _repository_files(root: Path):
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name not in _SKIPPED_DIRS]
        for name in files:
            if name == ".env":  # the operator's own, never committed
                continue
            path = Path(folder) / name
            if path.suffix not in _TEXT_SUFFIXES and name not in _TEXT_NAMES:
                continue
            try:
                if path.stat().st_size <= _MAX_FILE_BYTES:
                    yield path
            except OSError:
                continue


def find_key_in_repository(key: str, root: Path) -> Path | None:
    """The first file of the project under ``root`` that contains ``key``."""
    needle = key.encode()
    for path in _repository_files(root):
        try:
            if needle in path.read_bytes():
                return path
        except OSError:
            continue
    return None


def secret_key_problem(key: str, root: Path) -> str | None:
    """Why ``key`` must not sign anything in production, or None."""
    if not key:
        return "SECRET_KEY must be set to a random string of at least 50 characters in production."
    if len(key) < MIN_LENGTH or len(set(key)) < MIN_UNIQUE_CHARACTERS:
        return (
            f"SECRET_KEY must be a random string of at least {MIN_LENGTH} characters with at least "
            f"{MIN_UNIQUE_CHARACTERS} different characters; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'."
        )
    if key.startswith("django-insecure-") or "insecure" in key.lower() or "not-for-production" in key.lower():
        return "SECRET_KEY is a development key; generate a random one for production."
    found = find_key_in_repository(key, root)
    if found is not None:
        return (
            f"SECRET_KEY is written in the repository ({found.relative_to(root)}), so anyone can forge tokens "
            "with it; generate a random one for production and keep it out of the code."
        )
    return None


def encryption_key_problem(keys: str, root: Path) -> str | None:
    """Why the ``FIELD_ENCRYPTION_KEY`` value must not encrypt credentials,
    or None (unset is fine: the key is then derived from ``SECRET_KEY``)."""
    for key in (part.strip() for part in keys.split(",")):
        if key and find_key_in_repository(key, root) is not None:
            return (
                "FIELD_ENCRYPTION_KEY is written in the repository, so anyone can decrypt the stored credentials; "
                "generate one with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
            )
    return None


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key(app_configs=None, **kwargs):
    from django.conf import settings

    root = Path(settings.BASE_DIR)
    errors = []
    problem = secret_key_problem(settings.SECRET_KEY, root)
    if problem:
        errors.append(checks.Error(problem, id="agenthub.E001"))
    problem = encryption_key_problem(settings.FIELD_ENCRYPTION_KEY, root)
    if problem:
        errors.append(checks.Error(problem, id="agenthub.E002"))
    return errors


@checks.register(checks.Tags.security, deploy=True)
def check_metrics_protected(app_configs=None, **kwargs):
    from django.conf import settings

    if settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS or not settings.METRICS_ALLOW_ANONYMOUS:
        return []
    return [
        checks.Warning(
            "/metrics is open to anyone (METRICS_ALLOW_ANONYMOUS is on and neither METRICS_TOKEN nor "
            "METRICS_ALLOWED_IPS is set): it shows request volumes and internals.",
            hint="Set METRICS_TOKEN (Prometheus sends it as a bearer token) or METRICS_ALLOWED_IPS.",
            id="agenthub.W001",
        )
    ]
