"""Chat traffic limits: frames and messages per connection, messages per
user across connections (Redis, shared by processes), concurrent turns per
user on every surface, and a message during a turn refused at once."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from agenthub import ratelimit
from chat.models import Message
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent(org_a):
    return make_live_agent(org_a.organization)


async def connect(org, role="member"):
    ticket = await ticket_for(org.users[role], org.organization)
    return await open_chat("helper", f"ticket={ticket}")


async def test_frames_beyond_the_connections_rate_get_rate_limited(org_a, agent, settings):
    settings.WS_FRAMES_PER_SECOND = 0.5
    settings.WS_FRAME_BURST = 3
    ws, _ = await connect(org_a)
    for _ in range(10):
        await ws.send_json_to({"type": "ping"})
    answers = [await ws.receive_json_from(timeout=5) for _ in range(10)]
    assert [a["type"] for a in answers[:3]] == ["pong"] * 3
    assert {(a["type"], a["code"]) for a in answers[3:]} == {("error", "rate_limited")}
    assert answers[3]["details"]["scope"] == "connection_frames"
    assert answers[3]["details"]["retry_after_ms"] > 1000
    await ws.disconnect()


async def test_messages_per_connection(org_a, agent, settings):
    settings.WS_MESSAGES_PER_MINUTE_PER_CONNECTION = 1
    settings.WS_MESSAGE_BURST_PER_CONNECTION = 1
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "first"})
    assert (await receive_until(ws, "turn.finished"))[-1]["status"] == "complete"
    await ws.send_json_to({"type": "message", "content": "second"})
    refused = await ws.receive_json_from(timeout=5)
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")
    assert refused["details"]["scope"] == "connection_messages"
    assert 50_000 < refused["details"]["retry_after_ms"] <= 60_000
    count = await database_sync_to_async(Message.objects.filter(role="user").count)()
    assert count == 1
    # Another connection of the same user has its own bucket.
    other, _ = await connect(org_a)
    await other.send_json_to({"type": "message", "content": "from elsewhere"})
    assert (await receive_until(other, "turn.finished"))[-1]["status"] == "complete"
    await ws.disconnect()
    await other.disconnect()


async def test_messages_per_user_are_counted_across_connections(org_a, agent, settings):
    settings.CHAT_MESSAGES_PER_MINUTE_PER_USER = 1
    settings.CHAT_MESSAGE_BURST_PER_USER = 2
    first, _ = await connect(org_a)
    second, _ = await connect(org_a)
    for ws in (first, second):
        await ws.send_json_to({"type": "message", "content": "hello"})
        assert (await receive_until(ws, "turn.finished"))[-1]["status"] == "complete"
    await second.send_json_to({"type": "message", "content": "one more"})
    refused = await second.receive_json_from(timeout=5)
    assert (refused["code"], refused["details"]["scope"]) == ("rate_limited", "user")
    # Another user is not affected.
    third, _ = await connect(org_a, role="operator")
    await third.send_json_to({"type": "message", "content": "hello"})
    assert (await receive_until(third, "turn.finished"))[-1]["status"] == "complete"
    for ws in (first, second, third):
        await ws.disconnect()


async def test_concurrent_turns_per_user_across_connections_and_surfaces(org_a, agent, settings):
    from conftest import jwt_client

    settings.CHAT_MAX_CONCURRENT_TURNS_PER_USER = 1
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 30  # a turn of a second or two
    first, _ = await connect(org_a)
    second, _ = await connect(org_a)
    await first.send_json_to({"type": "message", "content": "a long one"})
    assert (await first.receive_json_from(timeout=5))["type"] == "turn.started"
    await second.send_json_to({"type": "message", "content": "and another"})
    refused = await second.receive_json_from(timeout=5)
    assert (refused["type"], refused["code"]) == ("error", "too_many_turns")
    assert refused["details"]["limit"] == 1
    # The REST surface shares the cap.
    client = await database_sync_to_async(jwt_client)(org_a.users["member"])
    response = await database_sync_to_async(client.post)(
        "/api/v1/chat", {"agent": "helper", "prompt": "via REST"}, format="json"
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_turns"
    assert response["Retry-After"] == "1"
    await receive_until(first, "turn.finished")
    # The slot is free once the turn ended.
    await second.send_json_to({"type": "message", "content": "and another"})
    assert (await receive_until(second, "turn.finished"))[-1]["status"] == "complete"
    users = await database_sync_to_async(Message.objects.filter(role="user").count)()
    assert users == 2
    await first.disconnect()
    await second.disconnect()


async def test_a_message_during_a_turn_is_busy_at_once_and_never_runs_later(org_a, agent, settings):
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 20
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "one"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "turn.started"
    for n in range(4):
        await ws.send_json_to({"type": "message", "content": f"extra {n}"})
    frames = await receive_until(ws, "turn.finished")
    errors = [f["code"] for f in frames if f["type"] == "error"]
    assert errors == ["busy"] * 4
    # The busy answers came before the turn's end, not after it.
    first_busy = next(i for i, f in enumerate(frames) if f["type"] == "error")
    assert first_busy < len(frames) - 5
    await asyncio.sleep(0.5)
    assert await database_sync_to_async(Message.objects.filter(role="user").count)() == 1
    await ws.disconnect()


async def test_operator_channel_frames_are_limited(org_a, settings):
    from channels.testing import WebsocketCommunicator

    from agenthub.asgi import application

    settings.WS_FRAMES_PER_SECOND = 0.5
    settings.WS_FRAME_BURST = 2
    ticket = await ticket_for(org_a.users["operator"], org_a.organization)
    ws = WebsocketCommunicator(
        application, f"/ws/v1/operator/?ticket={ticket}", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await ws.connect(timeout=5)
    assert connected
    assert (await ws.receive_json_from(timeout=5))["type"] == "drafts.pending"
    for _ in range(6):
        await ws.send_json_to({"type": "ping"})
    answers = [(await ws.receive_json_from(timeout=5)) for _ in range(6)]
    assert [a["type"] for a in answers] == ["pong", "pong", "error", "error", "error", "error"]
    assert answers[2]["code"] == "rate_limited"
    await ws.disconnect()


async def test_buckets_and_slots_are_shared_through_redis(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the shared buckets live in Redis")
    bucket = ratelimit.Bucket("test:shared:bucket", rate=0.01, burst=2)
    # Two "processes" (calls that share nothing but Redis) draw from one bucket.
    assert await ratelimit.take(bucket) == 0
    assert await ratelimit.take(bucket) == 0
    assert await ratelimit.take(bucket) > 90
    assert await ratelimit.slot_acquire("test:slots", "t1", limit=1, ttl=30)
    assert not await ratelimit.slot_acquire("test:slots", "t2", limit=1, ttl=30)
    await ratelimit.slot_release("test:slots", "t1")
    assert await ratelimit.slot_acquire("test:slots", "t2", limit=1, ttl=1)
    await asyncio.sleep(1.2)  # a holder that never releases (a crashed process) lapses
    assert await ratelimit.slot_acquire("test:slots", "t3", limit=1, ttl=30)
    await ratelimit.slot_release("test:slots", "t3")
    # admit: a token and a slot together, or neither.
    empty = ratelimit.Bucket("test:shared:bucket", rate=0.01, burst=2)
    refused = await ratelimit.admit((empty,), "test:admit", "h1", limit=1, ttl=30)
    assert (refused.ok, refused.wait > 90) == (False, True)
    assert await ratelimit.slot_acquire("test:admit", "probe", limit=1, ttl=30)  # the slot was not taken
    await ratelimit.slot_release("test:admit", "probe")
    fresh = ratelimit.Bucket("test:admit:bucket", rate=1, burst=1)
    assert (await ratelimit.admit((fresh,), "test:admit", "h1", limit=1, ttl=30)).ok
    full = await ratelimit.admit((), "test:admit", "h2", limit=1, ttl=30)
    assert (full.ok, full.full) == (False, True)
    await ratelimit.slot_release("test:admit", "h1")
    from agenthub.redis import get_redis

    await get_redis().delete("agenthub:rl:test:shared:bucket", "agenthub:rl:test:admit:bucket")


def test_local_bucket_refills(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    bucket = ratelimit.LocalBucket(rate=2, burst=2)
    assert (bucket.take(), bucket.take()) == (0, 0)
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take() == 0
