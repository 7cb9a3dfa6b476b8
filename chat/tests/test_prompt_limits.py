"""The whole prompt a request sends must fit the agent's model (context
window, less the answer's reserve and the system prompt), on every chat
path: /v1/chat/completions, POST /api/v1/chat and the websocket.  A refusal
stores nothing."""

import pytest
from channels.db import database_sync_to_async

from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent, open_chat, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mock_agent(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192", "mock-model:128000"]
    return make_live_agent(org_a.organization, slug="support", model="mock-model", max_output_tokens=1000)


def _stored():
    return Conversation.objects.count(), Message.objects.count()


def test_openai_messages_over_the_window_are_400_and_nothing_runs(org_a, mock_agent):
    # The attack: 33 messages of 30,000 characters (990 KB, under the body limit).
    messages = [{"role": "user", "content": "x" * 30_000} for _ in range(33)]
    response = org_a.client("member").post(
        "/v1/chat/completions", {"model": "support", "messages": messages}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("The messages total 990000 characters (about 247632 tokens);")
    assert "the model mock-model accepts at most 128000 tokens" in error["message"]
    assert error["details"]["param"] == "messages"
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages")
    assert error["details"]["estimated_tokens"] == 33 * (30_000 // 4 + 4)
    system_tokens = len("You are helpful.") // 4 + 4
    assert error["details"]["limit_tokens"] == 128_000 - 1000 - system_tokens
    assert _stored() == (0, 0)


def test_openai_messages_that_fit_run(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192"]
    make_live_agent(org_a.organization, slug="support", model="offline", max_output_tokens=1000)
    messages = [
        {"role": "user", "content": "a" * 9000},
        {"role": "assistant", "content": "b" * 9000},
        {"role": "user", "content": "What are your hours?"},
    ]
    response = org_a.client("member").post(
        "/v1/chat/completions", {"model": "support", "messages": messages}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"]


def test_the_check_allows_exactly_the_window(settings):
    from agenthub.errors import ApplicationError
    from chat.runtime.context import AgentSnapshot, check_prompt_fits
    from integrations.llm.types import ChatMessage

    settings.AGENTHUB_MODELS = ["tiny:100"]
    agent = AgentSnapshot("o", "a", "s", "S", "v", 1, "", "tiny", (), 0.0, 20, 1)
    # 80 tokens are left: two messages of (152 // 4 + 4) = 42 tokens are 84; 144 characters make 40.
    check_prompt_fits(agent, [ChatMessage("user", "x" * 144), ChatMessage("user", "x" * 144)])
    with pytest.raises(ApplicationError) as refused:
        check_prompt_fits(agent, [ChatMessage("user", "x" * 144), ChatMessage("user", "x" * 148)])
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.details["limit_tokens"] == 80


def test_openai_message_count_is_capped(org_a, mock_agent, settings):
    settings.CHAT_MAX_MESSAGES = 10
    messages = [{"role": "user", "content": "hi"} for _ in range(11)]
    response = org_a.client("member").post(
        "/v1/chat/completions", {"model": "support", "messages": messages}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "too_many_messages")
    assert response.json()["error"]["message"] == (
        "The request has 11 messages; at most 10 are accepted. Send fewer messages."
    )
    assert _stored() == (0, 0)


def test_openai_last_message_over_the_prompt_limit_opens_nothing(org_a, mock_agent, settings):
    settings.CHAT_MAX_PROMPT_CHARS = 100
    response = org_a.client("member").post(
        "/v1/chat/completions",
        {"model": "support", "messages": [{"role": "user", "content": "y" * 101}]},
        format="json",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "prompt_too_long")
    assert _stored() == (0, 0)


def test_rest_chat_prompt_over_the_window_is_400_and_opens_nothing(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192"]
    make_live_agent(org_a.organization, slug="small", model="offline", max_output_tokens=4096)
    # 30,000 characters: under CHAT_MAX_PROMPT_CHARS (32,000), over 8192 - 4096 tokens.
    response = org_a.client("member").post("/api/v1/chat", {"agent": "small", "prompt": "z" * 30_000}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("The message is 30000 characters (about 7504 tokens); the model offline")
    assert _stored() == (0, 0)


async def test_websocket_prompt_over_the_window_is_refused(org_a, settings):
    settings.AGENTHUB_MODELS = ["offline:8192"]
    await database_sync_to_async(make_live_agent)(
        org_a.organization, slug="small", model="offline", max_output_tokens=4096
    )
    ticket = await ticket_for(org_a.users["member"], org_a.organization)
    ws, ready = await open_chat("small", f"ticket={ticket}")
    assert ready["type"] == "conversation.ready"
    await ws.send_json_to({"type": "message", "content": "z" * 30_000})
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "context_length_exceeded")
    assert error["details"]["estimated_tokens"] == 7504
    assert await database_sync_to_async(Message.objects.count)() == 0
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    await ws.disconnect()


def test_the_openai_client_sees_the_refusal_as_openai_would(org_a, mock_agent):
    import openai

    from accounts.services import api_key_create
    from agenthub.testing import run_daphne, subprocess_env

    _, raw = api_key_create(organization=org_a.organization, name="sdk", actor_role="owner")
    messages = [{"role": "user", "content": "x" * 30_000} for _ in range(33)]
    env = subprocess_env(AGENTHUB_MODELS="offline:8192,mock-model:128000")
    with run_daphne(env=env) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=raw, max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="support", messages=messages)
    assert (refused.value.code, refused.value.param, refused.value.type) == (
        "context_length_exceeded",
        "messages",
        "invalid_request_error",
    )
    assert "the model mock-model accepts at most 128000 tokens" in refused.value.message
    assert _stored() == (0, 0)
