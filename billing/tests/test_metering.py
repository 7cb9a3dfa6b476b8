"""The budget gate and the usage meter inside real chat turns: the mock model
over HTTP, Postgres and Redis (when configured; the in-process counters of
the embedded demo otherwise, and explicitly below)."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import redis.exceptions
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.callers import Caller
from billing import reservations
from billing.calls import ModelCall, ModelUsage
from billing.models import Budget, BudgetAlert, Price, UsageDaily, UsageRecord
from billing.services import metering
from billing.services.ledger import usage_record
from chat.models import Channel, Message, MessageStatus
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_open
from chat.services.turns import turn_start
from chat.tests.helpers import make_live_agent

pytestmark = pytest.mark.django_db(transaction=True)

INPUT, OUTPUT = Decimal("1.25"), Decimal("2.50")  # per million tokens
SLOW = "[[mock:ttft_ms=500]]"  # the mock model's first token after half a second


def _price(model="mock-model", **fields):
    values = {
        "organization": None,
        "model": model,
        "currency": "USD",
        "input_per_million": INPUT,
        "output_per_million": OUTPUT,
        "effective_from": timezone.now() - timedelta(days=1),
    }
    values.update(fields)
    return Price.objects.create(**values)


def _budget(organization, **fields):
    values = {"name": "Monthly", "limit_amount": Decimal("10"), "thresholds": [50, 80, 100]}
    values.update(fields)
    return Budget.objects.create(organization=organization, **values)


async def _turn(org, agent, prompt, *, role="member", channel=Channel.REST):
    caller = Caller.from_member(organization_id=org.organization.pk, role=role, user_id=org.users[role].pk)
    snapshot = await chat_agent_resolve(organization_id=caller.organization_id, slug=agent.slug)
    info = await conversation_open(caller=caller, agent=snapshot, conversation_id=None, channel=channel)
    handle = await turn_start(caller=caller, agent=snapshot, conversation_id=info.id, content=prompt, channel=channel)
    return await handle.task


@pytest.fixture
def priced(llm_settings, org_a):
    # Many turns at once by one member: the per-user limits are not under test.
    llm_settings.CHAT_MAX_CONCURRENT_TURNS_PER_USER = 0
    llm_settings.CHAT_MESSAGES_PER_MINUTE_PER_USER = 0
    _price()
    agent = make_live_agent(org_a.organization, slug="metered", model="mock-model", max_output_tokens=400)
    return agent


async def test_a_turn_is_metered_once_with_frozen_prices_and_its_cost_in_the_outcome(org_a, priced):
    outcome = await _turn(org_a, priced, "What are your hours?")
    assert outcome.status == MessageStatus.COMPLETE
    rows = await database_sync_to_async(list)(UsageRecord.objects.all())
    assert len(rows) == 1
    row = rows[0]
    assert (row.channel, row.model, row.status, row.estimated) == ("rest", "mock-model", "ok", False)
    assert row.output_tokens == 8 and row.input_tokens == outcome.prompt_tokens > 0
    assert (row.input_price, row.output_price, row.currency) == (INPUT, OUTPUT, "USD")
    assert row.cost == (row.input_tokens * INPUT + row.output_tokens * OUTPUT) / Decimal(1_000_000)
    assert row.agent_id == str(priced.pk) and row.agent_name == "Metered" and row.version_number == 1
    assert row.user_id == str(org_a.users["member"].pk) and row.user_label
    assert outcome.usage()["cost"] == f"{row.cost.normalize():f}" and outcome.usage()["currency"] == "USD"
    daily = await database_sync_to_async(UsageDaily.objects.get)()
    assert (daily.calls, daily.input_tokens, daily.output_tokens, daily.cost) == (
        1,
        row.input_tokens,
        8,
        row.cost,
    )


def test_the_ledger_is_idempotent_on_the_call_id(org_a):
    _price()
    call = ModelCall(call_id="turn-1:0", organization_id=str(org_a.organization.pk), model="mock-model", channel="ws")
    usage = ModelUsage("mock-model", 1000, 100, latency_ms=12.0, ttft_ms=3.0, status="ok")
    first = usage_record(call=call, usage=usage)
    again = usage_record(call=call, usage=usage)
    assert first.created and not again.created and again.record.pk == first.record.pk
    assert UsageRecord.objects.count() == 1
    assert UsageDaily.objects.get().calls == 1
    assert first.record.cost == Decimal("0.00150")  # 1000 × 1.25 + 100 × 2.50 per million


def test_a_price_change_never_rewrites_history(org_a):
    _price(effective_from=timezone.now() - timedelta(days=10))
    organization_id = str(org_a.organization.pk)
    usage = ModelUsage("mock-model", 1_000_000, 0, latency_ms=1, ttft_ms=None, status="ok")
    before = usage_record(
        call=ModelCall("c-1", organization_id, "mock-model", "ws"), usage=usage, occurred_at=timezone.now()
    )
    # The organization gets its own, higher price from now on.
    _price(organization=org_a.organization, input_per_million=Decimal("3"), effective_from=timezone.now())
    metering.billing_caches_clear()
    after = usage_record(call=ModelCall("c-2", organization_id, "mock-model", "ws"), usage=usage)
    before.record.refresh_from_db()
    assert (before.record.input_price, before.record.cost) == (INPUT, Decimal("1.25"))
    assert (after.record.input_price, after.record.cost) == (Decimal("3"), Decimal("3"))
    with pytest.raises(Exception, match="append-only"):
        before.record.save()


async def test_a_dropped_stream_is_charged_by_estimate_and_marked(org_a, priced):
    outcome = await _turn(org_a, priced, "Tell me [[mock:drop_after=3]]")
    assert outcome.status == MessageStatus.INTERRUPTED
    row = await database_sync_to_async(UsageRecord.objects.get)()
    assert (row.status, row.error_kind, row.estimated) == ("error", "stream_dropped", True)
    assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost > 0


async def test_twenty_concurrent_turns_never_spend_beyond_a_budget_with_room_for_one_call(org_a, priced, mock_server):
    # Worst case of one call: its prompt (~25 tokens) plus 400 output tokens,
    # about 0.00103 USD.  The budget has room for one such call, not two.
    limit = Decimal("0.0015")
    budget = await database_sync_to_async(_budget)(org_a.organization, limit_amount=limit)
    requests_before = mock_server.app.stats["chat_completions"]

    # Each answer takes half a second, so all twenty reach the gate while the
    # first call is still in flight, however slow the machine is.
    outcomes = await asyncio.gather(*(_turn(org_a, priced, f"Question {i}? {SLOW}") for i in range(20)))

    answered = [o for o in outcomes if o.status == MessageStatus.COMPLETE]
    refused = [o for o in outcomes if o.error and o.error["code"] == "budget_exceeded"]
    assert len(answered) + len(refused) == 20
    assert len(answered) >= 1 and len(refused) >= 10
    # A refused call never reached the model and was never charged.
    assert mock_server.app.stats["chat_completions"] - requests_before == len(answered)
    rows = await database_sync_to_async(list)(UsageRecord.objects.all())
    assert len(rows) == len(answered)
    spent = sum((r.cost for r in rows), Decimal(0))
    assert spent <= limit
    details = refused[0].error["details"]
    assert (details["budget_id"], details["scope"], details["limit"], details["currency"]) == (
        str(budget.pk),
        "organization",
        "0.0015",
        "USD",
    )
    assert details["period"] == "month" and details["resets_at"].endswith("Z")
    # The refused turns kept the user's message and say why.
    statuses = await database_sync_to_async(list)(
        Message.objects.filter(role="assistant").values_list("status", flat=True)
    )
    assert statuses.count(MessageStatus.ERROR) == len(refused)


async def test_a_warn_budget_lets_calls_through_and_records_each_threshold_once(org_a, priced):
    budget = await database_sync_to_async(_budget)(
        org_a.organization, limit_amount=Decimal("0.00005"), action="warn", thresholds=[50, 100]
    )
    outcomes = [await _turn(org_a, priced, f"Hello {i}") for i in range(4)]
    assert all(o.status == MessageStatus.COMPLETE for o in outcomes)
    alerts = await database_sync_to_async(list)(
        BudgetAlert.objects.filter(budget=budget).order_by("threshold").values_list("threshold", "metric")
    )
    assert alerts == [(50, "amount"), (100, "amount")]


async def test_a_user_budget_blocks_only_that_user(org_a, priced):
    await database_sync_to_async(_budget)(
        org_a.organization, scope_kind="user", scope_id=str(org_a.users["member"].pk), limit_amount=Decimal("0.0001")
    )
    refused = await _turn(org_a, priced, "Hi", role="member")
    answered = await _turn(org_a, priced, "Hi", role="operator")
    assert refused.error["code"] == "budget_exceeded" and refused.error["details"]["scope"] == "user"
    assert answered.status == MessageStatus.COMPLETE


async def test_a_token_budget_is_held_too(org_a, priced):
    await database_sync_to_async(_budget)(org_a.organization, limit_amount=Decimal("100"), limit_tokens=300)
    outcome = await _turn(org_a, priced, "Hi")  # its worst case is over 400 tokens
    assert outcome.error["code"] == "budget_exceeded" and outcome.error["details"]["metric"] == "tokens"


async def test_lost_counters_are_rebuilt_from_the_ledger(org_a, priced, settings):
    if not settings.REDIS_URL:
        pytest.skip("the Redis counters (CI always sets REDIS_URL)")
    budget = await database_sync_to_async(_budget)(org_a.organization, limit_amount=Decimal("1"))
    await _turn(org_a, priced, "One")
    spent = (await database_sync_to_async(UsageRecord.objects.get)()).cost
    from agenthub.redis import get_redis

    client = get_redis()
    keys = [k async for k in client.scan_iter(match=f"agenthub:budget:{{{budget.pk}:*")]
    assert keys
    await client.delete(*keys)  # Redis lost them
    await _turn(org_a, priced, "Two")
    counter = next(k for k in keys if not k.endswith((b":r", b":a")))
    units = int(await client.hget(counter, "spent"))
    total = sum((r.cost for r in await database_sync_to_async(list)(UsageRecord.objects.all())), Decimal(0))
    assert units == int(total * 10**8) and total > spent


async def test_without_redis_the_in_process_counters_hold_the_budget(org_a, priced, monkeypatch):
    monkeypatch.setattr(reservations, "redis_configured", lambda: False)
    await database_sync_to_async(_budget)(org_a.organization, limit_amount=Decimal("0.0015"))
    outcomes = await asyncio.gather(*(_turn(org_a, priced, f"Q{i} {SLOW}") for i in range(6)))
    rows = await database_sync_to_async(list)(UsageRecord.objects.all())
    assert sum((r.cost for r in rows), Decimal(0)) <= Decimal("0.0015")
    assert sum(1 for o in outcomes if o.error and o.error["code"] == "budget_exceeded") >= 3


async def test_an_unreachable_budget_store_refuses_calls_unless_fail_open(org_a, priced, monkeypatch, settings):
    await database_sync_to_async(_budget)(org_a.organization)

    async def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(reservations, "reserve", down)
    refused = await _turn(org_a, priced, "Hi")
    assert refused.error["code"] == "billing_unavailable"
    assert await database_sync_to_async(UsageRecord.objects.count)() == 0

    settings.BILLING_FAIL_OPEN = True
    answered = await _turn(org_a, priced, "Hi")
    assert answered.status == MessageStatus.COMPLETE
    assert await database_sync_to_async(UsageRecord.objects.count)() == 1


async def test_an_organization_without_budgets_needs_no_budget_store(org_a, priced, monkeypatch):
    async def down(*args, **kwargs):
        raise AssertionError("no budget applies: the store is not asked")

    monkeypatch.setattr(reservations, "reserve", down)
    outcome = await _turn(org_a, priced, "Hi")
    assert outcome.status == MessageStatus.COMPLETE


async def test_a_cached_answer_is_in_the_ledger_as_a_cache_hit_at_no_cost(org_a, priced, mock_server):
    """An agent whose response cache is on answers the same question again
    from the cache: no model call, a ledger row marked cache hit, cost 0."""
    from agents.models import Agent

    cached = await database_sync_to_async(make_live_agent)(
        org_a.organization, slug="cached", model="mock-model", temperature=0.0, response_cache="deterministic"
    )
    first = await _turn(org_a, cached, "What are your hours?")
    requests = mock_server.app.stats["chat_completions"]
    second = await _turn(org_a, cached, "What are your hours?")

    assert mock_server.app.stats["chat_completions"] == requests
    assert "".join(second.text) == "".join(first.text) and second.status == MessageStatus.COMPLETE
    rows = await database_sync_to_async(list)(UsageRecord.objects.order_by("occurred_at"))
    assert [(r.cache_hit, r.provider) for r in rows] == [(False, "openai"), (True, "cache")]
    assert (rows[1].cost, rows[1].input_tokens, rows[1].output_tokens) == (0, 0, 0)
    assert rows[0].cost > 0
    # An agent without the cache calls the model every time.
    assert await database_sync_to_async(Agent.objects.get)(slug="metered")
    await _turn(org_a, priced, "What are your hours?")
    await _turn(org_a, priced, "What are your hours?")
    assert mock_server.app.stats["chat_completions"] == requests + 2
