"""End to end: two daphne processes sharing Postgres and Redis, the project's
mock model server over HTTP (so the real ``openai`` client code runs), and
real clients: ``websockets``, ``httpx`` (SSE) and the ``openai`` client."""

import asyncio
import json
import time

import httpx
import openai
import pytest
import websockets
from django.conf import settings

from accounts.services import api_key_create
from agenthub.testing import journal_settle_sync, run_daphne, subprocess_env
from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent
from integrations.llm.testing.mock_server import MockConfig, serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODELS = "mock-model:8192,mock-error-500:8192,offline:8192"
PASSWORD = "s3cret-Pass-for-tests"


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, tmp_path_factory):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: two server processes share state through Redis (CI always sets it)")
    metrics_dir = tmp_path_factory.mktemp("prometheus")
    logs = tmp_path_factory.mktemp("logs")
    with serving(MockConfig(port=0, tokens=12, ttft_ms=5, token_delay_ms=3)) as mock:
        with django_db_blocker.unblock():
            env = subprocess_env(
                OPENAI_BASE_URL=mock.base_url,
                OPENAI_API_KEY="mock-key",
                AGENTHUB_MODELS=MODELS,
                LLM_MAX_RETRIES=1,
                LLM_TIMEOUT_SECONDS=2,
                LLM_RETRY_BACKOFF_SECONDS=0,
                MODEL_ROUTES_REFRESH_SECONDS=0.5,
                PROMETHEUS_MULTIPROC_DIR=metrics_dir,
                LOG_LEVEL="WARNING",
            )
        with run_daphne(env=env, log_path=logs / "a.log") as a, run_daphne(env=env, log_path=logs / "b.log") as b:
            yield {"a": a, "b": b, "mock": mock}


@pytest.fixture
def setup(servers, org_a, settings):
    settings.AGENTHUB_MODELS = MODELS.split(",")
    agent = make_live_agent(org_a.organization, slug="support", model="mock-model")
    return {"agent": agent, "org": org_a, **servers}


def login(base: str, username: str = "alpha-member") -> dict:
    response = httpx.post(f"{base}/api/v1/auth/token/", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access']}"}


def ws_url(base: str, auth: dict, slug: str = "support", query: str = "") -> str:
    ticket = httpx.post(f"{base}/api/v1/chat/tickets", json={"agent": slug}, headers=auth)
    assert ticket.status_code == 201, ticket.text
    return base.replace("http://", "ws://") + ticket.json()["websocket_url"] + query


async def receive_until(ws, event_type: str, timeout: float = 15) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        frames.append(frame)
        if frame["type"] == event_type:
            return frames


def stored(conversation_id: str) -> list[tuple]:
    return list(
        Message.objects.filter(conversation_id=conversation_id).order_by("created_at").values_list("role", "status")
    )


async def test_websocket_turn_against_the_real_server_and_model(setup):
    base = setup["a"]
    auth = login(base)
    async with websockets.connect(ws_url(base, auth)) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "conversation.ready"
        await ws.send(json.dumps({"type": "message", "content": "Where is my order?", "client_msg_id": "c1"}))
        frames = await receive_until(ws, "turn.finished")
    tokens = [f["delta"] for f in frames if f["type"] == "token"]
    assert len(tokens) == 12
    assert [f["seq"] for f in frames] == list(range(1, 15))
    finished = frames[-1]
    assert finished["status"] == "complete"
    assert finished["usage"]["completion_tokens"] == 12
    assert finished["model"] == "mock-model"
    conversation_id = ready["conversation_id"]
    message = await asyncio.to_thread(Message.objects.get, conversation_id=conversation_id, role="assistant")
    assert message.content == "".join(tokens)
    assert message.tokens_out == 12
    assert message.ttft_ms is not None


async def test_dropped_socket_resumes_on_the_other_server_exactly(setup):
    a, b = setup["a"], setup["b"]
    auth = login(a)
    async with websockets.connect(ws_url(a, auth)) as ws:
        ready = json.loads(await ws.recv())
        conversation_id = ready["conversation_id"]
        await ws.send(
            json.dumps(
                {"type": "message", "content": "Tell me everything [[mock:tokens=60]] [[mock:token_delay_ms=10]]"}
            )
        )
        seen = [json.loads(await ws.recv()) for _ in range(6)]
    # The socket is gone; the turn goes on on server A.  Reconnect to B.
    async with websockets.connect(ws_url(b, auth, query=f"&conversation={conversation_id}")) as ws:
        ready_b = json.loads(await ws.recv())
        assert ready_b["created"] is False
        await ws.send(json.dumps({"type": "resume", "after": seen[-1]["seq"]}))
        rest = await receive_until(ws, "turn.finished")
        everything = seen + rest
        assert [f["seq"] for f in everything] == list(range(1, everything[-1]["seq"] + 1))
        tokens = [f["delta"] for f in everything if f["type"] == "token"]
        assert len(tokens) == 60

        # The conversation continues on B, with its history.
        await ws.send(json.dumps({"type": "message", "content": "and then?"}))
        second = await receive_until(ws, "turn.finished")
    assert second[0]["seq"] == everything[-1]["seq"] + 1
    assert second[-1]["usage"]["prompt_tokens"] > everything[-1]["usage"]["prompt_tokens"]
    answer = await asyncio.to_thread(
        lambda: Message.objects.filter(conversation_id=conversation_id, role="assistant").order_by("created_at").first()
    )
    assert answer.content == "".join(tokens)
    assert answer.status == "complete"


async def test_sse_stream_and_last_event_id_resume(setup):
    a, b = setup["a"], setup["b"]
    auth = login(a)
    headers = {**auth, "Accept": "text/event-stream"}
    body = {"agent": "support", "prompt": "stream please [[mock:tokens=40]] [[mock:token_delay_ms=10]]"}
    first: list[dict] = []
    async with httpx.AsyncClient(timeout=15) as http:
        async with http.stream("POST", f"{a}/api/v1/chat", json=body, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in _sse_events(response):
                first.append(event)
                if len(first) == 5:
                    break
        conversation_id = first[0]["data"]["conversation_id"]
        last_id = first[-1]["id"]
        resume_headers = {**auth, "Accept": "text/event-stream", "Last-Event-ID": str(last_id)}
        rest = []
        async with http.stream(
            "GET", f"{b}/api/v1/sessions/{conversation_id}/events", headers=resume_headers
        ) as response:
            assert response.status_code == 200
            async for event in _sse_events(response):
                rest.append(event)
    everything = first + rest
    assert [e["id"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[-1]["event"] == "turn.finished"
    assert sum(1 for e in everything if e["event"] == "token") == 40
    assert all(e["event"] == e["data"]["type"] for e in everything)


async def _sse_events(response):
    event: dict = {}
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line == "" and event:
            yield event
            event = {}


def test_rest_chat_session_and_history(setup):
    base = setup["a"]
    auth = login(base)
    response = httpx.post(
        f"{base}/api/v1/chat",
        json={"agent": "support", "prompt": "Hi there", "metadata": {"ticket": "T-1"}, "client_msg_id": "r1"},
        headers={**auth, "X-Request-ID": "rest-chat-1"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["agent"] == "support"
    assert body["request_id"] == "rest-chat-1"
    assert body["usage"]["completion_tokens"] == 12
    assert body["messages"][0]["role"] == "assistant"
    assert body["latency_ms"] > 0
    session_id = body["session_id"]

    again = httpx.post(
        f"{base}/api/v1/chat",
        json={"agent": "support", "prompt": "Hi there", "session_id": session_id, "client_msg_id": "r1"},
        headers=auth,
        timeout=15,
    )
    assert again.status_code == 200
    assert again.json()["messages"] == body["messages"]
    assert again.json()["duplicate"] is True
    assert stored(session_id) == [("user", "complete"), ("assistant", "complete")]

    session = httpx.get(f"{setup['b']}/api/v1/sessions/{session_id}", headers=auth).json()
    assert (session["agent"], session["channel"], session["message_count"]) == ("support", "rest", 2)
    assert session["metadata"] == {"ticket": "T-1"}
    history = httpx.get(f"{base}/api/v1/sessions/{session_id}/history", headers=auth).json()
    assert [m["role"] for m in history["results"]] == ["user", "assistant"]
    assert history["results"][1]["content"] == body["messages"][0]["content"]

    assert httpx.delete(f"{base}/api/v1/sessions/{session_id}", headers=auth).status_code == 204
    assert httpx.get(f"{base}/api/v1/sessions/{session_id}", headers=auth).status_code == 404


def test_openai_client_against_agents_as_models(setup):
    base = setup["a"]
    _, raw = api_key_create(organization=setup["org"].organization, name="sdk", actor_role="owner")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=raw, max_retries=0)

    assert [m.id for m in client.models.list().data] == ["support"]

    completion = client.chat.completions.create(
        model="support", messages=[{"role": "user", "content": "What are your hours?"}]
    )
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 12
    answer = completion.choices[0].message.content

    stream = client.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "What are your hours?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    assert chunks[-1].usage.completion_tokens == 12
    journal_settle_sync()  # /v1 conversations are written behind
    assert Conversation.objects.filter(channel="openai").count() == 2

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="support", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="ahk_bad_key", max_retries=0).models.list()


@pytest.mark.parametrize(
    ("directive", "status", "code", "kind"),
    [
        ("[[mock:error=500]]", 502, "model_error", "server_error"),
        ("[[mock:error=429]]", 429, "model_error", "rate_limited"),
        ("[[mock:timeout]]", 504, "model_error", "timeout"),
    ],
)
def test_model_failures_are_clear_and_keep_the_users_message(setup, directive, status, code, kind):
    base = setup["a"]
    auth = login(base)
    response = httpx.post(
        f"{base}/api/v1/chat", json={"agent": "support", "prompt": f"hello {directive}"}, headers=auth, timeout=30
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["kind"]) == (code, kind)
    session_id = error["details"]["session_id"]
    assert stored(session_id) == [("user", "complete"), ("assistant", "error")]


async def test_dropped_model_stream_marks_the_turn_interrupted_and_the_socket_stays_usable(setup):
    base = setup["a"]
    auth = login(base)
    async with websockets.connect(ws_url(base, auth)) as ws:
        ready = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "message", "content": "go [[mock:drop_after=3]]"}))
        frames = await receive_until(ws, "turn.finished")
        assert [f["type"] for f in frames] == ["turn.started", "token", "token", "token", "error", "turn.finished"]
        assert (frames[4]["code"], frames[4]["details"]["kind"]) == ("model_error", "stream_dropped")
        assert frames[-1]["status"] == "interrupted"
        await ws.send(json.dumps({"type": "message", "content": "try again"}))
        assert (await receive_until(ws, "turn.finished"))[-1]["status"] == "complete"
    rows = await asyncio.to_thread(stored, ready["conversation_id"])
    assert rows == [("user", "complete"), ("assistant", "interrupted"), ("user", "complete"), ("assistant", "complete")]


def test_fallback_model_answers_when_the_first_fails(setup):
    make_live_agent(setup["org"].organization, slug="fragile", model="mock-error-500", fallback_models=["mock-model"])
    base = setup["a"]
    response = httpx.post(
        f"{base}/api/v1/chat", json={"agent": "fragile", "prompt": "hello"}, headers=login(base), timeout=15
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    assert Message.objects.get(role="assistant").model == "mock-model"


def test_a_circuit_opened_on_one_server_is_skipped_by_the_other(setup):
    """A deployment that keeps failing opens its circuit in Redis; the other
    server process then answers 503 without calling the model."""
    from integrations.models import ModelDeployment, ModelProvider

    provider = ModelProvider.objects.create(name="mock-direct", base_url=setup["mock"].base_url)
    ModelDeployment.objects.create(model_name="mock-error-500", provider=provider, breaker_threshold=2)
    make_live_agent(setup["org"].organization, slug="flaky", model="mock-error-500")
    time.sleep(0.6)  # both servers reload their routes
    a, b = setup["a"], setup["b"]

    # One request, two attempts (LLM_MAX_RETRIES=1): two failures open the circuit.
    response = httpx.post(f"{a}/api/v1/chat", json={"agent": "flaky", "prompt": "hi"}, headers=login(a), timeout=15)
    assert response.status_code == 502 and response.json()["error"]["details"]["kind"] == "server_error"

    calls = setup["mock"].app.stats["chat_completions"]
    response = httpx.post(f"{b}/api/v1/chat", json={"agent": "flaky", "prompt": "hi"}, headers=login(b), timeout=15)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["kind"]) == ("model_error", "circuit_open")
    assert "unavailable after repeated failures" in error["message"]
    assert setup["mock"].app.stats["chat_completions"] == calls  # skipped without a network call

    ready = httpx.get(f"{b}/health/ready").json()
    assert ready["status"] == "ok"
    assert ready["checks"]["model_deployments"]["not_closed"][0]["state"] == "open"
    metrics = httpx.get(f"{a}/metrics").text
    assert 'agenthub_circuit_state{deployment="mock-direct/mock-error-500",model="mock-error-500"} 1.0' in metrics


def test_a_deployment_at_its_cap_refuses_the_other_servers_call_with_503(setup):
    """The cap on calls in flight holds across server processes: while a slow
    call runs on one server, the other's call waits for the slot, then gets
    503 capacity_exceeded with Retry-After."""
    from concurrent.futures import ThreadPoolExecutor

    from integrations.models import ModelDeployment, ModelProvider

    provider = ModelProvider.objects.create(name="mock-capped", base_url=setup["mock"].base_url)
    ModelDeployment.objects.create(model_name="mock-model", provider=provider, max_in_flight=1)
    time.sleep(0.6)  # both servers reload their routes
    a, b = setup["a"], setup["b"]
    auth_a, auth_b = login(a), login(b)

    def chat(base, auth, prompt):
        return httpx.post(f"{base}/api/v1/chat", json={"agent": "support", "prompt": prompt}, headers=auth, timeout=30)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(chat, a, auth_a, "take your time [[mock:ttft_ms=3500]]")
        time.sleep(0.5)
        refused = chat(b, auth_b, "me too")
        assert slow.result().status_code == 200
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    error = refused.json()["error"]
    assert (error["code"], error["details"]["scope"]) == ("capacity_exceeded", "deployment")
    # The slot is free again.
    assert chat(b, auth_b, "now").status_code == 200


def test_metrics_count_turns_of_every_process(setup):
    a, b = setup["a"], setup["b"]
    for base in (a, b):
        response = httpx.post(
            f"{base}/api/v1/chat", json={"agent": "support", "prompt": "count me"}, headers=login(base), timeout=15
        )
        assert response.status_code == 200
    text = httpx.get(f"{a}/metrics").text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("agenthub_chat_requests_total{") and 'agent="hidden"' in line and 'status="complete"' in line
    ]
    assert lines and sum(float(line.rsplit(" ", 1)[1]) for line in lines) >= 2
    # Tenants' agent slugs are not exported unless METRICS_TENANT_LABELS is on.
    assert 'agent="support"' not in text
    assert "agenthub_chat_time_to_first_token_seconds_bucket" in text
    assert "agenthub_llm_tokens_total" in text


async def test_a_flood_of_messages_runs_one_turn_and_every_other_frame_is_refused_at_once(setup):
    """500 message frames sent at once: one turn runs; every other frame is
    answered busy or rate_limited straight away, and none runs later."""
    base = setup["a"]
    auth = login(base)
    async with websockets.connect(ws_url(base, auth)) as ws:
        ready = json.loads(await ws.recv())
        conversation_id = ready["conversation_id"]
        long_turn = "tell me a story [[mock:tokens=60]] [[mock:token_delay_ms=10]]"
        await asyncio.gather(
            *(ws.send(json.dumps({"type": "message", "content": f"{long_turn} #{n}"})) for n in range(500))
        )
        frames = await receive_until(ws, "turn.finished", timeout=30)
        # Everything the flood caused has been answered; nothing more starts.
        with pytest.raises(TimeoutError):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 2))
                frames.append(frame)
    errors = [f["code"] for f in frames if f["type"] == "error"]
    assert len(errors) == 499
    assert set(errors) <= {"busy", "rate_limited"}
    assert "rate_limited" in errors
    limited = next(f for f in frames if f["type"] == "error" and f["code"] == "rate_limited")
    assert limited["details"]["retry_after_ms"] > 0
    assert [f["type"] for f in frames].count("turn.started") == 1
    assert [f["type"] for f in frames].count("turn.finished") == 1
    users = await asyncio.to_thread(
        lambda: Message.objects.filter(conversation_id=conversation_id, role="user").count()
    )
    assert users == 1
    assert httpx.get(f"{base}/health/live").status_code == 200


def test_the_api_paths_return_every_database_connection_to_the_pool(org_a, tmp_path, settings):
    """With a pool of two connections and the model routes reloaded on every
    call, a leaked connection would make the third request wait for the
    pool and fail: every call through the lean handler gives its
    connections back (the regression: routes loaded with sync_to_async)."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (CI always sets it)")
    settings.AGENTHUB_MODELS = MODELS.split(",")
    make_live_agent(org_a.organization, slug="support", model="mock-model")
    _, raw_key = api_key_create(organization=org_a.organization, name="pool", role="member", actor_role="owner")
    with serving(MockConfig(port=0, tokens=4)) as mock:
        env = subprocess_env(
            OPENAI_BASE_URL=mock.base_url,
            AGENTHUB_MODELS=MODELS,
            DATABASE_POOL_MIN_SIZE=1,
            DATABASE_POOL_MAX_SIZE=2,
            MODEL_ROUTES_REFRESH_SECONDS=0,
            LOG_LEVEL="WARNING",
        )
        with run_daphne(env=env, log_path=tmp_path / "daphne.log") as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key=raw_key, max_retries=0, timeout=10)
            auth = login(base)
            for round_number in range(6):
                started = time.monotonic()
                answer = client.chat.completions.create(model="support", messages=[{"role": "user", "content": "Hi"}])
                assert answer.choices[0].message.content
                sse = httpx.post(
                    f"{base}/api/v1/chat",
                    json={"agent": "support", "prompt": "Hi"},
                    headers={**auth, "Accept": "text/event-stream"},
                    timeout=10,
                )
                assert sse.status_code == 200, sse.text
                assert time.monotonic() - started < 2.5, f"round {round_number} waited for the pool"
    assert "PoolTimeout" not in (tmp_path / "daphne.log").read_text()


def test_a_server_writes_its_journal_by_itself(setup):
    """Nobody settles the journal here: the server's own drainer writes the
    /v1 call's rows within moments."""
    _, raw_key = api_key_create(organization=setup["org"].organization, name="drain", role="member", actor_role="owner")
    client = openai.OpenAI(base_url=f"{setup['a']}/v1", api_key=raw_key, max_retries=0)
    answer = client.chat.completions.create(model="support", messages=[{"role": "user", "content": "Written?"}])
    deadline = time.monotonic() + 10
    while not Message.objects.filter(conversation__channel="openai", role="assistant").exists():
        assert time.monotonic() < deadline, "the server did not write its journal"
        time.sleep(0.05)
    message = Message.objects.get(conversation__channel="openai", role="assistant")
    assert message.content == answer.choices[0].message.content
