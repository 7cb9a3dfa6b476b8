"""Tools inside a chat turn, over the real websocket consumer: what the model
is offered per role, what is refused server-side, schema validation before
anything runs, drafts and deciding them from the chat, and the operator
channel.  The model is the offline model, or the project's mock server over
HTTP when a test needs the model to call a tool it was not offered."""

import json

import pytest
from channels.db import database_sync_to_async
from django.core import mail

from chat.models import Message
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for
from integrations.llm import router
from tools.models import Draft, DraftStatus, InvocationStatus, ToolInvocation
from tools.services.catalog import tools_granted, tools_offered

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ["viewer", "member", "operator", "admin", "owner"]
GRANTS = [
    "calculator",  # viewer and above (its own minimum)
    {"tool": "current_time", "min_role": "operator"},  # the grant is stricter than the tool
    "send_email",  # member and above, approval required
    {"tool": "http_request", "min_role": "admin"},
]
OFFERED = {
    "viewer": {"calculator"},
    "member": {"calculator", "send_email"},
    "operator": {"calculator", "current_time", "send_email"},
    "admin": {"calculator", "current_time", "send_email", "http_request"},
    "owner": {"calculator", "current_time", "send_email", "http_request"},
}


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


@pytest.fixture
async def close_llm_clients():
    yield
    await router.aclose_providers()


async def connect(org, role="member", slug="helper", extra=""):
    ticket = await ticket_for(org.users[role], org.organization)
    return await open_chat(slug, f"ticket={ticket}{extra}")


def of_type(frames, event_type):
    return [f for f in frames if f["type"] == event_type]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("tool", ["calculator", "current_time", "send_email", "http_request", "not_granted_tool"])
def test_role_by_tool_matrix_of_what_the_model_is_offered(org_a, role, tool):
    agent = make_live_agent(org_a.organization, tools=GRANTS)
    granted = tools_granted(str(org_a.organization.pk), agent.live_version.tools)
    offered = tools_offered(granted, role)
    assert (tool in offered) == (tool in OFFERED[role])
    assert set(offered) == OFFERED[role]
    if tool in offered:
        assert offered[tool].requires_approval == (tool in ("send_email", "http_request"))


def executions(tool, execution, status) -> float:
    from prometheus_client import REGISTRY

    labels = {"tool": tool, "execution": execution, "status": status}
    return REGISTRY.get_sample_value("agenthub_tool_executions_total", labels) or 0.0


async def test_an_allowed_tool_runs_in_the_turn_and_its_result_streams(org_a, eager):
    before = executions("calculator", "inline", "ok")
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=GRANTS)
    ws, ready = await connect(org_a, role="member")
    await ws.send_json_to({"type": "message", "content": 'Please use calculator {"expression": "6*7"}'})
    frames = await receive_until(ws, "turn.finished")
    types = [f["type"] for f in frames]
    assert types.index("tool.started") < types.index("tool.finished") < types.index("turn.finished")
    (started,) = of_type(frames, "tool.started")
    (finished,) = of_type(frames, "tool.finished")
    assert started["tool"] == finished["tool"] == "calculator"
    assert started["execution"] == "inline"
    assert finished["status"] == "ok"
    assert json.loads(finished["result"]) == {"expression": "6*7", "result": 42}
    assert [f["seq"] for f in frames] == list(range(1, frames[-1]["seq"] + 1))
    assert frames[-1]["status"] == "complete"

    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert invocation.tool == "calculator"
    assert invocation.status == InvocationStatus.OK
    assert executions("calculator", "inline", "ok") == before + 1
    assert invocation.role == "member"
    assert str(invocation.user_id) == str(org_a.users["member"].pk)
    assert str(invocation.conversation_id) == ready["conversation_id"]
    roles = await database_sync_to_async(
        lambda: list(Message.objects.order_by("created_at").values_list("role", flat=True))
    )()
    assert roles == ["user", "assistant", "tool", "assistant"]
    await ws.disconnect()


async def test_a_tool_the_role_may_not_use_is_never_offered(org_a, eager):
    """A member names current_time (operators only): the model is not offered
    it, so no call happens and nothing is logged."""
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=GRANTS)
    ws, _ = await connect(org_a, role="member")
    await ws.send_json_to({"type": "message", "content": "What does current_time say?"})
    frames = await receive_until(ws, "turn.finished")
    assert not of_type(frames, "tool.started") and not of_type(frames, "tool.finished")
    assert await database_sync_to_async(ToolInvocation.objects.count)() == 0
    await ws.disconnect()


@pytest.mark.parametrize(
    ("tool", "reason"), [("current_time", "needs the operator role"), ("send_email_everyone", "not granted")]
)
async def test_a_model_calling_a_forbidden_tool_is_refused_server_side(
    org_a, llm_settings, eager, close_llm_clients, tool, reason
):
    await database_sync_to_async(make_live_agent)(org_a.organization, model="mock-model", tools=GRANTS)
    ws, _ = await connect(org_a, role="member")
    await ws.send_json_to({"type": "message", "content": f"[[mock:tool={tool} {{}}]] go"})
    frames = await receive_until(ws, "turn.finished")
    (finished,) = of_type(frames, "tool.finished")
    assert not of_type(frames, "tool.started")
    assert finished["status"] == "refused"
    assert "not available to you" in finished["error"]
    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert (invocation.tool, invocation.status) == (tool, InvocationStatus.REFUSED)
    assert reason.split()[-1] in invocation.error
    # The model was told: the mock answers from the tool result it was sent.
    tool_message = await database_sync_to_async(Message.objects.get)(role="tool")
    assert "not available to you" in tool_message.content
    assert await database_sync_to_async(Draft.objects.count)() == 0
    assert len(mail.outbox) == 0
    await ws.disconnect()


@pytest.mark.parametrize(
    "arguments",
    [{"expr": "1+1"}, {"expression": 12}, {"expression": "1+1", "extra": True}, {}],
)
async def test_schema_invalid_arguments_are_refused_before_anything_runs(
    org_a, llm_settings, eager, close_llm_clients, arguments
):
    await database_sync_to_async(make_live_agent)(org_a.organization, model="mock-model", tools=GRANTS)
    ws, _ = await connect(org_a, role="member")
    await ws.send_json_to({"type": "message", "content": f"[[mock:tool=calculator {json.dumps(arguments)}]] go"})
    frames = await receive_until(ws, "turn.finished")
    (finished,) = of_type(frames, "tool.finished")
    assert not of_type(frames, "tool.started")
    assert finished["status"] == "invalid"
    assert "do not match its schema" in finished["error"]
    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert invocation.status == InvocationStatus.INVALID
    assert invocation.result == ""
    await ws.disconnect()


async def test_a_tool_needing_approval_becomes_a_draft_decided_in_the_chat(org_a, eager):
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=GRANTS)
    ws, ready = await connect(org_a, role="member")
    conversation = ready["conversation_id"]
    arguments = {"to": ["ops@example.com"], "subject": "Pump 7", "body": "Please check pump 7."}
    await ws.send_json_to({"type": "message", "content": f"send_email {json.dumps(arguments)}"})
    frames = await receive_until(ws, "turn.finished")
    (created,) = of_type(frames, "draft.created")
    (finished,) = of_type(frames, "tool.finished")
    assert finished["status"] == "drafted"
    draft = created["draft"]
    assert (draft["tool"], draft["status"], draft["arguments"]) == ("send_email", "pending", arguments)
    assert len(mail.outbox) == 0  # nothing happens before a person confirms
    tool_reply = await database_sync_to_async(Message.objects.get)(role="tool")
    assert "NOT performed" in tool_reply.content

    # The member who asked may not approve (operators decide by default).
    await ws.send_json_to({"type": "draft.decide", "draft_id": draft["id"], "decision": "confirm"})
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "draft_forbidden")
    assert (await database_sync_to_async(Draft.objects.get)()).status == DraftStatus.PENDING

    # An operator opens the same conversation and confirms it.
    operator_ws, _ = await connect(org_a, role="operator", extra=f"&conversation={conversation}")
    await operator_ws.send_json_to({"type": "resume", "after": frames[-1]["seq"]})
    await operator_ws.send_json_to({"type": "draft.decide", "draft_id": draft["id"], "decision": "confirm"})
    updates = []
    while len(updates) < 2:
        frame = await operator_ws.receive_json_from(timeout=10)
        assert frame["type"] == "draft.updated", frame
        updates.append(frame)
    assert [u["draft"]["status"] for u in updates] == ["confirmed", "executed"]
    assert updates[1]["seq"] == updates[0]["seq"] + 1 == frames[-1]["seq"] + 2
    # The member's socket got the same updates.
    member_updates = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    assert [u["seq"] for u in member_updates] == [u["seq"] for u in updates]

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<{draft['id']}@agenthub>"
    stored = await database_sync_to_async(Draft.objects.get)()
    assert stored.status == DraftStatus.EXECUTED
    assert stored.decided_by_id == org_a.users["operator"].pk
    note = await database_sync_to_async(Message.objects.get)(role="system")
    assert "executed" in note.content and draft["id"] in note.content
    invocations = await database_sync_to_async(
        lambda: list(ToolInvocation.objects.order_by("created_at").values_list("status", "draft_id"))
    )()
    assert invocations == [(InvocationStatus.DRAFTED, stored.pk), (InvocationStatus.OK, stored.pk)]

    # Deciding again is a conflict, not a second email.
    await operator_ws.send_json_to({"type": "draft.decide", "draft_id": draft["id"], "decision": "confirm"})
    again = await operator_ws.receive_json_from(timeout=5)
    assert (again["type"], again["code"]) == ("error", "draft_not_pending")
    assert len(mail.outbox) == 1
    await ws.disconnect()
    await operator_ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "draft.decide"}, "invalid_frame"),
        ({"type": "draft.decide", "draft_id": "x", "decision": "maybe"}, "invalid_frame"),
        ({"type": "draft.decide", "draft_id": "x", "decision": "confirm", "arguments": [1]}, "invalid_frame"),
        ({"type": "draft.decide", "draft_id": "not-a-uuid", "decision": "confirm"}, "draft_not_found"),
        (
            {"type": "draft.decide", "draft_id": "00000000-0000-0000-0000-000000000000", "decision": "reject"},
            "draft_not_found",
        ),
    ],
)
async def test_malformed_draft_decisions_get_error_frames(org_a, frame, code):
    await database_sync_to_async(make_live_agent)(org_a.organization, tools=GRANTS)
    ws, _ = await connect(org_a, role="operator")
    await ws.send_json_to(frame)
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", code)
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    await ws.disconnect()


async def test_operators_get_drafts_live_on_the_operator_channel(org_a, org_b, eager):
    from channels.testing import WebsocketCommunicator

    from agenthub.asgi import application

    async def operator_channel(org, role):
        ticket = await ticket_for(org.users[role], org.organization)
        communicator = WebsocketCommunicator(
            application, f"/ws/v1/operator/?ticket={ticket}", headers=[(b"origin", b"http://localhost")]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        return communicator, await communicator.receive_json_from(timeout=5)

    member_channel, refused = await operator_channel(org_a, "member")
    assert (refused["type"], refused["code"]) == ("error", "permission_denied")
    await member_channel.disconnect()

    await database_sync_to_async(make_live_agent)(org_a.organization, tools=GRANTS)
    operator, snapshot = await operator_channel(org_a, "operator")
    other_org, other_snapshot = await operator_channel(org_b, "operator")
    assert other_snapshot == {"type": "drafts.pending", "drafts": []}
    assert snapshot == {"type": "drafts.pending", "drafts": []}
    ws, _ = await connect(org_a, role="member")
    await ws.send_json_to(
        {"type": "message", "content": 'send_email {"to": ["a@example.com"], "subject": "Hi", "body": "Hello"}'}
    )
    await receive_until(ws, "turn.finished")
    created = await operator.receive_json_from(timeout=5)
    assert created["type"] == "draft.created"
    assert created["draft"]["tool"] == "send_email"
    assert await other_org.receive_nothing(timeout=0.3)  # another organization hears nothing

    await ws.send_json_to({"type": "ping"})
    await ws.receive_json_from(timeout=5)
    from accounts.callers import Caller
    from tools.services.drafts import draft_reject

    caller = Caller(organization_id=str(org_a.organization.pk), role="admin", user_id=str(org_a.users["admin"].pk))
    await database_sync_to_async(draft_reject)(caller=caller, draft_id=created["draft"]["id"], note="not now")
    updated = await operator.receive_json_from(timeout=5)
    assert (updated["type"], updated["draft"]["status"]) == ("draft.updated", "rejected")
    assert updated["draft"]["decision_note"] == "not now"
    assert len(mail.outbox) == 0
    for communicator in (ws, operator, other_org):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
def test_rest_chat_reports_tool_calls_and_drafts(org_a, settings):
    """POST /api/v1/chat answers with what each tool call came to and the
    drafts the turn created (the first seed's shape)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    make_live_agent(org_a.organization, tools=GRANTS)
    client = org_a.client("member")
    ran = client.post("/api/v1/chat", {"agent": "helper", "prompt": 'calculator {"expression": "2+3"}'}, format="json")
    assert ran.status_code == 200, ran.content
    (call,) = ran.json()["tool_calls"]
    assert (call["tool"], call["status"], call["arguments"]) == ("calculator", "ok", {"expression": "2+3"})
    assert ran.json()["drafts"] == []

    email = {"to": ["ops@example.com"], "subject": "Hi", "body": "Hello"}
    drafted = client.post(
        "/api/v1/chat",
        {"agent": "helper", "prompt": f"send_email {json.dumps(email)}", "session_id": ran.json()["session_id"]},
        format="json",
    )
    assert drafted.status_code == 200, drafted.content
    body = drafted.json()
    (call,) = body["tool_calls"]
    (draft,) = body["drafts"]
    assert (call["status"], call["draft_id"]) == ("drafted", draft["id"])
    assert (draft["tool"], draft["status"], draft["arguments"]) == ("send_email", "pending", email)
    assert Draft.objects.get().pk.hex == draft["id"].replace("-", "")
    assert len(mail.outbox) == 0


def test_the_openai_api_runs_tools_and_makes_drafts_in_its_conversation(org_a, settings):
    """A /v1 call's conversation is written before a turn with tools starts
    (its tool calls and drafts point at it), and its answer after."""
    from agenthub.testing import journal_settle_sync
    from chat.models import Conversation

    settings.CELERY_TASK_ALWAYS_EAGER = True
    make_live_agent(org_a.organization, tools=GRANTS)
    client = org_a.client("member")
    ran = client.post(
        "/v1/chat/completions",
        {"model": "helper", "messages": [{"role": "user", "content": 'calculator {"expression": "2+3"}'}]},
        format="json",
    )
    assert ran.status_code == 200, ran.content
    email = {"to": ["ops@example.com"], "subject": "Hi", "body": "Hello"}
    drafted = client.post(
        "/v1/chat/completions",
        {"model": "helper", "messages": [{"role": "user", "content": f"send_email {json.dumps(email)}"}]},
        format="json",
    )
    assert drafted.status_code == 200, drafted.content
    journal_settle_sync()
    calculator = ToolInvocation.objects.get(tool="calculator")
    assert calculator.status == InvocationStatus.OK
    draft = Draft.objects.get()
    assert (draft.tool, draft.status) == ("send_email", DraftStatus.PENDING)
    conversations = Conversation.objects.filter(channel="openai")
    assert {str(c.pk) for c in conversations} == {str(calculator.conversation_id), str(draft.conversation_id)}
    for conversation in conversations:
        roles = list(conversation.messages.order_by("created_at").values_list("role", flat=True))
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert conversation.last_seq > 0
    assert len(mail.outbox) == 0
