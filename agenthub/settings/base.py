"""Settings shared by every environment, read from the process environment.

With nothing set, AgentHub runs on SQLite, the in-memory channel layer, a
local-memory cache and eager Celery.  ``DATABASE_URL`` switches the database,
``REDIS_URL`` switches the cache, the channel layer and the Celery broker to
Redis.  Every variable read is documented in ``.env.example``.

Each concern lives in a module of its own; this one gathers them, so
``local``, ``production`` and ``test`` start from ``from .base import *``.
"""

# Each module imports what it reads from the others; should two ever define
# the same name, the later import wins.
# isort: off
from .environment import *  # BASE_DIR, env
from .django import *  # apps, middleware, templates, static files, i18n, email
from .database import *
from .cache import *  # cache and channel layers
from .celery import *
from .security import *  # secrets, hosts, authentication, proxies, CORS, headers
from .api import *  # REST framework, throttles, body limits, OpenAPI
from .agenthub import *  # AGENTHUB_*, model layer, chat, tools and drafts, metrics
from .logging import *
# isort: on
