"""The Celery application.

JSON only, late acks with redelivery when a worker dies, time limits, and the
queues ``default``, ``tools``, ``workflows`` and ``billing``.  The request id of
whatever enqueued a task travels in the message headers and is set for the
task's logs (see :mod:`agenthub.requestid`).
"""

import contextlib
import logging
import os

from celery import Celery, Task, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agenthub.settings.local")


class RequestIdTask(Task):
    """Carries the current request id in the message headers, and drops a
    task delivered more than ``CELERY_TASK_MAX_DELIVERIES`` times (a poison
    message that kills its worker on every delivery would loop forever
    under late acks)."""

    def __call__(self, *args, **kwargs):
        request = self.request
        if not request.is_eager and request.id and _redelivered(request):
            # A first delivery costs nothing; a redelivered one is counted.
            deliveries = _count_delivery(request.id) + 1
            limit = _max_deliveries() + getattr(self, "extra_deliveries", 0)
            if deliveries > limit:
                logging.getLogger("agenthub.celery").error(
                    "dropping task %s[%s]: delivered %d times (limit %d)", self.name, request.id, deliveries, limit
                )
                return None
        return super().__call__(*args, **kwargs)

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        from agenthub.requestid import get_request_id

        request_id = get_request_id()
        if request_id:
            headers = dict(options.pop("headers", None) or {})
            headers.setdefault("request_id", request_id)
            options["headers"] = headers
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, **options)


def _redelivered(request) -> bool:
    """Kombu marks a message it puts back (a worker died, or it was rejected
    to be requeued) as redelivered."""
    return bool((request.delivery_info or {}).get("redelivered") or (request.headers or {}).get("redelivered"))


def _max_deliveries() -> int:
    from django.conf import settings

    return settings.CELERY_TASK_MAX_DELIVERIES


def _count_delivery(task_id: str) -> int:
    """How often this task id has started, across workers (Redis)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return 1
    global _sync_redis
    if _sync_redis is None:
        import redis

        _sync_redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    key = f"agenthub:celery:deliveries:{task_id}"
    try:
        pipe = _sync_redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 86400)
        return int(pipe.execute()[0])
    except Exception:
        logging.getLogger("agenthub.celery").warning("could not count deliveries of task %s", task_id)
        return 1


_sync_redis = None

app = Celery("agenthub", task_cls=RequestIdTask)
app.config_from_object("django.conf:settings", namespace="CELERY")


app.autodiscover_tasks()


@signals.task_prerun.connect
def _task_request_id_start(task=None, **kwargs):
    from agenthub.requestid import new_request_id, set_request_id

    request = task.request
    request_id = getattr(request, "request_id", None) or (request.headers or {}).get("request_id")
    request._agenthub_rid_token = set_request_id(request_id or new_request_id())


@signals.task_postrun.connect
def _task_request_id_end(task=None, **kwargs):
    from agenthub.requestid import reset_request_id

    token = getattr(task.request, "_agenthub_rid_token", None)
    if token is not None:
        with contextlib.suppress(ValueError):
            reset_request_id(token)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _request_id_on_celery_logs(logger=None, **kwargs):
    from agenthub.requestid import RequestIdLogFilter

    for handler in logger.handlers:
        handler.addFilter(RequestIdLogFilter())
