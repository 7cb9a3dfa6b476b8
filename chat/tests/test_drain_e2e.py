"""Graceful shutdown with two real server processes: SIGTERM drains one
(its running turn finishes, new work goes elsewhere), and a websocket client
keeps its conversation across the restart with no lost or repeated token."""

import asyncio
import json
import os
import signal

import httpx
import pytest
import websockets
from django.conf import settings

from agenthub.testing import run_daphne, subprocess_env
from chat.models import Message
from chat.tests.helpers import make_live_agent
from chat.tests.test_chat_e2e import login, receive_until, ws_url
from integrations.llm.testing.mock_server import MockConfig, serving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKENS = 40


@pytest.fixture
def servers(org_a, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the two server processes share conversations through Redis")
    make_live_agent(org_a.organization, slug="support", model="mock-model")
    # 40 tokens, 40 ms apart: a turn streams for about 1.6 s.
    with serving(MockConfig(port=0, tokens=TOKENS, token_delay_ms=40)) as mock:
        env = subprocess_env(
            OPENAI_BASE_URL=mock.base_url,
            OPENAI_API_KEY="mock-key",
            AGENTHUB_MODELS="mock-model:8192",
            DRAIN_TIMEOUT_SECONDS=20,
            LOG_LEVEL="WARNING",
        )
        with (
            run_daphne(env=env, log_path=tmp_path / "a.log") as a,
            run_daphne(env=env, log_path=tmp_path / "b.log") as b,
        ):
            yield {"a": a, "b": b, "logs": tmp_path}


async def test_sigterm_drains_and_the_client_continues_on_the_other_server(servers):
    a, b = servers["a"], servers["b"]
    auth_a, auth_b = login(a), login(b)
    seqs, tokens = [], []

    def take(frame):
        if "seq" in frame and frame["type"] != "conversation.ready":
            seqs.append(frame["seq"])
        if frame["type"] == "token":
            tokens.append(frame["delta"])

    ws = await websockets.connect(ws_url(a, auth_a))
    ready = json.loads(await ws.recv())
    conversation = ready["conversation_id"]
    await ws.send(json.dumps({"type": "message", "content": "tell me everything"}))
    while len(tokens) < 5:
        take(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    os.kill(a.process.pid, signal.SIGTERM)  # mid-answer
    before_term = len(tokens)
    await asyncio.sleep(0.2)

    # Draining: unready, no new turns, no new sockets; the running turn goes on.
    ready_a = await asyncio.to_thread(httpx.get, f"{a}/health/ready")
    assert ready_a.status_code == 503 and ready_a.json()["status"] == "draining"
    refused = await asyncio.to_thread(
        httpx.post, f"{a}/api/v1/chat", json={"agent": "support", "prompt": "hi"}, headers=auth_a, timeout=10
    )
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_draining"
    assert refused.headers["Retry-After"] == "1"
    async with websockets.connect(ws_url(a, auth_a)) as late:
        frame = json.loads(await late.recv())
        assert frame["type"] == "error" and frame["code"] == "server_draining"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(late.recv(), 5)
        assert closed.value.rcvd.code == 4503

    # The turn finishes on A, then A tells the client to reconnect (4503).
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            take(json.loads(await asyncio.wait_for(ws.recv(), 15)))
    assert closed.value.rcvd.code == 4503
    assert len(tokens) == TOKENS and len(tokens) > before_term
    assert await asyncio.to_thread(a.process.wait, 30) == 0

    # The client resumes on B from the last event it holds: nothing missing, nothing twice.
    query = f"&conversation={conversation}&after={seqs[-1]}"
    async with websockets.connect(ws_url(b, auth_b, query=query)) as ws_b:
        resumed = json.loads(await ws_b.recv())
        assert resumed["type"] == "conversation.ready" and resumed["conversation_id"] == conversation
        assert resumed["last_seq"] == seqs[-1] and resumed["turn_running"] is False
        await ws_b.send(json.dumps({"type": "message", "content": "and then?"}))
        for frame in await receive_until(ws_b, "turn.finished"):
            take(frame)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every event once, in order
    answers = await asyncio.to_thread(
        lambda: list(
            Message.objects.filter(conversation_id=conversation, role="assistant")
            .order_by("created_at")
            .values_list("content", "status")
        )
    )
    assert answers[0] == ("".join(tokens[:TOKENS]), "complete")
    assert answers[1][1] == "complete" and "".join(tokens[TOKENS:]) == answers[1][0]
