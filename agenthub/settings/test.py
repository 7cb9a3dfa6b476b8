"""Test settings: the same stack as production, pointed at whatever
DATABASE_URL and REDIS_URL say (CI sets both to the machine's Postgres and
Redis), with fast password hashing and quiet logs."""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .base import *
from .base import AGENTHUB_TOOL_MODULES, CACHES, DATABASES, REDIS_URL, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOG_LEVEL = env.str("LOG_LEVEL", default="WARNING").upper()
LOGGING["root"]["level"] = LOG_LEVEL
LOG_FORMAT = "json"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
# In-process tests write the journal themselves (agenthub.testing.journal_settle):
# a drainer started on a request's short-lived event loop would outlive its
# test.  The servers end-to-end tests start drain it as production does.
JOURNAL_DRAIN_IN_WEB = env.bool("JOURNAL_DRAIN_IN_WEB", default=False)


if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The SQLite test database is a file (not Django's default, in memory):
    # the servers and workers that end-to-end tests start (agenthub.testing)
    # open it too.  One per test process, so concurrent runs never share one.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"agenthub-test-{os.getpid()}.sqlite3"),
    }


def _redis_db(url: str, db: int) -> str:
    """``url`` pointed at another Redis database number."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


if REDIS_URL:
    # The tests flush their cache between cases: give them their own
    # Redis database so a developer's data is never touched.
    CACHES["default"]["LOCATION"] = env.str("TEST_REDIS_CACHE_URL", default=_redis_db(REDIS_URL, 14))
    CACHES["default"]["KEY_PREFIX"] = "agenthub-test"
    # Tasks the tests enqueue go to a broker database of their own.
    CELERY_BROKER_URL = env.str("TEST_CELERY_BROKER_URL", default=_redis_db(REDIS_URL, 13))
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
WHITENOISE_USE_FINDERS = True
# The tests scrape /metrics as development does; test_metrics covers the
# closed production default.
METRICS_ALLOW_ANONYMOUS = True
LLM_OFFLINE_TOKEN_DELAY_MS = env.int("LLM_OFFLINE_TOKEN_DELAY_MS", default=2)
# Tools only the tests use (real workers load them too: same settings).
AGENTHUB_TOOL_MODULES = [*AGENTHUB_TOOL_MODULES, "tools.tests.tools_for_tests"]
