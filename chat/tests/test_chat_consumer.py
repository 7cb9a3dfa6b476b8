import asyncio

import pytest
from channels.db import database_sync_to_async

from agents.models import Agent
from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent(org_a):
    return make_live_agent(org_a.organization)


async def connect(org, role="member", slug="helper", extra=""):
    ticket = await ticket_for(org.users[role], org.organization)
    return await open_chat(slug, f"ticket={ticket}{extra}")


def seqs(frames):
    return [f["seq"] for f in frames]


async def test_a_turn_streams_numbered_events_and_is_persisted(org_a, agent):
    ws, ready = await connect(org_a)
    assert ready["type"] == "conversation.ready"
    assert ready["created"] is True
    conversation_id = ready["conversation_id"]

    await ws.send_json_to({"type": "message", "content": "Hello there, how do refunds work?", "client_msg_id": "m1"})
    frames = await receive_until(ws, "turn.finished")
    types = [f["type"] for f in frames]
    assert types[0] == "turn.started"
    assert types[-1] == "turn.finished"
    assert set(types[1:-1]) == {"token"}
    assert seqs(frames) == list(range(1, len(frames) + 1))
    assert all(f["conversation_id"] == conversation_id for f in frames)
    finished = frames[-1]
    assert finished["status"] == "complete"
    assert finished["usage"]["completion_tokens"] == len(types) - 2
    answer = "".join(f["delta"] for f in frames if f["type"] == "token")

    messages = await database_sync_to_async(
        lambda: list(Message.objects.filter(conversation_id=conversation_id).values_list("role", "content", "status"))
    )()
    assert messages == [("user", "Hello there, how do refunds work?", "complete"), ("assistant", answer, "complete")]
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.last_seq == frames[-1]["seq"]
    assert conversation.channel == "websocket"
    await ws.disconnect()


async def test_a_second_turn_continues_the_numbering_and_sees_history(org_a, agent):
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "first question"})
    first = await receive_until(ws, "turn.finished")
    await ws.send_json_to({"type": "message", "content": "second question"})
    second = await receive_until(ws, "turn.finished")
    assert second[0]["seq"] == first[-1]["seq"] + 1
    assert second[-1]["usage"]["prompt_tokens"] > first[-1]["usage"]["prompt_tokens"]
    await ws.disconnect()


async def test_second_message_during_a_turn_is_busy(org_a, agent, settings):
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 20  # a turn of about a second
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "one"})
    await ws.send_json_to({"type": "message", "content": "two"})
    frames = await receive_until(ws, "turn.finished")
    errors = [f for f in frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["busy"]
    count = await database_sync_to_async(Message.objects.filter(role="user").count)()
    assert count == 1
    # Usable afterwards.
    await ws.send_json_to({"type": "message", "content": "two again"})
    assert (await receive_until(ws, "turn.finished"))[-1]["status"] == "complete"
    await ws.disconnect()


async def test_resent_message_never_runs_twice(org_a, agent):
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "hello", "client_msg_id": "same"})
    await receive_until(ws, "turn.finished")
    await ws.send_json_to({"type": "message", "content": "hello", "client_msg_id": "same"})
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == "duplicate_message"
    assert error["details"]["reply_status"] == "complete"
    assert await database_sync_to_async(Message.objects.count)() == 2
    await ws.disconnect()


async def test_cancel_stops_the_turn_and_keeps_the_partial_answer(org_a, agent, settings):
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 30
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "tell me a long story"})
    await receive_until(ws, "token")
    await ws.send_json_to({"type": "cancel"})
    frames = await receive_until(ws, "turn.finished")
    assert frames[-1]["status"] == "cancelled"
    partial = await database_sync_to_async(lambda: Message.objects.get(role="assistant"))()
    assert partial.status == "cancelled"
    assert partial.content
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[" * 1000 + "]" * 1000, "invalid_json"),
        ('{"type": "message", "content": "hi", "x": ' + "[" * 100 + "]" * 100 + "}", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"no": "type"}', "invalid_frame"),
        ('{"type": "dance"}', "unknown_frame_type"),
        ('{"type": "message", "content": ""}', "empty_prompt"),
        ('{"type": "message", "content": 42}', "invalid_prompt"),
        ('{"type": "message", "content": "hi", "client_msg_id": 7}', "invalid_client_msg_id"),
        ('{"type": "resume", "after": -1}', "invalid_frame"),
        ('{"type": "resume", "after": "x"}', "invalid_frame"),
        ('{"type": "draft.decide", "draft_id": "x", "decision": "confirm"}', "draft_not_found"),
    ],
)
async def test_malformed_frames_get_an_error_frame_and_the_socket_stays_usable(org_a, agent, frame, code):
    ws, _ = await connect(org_a)
    await ws.send_to(text_data=frame)
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", code)
    assert error["message"]
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    await ws.disconnect()


async def test_oversized_prompt_is_refused(org_a, agent, settings):
    settings.CHAT_MAX_PROMPT_CHARS = 50
    ws, _ = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "x" * 51})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "prompt_too_long"
    assert error["details"] == {"limit_chars": 50}
    assert await database_sync_to_async(Message.objects.count)() == 0
    await ws.disconnect()


async def test_binary_frame_is_refused(org_a, agent):
    ws, _ = await connect(org_a)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=5))["code"] == "invalid_frame"
    await ws.disconnect()


async def test_without_ticket_the_socket_is_refused(agent):
    ws, first = await open_chat("helper", "")
    assert (first["type"], first["code"]) == ("error", "not_authenticated")
    assert (await ws.receive_output(timeout=5))["code"] == 4401


async def test_unknown_and_disabled_agents(org_a, agent):
    ws, first = await connect(org_a, slug="nobody")
    assert first["code"] == "agent_not_found"
    assert (await ws.receive_output(timeout=5))["code"] == 4404

    await database_sync_to_async(Agent.objects.filter(pk=agent.pk).update)(status="disabled")
    from chat.services.agents import agent_cache_clear

    agent_cache_clear()
    ws, first = await connect(org_a)
    assert first["code"] == "agent_unavailable"
    assert (await ws.receive_output(timeout=5))["code"] == 4409


async def test_viewers_cannot_chat(org_a, agent):
    _, ready = await connect(org_a, role="viewer")
    assert (ready["type"], ready["code"]) == ("error", "permission_denied")


async def test_another_organizations_conversation_is_not_found(org_a, org_b, agent):
    make_b = database_sync_to_async(make_live_agent)
    await make_b(org_b.organization)
    ws_b, ready_b = await connect(org_b)
    await ws_b.disconnect()
    _, first = await connect(org_a, extra=f"&conversation={ready_b['conversation_id']}")
    assert first["code"] == "session_not_found"
    _, first = await connect(org_a, extra="&conversation=not-a-uuid")
    assert first["code"] == "session_not_found"


async def test_members_cannot_attach_to_each_others_conversations_operators_can(org_a, agent):
    ws, ready = await connect(org_a, role="member")
    await ws.disconnect()
    query = f"&conversation={ready['conversation_id']}"
    _, other = await connect(org_a, role="admin", extra=query)
    assert other["type"] == "conversation.ready"
    from accounts.tests.factories import MembershipFactory, UserFactory

    peer = await database_sync_to_async(UserFactory)(username="peer")
    await database_sync_to_async(MembershipFactory)(organization=org_a.organization, user=peer, role="member")
    org_a.users["peer"] = peer
    _, refused = await connect(org_a, role="peer", extra=query)
    assert refused["code"] == "session_not_found"


async def test_reconnect_and_resume_gets_exactly_the_missed_events(org_a, agent, settings):
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 20
    ws, ready = await connect(org_a)
    conversation_id = ready["conversation_id"]
    await ws.send_json_to({"type": "message", "content": "stream a while please"})
    seen = [await ws.receive_json_from(timeout=5) for _ in range(4)]
    await ws.disconnect()  # the turn goes on

    await asyncio.sleep(0.1)
    ws2, ready2 = await connect(org_a, extra=f"&conversation={conversation_id}")
    assert ready2["created"] is False
    await ws2.send_json_to({"type": "resume", "after": seen[-1]["seq"]})
    rest = await receive_until(ws2, "turn.finished")
    assert seqs(seen + rest) == list(range(1, rest[-1]["seq"] + 1))
    answer = "".join(f["delta"] for f in seen + rest if f["type"] == "token")
    stored = await database_sync_to_async(lambda: Message.objects.get(role="assistant").content)()
    assert answer == stored
    await ws2.disconnect()


async def test_resume_after_the_turn_finished_replays_the_tail(org_a, agent):
    ws, ready = await connect(org_a)
    await ws.send_json_to({"type": "message", "content": "short"})
    frames = await receive_until(ws, "turn.finished")
    await ws.disconnect()
    ws2, _ = await connect(org_a, extra=f"&conversation={ready['conversation_id']}&after=2")
    replayed = await receive_until(ws2, "turn.finished")
    assert replayed == frames[2:]
    await ws2.disconnect()
