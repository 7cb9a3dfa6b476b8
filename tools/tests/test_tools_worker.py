"""Tools and drafts against real Celery workers on Redis and Postgres:
exactly-once execution of a confirmed draft under twenty concurrent
confirmations, a worker killed with SIGKILL mid-execution, a poison task
that kills every worker it reaches, and a turn waiting for a tool that runs
on the tools queue."""

import json
import os
import signal
import threading
import time

import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from accounts.callers import Caller
from agenthub.errors import ConflictError
from agenthub.testing import run_celery_worker, subprocess_env
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for
from tools.models import Draft, DraftStatus, InvocationStatus, ToolInvocation
from tools.services.drafts import draft_confirm
from tools.tests import tools_for_tests
from tools.tests.factories import DraftFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: real workers need a real broker (CI always sets it)")
    # Only the tests' own broker database: messages other tests enqueued
    # without a worker must not reach these workers.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    yield
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def pending_draft(org, tool: str, arguments: dict, requested_by) -> Draft:
    return DraftFactory(organization=org.organization, tool=tool, arguments=arguments, requested_by=requested_by)


def operator_caller(org) -> Caller:
    return Caller(organization_id=str(org.organization.pk), role="operator", user_id=str(org.users["operator"].pk))


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def draft_status(draft) -> str:
    return Draft.objects.values_list("status", flat=True).get(pk=draft.pk)


def test_twenty_concurrent_confirms_execute_the_action_once(org_a, broker, tmp_path):
    key = f"concurrent-{os.getpid()}-{time.monotonic_ns()}"
    tools_for_tests.reset(key)
    draft = pending_draft(org_a, "test_slow_effect", {"key": key}, org_a.users["member"])
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def confirm():
        try:
            barrier.wait(timeout=10)
            draft_confirm(caller=operator_caller(org_a), draft_id=draft.pk)
            outcomes.append("confirmed")
        except ConflictError as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["confirmed"] + ["draft_not_pending"] * 19
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("tools") == 1  # one execution enqueued

    with run_celery_worker(log_path=tmp_path / "worker.log", queues="tools"):
        wait_for(lambda: draft_status(draft) == DraftStatus.EXECUTED, 30, "the draft to execute")
        assert tools_for_tests.counts(key)["effects"] == 1
        # The same execution delivered again (a duplicate message) repeats nothing.
        from tools.tasks import draft_execute

        assert draft_execute.apply_async(args=[str(draft.pk)]).get(timeout=30) == DraftStatus.EXECUTED
    counts = tools_for_tests.counts(key)
    assert (counts["attempts"], counts["effects"]) == (1, 1)
    invocations = ToolInvocation.objects.filter(draft=draft, status=InvocationStatus.OK)
    assert invocations.count() == 1
    assert invocations.get().idempotency_key == str(draft.pk)
    draft.refresh_from_db()
    assert json.loads(draft.result) == {"done": True, "idempotency_key": str(draft.pk)}
    assert draft.attempts == 1


def test_a_worker_killed_mid_execution_is_redelivered_and_the_action_runs_once(org_a, broker, tmp_path):
    key = f"sigkill-{os.getpid()}-{time.monotonic_ns()}"
    tools_for_tests.reset(key)
    draft = pending_draft(org_a, "test_slow_effect", {"key": key, "seconds": 30}, org_a.users["member"])
    with run_celery_worker(log_path=tmp_path / "first.log", queues="tools") as first:
        draft_confirm(caller=operator_caller(org_a), draft_id=draft.pk)
        wait_for(lambda: tools_for_tests.counts(key)["running_pid"], 30, "the action to start")
        assert draft_status(draft) == DraftStatus.EXECUTING
        os.killpg(first.pid, signal.SIGKILL)  # the whole worker: main process and pool
        first.wait(timeout=10)
    assert tools_for_tests.counts(key)["effects"] == 0  # killed before the effect

    # A new worker finds the unacknowledged message once its visibility
    # timeout has passed and runs it again; the action completes once.
    env = subprocess_env(CELERY_VISIBILITY_TIMEOUT=2, CELERY_UNACKED_RESTORE_INTERVAL=1)
    with run_celery_worker(env=env, log_path=tmp_path / "second.log", queues="tools"):
        wait_for(lambda: draft_status(draft) == DraftStatus.EXECUTED, 60, "the redelivered draft to execute")
    counts = tools_for_tests.counts(key)
    assert (counts["attempts"], counts["effects"]) == (2, 1)
    draft.refresh_from_db()
    assert draft.attempts == 2
    assert ToolInvocation.objects.filter(draft=draft, status=InvocationStatus.OK).count() == 1


def test_a_poison_task_is_dropped_after_the_redelivery_cap(org_a, broker, tmp_path, settings):
    key = f"poison-{os.getpid()}-{time.monotonic_ns()}"
    tools_for_tests.reset(key)
    draft = pending_draft(org_a, "test_poison", {"key": key}, org_a.users["member"])
    log = tmp_path / "worker.log"
    with run_celery_worker(log_path=log, queues="tools", concurrency=1):
        draft_confirm(caller=operator_caller(org_a), draft_id=draft.pk)
        wait_for(lambda: draft_status(draft) == DraftStatus.FAILED, 90, "the draft to be given up")
    limit = settings.CELERY_TASK_MAX_DELIVERIES
    assert tools_for_tests.counts(key)["attempts"] == limit  # each delivery killed its worker process
    draft.refresh_from_db()
    assert draft.error == f"Gave up after {limit} attempts."
    assert draft.attempts == limit


async def test_a_turn_waits_for_a_tool_on_the_tools_queue_and_streams_its_result(org_a, broker, tmp_path):
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=["test_worker_echo"])
    ticket = await ticket_for(org_a.users["member"], org_a.organization)
    with run_celery_worker(log_path=tmp_path / "worker.log", queues="tools"):
        ws, _ = await open_chat("helper", f"ticket={ticket}")
        await ws.send_json_to({"type": "message", "content": 'test_worker_echo {"text": "from a worker"}'})
        frames = await receive_until(ws, "turn.finished", timeout=30)
        await ws.disconnect()
    started = [f for f in frames if f["type"] == "tool.started"]
    finished = [f for f in frames if f["type"] == "tool.finished"]
    assert len(started) == len(finished) == 1
    assert started[0]["execution"] == "celery"
    assert started[0]["queued_ms"] >= 0
    assert finished[0]["status"] == "ok"
    result = json.loads(finished[0]["result"])
    assert result["echo"] == "from a worker"
    assert result["pid"] != os.getpid()  # it ran in a worker process
    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert (invocation.status, invocation.execution) == (InvocationStatus.OK, "celery")
    assert frames[-1]["status"] == "complete"


async def test_a_tool_no_worker_picks_up_times_out_clearly(org_a, broker):
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=["test_worker_echo"])
    ticket = await ticket_for(org_a.users["member"], org_a.organization)
    ws, _ = await open_chat("helper", f"ticket={ticket}")
    await ws.send_json_to({"type": "message", "content": 'test_worker_echo {"text": "anyone?"}'})
    frames = await receive_until(ws, "turn.finished", timeout=30)
    await ws.disconnect()
    (finished,) = [f for f in frames if f["type"] == "tool.finished"]
    assert finished["status"] == "timeout"
    assert "No worker started the tool" in finished["error"]
    assert not [f for f in frames if f["type"] == "tool.started"]
    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert invocation.status == InvocationStatus.TIMEOUT
