"""The agent loop of one chat turn.

A turn runs as its own asyncio task in the process that accepted the message,
independent of the connection that asked for it: a dropped socket does not
stop it.  It streams the model's answer as numbered events through the hub,
reaches tools, the budget gate and the usage meter only through the ports it
is handed (:mod:`chat.runtime.ports`), bounds tool rounds, and ends by
persisting the assistant message (complete, interrupted, cancelled or error)
and emitting ``turn.finished``.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid

from django.conf import settings

from agenthub import ratelimit
from agenthub.db import db
from agenthub.errors import ApplicationError
from agenthub.requestid import reset_request_id, set_request_id
from billing.calls import ModelCall, ModelUsage
from chat import events, metrics
from chat.models import MessageStatus
from chat.runtime.context import (
    CHARS_PER_TOKEN,
    AgentSnapshot,
    estimate_tokens,
    fit_to_window,
    from_history_entry,
    history_entry,
    load_history,
    trim_history,
)
from chat.runtime.hub import ChatHub
from chat.runtime.ports import TurnPorts
from chat.runtime.records import NewConversation, TurnOutcome, exchange_journal, message_rows, persist_outcome
from chat.runtime.store import Event
from integrations.llm.router import CachePolicy, model_info, stream_with_fallback
from integrations.llm.types import ChatMessage, ChatRequest, Finish, LLMError, TextDelta, ToolCall
from tools.registry import ToolContext

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 30
LOCK_REFRESH_SECONDS = 10


class TurnRunner:
    def __init__(
        self,
        *,
        hub: ChatHub,
        agent: AgentSnapshot,
        conversation_id: str,
        channel: str,
        turn_id: str,
        user_message_id: str,
        user_content: str,
        client_msg_id: str | None,
        last_seq: int,
        history_override: list[ChatMessage] | None = None,
        cached_history: list[dict] | None = None,
        request_id: str | None = None,
        caller=None,
        slots_key: str | None = None,
        ports: TurnPorts,
        new_conversation: NewConversation | None = None,
    ):
        self.hub = hub
        # Set when the conversation and the user's message are written with
        # the answer, through the journal, instead of before the turn.
        self.new_conversation = new_conversation
        self.ports = ports
        # The caller's concurrency slot (agenthub.ratelimit), held until the turn ends.
        self.slots_key = slots_key
        self.slot_released = False
        self.finishing = False
        self.caller = caller  # accounts.callers.Caller: whose role the tools obey
        self.agent = agent
        self.conversation_id = conversation_id
        self.channel = channel
        self.turn_id = turn_id
        self.user_message_id = user_message_id
        self.user_content = user_content
        self.client_msg_id = client_msg_id
        self.seq = last_seq
        self.history_override = history_override
        self.cached_history = cached_history
        self.request_id = request_id
        self.assistant_message_id = str(uuid.uuid4())

    def emit(self, event_type: str, **fields) -> None:
        self.seq += 1
        data = {"type": event_type, "seq": self.seq, "conversation_id": self.conversation_id, "turn_id": self.turn_id}
        data.update(fields)
        self.hub.emit(self.conversation_id, Event.of(self.seq, data))

    async def _context(self) -> tuple[list[ChatMessage], list[dict] | None]:
        info = model_info(self.agent.model)
        system = ChatMessage("system", self.agent.system_prompt) if self.agent.system_prompt else None
        if self.history_override is not None:
            *earlier, current = self.history_override
            history, cached = earlier, None
        else:
            cached = self.cached_history
            if cached is None:
                cached = await load_history(self.hub.store, self.conversation_id, self.user_message_id)
            history = [from_history_entry(entry) for entry in cached]
            current = ChatMessage("user", self.user_content)
        window = info.context_window if info else 8192
        return fit_to_window(system, history, [current], window, self.agent.max_output_tokens), cached

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_REFRESH_SECONDS)
            with contextlib.suppress(Exception):
                await self.hub.store.refresh_turn(self.conversation_id, self.turn_id, LOCK_TTL_SECONDS)
            if self.slots_key:
                with contextlib.suppress(Exception):
                    await ratelimit.slot_refresh(self.slots_key, self.turn_id, ttl=LOCK_TTL_SECONDS)

    async def _model_rounds(self, messages: list[ChatMessage], outcome: TurnOutcome, started: float) -> None:
        rounds_left = self.agent.max_tool_rounds
        # The server, not the model, decides which tools run: the model is
        # offered only the granted tools the caller's role may use, and the
        # tool-call service refuses any other call.
        tools = await self.ports.open_tools(
            self.agent.organization_id, self.agent.tools, self.caller.role if self.caller else None
        )
        specs = tools.specs()
        round_number = 0
        while True:
            request = ChatRequest(
                model=self.agent.model,
                messages=tuple(messages),
                temperature=self.agent.temperature,
                max_output_tokens=self.agent.max_output_tokens,
                tools=specs,
                organization_id=str(self.agent.organization_id),
            )
            calls = await self._model_call(request, outcome, started, round_number)
            if not calls:
                return
            if rounds_left <= 0:
                outcome.status = MessageStatus.ERROR if not outcome.text else MessageStatus.INTERRUPTED
                outcome.error = events.error_fields(
                    "tool_rounds_exceeded",
                    f"The agent asked for tools more than {self.agent.max_tool_rounds} times in one turn; stopped.",
                )
                return
            rounds_left -= 1
            round_number += 1
            assistant = ChatMessage("assistant", "".join(outcome.text), tool_calls=tuple(calls))
            outcome.tool_messages.append(assistant)
            messages.append(assistant)
            context = self._tool_context()
            results = await asyncio.gather(*(tools.call(call, context, self.emit) for call in calls))
            for call, result in zip(calls, results, strict=True):
                outcome.tool_calls.append(result.summary)
                if result.draft is not None:
                    outcome.drafts.append(result.draft)
                message = ChatMessage("tool", result.content, tool_call_id=call.id)
                outcome.tool_messages.append(message)
                messages.append(message)

    async def _model_call(self, request: ChatRequest, outcome: TurnOutcome, started: float, round_number: int):
        """One model call (streamed, with the agent's fallbacks): the budget
        gate reserves its worst case first (or refuses it), and the usage
        meter charges it after, whatever way it ended."""
        gate, meter = self.ports.gate, self.ports.meter
        call_info = self._model_call_info(round_number, request) if gate is not None or meter is not None else None
        reservation = await gate.check(call_info) if gate is not None else None
        calls: list[ToolCall] = []
        call_started = time.perf_counter()
        usage_seen = None
        streamed_chars = 0
        first_token_ms = None
        model = ""
        provider = ""
        status = "ok"
        try:
            async for item in stream_with_fallback(request, self.agent.fallback_models, self._cache_policy(request)):
                if isinstance(item, TextDelta):
                    if outcome.ttft_ms is None:
                        outcome.ttft_ms = (time.perf_counter() - started) * 1000
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - call_started) * 1000
                    streamed_chars += len(item.text)
                    outcome.text.append(item.text)
                    self.emit(events.TOKEN, delta=item.text)
                elif isinstance(item, ToolCall):
                    streamed_chars += len(item.name) + len(item.arguments)
                    calls.append(item)
                elif isinstance(item, Finish):
                    usage_seen = item.usage
                    model = item.model
                    provider = item.provider
        except LLMError as exc:
            status = exc.kind
            raise
        except BaseException:
            status = "interrupted"
            raise
        finally:
            if usage_seen is not None and usage_seen.reported:
                prompt_tokens, completion_tokens = usage_seen.prompt_tokens, usage_seen.completion_tokens
                cached_tokens, estimated = usage_seen.cached_tokens, False
            elif usage_seen is not None or streamed_chars:
                # No usage from the provider (or the stream broke before it
                # came): counted by the tokenizer-free rule, and marked so.
                prompt_tokens = call_info.prompt_tokens_estimate if call_info else 0
                completion_tokens = -(-streamed_chars // CHARS_PER_TOKEN)
                cached_tokens, estimated = 0, True
            else:
                prompt_tokens = completion_tokens = cached_tokens = 0
                estimated = False
            outcome.prompt_tokens += prompt_tokens
            outcome.completion_tokens += completion_tokens
            if model:
                outcome.model = model
            if meter is not None:
                usage = ModelUsage(
                    model=model or request.model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cached_tokens=cached_tokens,
                    estimated=estimated,
                    latency_ms=round((time.perf_counter() - call_started) * 1000, 2),
                    ttft_ms=round(first_token_ms, 2) if first_token_ms is not None else None,
                    status=status,
                    provider=provider,
                    cache_hit=usage_seen is not None and usage_seen.cache_hit,
                )
                try:
                    charge = await asyncio.shield(meter.record(call_info, usage, reservation))
                except Exception:
                    logger.exception("the usage meter failed for turn %s", self.turn_id)
                else:
                    outcome.charge(charge)
        return calls

    def _cache_policy(self, request: ChatRequest) -> CachePolicy | None:
        """The agent's response cache, when it applies to this call: always,
        or for calls at temperature 0.  Scoped to the organization and the
        agent version."""
        mode = self.agent.response_cache
        if mode == "always" or (mode == "deterministic" and not request.temperature):
            return CachePolicy(
                organization_id=self.agent.organization_id,
                scope=f"version:{self.agent.version_id}",
                ttl_seconds=settings.RESPONSE_CACHE_TTL_SECONDS,
            )
        return None

    def _model_call_info(self, round_number: int, request: ChatRequest) -> ModelCall:
        caller = self.caller
        prompt = sum(estimate_tokens(m) for m in request.messages)
        prompt += (
            sum(len(json.dumps(spec.parameters)) + len(spec.name) + len(spec.description) for spec in request.tools)
            // CHARS_PER_TOKEN
        )
        return ModelCall(
            call_id=f"{self.turn_id}:{round_number}",
            organization_id=self.agent.organization_id,
            model=self.agent.model,
            channel=self.channel,
            caller=caller,
            agent_id=self.agent.agent_id,
            agent_name=self.agent.name,
            version_id=self.agent.version_id,
            version_number=self.agent.version_number,
            subject_kind="conversation",
            subject_id=self.conversation_id,
            turn_id=self.turn_id,
            round=round_number,
            request_id=self.request_id,
            prompt_tokens_estimate=prompt,
            max_output_tokens=request.max_output_tokens or 0,
        )

    def _tool_context(self) -> ToolContext:
        caller = self.caller
        return ToolContext(
            organization_id=self.agent.organization_id,
            role=caller.role if caller else "",
            conversation_id=self.conversation_id,
            agent_id=self.agent.agent_id,
            user_id=caller.user_id if caller else None,
            api_key_id=caller.api_key_id if caller else None,
            request_id=self.request_id,
        )

    async def run(self) -> TurnOutcome:
        token = set_request_id(self.request_id)
        started = time.perf_counter()
        outcome = TurnOutcome()
        cached_history: list[dict] | None = None
        keeper = asyncio.create_task(self._keep_lock())
        metrics.active_turns.inc()
        labels = {"agent": metrics.agent_label(self.agent.slug), "channel": self.channel}
        try:
            self.emit(
                events.TURN_STARTED,
                message_id=self.user_message_id,
                client_msg_id=self.client_msg_id,
                agent=self.agent.slug,
                version=self.agent.version_number,
            )
            try:
                async with asyncio.timeout(settings.CHAT_TURN_TIMEOUT_SECONDS):
                    messages, cached_history = await self._context()
                    await self._model_rounds(messages, outcome, started)
            except LLMError as exc:
                outcome.status = MessageStatus.INTERRUPTED if outcome.text else MessageStatus.ERROR
                code = "capacity_exceeded" if exc.kind == "capacity_exceeded" else "model_error"
                outcome.error = events.error_fields(
                    code, _model_error_message(exc), {"kind": exc.kind, "provider": exc.provider, **exc.details}
                )
            except ApplicationError as exc:  # a budget gate refused a model call
                outcome.status = MessageStatus.INTERRUPTED if outcome.text else MessageStatus.ERROR
                outcome.error = events.error_fields(exc.code, exc.message, exc.details)
            except TimeoutError:
                outcome.status = MessageStatus.INTERRUPTED if outcome.text else MessageStatus.ERROR
                outcome.error = events.error_fields(
                    "turn_timeout", f"The turn took longer than {settings.CHAT_TURN_TIMEOUT_SECONDS} s and was stopped."
                )
            except asyncio.CancelledError:
                outcome.status = MessageStatus.CANCELLED
            except Exception:
                logger.exception("chat turn %s failed", self.turn_id)
                outcome.status = MessageStatus.INTERRUPTED if outcome.text else MessageStatus.ERROR
                outcome.error = events.error_fields(
                    "internal_error", "The turn failed unexpectedly; it has been logged."
                )
            await self._finish(outcome, started, cached_history)
        finally:
            keeper.cancel()
            metrics.active_turns.dec()
            with contextlib.suppress(Exception):
                await self.hub.store.release_turn(self.conversation_id, self.turn_id)
            if self.slots_key and not self.slot_released:
                with contextlib.suppress(Exception):
                    await ratelimit.slot_release(self.slots_key, self.turn_id)
            reset_request_id(token)
        metrics.chat_requests.labels(status=outcome.status, **labels).inc()
        metrics.turn_duration.labels(**labels).observe(time.perf_counter() - started)
        if outcome.ttft_ms is not None:
            metrics.time_to_first_token.labels(**labels).observe(outcome.ttft_ms / 1000)
        return outcome

    async def _finish(self, outcome: TurnOutcome, started: float, cached_history: list[dict] | None) -> None:
        latency_ms = outcome.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        final_seq = self.seq + (2 if outcome.error else 1)
        rows = message_rows(
            organization_id=self.agent.organization_id,
            conversation_id=self.conversation_id,
            message_id=self.assistant_message_id,
            reply_to_id=self.user_message_id,
            outcome=outcome,
            latency_ms=latency_ms,
            channel_model=self.agent.model,
        )
        try:
            if self.new_conversation is not None:  # written behind, with the conversation
                await asyncio.shield(exchange_journal(self.new_conversation, rows, final_seq))
            else:
                await asyncio.shield(
                    db(
                        persist_outcome,
                        conversation_id=self.conversation_id,
                        rows=rows,
                        last_seq=final_seq,
                        version_id=self.agent.version_id,
                    )
                )
        except Exception:
            logger.exception("could not persist the answer of turn %s", self.turn_id)
            outcome.error = outcome.error or events.error_fields(
                "persistence_error", "The answer could not be saved; it has been logged."
            )
            outcome.status = MessageStatus.ERROR
            final_seq = self.seq + 2
        if outcome.error:
            self.emit(events.ERROR, **outcome.error)
        self.finishing = True  # a message arriving now waits briefly for the lock instead of being busy
        if self.slots_key:  # the caller may start another turn as soon as they see this one end
            with contextlib.suppress(Exception):
                await ratelimit.slot_release(self.slots_key, self.turn_id)
                self.slot_released = True
        self.emit(
            events.TURN_FINISHED,
            message_id=self.assistant_message_id,
            status=outcome.status,
            usage=outcome.usage(),
            latency_ms=latency_ms,
            ttft_ms=round(outcome.ttft_ms, 2) if outcome.ttft_ms is not None else None,
            model=outcome.model or self.agent.model,
        )
        await self.hub.flush()
        if self.history_override is None and cached_history is not None:
            new_entries = [{"role": "user", "content": self.user_content}]
            new_entries += [history_entry(m) for m in outcome.tool_messages]
            if outcome.content or outcome.status != MessageStatus.ERROR:
                new_entries.append({"role": "assistant", "content": outcome.content})
            with contextlib.suppress(Exception):
                await self.hub.store.set_history(self.conversation_id, trim_history(cached_history + new_entries))


def _model_error_message(exc: LLMError) -> str:
    messages = {
        "rate_limited": "The model server is rate limiting requests; try again shortly.",
        "server_error": "The model server failed to answer; try again.",
        "timeout": "The model server did not answer in time.",
        "connection": "The model server could not be reached.",
        "stream_dropped": "The model's answer stream broke off; the partial answer was kept.",
        "bad_request": "The model server refused the request.",
        "auth": "The model server refused AgentHub's credentials; an operator must fix the configuration.",
        "unknown_model": "The agent's model is not available on the model server.",
        "circuit_open": "The agent's model is unavailable after repeated failures; try again in a minute.",
        "capacity_exceeded": str(exc),
    }
    return messages.get(exc.kind, "The model call failed.")
