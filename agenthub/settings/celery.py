"""Celery: broker and results on ``REDIS_URL`` (eager, in-process tasks
without it), queues, routes, time limits and the beat schedule."""

from datetime import timedelta

from celery.schedules import crontab
from kombu import Queue

from .cache import REDIS_URL
from .environment import env

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=270)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a prefork worker's database connection across tasks (Celery's Django
# fixup otherwise closes the whole connection pool after every task: a new
# Postgres connection per task, ~12 ms each).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in ("default", "tools", "workflows", "billing")]
# Every task is routed here explicitly (a guard test fails otherwise).  The
# tools app's tasks keep their historical agents.tasks.* names (tools.queueing).
CELERY_TASK_ROUTES = {
    "accounts.tasks.*": {"queue": "default"},
    "agents.tasks.tool_execute": {"queue": "tools"},
    "agents.tasks.draft_execute": {"queue": "tools"},
    "agents.tasks.drafts_expire": {"queue": "default"},
    "billing.tasks.*": {"queue": "billing"},
    "chat.tasks.*": {"queue": "default"},
}
# A task delivered more often than this (a poison message that kills its
# worker every time) is dropped with an error log instead of looping.
CELERY_TASK_MAX_DELIVERIES = env.int("CELERY_TASK_MAX_DELIVERIES", default=3)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A late-acked task whose worker died is redelivered after the visibility
# timeout; keep it just above the hard time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60),
    # How often a worker looks for messages whose worker died (past the
    # visibility timeout) and puts them back on their queue.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "accounts-flush-expired-tokens": {
        "task": "accounts.tasks.flush_expired_tokens",
        "schedule": timedelta(hours=6),
    },
    "agents-drafts-expire": {
        "task": "agents.tasks.drafts_expire",
        "schedule": timedelta(minutes=1),
    },
    # The write-behind journal's backstop: entries a dead web process had taken.
    "chat-journal-drain": {
        "task": "chat.tasks.journal_drain",
        "schedule": timedelta(minutes=1),
    },
    # Last month's invoices, at 02:00 UTC on the first of the month.
    "billing-invoices-monthly": {
        "task": "billing.tasks.invoices_generate_previous_month",
        "schedule": crontab(minute=0, hour=2, day_of_month=1),
    },
}
