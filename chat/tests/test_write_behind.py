"""The OpenAI-compatible API's rows are written behind (agenthub.journal):
after the answer, in batches, never lost, never written twice."""

import asyncio

import pytest

from agenthub import journal
from agenthub.redis import get_redis
from agenthub.testing import journal_settle_sync
from billing.models import UsageDaily, UsageRecord
from billing.tests.factories import list_price
from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent

pytestmark = pytest.mark.django_db(transaction=True)


def _ask(client, content="What are your hours?", **extra):
    return client.post(
        "/v1/chat/completions",
        {"model": "support", "messages": [{"role": "user", "content": content}], **extra},
        format="json",
    )


@pytest.fixture
def agent(org_a, llm_settings):
    return make_live_agent(org_a.organization, slug="support", model="mock-model", system_prompt="Be brief.")


def test_a_call_is_written_after_its_answer_with_everything_a_turn_writes(org_a, agent):
    list_price()
    response = _ask(org_a.client("member"), user="customer-42")
    assert response.status_code == 200, response.content
    body = response.json()
    journal_settle_sync()

    conversation = Conversation.objects.get(channel="openai")
    assert str(conversation.organization_id) == str(org_a.organization.pk)
    assert conversation.user == org_a.users["member"]
    assert conversation.metadata == {"openai_user": "customer-42"}
    assert conversation.version_id == agent.live_version_id
    messages = list(Message.objects.filter(conversation=conversation).order_by("created_at"))
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[0].content == "What are your hours?"
    assert messages[1].content == body["choices"][0]["message"]["content"]
    assert messages[1].reply_to_id == messages[0].pk
    assert messages[1].tokens_out == body["usage"]["completion_tokens"]
    assert conversation.last_seq > 0

    row = UsageRecord.objects.get()
    assert row.channel == "openai" and row.subject_id == str(conversation.pk)
    assert row.output_tokens == body["usage"]["completion_tokens"]
    assert row.cost > 0 and str(row.cost.normalize()) == body["usage"]["cost"].rstrip("0").rstrip(".")
    daily = UsageDaily.objects.get()
    assert daily.calls == 1 and daily.cost == row.cost


def test_an_entry_applied_twice_is_written_once(org_a, agent, settings):
    """A consumer that dies after writing but before acknowledging: its
    entries are applied again by another, and nothing is doubled."""
    settings.JOURNAL_DRAIN_IN_WEB = False
    list_price()
    assert _ask(org_a.client("member")).status_code == 200

    async def read_raw():
        client = get_redis()
        try:
            return await client.xrange(journal.STREAM)
        finally:
            await client.aclose()

    raw = asyncio.run(read_raw())
    entries = [journal._decode(entry_id, fields) for entry_id, fields in raw]
    assert {e.kind for e in entries} == {"chat.exchange", "billing.usage"}
    journal_settle_sync()
    assert journal.apply_entries(entries) == []  # the same entries once more
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2
    assert UsageRecord.objects.count() == 1
    assert UsageDaily.objects.get().calls == 1


async def test_entries_a_dead_consumer_took_are_claimed_and_written(org_a, agent, settings):
    from asgiref.sync import sync_to_async

    settings.JOURNAL_CLAIM_IDLE_SECONDS = 0.05
    settings.JOURNAL_DRAIN_IN_WEB = False
    client = await sync_to_async(org_a.client)("member")
    assert (await sync_to_async(_ask)(client)).status_code == 200
    redis = get_redis()
    await journal._ensure_group(redis)
    # Another consumer takes every entry, then "dies" without applying them.
    taken = await redis.xreadgroup(journal.GROUP, "dead-consumer", {journal.STREAM: ">"}, count=100)
    assert len(taken[0][1]) == 2
    assert await journal.drain_all(claim_idle=False) == 0  # nothing new: the entries are taken
    assert await sync_to_async(Conversation.objects.count)() == 0
    await asyncio.sleep(0.1)  # longer than JOURNAL_CLAIM_IDLE_SECONDS
    assert await journal.drain_all(claim_idle=True) == 2
    assert await sync_to_async(Conversation.objects.filter(channel="openai").count)() == 1
    assert await sync_to_async(UsageRecord.objects.count)() == 1
    assert (await journal.backlog()) == {"length": 0, "pending": 0, "dead": 0}


def test_without_the_stream_rows_are_written_before_the_answer(org_a, agent, settings):
    settings.WRITE_BEHIND = False
    assert _ask(org_a.client("member")).status_code == 200
    # No settling: the rows are there when the answer is.
    assert Conversation.objects.filter(channel="openai").count() == 1
    assert Message.objects.count() == 2


def test_redis_down_writes_at_once_and_warns(org_a, agent, settings, caplog, monkeypatch):
    import redis.asyncio as aioredis

    async def refuse(*args, **kwargs):
        raise aioredis.ConnectionError("Redis is down")

    monkeypatch.setattr(aioredis.client.Pipeline, "execute", refuse)
    assert _ask(org_a.client("member")).status_code == 200
    assert Conversation.objects.filter(channel="openai").count() == 1
    assert Message.objects.count() == 2
    assert "journal: Redis unreachable" in caplog.text


def test_an_entry_that_cannot_be_written_is_kept_aside_and_the_batch_goes_on(org_a, agent, settings):
    settings.JOURNAL_DRAIN_IN_WEB = False
    assert _ask(org_a.client("member")).status_code == 200

    async def raw_entries():
        client = get_redis()
        try:
            return await client.xrange(journal.STREAM)
        finally:
            await client.aclose()

    good = [journal._decode(i, f) for i, f in asyncio.run(raw_entries())]
    broken = journal.Entry("0-1", "chat.exchange", {"conversation": {"id": "not-a-uuid"}, "messages": []})
    failed = journal.apply_entries([broken, *good])
    assert failed == [broken]
    assert Conversation.objects.filter(channel="openai").count() == 1


def test_the_drain_command_and_the_beat_task_write_what_waits(org_a, agent, settings):
    from django.core.management import call_command

    from chat.tasks import journal_drain

    settings.JOURNAL_DRAIN_IN_WEB = False
    assert _ask(org_a.client("member")).status_code == 200
    call_command("journal_drain")
    assert Conversation.objects.filter(channel="openai").count() == 1
    assert _ask(org_a.client("member"), content="And on Sunday?").status_code == 200
    assert journal_drain() == 2  # the conversation and its ledger row
    assert Conversation.objects.filter(channel="openai").count() == 2


def test_a_batch_of_calls_adds_up_in_the_daily_rollup(org_a, agent, settings):
    settings.JOURNAL_DRAIN_IN_WEB = False  # everything waits, then goes in one batch
    list_price()
    client = org_a.client("member")
    for question in ("Hours?", "Address?", "Phone?"):
        assert _ask(client, content=question).status_code == 200
    assert UsageRecord.objects.count() == 0
    journal_settle_sync()
    rows = list(UsageRecord.objects.all())
    assert len(rows) == 3
    daily = UsageDaily.objects.get()
    assert daily.calls == 3
    assert daily.cost == sum(r.cost for r in rows)
    assert daily.output_tokens == sum(r.output_tokens for r in rows)
    assert Conversation.objects.filter(channel="openai").count() == 3


def test_health_shows_what_waits_and_what_was_kept_aside(org_a, agent, settings, client):
    settings.JOURNAL_DRAIN_IN_WEB = False
    assert _ask(org_a.client("member")).status_code == 200
    entry = client.get("/health/ready").json()["checks"]["journal"]
    assert entry == {"status": "ok", "waiting": 2, "taken": 0, "kept_aside": 0, "required": False}
    journal_settle_sync()
    broken = journal.Entry("0-1", "chat.exchange", {"conversation": {"id": "not-a-uuid"}, "messages": []})

    async def keep_aside():
        redis = get_redis()
        try:
            await redis.xadd(journal.DEAD_STREAM, journal._encode(broken.kind, broken.payload))
        finally:
            await redis.aclose()

    asyncio.run(keep_aside())
    entry = client.get("/health/ready").json()["checks"]["journal"]
    assert entry["status"] == "degraded" and entry["kept_aside"] == 1


def test_without_the_stream_a_failed_write_is_reported_not_dropped(org_a, agent, settings, monkeypatch):
    """Written at once and refused by the database: the call says its answer
    was not saved (as any turn does), instead of losing it quietly."""
    from chat.runtime import records

    settings.WRITE_BEHIND = False

    def refuse(payloads):
        raise RuntimeError("the database refused")

    monkeypatch.setitem(journal._appliers, records.JOURNAL_KIND, refuse)
    response = _ask(org_a.client("member"))
    assert response.status_code == 502, response.content
    assert response.json()["error"]["code"] == "persistence_error"


async def test_while_the_database_is_down_entries_wait_in_the_stream(org_a, agent, settings, monkeypatch):
    """An unreachable database sets nothing aside: the entries stay taken,
    unacknowledged, and are written once it is back."""
    from asgiref.sync import sync_to_async
    from django.db import OperationalError

    from chat.runtime import records

    settings.JOURNAL_DRAIN_IN_WEB = False
    settings.JOURNAL_CLAIM_IDLE_SECONDS = 0.05
    client = await sync_to_async(org_a.client)("member")
    assert (await sync_to_async(_ask)(client)).status_code == 200

    def database_down(payloads):
        raise OperationalError("connection refused")

    monkeypatch.setitem(journal._appliers, records.JOURNAL_KIND, database_down)
    with pytest.raises(OperationalError):
        await journal.drain_all(claim_idle=False)
    state = await journal.backlog()
    assert state["dead"] == 0 and state["pending"] >= 1
    monkeypatch.setitem(journal._appliers, records.JOURNAL_KIND, records.exchanges_apply)
    await asyncio.sleep(0.1)
    await journal.drain_all(claim_idle=True)
    assert await sync_to_async(Conversation.objects.filter(channel="openai").count)() == 1
    assert await journal.backlog() == {"length": 0, "pending": 0, "dead": 0}
