import pytest
from channels.db import database_sync_to_async

from chat.runtime.context import estimate_tokens, fit_to_window
from chat.runtime.hub import get_hub
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for
from integrations.llm.types import ChatMessage


def messages(n, size=400):
    return [ChatMessage("user" if i % 2 == 0 else "assistant", f"{i} " + "x" * size) for i in range(n)]


def test_fit_keeps_system_and_current_and_drops_the_oldest():
    system = ChatMessage("system", "be brief")
    current = [ChatMessage("user", "now")]
    history = messages(40)
    fitted = fit_to_window(system, history, current, window=1200, reserve=200)
    assert fitted[0] is system
    assert fitted[-1] is current[0]
    kept = fitted[1:-1]
    assert kept == history[-len(kept) :]  # the most recent survive
    assert 0 < len(kept) < 40
    assert sum(estimate_tokens(m) for m in fitted) <= 1200 - 200


def test_fit_never_starts_with_an_orphan_tool_result():
    history = [ChatMessage("tool", "result", tool_call_id="c1"), *messages(2)]
    fitted = fit_to_window(None, history, [ChatMessage("user", "q")], window=100000, reserve=10)
    assert fitted[0].role != "tool"


@pytest.mark.django_db(transaction=True)
async def test_history_comes_back_from_the_database_when_the_cache_is_gone(org_a):
    await database_sync_to_async(make_live_agent)(org_a.organization)
    ticket = await ticket_for(org_a.users["member"], org_a.organization)
    ws, ready = await open_chat("helper", f"ticket={ticket}")
    await ws.send_json_to({"type": "message", "content": "first"})
    first = (await receive_until(ws, "turn.finished"))[-1]
    await ws.send_json_to({"type": "message", "content": "second"})
    second = (await receive_until(ws, "turn.finished"))[-1]
    # A restart, or the cache expiring: only the database is left.
    hub = get_hub()
    await hub.store.drop_conversation(ready["conversation_id"])
    await ws.send_json_to({"type": "message", "content": "third"})
    frames = await receive_until(ws, "turn.finished")
    third = frames[-1]
    assert frames[0]["seq"] == second["seq"] + 1  # numbering continues from the database
    assert third["usage"]["prompt_tokens"] > second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"]
    await ws.disconnect()
