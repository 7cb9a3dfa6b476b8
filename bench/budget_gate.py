"""What the budget check and reservation add to a turn's time to first token.

In one process, against the project's mock model server over HTTP, with
Postgres and Redis: the same turn (``turn_start`` → first ``token`` event) is
run in interleaved rounds with no budget, and with three blocking budgets
that apply to it (the organization's, the user's and the agent's), each
reserved and settled atomically in Redis.  A direct ``openai`` call to the
same mock is the baseline.  Also the gate's reservation and the meter's
ledger write on their own.

    .venv/bin/python bench/budget_gate.py --rounds 400

Target: the budget check and reservation add p50 <= 1 ms to TTFT.
DATABASE_URL / REDIS_URL default to the local Postgres and Redis; the
benchmark uses its own database (agenthub_bench_budget) and Redis database 11.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "agenthub_bench_budget"


def configure(args) -> None:
    import psycopg

    parts = urlsplit(args.database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    os.environ["REDIS_URL"] = urlunsplit(urlsplit(args.redis_url)._replace(path="/11"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agenthub.settings.local")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CHAT_MESSAGES_PER_MINUTE_PER_USER"] = "0"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(slug: str):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from accounts.models import Membership, Organization, User
    from agents.models import Agent, AgentStatus, AgentVersion
    from billing.models import Price

    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    user, _ = User.objects.get_or_create(username=f"{slug}-member")
    Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "member"})
    if not Price.objects.filter(model="mock-model", organization=None).exists():
        Price.objects.create(
            model="mock-model",
            input_per_million=Decimal("0.15"),
            output_per_million=Decimal("0.60"),
            effective_from=timezone.now() - timedelta(days=1),
        )
    agent = Agent.objects.create(
        organization=org, name="Bench", slug="bench", model="mock-model", status=AgentStatus.ACTIVE
    )
    version = AgentVersion.objects.create(
        organization=org,
        agent=agent,
        number=1,
        name=agent.name,
        system_prompt="You are a concise assistant.",
        model=agent.model,
        fallback_models=[],
        temperature=0.2,
        max_output_tokens=512,
        max_tool_rounds=0,
    )
    agent.live_version = version
    agent.save()
    return org, user, agent


def budgets_on(org, user, agent, on: bool) -> None:
    from decimal import Decimal

    from billing.models import Budget
    from billing.services.metering import budgets_cache_clear

    Budget.objects.filter(organization=org).delete()
    if on:
        for kind, scope_id in (("organization", ""), ("user", str(user.pk)), ("agent", str(agent.pk))):
            Budget.objects.create(
                organization=org, name=kind, scope_kind=kind, scope_id=scope_id, limit_amount=Decimal("1000000")
            )
    budgets_cache_clear()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def run(args) -> None:
    from channels.db import database_sync_to_async
    from django.conf import settings

    from accounts.callers import Caller
    from billing.calls import ModelCall, ModelUsage
    from billing.services.metering import METERING
    from chat.models import Channel
    from chat.services.agents import chat_agent_resolve
    from chat.services.conversations import conversation_open
    from chat.services.turns import turn_start
    from integrations.llm.testing.mock_server import MockConfig, serving

    # Two organizations alike but for their budgets: the one with three
    # blocking budgets (organization, user, agent), the other with none.
    plain = await database_sync_to_async(seed)("bench-no-budget")
    org, user, agent = await database_sync_to_async(seed)("bench-budget")
    await database_sync_to_async(budgets_on)(*plain, False)
    await database_sync_to_async(budgets_on)(org, user, agent, True)
    callers = {
        "no budget": Caller.from_member(organization_id=plain[0].pk, role="member", user_id=plain[1].pk),
        "3 budgets": Caller.from_member(organization_id=org.pk, role="member", user_id=user.pk),
    }
    caller = callers["3 budgets"]
    with serving(MockConfig(port=0, tokens=16)) as mock:
        settings.OPENAI_BASE_URL = mock.base_url
        settings.OPENAI_API_KEY = "bench"
        import openai

        direct = openai.AsyncOpenAI(base_url=mock.base_url, api_key="bench", max_retries=0)
        snapshots = {
            "no budget": await chat_agent_resolve(organization_id=str(plain[0].pk), slug="bench"),
            "3 budgets": await chat_agent_resolve(organization_id=str(org.pk), slug="bench"),
        }

        async def direct_ttft() -> float:
            started = time.perf_counter()
            stream = await direct.chat.completions.create(
                model="mock-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            first = None
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
            return first * 1000

        async def turn_ttft(name: str) -> float:
            who, snapshot = callers[name], snapshots[name]
            info = await conversation_open(caller=who, agent=snapshot, conversation_id=None, channel=Channel.REST)
            started = time.perf_counter()
            handle = await turn_start(
                caller=who, agent=snapshot, conversation_id=info.id, content="hi", channel=Channel.REST, subscribe=True
            )
            first = None
            while True:
                event = await handle.subscription.next()
                kind = event.data["type"]
                if kind == "token" and first is None:
                    first = time.perf_counter() - started
                if kind == "turn.finished":
                    break
            await handle.subscription.close()
            await handle.task
            return first * 1000

        results = {"direct": [], "no budget": [], "3 budgets": []}
        for i in range(args.warmup + args.rounds):
            order = ["direct", "no budget", "3 budgets"]
            if i % 2:
                order.reverse()
            for name in order:
                if name == "direct":
                    value = await direct_ttft()
                else:
                    value = await turn_ttft(name)
                if i >= args.warmup:
                    results[name].append(value)

        # The gate and the meter alone (three budgets).
        checks, records = [], []
        for i in range(args.rounds):
            call = ModelCall(
                call_id=f"bench-{time.time_ns()}-{i}",
                organization_id=str(org.pk),
                model="mock-model",
                channel="rest",
                caller=caller,
                agent_id=str(agent.pk),
                prompt_tokens_estimate=40,
                max_output_tokens=512,
            )
            started = time.perf_counter()
            reservation = await METERING.check(call)
            checks.append((time.perf_counter() - started) * 1000)
            usage = ModelUsage("mock-model", 40, 16, latency_ms=5, ttft_ms=1, status="ok")
            started = time.perf_counter()
            await METERING.record(call, usage, reservation)
            records.append((time.perf_counter() - started) * 1000)

    print(f"\nbudget gate: {args.rounds} interleaved rounds (after {args.warmup} warm-up), 16-token answers\n")
    print(f"{'TTFT (ms)':<28}{'p50':>8}{'p95':>8}{'p99':>8}")
    for name, values in results.items():
        label = "direct openai call" if name == "direct" else f"turn, {name}"
        print(f"{label:<28}{pct(values, 50):>8.2f}{pct(values, 95):>8.2f}{pct(values, 99):>8.2f}")
    added = statistics.median(results["3 budgets"]) - statistics.median(results["no budget"])
    paired = statistics.median(b - a for a, b in zip(results["no budget"], results["3 budgets"], strict=True))
    print(f"\nadded by 3 budgets to TTFT p50: {added:.2f} ms (paired median {paired:.2f} ms)   target <= 1 ms")
    print(f"gate check + reservation alone: p50 {pct(checks, 50):.2f} ms, p99 {pct(checks, 99):.2f} ms")
    print(f"meter record (ledger + rollup + settle): p50 {pct(records, 50):.2f} ms, p99 {pct(records, 99):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    configure(args)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
