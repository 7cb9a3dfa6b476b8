"""Production: every value from the environment, HTTPS enforced.

Differs from development only by environment values; ``manage.py check
--deploy`` is clean with these settings (tests/test_deploy.py asserts it).
"""

from django.core.exceptions import ImproperlyConfigured

from agenthub.security import encryption_key_problem, secret_key_problem

from .base import *
from .base import BASE_DIR, FIELD_ENCRYPTION_KEY, SECRET_KEY, env

DEBUG = False
# A development key, a key written anywhere in the repository, or a weak one
# would let anyone forge tokens: refuse to start.
_problem = secret_key_problem(SECRET_KEY, BASE_DIR) or encryption_key_problem(FIELD_ENCRYPTION_KEY, BASE_DIR)
if _problem:
    raise ImproperlyConfigured(_problem)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Health and metrics are probed over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
