"""Every surface is metered, and a budget refuses on every surface, against a
real daphne, Postgres, Redis and the mock model over HTTP, with real clients
(``websockets``, ``httpx``, the ``openai`` SDK) and ``manage.py chat``."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import httpx
import openai
import pytest
import websockets
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.services import api_key_create
from agenthub.testing import run_daphne, subprocess_env
from billing.models import Budget, Price, UsageRecord
from chat.tests.helpers import make_live_agent
from integrations.llm.testing.mock_server import MockConfig, serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODELS = "mock-model:8192,offline:8192"
PASSWORD = "s3cret-Pass-for-tests"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: budgets are held in Redis across processes (CI always sets it)")
    logs = tmp_path_factory.mktemp("logs")
    with serving(MockConfig(port=0, tokens=6)) as mock:
        with django_db_blocker.unblock():
            env = subprocess_env(
                OPENAI_BASE_URL=mock.base_url,
                OPENAI_API_KEY="mock-key",
                AGENTHUB_MODELS=MODELS,
                LLM_MAX_RETRIES=0,
                BILLING_CONFIG_CACHE_SECONDS=0,  # budgets the test adds apply at once
                CHAT_MESSAGES_PER_MINUTE_PER_USER=0,
                LOG_LEVEL="WARNING",
            )
        with run_daphne(env=env, log_path=logs / "billing.log") as base:
            yield {"base": base, "mock": mock}


@pytest.fixture
def setup(server, org_a, settings):
    settings.AGENTHUB_MODELS = MODELS.split(",")
    settings.OPENAI_BASE_URL = server["mock"].base_url
    settings.OPENAI_API_KEY = "mock-key"
    Price.objects.create(
        model="mock-model",
        currency="USD",
        input_per_million=Decimal("2"),
        output_per_million=Decimal("8"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    make_live_agent(org_a.organization, slug="support", model="mock-model", max_output_tokens=200)
    response = httpx.post(
        f"{server['base']}/api/v1/auth/token/", json={"username": "alpha-member", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    _, raw_key = api_key_create(organization=org_a.organization, name="sdk", actor_role="owner")
    return {
        **server,
        "org": org_a,
        "auth": {"Authorization": f"Bearer {response.json()['access']}"},
        "sdk": openai.OpenAI(base_url=f"{server['base']}/v1", api_key=raw_key, max_retries=0),
    }


def _ws_url(setup) -> str:
    ticket = httpx.post(f"{setup['base']}/api/v1/chat/tickets", json={"agent": "support"}, headers=setup["auth"])
    assert ticket.status_code == 201, ticket.text
    return setup["base"].replace("http://", "ws://") + ticket.json()["websocket_url"]


async def _ws_turn(setup, content: str) -> tuple[list[dict], object]:
    ws = await websockets.connect(_ws_url(setup))
    assert json.loads(await ws.recv())["type"] == "conversation.ready"
    await ws.send(json.dumps({"type": "message", "content": content}))
    frames = []
    while not frames or frames[-1]["type"] != "turn.finished":
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
    return frames, ws


def _sse_events(setup, prompt: str) -> list[tuple[str, dict]]:
    headers = {**setup["auth"], "Accept": "text/event-stream"}
    events, kind = [], None
    with httpx.stream(
        "POST", f"{setup['base']}/api/v1/chat", json={"agent": "support", "prompt": prompt}, headers=headers
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


def _channels() -> list[str]:
    return sorted(UsageRecord.objects.values_list("channel", flat=True))


async def test_every_surface_is_metered_with_its_cost(setup):
    frames, ws = await _ws_turn(setup, "Hello over the socket")
    await ws.close()
    finished = frames[-1]
    assert finished["status"] == "complete"
    row = await asyncio.to_thread(UsageRecord.objects.get)
    assert row.channel == "websocket" and row.cost > 0
    assert finished["usage"]["cost"] == f"{row.cost.normalize():f}" and finished["usage"]["currency"] == "USD"

    rest = await asyncio.to_thread(
        httpx.post,
        f"{setup['base']}/api/v1/chat",
        json={"agent": "support", "prompt": "Hello over REST"},
        headers=setup["auth"],
        timeout=15,
    )
    assert rest.status_code == 200, rest.text
    assert Decimal(rest.json()["usage"]["cost"]) > 0

    events = await asyncio.to_thread(_sse_events, setup, "Hello over SSE")
    assert events[-1][0] == "turn.finished" and Decimal(events[-1][1]["usage"]["cost"]) > 0

    sdk = setup["sdk"]
    completion = await asyncio.to_thread(
        sdk.chat.completions.create, model="support", messages=[{"role": "user", "content": "Hi from the SDK"}]
    )
    assert completion.usage.completion_tokens == 6
    chunks = await asyncio.to_thread(
        lambda: list(
            sdk.chat.completions.create(
                model="support",
                messages=[{"role": "user", "content": "Hi, streaming"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    )
    assert chunks[-1].usage.completion_tokens == 6

    await asyncio.to_thread(
        call_command, "chat", "support", "--org", "alpha", "--user", "alpha-member", "-m", "Hi from the terminal"
    )
    # REST and SSE are both the REST channel; the two SDK calls the OpenAI one.
    assert await asyncio.to_thread(_channels) == ["cli", "openai", "openai", "rest", "rest", "websocket"]
    rows = await asyncio.to_thread(lambda: list(UsageRecord.objects.all()))
    assert all(r.cost == (r.input_tokens * 2 + r.output_tokens * 8) / Decimal(10**6) for r in rows)
    assert {r.api_key_label.split(" ")[0] for r in rows if r.channel == "openai"} == {"sdk"}


async def test_a_spent_budget_refuses_on_every_surface_before_the_model(setup):
    await asyncio.to_thread(
        Budget.objects.create,
        organization=setup["org"].organization,
        name="Tiny",
        limit_amount=Decimal("0.000001"),
        thresholds=[100],
    )
    requests_before = setup["mock"].app.stats["chat_completions"]

    frames, ws = await _ws_turn(setup, "Hello")
    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "budget_exceeded" and error["details"]["budget"] == "Tiny"
    assert frames[-1]["status"] == "error"
    await ws.send(json.dumps({"type": "ping"}))  # the socket stays open
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
    await ws.close()

    rest = await asyncio.to_thread(
        httpx.post,
        f"{setup['base']}/api/v1/chat",
        json={"agent": "support", "prompt": "Hello"},
        headers=setup["auth"],
        timeout=15,
    )
    assert rest.status_code == 402
    body = rest.json()["error"]
    assert body["code"] == "budget_exceeded"
    assert {"scope", "limit", "spent", "period", "resets_at"} <= set(body["details"])

    events = await asyncio.to_thread(_sse_events, setup, "Hello")
    assert [kind for kind, _ in events][-2:] == ["error", "turn.finished"]
    assert events[-2][1]["code"] == "budget_exceeded"

    sdk = setup["sdk"]
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as refused:
            await asyncio.to_thread(
                lambda s=stream: sdk.chat.completions.create(
                    model="support", messages=[{"role": "user", "content": "Hi"}], stream=s
                )
            )
        assert refused.value.status_code == 402
        assert refused.value.body["code"] == "budget_exceeded"

    assert setup["mock"].app.stats["chat_completions"] == requests_before
    assert await asyncio.to_thread(UsageRecord.objects.count) == 0
