"""The agent loop is handed its collaborators (chat.runtime.ports): a tool
session, and billing's slots, a gate asked before every model call and a
meter told the usage of every model call."""

import json
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async

from accounts.callers import Caller
from agenthub.errors import ApplicationError
from billing.calls import ModelCall, ModelUsage
from chat.models import Channel, Message, MessageStatus
from chat.runtime.ports import TurnPorts
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_open
from chat.services.turns import turn_start
from chat.tests.helpers import make_live_agent
from tools.services.calls import tool_session_open

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class RecordingMeter:
    calls: list[tuple[ModelCall, ModelUsage]] = field(default_factory=list)

    async def record(self, call, usage, reservation):
        self.calls.append((call, usage))
        return None


@dataclass
class Gate:
    refuse_from_round: int | None = None
    asked: list[ModelCall] = field(default_factory=list)

    async def check(self, call):
        self.asked.append(call)
        if self.refuse_from_round is not None and call.round >= self.refuse_from_round:
            raise ApplicationError("The monthly budget of this agent is spent.", code="budget_exceeded")


async def _run(org, agent, prompt, ports):
    caller = Caller.from_member(organization_id=org.organization.pk, role="member", user_id=org.users["member"].pk)
    snapshot = await chat_agent_resolve(organization_id=caller.organization_id, slug=agent.slug)
    info = await conversation_open(caller=caller, agent=snapshot, conversation_id=None, channel=Channel.REST)
    handle = await turn_start(
        caller=caller, agent=snapshot, conversation_id=info.id, content=prompt, channel=Channel.REST, ports=ports
    )
    return await handle.task


async def test_the_meter_is_told_every_model_call_with_its_usage(org_a):
    agent = await database_sync_to_async(make_live_agent)(org_a.organization, slug="metered", tools=["calculator"])
    meter, gate = RecordingMeter(), Gate()
    outcome = await _run(
        org_a,
        agent,
        'calculator({"expression": "2+3"})',
        TurnPorts(open_tools=tool_session_open, gate=gate, meter=meter),
    )

    assert outcome.status == MessageStatus.COMPLETE
    # One round asked for the tool, the second answered: two model calls,
    # each asked of the gate first and metered after.
    assert [call.round for call in gate.asked] == [0, 1]
    assert [call.round for call, _ in meter.calls] == [0, 1]
    call, first_usage = meter.calls[0]
    assert (call.agent_id, call.organization_id, call.channel) == (str(agent.pk), str(org_a.organization.pk), "rest")
    assert call.caller.user_id == str(org_a.users["member"].pk)
    assert first_usage.model == "offline" and first_usage.latency_ms >= 0
    assert all(usage.status == "ok" and usage.prompt_tokens > 0 for _, usage in meter.calls)
    assert sum(u.completion_tokens for _, u in meter.calls) == outcome.completion_tokens
    assert sum(u.prompt_tokens for _, u in meter.calls) == outcome.prompt_tokens


async def test_a_gate_that_refuses_stops_the_turn_before_the_model_call(org_a):
    agent = await database_sync_to_async(make_live_agent)(org_a.organization, slug="gated")
    meter = RecordingMeter()
    outcome = await _run(
        org_a, agent, "hello", TurnPorts(open_tools=tool_session_open, gate=Gate(refuse_from_round=0), meter=meter)
    )

    assert outcome.status == MessageStatus.ERROR
    assert outcome.error["code"] == "budget_exceeded"
    assert meter.calls == []  # the model was never called
    stored = await database_sync_to_async(
        lambda: list(Message.objects.filter(role="assistant").values_list("status", "error"))
    )()
    assert stored == [("error", outcome.error)]


async def test_the_tool_session_is_whatever_the_turn_is_handed(org_a):
    """A turn reaches tools only through its port: a session that offers
    one fake tool is what the model is offered and what runs."""
    agent = await database_sync_to_async(make_live_agent)(org_a.organization, slug="ported")
    ran = []

    class OneToolSession:
        def specs(self):
            from integrations.llm.types import ToolSpec

            return (ToolSpec("echo_port", "Echoes.", {"type": "object", "properties": {}}),)

        async def call(self, call, context, report):
            ran.append((call.name, context.conversation_id, context.role))
            report("tool.finished", tool=call.name, call_id=call.id, status="ok")
            return type(
                "Outcome", (), {"content": json.dumps({"echo": True}), "summary": {"id": call.id}, "draft": None}
            )()

    async def open_tools(organization_id, grants, role):
        return OneToolSession()

    outcome = await _run(org_a, agent, "echo_port({})", TurnPorts(open_tools=open_tools))

    assert outcome.status == MessageStatus.COMPLETE
    assert [name for name, _, _ in ran] == ["echo_port"]
    assert ran[0][2] == "member"
    assert outcome.tool_calls == [{"id": outcome.tool_messages[0].tool_calls[0].id}]
