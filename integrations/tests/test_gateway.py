"""The model gateway: deployments in the database, routing among them,
retries on another deployment, and circuit breakers shared through Redis."""

import asyncio
import logging
import os
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from prometheus_client import REGISTRY

from integrations.llm import router
from integrations.llm.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, Cap, Lease, Limits, Stats
from integrations.llm.deployments import Deployment, ProviderConfig, Route, RouteTable, routes
from integrations.llm.router import stream_with_fallback
from integrations.llm.types import Finish, LLMError, TextDelta
from integrations.models import ModelDeployment, ModelProvider, ModelRoute
from integrations.tests.helpers import MOCK_TOKENS, collect, user_request

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def deployment(key: str, *, weight: int = 1, priority: int = 0) -> Deployment:
    provider = ProviderConfig(name="p", base_url="http://x/v1", api_key="", timeout=5, connect_timeout=1)
    return Deployment(
        key=key,
        label=key,
        model_name="m",
        upstream_model="m",
        provider=provider,
        weight=weight,
        priority=priority,
    )


# --- ordering (no network, no database) -------------------------------------------------------


def test_weighted_routing_follows_the_weights():
    table = RouteTable(rng=random.Random(7))
    route = Route("m", "weighted", (deployment("a", weight=1), deployment("b", weight=3), deployment("c", weight=6)))

    firsts = Counter(table.order(route)[0].key for _ in range(20000))

    assert firsts["a"] / 20000 == pytest.approx(0.1, abs=0.015)
    assert firsts["b"] / 20000 == pytest.approx(0.3, abs=0.015)
    assert firsts["c"] / 20000 == pytest.approx(0.6, abs=0.015)


def test_lower_priorities_come_first_and_tried_or_open_deployments_last():
    table = RouteTable(rng=random.Random(1))
    backup, main_a, main_b = deployment("backup", priority=1), deployment("a"), deployment("b")
    route = Route("m", "weighted", (backup, main_a, main_b))

    assert {d.key for d in table.order(route)[:2]} == {"a", "b"}
    assert table.order(route)[2].key == "backup"
    assert table.order(route, tried={"a"})[-1].key == "a"
    table.remember([main_b], [Stats(state=OPEN)])
    # Untried and closed first; a known-open circuit next (it may be due a probe); the one that failed last.
    assert [d.key for d in table.order(route, tried={"a"})] == ["backup", "b", "a"]


def test_least_busy_and_lowest_latency_read_the_shared_stats():
    table = RouteTable(rng=random.Random(3))
    a, b, c = deployment("a"), deployment("b"), deployment("c")
    table.remember([a, b, c], [Stats(in_flight=5, ttft_ms=30.0), Stats(in_flight=1, ttft_ms=80.0), Stats(in_flight=3)])

    assert [d.key for d in table.order(Route("m", "least_busy", (a, b, c)))] == ["b", "c", "a"]
    # A deployment not measured yet goes first, so that it gets measured.
    assert [d.key for d in table.order(Route("m", "lowest_latency", (a, b, c)))] == ["c", "a", "b"]


# --- the breakers ------------------------------------------------------------------------------

LIMITS = Limits(threshold=3, window_ms=60_000, cooldown_ms=60_000)


@pytest.fixture(params=["redis", "in-process"])
def either_store(request, settings):
    """The breakers' shared state in Redis, and the per-process state of the
    embedded demo (no Redis): the same rules hold in both."""
    if request.param == "in-process":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: this case checks the state Redis shares between processes (CI always sets it)")
    return request.param


async def _fail(breakers: Breakers, key: str, limits: Limits = LIMITS) -> int:
    got = await breakers.acquire([key])
    lease = got.lease
    assert lease is not None
    return await breakers.settle(lease, "fail", limits)


async def test_a_circuit_opens_after_the_threshold_and_then_refuses_without_a_call(either_store):
    breakers = Breakers()

    assert await _fail(breakers, "d1") == CLOSED
    assert await _fail(breakers, "d1") == CLOSED
    assert await _fail(breakers, "d1") == OPEN

    got = await breakers.acquire(["d1"])
    lease, stats = got.lease, got.stats
    assert lease is None and stats[0].state == OPEN
    # Another deployment of the list takes the call.
    got = await breakers.acquire(["d1", "d2"])
    lease, stats = got.lease, got.stats
    assert lease.key == "d2" and not lease.probe
    assert [s.state for s in stats] == [OPEN, CLOSED] and stats[1].in_flight == 1
    await breakers.settle(lease, "ok", LIMITS, ttft_ms=12.0)
    assert (await breakers.status(["d2"]))[0].in_flight == 0


async def test_half_open_lets_a_single_probe_through(either_store):
    breakers = Breakers()
    quick = Limits(threshold=1, window_ms=60_000, cooldown_ms=50)
    assert await _fail(breakers, "d1", quick) == OPEN
    await asyncio.sleep(0.08)
    assert (await breakers.status(["d1"]))[0].state == HALF_OPEN

    results = await asyncio.gather(*[breakers.acquire(["d1"]) for _ in range(10)])
    leases = [got.lease for got in results if got.lease is not None]
    assert len(leases) == 1 and leases[0].probe

    # The probe's first event closes the circuit for everyone.
    assert await breakers.settle(leases[0], "first", quick, ttft_ms=5.0) == CLOSED
    got = await breakers.acquire(["d1"])
    lease = got.lease
    assert lease is not None and not lease.probe


async def test_a_failed_probe_opens_the_circuit_again(settings):
    breakers = Breakers()
    quick = Limits(threshold=1, window_ms=60_000, cooldown_ms=50)
    await _fail(breakers, "d1", quick)
    await asyncio.sleep(0.08)
    got = await breakers.acquire(["d1"])
    probe = got.lease
    assert probe.probe

    assert await breakers.settle(probe, "fail", quick) == OPEN
    assert (await breakers.acquire(["d1"])).lease is None


async def test_a_cancelled_probe_lets_the_next_call_probe(settings):
    breakers = Breakers()
    quick = Limits(threshold=1, window_ms=60_000, cooldown_ms=50)
    await _fail(breakers, "d1", quick)
    await asyncio.sleep(0.08)
    got = await breakers.acquire(["d1"])
    probe = got.lease

    await breakers.settle(probe, "none", quick)

    got = await breakers.acquire(["d1"])
    second = got.lease
    assert second is not None and second.probe


def test_a_circuit_opened_by_another_process_is_skipped_here(settings):
    """Another process records the failures; this one sees the circuit open."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: this case checks the state Redis shares between processes (CI always sets it)")
    code = textwrap.dedent(
        """
        import asyncio, django
        django.setup()
        from integrations.llm.breaker import Lease, Limits, breakers

        async def main():
            for _ in range(2):
                got = await breakers.acquire(["shared-d"])
                lease = got.lease
                print(await breakers.settle(lease, "fail", Limits(2, 60000, 60000)))

        asyncio.run(main())
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "agenthub.settings.test", "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]

    async def here():
        return await Breakers().acquire(["shared-d", "other-d"])

    got = asyncio.run(here())
    lease, stats = got.lease, got.stats
    assert stats[0].state == OPEN and lease.key == "other-d"


async def test_redis_down_falls_back_to_this_process_and_warns(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    breakers = Breakers()

    with caplog.at_level(logging.WARNING, logger="integrations.llm.breaker"):
        assert await _fail(breakers, "d1") == CLOSED
        await _fail(breakers, "d1")
        assert await _fail(breakers, "d1") == OPEN
        got = await breakers.acquire(["d1", "d2"])
        lease = got.lease

    assert lease.key == "d2"
    assert "Redis is unreachable" in caplog.text
    # Only one warning while Redis stays down (retried after a few seconds).
    assert caplog.text.count("Redis is unreachable") == 1


# --- the router with deployments in the database -----------------------------------------------


@pytest.fixture
def gateway(llm_settings, mock_server, transactional_db):
    """A provider for the mock server, one for an address nothing listens on."""
    llm_settings.LLM_MAX_RETRIES = 2
    llm_settings.LLM_RETRY_BACKOFF_SECONDS = 0.0
    mock = ModelProvider.objects.create(name="mock", base_url=mock_server.base_url, timeout_seconds=5)
    dead = ModelProvider.objects.create(name="dead", base_url="http://127.0.0.1:1/v1", connect_timeout_seconds=1)
    return {"mock": mock, "dead": dead, "server": mock_server, "settings": llm_settings}


def _requests(server) -> int:
    return server.app.stats["chat_completions"]


async def test_a_failing_deployment_is_retried_on_another(gateway, close_llm_clients):
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["dead"], upstream_model="mock-model", priority=0
    )
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model", priority=1
    )
    retries = sample("agenthub_llm_retries_total", model="gw-model")

    events = await collect(stream_with_fallback(user_request("hello", model="gw-model")))

    assert len([e for e in events if isinstance(e, TextDelta)]) == MOCK_TOKENS
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.model == "gw-model"  # the name agents use, not the upstream's
    assert sample("agenthub_llm_retries_total", model="gw-model") == retries + 1
    assert sample("agenthub_llm_errors_total", provider="dead", kind="connection") >= 1


async def test_the_upstream_name_is_sent_and_the_weights_share_the_traffic(gateway, close_llm_clients):
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model", weight=1
    )
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="gpt-4o", weight=3
    )
    routes.rng.seed(11)
    answered = Counter()
    for _ in range(40):
        events = await collect(stream_with_fallback(user_request("hi", model="gw-model")))
        assert events[-1].model == "gw-model"
        answered["ok"] += 1
    assert answered["ok"] == 40
    # Both upstream names reached the mock (it answers only the names it knows).
    stats = await router.breakers.status([str(d.pk) for d in await _deployments("gw-model")])
    assert all(s.ttft_ms is not None for s in stats)


async def _deployments(model: str) -> list:
    return await sync_to_async(lambda: list(ModelDeployment.objects.filter(model_name=model)))()


async def test_an_open_circuit_is_skipped_without_a_network_call(gateway, close_llm_clients):
    broken = await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-error-500", breaker_threshold=2
    )
    gateway["settings"].LLM_MAX_RETRIES = 0
    for _ in range(2):
        with pytest.raises(LLMError) as failed:
            await collect(stream_with_fallback(user_request("hi", model="gw-model")))
        assert failed.value.kind == "server_error"
    assert (await router.breakers.status([str(broken.pk)]))[0].state == OPEN

    before = _requests(gateway["server"])
    rejections = sample("agenthub_llm_circuit_rejections_total", model="gw-model")
    with pytest.raises(LLMError) as refused:
        await collect(stream_with_fallback(user_request("hi", model="gw-model")))

    assert refused.value.kind == "circuit_open" and refused.value.retryable
    assert _requests(gateway["server"]) == before
    assert sample("agenthub_llm_circuit_rejections_total", model="gw-model") == rejections + 1
    # A fallback model still answers.
    events = await collect(stream_with_fallback(user_request("hi", model="gw-model"), ["mock-model"]))
    assert events[-1].model == "mock-model"


async def test_a_bad_request_is_neither_retried_nor_counted_against_the_deployment(gateway, close_llm_clients):
    d = await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-error-400", breaker_threshold=1
    )
    before = _requests(gateway["server"])

    with pytest.raises(LLMError) as failed:
        await collect(stream_with_fallback(user_request("hi", model="gw-model")))

    assert failed.value.kind == "bad_request"
    assert _requests(gateway["server"]) == before + 1
    assert (await router.breakers.status([str(d.pk)]))[0].state == CLOSED


async def test_tokens_already_streamed_are_never_retried(gateway, close_llm_clients):
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model"
    )
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="gpt-4o"
    )
    before = _requests(gateway["server"])

    with pytest.raises(LLMError) as failed:
        await collect(stream_with_fallback(user_request("[[mock:drop_after=3]] hi", model="gw-model")))

    assert failed.value.kind == "stream_dropped"
    assert _requests(gateway["server"]) == before + 1


async def test_disabled_deployments_and_providers_are_not_used(gateway, close_llm_clients):
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["dead"], upstream_model="mock-model", enabled=False
    )
    live = await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model"
    )
    await sync_to_async(ModelRoute.objects.create)(model_name="gw-model", strategy="least_busy")
    errors = sample("agenthub_llm_errors_total", provider="dead", kind="connection")

    events = await collect(stream_with_fallback(user_request("hi", model="gw-model")))

    assert isinstance(events[-1], Finish)
    assert sample("agenthub_llm_errors_total", provider="dead", kind="connection") == errors
    route = await routes.route("gw-model")
    assert route.strategy == "least_busy" and [d.key for d in route.deployments] == [str(live.pk)]


def test_deployment_changes_apply_to_the_next_call(gateway):
    """Saving a deployment invalidates this process's snapshot at once."""
    assert routes.routes_sync().get("gw-model") is None
    ModelDeployment.objects.create(model_name="gw-model", provider=gateway["mock"])
    assert len(routes.routes_sync()["gw-model"].deployments) == 1


# --- health, metrics, admin --------------------------------------------------------------------


def test_health_and_metrics_show_the_circuits(gateway, client):
    broken = ModelDeployment.objects.create(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-error-500"
    )
    ok = ModelDeployment.objects.create(model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model")

    async def open_it():
        await router.breakers.settle(
            Lease(key=str(broken.pk), index=0, call_id="x", probe=False), "fail", Limits(1, 60000, 60000)
        )

    asyncio.run(open_it())

    body = client.get("/health/ready").json()
    check = body["checks"]["model_deployments"]
    assert body["status"] == "ok"  # informational: an open circuit does not make the process unready
    assert check["status"] == "degraded" and check["required"] is False
    assert check["circuits"]["open"] == 1
    assert [d["deployment"] for d in check["not_closed"]] == ["mock/mock-error-500"]

    text = client.get("/metrics").content.decode()
    assert 'agenthub_circuit_state{deployment="mock/mock-error-500",model="gw-model"} 1.0' in text
    assert 'agenthub_circuit_state{deployment="mock/mock-model",model="gw-model"} 0.0' in text
    assert ok.pk


def test_only_superusers_see_the_gateway_in_the_admin(gateway, client, org_a):
    from accounts.models import User

    d = ModelDeployment.objects.create(model_name="gw-model", provider=gateway["mock"], upstream_model="mock-error-500")
    asyncio.run(
        router.breakers.settle(Lease(key=str(d.pk), index=0, call_id="x", probe=False), "fail", Limits(1, 60000, 60000))
    )
    org_admin = org_a.users["admin"]
    org_admin.is_staff = True
    org_admin.save()
    client.force_login(org_admin)
    assert client.get("/admin/integrations/modeldeployment/").status_code == 403
    assert client.get("/admin/integrations/modelprovider/add/").status_code == 403

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    page = client.get("/admin/integrations/modeldeployment/").content.decode()
    assert "mock-error-500" in page and "open (probe in" in page

    response = client.post(
        "/admin/integrations/modeldeployment/",
        {"action": "close_circuits", "_selected_action": [str(d.pk)]},
        follow=True,
    )
    assert "Closed 1 circuit" in response.content.decode()
    assert asyncio.run(router.breakers.status([str(d.pk)]))[0].state == CLOSED


def test_the_provider_form_stores_the_key_encrypted_and_checks_what_it_needs(gateway, client):
    from accounts.models import User

    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    response = client.post(
        "/admin/integrations/modelprovider/add/",
        {
            "name": "openai",
            "base_url": "",
            "api_key": "",
            "timeout_seconds": 60,
            "connect_timeout_seconds": 5,
            "enabled": "on",
        },
    )
    assert "api.openai.com needs an API key" in response.content.decode()

    response = client.post(
        "/admin/integrations/modelprovider/add/",
        {
            "name": "openai",
            "base_url": "",
            "api_key": "sk-secret",
            "timeout_seconds": 60,
            "connect_timeout_seconds": 5,
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    provider = ModelProvider.objects.get(name="openai")
    assert provider.api_key() == "sk-secret" and "sk-secret" not in provider.api_key_encrypted
    page = client.get(f"/admin/integrations/modelprovider/{provider.pk}/change/").content.decode()
    assert "sk-secret" not in page and "Stored, encrypted" in page
    assert settings.OPENAI_API_KEY != "sk-secret"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://models/v1", "http:// or https://"),
        ("http://user:pw@vllm:8000/v1", "API key field"),
        ("http://vllm:99999/v1", "port"),
        ("http://vllm:8000/v1?x=1", "no query"),
    ],
)
def test_a_base_url_must_be_a_plain_http_url(url, error):
    from django.core.exceptions import ValidationError

    from integrations.models import validate_base_url

    validate_base_url("http://vllm:8000/v1")  # a Kubernetes service name is fine
    with pytest.raises(ValidationError, match=error):
        validate_base_url(url)


def test_gateway_seed_writes_the_environments_server_once(settings, db):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "", ""
    with pytest.raises(CommandError, match="OPENAI_BASE_URL"):
        call_command("gateway_seed")

    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "http://vllm:8000/v1", "sk-seed"
    settings.AGENTHUB_MODELS = ["offline", "gpt-4o-mini:128000", "llama3:8b"]
    call_command("gateway_seed", stdout=StringIO())
    out = StringIO()
    call_command("gateway_seed", stdout=out)

    provider = ModelProvider.objects.get()
    assert (provider.name, provider.base_url, provider.api_key()) == ("default", "http://vllm:8000/v1", "sk-seed")
    assert sorted(ModelDeployment.objects.values_list("model_name", flat=True)) == ["gpt-4o-mini", "llama3:8b"]
    assert "left as it is" in out.getvalue()


# --- caps on calls in flight -------------------------------------------------------------------


async def test_a_deployment_at_its_cap_passes_the_call_to_the_next_one(either_store):
    breakers = Breakers()

    first = await breakers.acquire(["d1", "d2"], caps=[Cap(in_flight=1), Cap()])
    second = await breakers.acquire(["d1", "d2"], caps=[Cap(in_flight=1), Cap()])
    assert (first.lease.key, second.lease.key) == ("d1", "d2")
    third = await breakers.acquire(["d1"], caps=[Cap(in_flight=1)])
    assert third.lease is None and third.full == "deployment"

    await breakers.settle(first.lease, "ok", LIMITS)
    assert (await breakers.acquire(["d1"], caps=[Cap(in_flight=1)])).lease.key == "d1"


async def test_an_organization_at_its_cap_gets_no_slot_and_others_do(either_store):
    breakers = Breakers()

    held = [await breakers.acquire(["d1"], organization="org-a", organization_cap=2) for _ in range(2)]
    assert all(got.lease for got in held)
    refused = await breakers.acquire(["d1"], organization="org-a", organization_cap=2)
    assert refused.lease is None and refused.full == "organization"
    assert (await breakers.acquire(["d1"], organization="org-b", organization_cap=2)).lease is not None

    await breakers.settle(held[0].lease, "none", LIMITS)
    assert (await breakers.acquire(["d1"], organization="org-a", organization_cap=2)).lease is not None


def test_the_caps_hold_across_two_processes(settings):
    """Two processes take slots of a deployment capped at 3 calls in flight
    at the same moment: exactly three leases in all."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: this case checks the state Redis shares between processes (CI always sets it)")
    code = textwrap.dedent(
        """
        import asyncio, django, sys, time
        django.setup()
        from integrations.llm.breaker import Cap, breakers

        async def main():
            start = float(sys.argv[1])
            await asyncio.sleep(max(0, start - time.time()))
            got = await asyncio.gather(*[breakers.acquire(["capped-d"], caps=[Cap(in_flight=3)]) for _ in range(5)])
            print(sum(1 for g in got if g.lease is not None))

        asyncio.run(main())
        """
    )
    import time

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "agenthub.settings.test", "REDIS_URL": settings.REDIS_URL}
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, start],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    assert sum(int(out.strip()) for out, _ in outputs) == 3


async def test_a_call_waits_briefly_for_a_slot_then_is_refused_with_capacity_exceeded(gateway, close_llm_clients):
    gateway["settings"].MODEL_SLOT_WAIT_SECONDS = 0.3
    gateway["settings"].MODEL_MAX_CONCURRENT_PER_ORGANIZATION = 1
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model", max_in_flight=1
    )

    async def slow(org: str):
        return await collect(
            stream_with_fallback(user_request("[[mock:ttft_ms=600]] hi", model="gw-model", organization_id=org))
        )

    # The deployment's cap: one call runs, the second waits 0.3 s and is refused.
    first = asyncio.create_task(slow("org-1"))
    await asyncio.sleep(0.1)
    refusals = sample("agenthub_llm_capacity_refusals_total", model="gw-model", scope="deployment")
    with pytest.raises(LLMError) as refused:
        await slow("org-2")
    assert refused.value.kind == "capacity_exceeded" and refused.value.details["scope"] == "deployment"
    assert sample("agenthub_llm_capacity_refusals_total", model="gw-model", scope="deployment") == refusals + 1
    assert isinstance((await first)[-1], Finish)

    # A call that waits gets the slot when it frees in time.
    gateway["settings"].MODEL_SLOT_WAIT_SECONDS = 2.0
    first = asyncio.create_task(slow("org-1"))
    await asyncio.sleep(0.1)
    assert isinstance((await slow("org-2"))[-1], Finish)
    await first

    # The organization's cap: 429-class refusal, for that organization only.
    gateway["settings"].MODEL_SLOT_WAIT_SECONDS = 0.2
    await sync_to_async(ModelDeployment.objects.filter(model_name="gw-model").update)(max_in_flight=None)
    routes.invalidate()
    first = asyncio.create_task(slow("org-1"))
    await asyncio.sleep(0.1)
    with pytest.raises(LLMError) as refused:
        await slow("org-1")
    assert refused.value.details["scope"] == "organization"
    assert isinstance((await slow("org-2"))[-1], Finish)
    await first


async def test_requests_and_tokens_per_minute_are_held_per_deployment(either_store):
    breakers = Breakers()

    for _ in range(2):
        got = await breakers.acquire(["d1", "d2"], caps=[Cap(rpm=2), Cap()])
        assert got.lease.key == "d1"
        await breakers.settle(got.lease, "ok", LIMITS)
    # d1 has used its two requests this minute: the next call goes to d2.
    assert (await breakers.acquire(["d1", "d2"], caps=[Cap(rpm=2), Cap()])).lease.key == "d2"
    assert (await breakers.acquire(["d1"], caps=[Cap(rpm=2)])).full == "deployment"

    got = await breakers.acquire(["d3"], caps=[Cap(tpm=100)])
    await breakers.settle(got.lease, "ok", LIMITS, tokens=120)  # the call used more than the quota
    refused = await breakers.acquire(["d3"], caps=[Cap(tpm=100)])
    assert refused.lease is None and refused.full == "deployment"


async def test_a_429_storm_opens_the_circuit_and_later_calls_fail_fast(gateway, close_llm_clients):
    gateway["settings"].LLM_MAX_RETRIES = 0
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-error-429", breaker_threshold=3
    )
    for _ in range(3):
        with pytest.raises(LLMError) as limited:
            await collect(stream_with_fallback(user_request("hi", model="gw-model")))
        assert limited.value.kind == "rate_limited"
    before = _requests(gateway["server"])

    with pytest.raises(LLMError) as refused:
        await collect(stream_with_fallback(user_request("hi", model="gw-model")))

    assert refused.value.kind == "circuit_open" and _requests(gateway["server"]) == before


async def test_model_calls_continue_when_redis_is_down(gateway, close_llm_clients, caplog):
    gateway["settings"].REDIS_URL = "redis://127.0.0.1:1/0"
    await sync_to_async(ModelDeployment.objects.create)(
        model_name="gw-model", provider=gateway["mock"], upstream_model="mock-model", max_in_flight=5
    )
    with caplog.at_level(logging.WARNING, logger="integrations.llm.breaker"):
        events = await collect(stream_with_fallback(user_request("hi", model="gw-model")))
    assert len([e for e in events if isinstance(e, TextDelta)]) == MOCK_TOKENS
    assert "Redis is unreachable" in caplog.text
