"""Tools that only the benchmarks register (``AGENTHUB_EXTRA_TOOL_MODULES=bench.bench_tools``).

``bench_echo`` runs on the Celery ``tools`` queue, ``bench_echo_inline`` in
the turn; both return their text at once, with two wall-clock stamps so a
client on the same machine can time the tool path:

- ``enqueued_at``: the ``time.time()`` the turn stamped on the task payload
  just before ``apply_async`` (the same value ``queued_ms`` is measured from;
  ``null`` when the tool does not run as a Celery task);
- ``handler_at``: ``time.time()`` when the handler ran.
"""

import os
import time

from accounts.roles import Role
from tools.registry import CELERY, INLINE, ToolContext, tool

PARAMETERS = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 200}},
    "required": ["text"],
    "additionalProperties": False,
}


def _enqueued_at() -> float | None:
    from celery import current_task

    request = getattr(current_task, "request", None)
    payload = ((getattr(request, "kwargs", None) or {}).get("payload")) if request is not None else None
    return payload.get("enqueued_at") if isinstance(payload, dict) else None


@tool(
    "bench_echo",
    description="Benchmark tool: echoes its text from a Celery worker.",
    parameters=PARAMETERS,
    min_role=Role.MEMBER,
    execution=CELERY,
    timeout_seconds=10,
)
def bench_echo(arguments: dict, context: ToolContext) -> dict:
    return {"echo": arguments["text"], "enqueued_at": _enqueued_at(), "handler_at": time.time()}


@tool(
    "bench_echo_inline",
    description="Benchmark tool: echoes its text in the turn's process.",
    parameters=PARAMETERS,
    min_role=Role.MEMBER,
    execution=INLINE,
    timeout_seconds=10,
)
def bench_echo_inline(arguments: dict, context: ToolContext) -> dict:
    return {"echo": arguments["text"], "enqueued_at": None, "handler_at": time.time()}


def _what_if_db_reuse() -> None:
    """``BENCH_CELERY_DB_REUSE_MAX=N`` (``bench/tool_path.py --pools prefork+dbreuse``):
    what ``CELERY_DB_REUSE_MAX = N`` in the settings would do.  Celery's Django
    fixup otherwise closes the database connection around every task, and
    under the prefork pool with Django's psycopg pool it closes the whole
    pool: a new Postgres connection per task.  Applied when this module loads
    in a worker process (at its first tool call), so that process's later
    tasks keep their connection."""
    reuse = os.environ.get("BENCH_CELERY_DB_REUSE_MAX")
    if not reuse:
        return
    from agenthub.celery import app

    for fixup in getattr(app, "_fixups", ()):
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if worker_fixup is not None:
            worker_fixup.db_reuse_max = int(reuse)


_what_if_db_reuse()
