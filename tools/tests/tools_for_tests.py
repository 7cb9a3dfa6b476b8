"""Tools only the tests register (``AGENTHUB_EXTRA_TOOL_MODULES``), for real
Celery workers: each records what it did in Redis so a test can count
attempts and completed effects across worker processes."""

import os
import time

import redis
from django.conf import settings

from accounts.roles import Role
from tools.registry import CELERY, ToolContext, tool

KEY = "agenthub-test:tool"


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL)


def counts(key: str) -> dict:
    r = _redis()
    return {
        "attempts": int(r.get(f"{KEY}:attempts:{key}") or 0),
        "effects": int(r.get(f"{KEY}:effects:{key}") or 0),
        "running_pid": int(r.get(f"{KEY}:running:{key}") or 0),
    }


def reset(key: str) -> None:
    _redis().delete(*(f"{KEY}:{part}:{key}" for part in ("attempts", "effects", "running")))


@tool(
    "test_slow_effect",
    description="Test tool: waits (first attempt only), then performs one countable effect (approval required).",
    parameters={
        "type": "object",
        "properties": {"key": {"type": "string"}, "seconds": {"type": "number", "minimum": 0, "maximum": 60}},
        "required": ["key"],
        "additionalProperties": False,
    },
    min_role=Role.MEMBER,
    requires_approval=True,
    execution=CELERY,
    timeout_seconds=60,
)
def test_slow_effect(arguments: dict, context: ToolContext) -> dict:
    r = _redis()
    key = arguments["key"]
    attempt = r.incr(f"{KEY}:attempts:{key}")
    r.set(f"{KEY}:running:{key}", os.getpid())
    if attempt == 1:  # only the first attempt is slow (long enough to be killed)
        time.sleep(arguments.get("seconds", 0))
    r.incr(f"{KEY}:effects:{key}")
    return {"done": True, "idempotency_key": context.idempotency_key}


@tool(
    "test_worker_echo",
    description="Test tool: echoes its text from a worker process.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string"}, "seconds": {"type": "number", "minimum": 0, "maximum": 10}},
        "required": ["text"],
        "additionalProperties": False,
    },
    min_role=Role.MEMBER,
    execution=CELERY,
    timeout_seconds=2,
)
def test_worker_echo(arguments: dict, context: ToolContext) -> dict:
    time.sleep(arguments.get("seconds", 0))
    return {"echo": arguments["text"], "pid": os.getpid(), "request_id": context.request_id}


@tool(
    "test_poison",
    description="Test tool: kills the worker process that runs it (approval required).",
    parameters={"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
    min_role=Role.MEMBER,
    requires_approval=True,
    execution=CELERY,
    timeout_seconds=30,
)
def test_poison(arguments: dict, context: ToolContext) -> dict:
    _redis().incr(f"{KEY}:attempts:{arguments['key']}")
    os.kill(os.getpid(), 9)
    return {}
