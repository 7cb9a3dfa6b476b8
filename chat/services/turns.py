"""Turns: the one place a chat turn starts, on every surface (websocket,
REST/SSE, the OpenAI-compatible API, the admin test chat, ``manage.py
chat``).  Starting a turn checks the message and the caller's limits, takes
the conversation's lock, saves the user's message, learns where the event
numbering stands, and hands the agent loop (:mod:`chat.runtime.turn`) its
collaborators; cancelling reaches the turn in whichever process runs it."""

import asyncio
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError

from accounts.callers import Caller
from agenthub import drain, ratelimit
from agenthub.db import db
from agenthub.errors import ApplicationError, ConflictError
from billing.services.metering import METERING, WRITE_BEHIND_METERING
from chat import metrics
from chat.models import Conversation, Message, MessageRole
from chat.runtime.context import AgentSnapshot, check_prompt_fits
from chat.runtime.hub import PrivateEvents, Subscription, get_hub
from chat.runtime.ports import TurnPorts
from chat.runtime.records import NewConversation, conversation_write
from chat.runtime.turn import LOCK_TTL_SECONDS, TurnRunner
from chat.services.conversations import caller_require_chat
from integrations.llm.types import ChatMessage
from tools.services.calls import tool_session_open

# What every turn is handed unless a caller of turn_start says otherwise:
# the tools app's tool sessions, and billing's budget gate and usage meter.
DEFAULT_PORTS = TurnPorts(open_tools=tool_session_open, gate=METERING, meter=METERING)
# A private turn's ledger rows are written behind, like its conversation.
WRITE_BEHIND_PORTS = TurnPorts(open_tools=tool_session_open, gate=METERING, meter=WRITE_BEHIND_METERING)


def turn_slots_key(caller: Caller) -> str:
    return f"turns:{caller.principal}"


def user_message_bucket(caller: Caller) -> ratelimit.Bucket | None:
    """The per-principal message bucket shared by every connection and
    process (Redis); None when the limit is off."""
    per_minute = settings.CHAT_MESSAGES_PER_MINUTE_PER_USER
    if per_minute <= 0:
        return None
    return ratelimit.Bucket(f"messages:{caller.principal}", per_minute / 60, settings.CHAT_MESSAGE_BURST_PER_USER)


def rate_limited_error(what: str, wait: float, scope: str) -> ApplicationError:
    retry_ms = max(1, int(wait * 1000 + 0.999))
    metrics.ws_rate_limited.labels(reason=scope).inc()
    error = ApplicationError(
        f"{what}; retry in {retry_ms / 1000:.1f} s.",
        code="rate_limited",
        status_code=429,
        details={"retry_after_ms": retry_ms, "scope": scope},
    )
    error.retry_after = max(1, int(wait + 0.999))
    return error


def _refuse_if_draining() -> None:
    if drain.draining():
        error = ApplicationError(
            "This server is restarting and takes no new turns; send the message again (another server will take it).",
            code="server_draining",
            status_code=503,
            details={"retry_after_ms": drain.RETRY_AFTER_SECONDS * 1000},
        )
        error.retry_after = drain.RETRY_AFTER_SECONDS
        raise error


def _too_many_turns(limit: int) -> ApplicationError:
    metrics.ws_rate_limited.labels(reason="concurrent_turns").inc()
    error = ApplicationError(
        f"You already have {limit} turns running; wait for one to finish.",
        code="too_many_turns",
        status_code=429,
        details={"limit": limit, "retry_after_ms": 1000},
    )
    error.retry_after = 1
    return error


@dataclass
class TurnHandle:
    turn_id: str
    conversation_id: str
    user_message_id: str
    first_seq: int  # the turn's events are numbered from here
    task: asyncio.Task
    runner: TurnRunner
    subscription: Subscription | None = None  # the turn's events, when asked for


def validate_prompt(content) -> str:
    if not isinstance(content, str):
        raise ApplicationError("The message content must be a string.", code="invalid_prompt")
    if not content.strip():
        raise ApplicationError("The message is empty.", code="empty_prompt")
    limit = settings.CHAT_MAX_PROMPT_CHARS
    if len(content) > limit:
        raise ApplicationError(
            f"The message is {len(content)} characters; the limit is {limit}.",
            code="prompt_too_long",
            details={"limit_chars": limit},
        )
    if "\x00" in content:
        raise ApplicationError("The message contains a NUL character.", code="invalid_prompt")
    return content


def validate_client_msg_id(client_msg_id) -> str | None:
    if client_msg_id is None or client_msg_id == "":
        return None
    if not isinstance(client_msg_id, str) or len(client_msg_id) > 100 or "\x00" in client_msg_id:
        raise ApplicationError(
            "client_msg_id must be a string of at most 100 characters.", code="invalid_client_msg_id"
        )
    return client_msg_id


def _duplicate_error(conversation_id: str, client_msg_id: str) -> ConflictError | None:
    existing = (
        Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id)
        .values_list("id", flat=True)
        .first()
    )
    if existing is None:
        return None
    reply = (
        Message.objects.filter(reply_to_id=existing, role=MessageRole.ASSISTANT).values("id", "status").first() or {}
    )
    return ConflictError(
        "This message was already received; it is not run twice.",
        code="duplicate_message",
        details={
            "message_id": str(existing),
            "reply_message_id": str(reply["id"]) if reply else None,
            "reply_status": reply.get("status"),
        },
    )


def _persist_user_message(organization_id: str, conversation_id: str, content: str, client_msg_id: str | None) -> str:
    """One INSERT (atomic on its own); a resent client_msg_id is refused."""
    try:
        message = Message.objects.create(
            organization_id=organization_id,
            conversation_id=conversation_id,
            role=MessageRole.USER,
            content=content,
            client_msg_id=client_msg_id,
        )
    except IntegrityError:
        duplicate = _duplicate_error(conversation_id, client_msg_id) if client_msg_id else None
        if duplicate is None:
            raise
        raise duplicate from None
    return str(message.pk)


def _conversation_last_seq(conversation_id: str) -> int:
    return Conversation.objects.filter(pk=conversation_id).values_list("last_seq", flat=True).first() or 0


BUSY_GRACE_SECONDS = 0.25


async def _acquire_turn(hub, conversation_id: str, turn_id: str) -> bool:
    """The conversation's turn lock.  A turn releases its lock just after its
    ``turn.finished`` went out, so a client that answers at once may find it
    still held for a moment: wait that moment before calling it busy.  While
    a turn of this process is still running (not finishing), a message is
    refused at once: it never waits, so it can never run later."""
    if await hub.store.try_acquire_turn(conversation_id, turn_id, LOCK_TTL_SECONDS):
        return True
    runner = hub.runner_for(conversation_id)
    if runner is not None and not runner.finishing:
        return False
    deadline = time.monotonic() + BUSY_GRACE_SECONDS
    while not await hub.store.try_acquire_turn(conversation_id, turn_id, LOCK_TTL_SECONDS):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def turn_start(
    *,
    caller: Caller,
    agent: AgentSnapshot,
    conversation_id: str,
    content,
    client_msg_id=None,
    channel: str,
    request_id: str | None = None,
    history_override: list[ChatMessage] | None = None,
    subscribe: bool = False,
    rate_buckets: tuple[ratelimit.Bucket, ...] = (),
    ports: TurnPorts | None = None,
) -> TurnHandle:
    """Persists the user's message and starts the turn in the background.

    One turn at a time per conversation: while one runs, another message is
    refused with ``busy`` (409), not queued.  A message whose
    ``client_msg_id`` was already received is refused with
    ``duplicate_message`` and never runs twice.  With ``subscribe`` the
    handle carries a subscription to the turn's events, in place before the
    turn starts so that none is missed (close it when done)."""
    caller_require_chat(caller)
    _refuse_if_draining()
    content = validate_prompt(content)
    check_prompt_fits(agent, history_override or [ChatMessage("user", content)])
    client_msg_id = validate_client_msg_id(client_msg_id)
    hub = get_hub()
    subscription = await hub.subscribe(conversation_id) if subscribe else None
    try:
        handle = await _turn_start(
            hub,
            caller,
            agent,
            conversation_id,
            content,
            client_msg_id,
            channel,
            request_id,
            history_override,
            rate_buckets,
            ports or DEFAULT_PORTS,
        )
    except BaseException:
        if subscription is not None:
            await subscription.close()
        raise
    if subscription is not None:
        subscription.start_at(handle.first_seq - 1)
        handle.subscription = subscription
    return handle


async def _turn_start(
    hub,
    caller,
    agent,
    conversation_id,
    content,
    client_msg_id,
    channel,
    request_id,
    history_override,
    rate_buckets,
    ports,
) -> TurnHandle:
    turn_id = uuid.uuid4().hex
    # The conversation's lock, and (one Redis round trip, at the same time)
    # the caller's message buckets and one of their concurrent-turn slots.
    slots_key = turn_slots_key(caller) if caller is not None else None
    limit = settings.CHAT_MAX_CONCURRENT_TURNS_PER_USER
    admission = ratelimit.Admission(ok=True)
    if slots_key:
        locked, admission = await asyncio.gather(
            _acquire_turn(hub, conversation_id, turn_id),
            ratelimit.admit(rate_buckets, slots_key, turn_id, limit=limit, ttl=LOCK_TTL_SECONDS),
        )
    else:
        locked = await _acquire_turn(hub, conversation_id, turn_id)
    if not locked:
        if admission.ok and slots_key:
            await ratelimit.slot_release(slots_key, turn_id)
        if client_msg_id:
            duplicate = await db(_duplicate_error, conversation_id, client_msg_id)
            if duplicate is not None:
                raise duplicate
        metrics.ws_rate_limited.labels(reason="busy").inc()
        raise ConflictError(
            "A turn is already running in this conversation; wait for turn.finished or send cancel.", code="busy"
        )
    if not admission.ok:
        await hub.store.release_turn(conversation_id, turn_id)
        if admission.wait:
            raise rate_limited_error("You are sending messages too fast", admission.wait, "user")
        raise _too_many_turns(limit)
    try:
        # The message is saved before the model is called; meanwhile Redis
        # says where the event numbering stands and what the recent history is.
        user_message_id, (last_seq, history) = await asyncio.gather(
            db(_persist_user_message, agent.organization_id, conversation_id, content, client_msg_id),
            hub.store.turn_context(conversation_id),
        )
        if last_seq == 0:  # the replay log expired: the database knows
            last_seq = await db(_conversation_last_seq, conversation_id)
    except BaseException:
        await hub.store.release_turn(conversation_id, turn_id)
        if slots_key:
            await ratelimit.slot_release(slots_key, turn_id)
        raise
    runner = TurnRunner(
        hub=hub,
        agent=agent,
        conversation_id=conversation_id,
        channel=channel,
        turn_id=turn_id,
        user_message_id=user_message_id,
        user_content=content,
        client_msg_id=client_msg_id,
        last_seq=last_seq,
        history_override=history_override,
        cached_history=history,
        request_id=request_id,
        caller=caller,
        slots_key=slots_key,
        ports=ports,
    )
    return _launch(hub, runner, first_seq=last_seq + 1)


def _launch(hub, runner: TurnRunner, *, first_seq: int, subscription=None) -> TurnHandle:
    """Runs the turn as its own task, registered with the process's hub (the
    drain waits for it; a cancel or a draft's news reaches it)."""
    task = asyncio.create_task(runner.run(), name=f"chat-turn-{runner.turn_id}")
    hub.register_turn(runner.conversation_id, task, runner)
    return TurnHandle(
        runner.turn_id, runner.conversation_id, runner.user_message_id, first_seq, task, runner, subscription
    )


async def turn_cancel(*, conversation_id: str) -> None:
    """Stops the conversation's running turn, in whichever process runs it;
    the partial answer is kept as ``cancelled``."""
    await get_hub().request_cancel(conversation_id)


async def turn_start_private(
    *,
    caller: Caller,
    agent: AgentSnapshot,
    history: list[ChatMessage],
    channel: str,
    metadata: dict | None = None,
    request_id: str | None = None,
) -> TurnHandle:
    """A turn in a new conversation that only its caller will ever see
    while it runs: the OpenAI-compatible API, where each call carries its
    whole history and no conversation id is given out.

    The same checks, limits, budgets, metering and tools as
    :func:`turn_start`, without what only a shared conversation needs: no
    lock (nothing else can reach the conversation), no replay log or
    publishing (the events go straight to the returned handle's
    subscription).  The ledger rows are written behind
    (:mod:`agenthub.journal`), and so are the conversation, the user's
    message and the answer once the answer is known, unless the agent has
    tools (their calls and drafts refer to the conversation: it is written
    first).  The handle's subscription is always set."""
    caller_require_chat(caller)
    _refuse_if_draining()
    content = validate_prompt(history[-1].content)
    check_prompt_fits(agent, history)
    hub = get_hub()
    turn_id = uuid.uuid4().hex
    conversation_id = str(uuid.uuid4())
    slots_key = turn_slots_key(caller)
    limit = settings.CHAT_MAX_CONCURRENT_TURNS_PER_USER
    admission = await ratelimit.admit((), slots_key, turn_id, limit=limit, ttl=LOCK_TTL_SECONDS)
    if not admission.ok:
        raise _too_many_turns(limit)
    user_message_id = str(uuid.uuid4())
    new_conversation = NewConversation(
        row={
            "id": conversation_id,
            "organization_id": agent.organization_id,
            "agent_id": agent.agent_id,
            "version_id": agent.version_id,
            "user_id": caller.user_id,
            "api_key_id": caller.api_key_id,
            "visitor_id": caller.visitor_id,
            "channel": channel,
            "metadata": metadata or {},
        },
        user_message={
            "id": user_message_id,
            "organization_id": agent.organization_id,
            "conversation_id": conversation_id,
            "role": MessageRole.USER,
            "content": content,
        },
    )
    if agent.tools:
        # Its tool calls and drafts point at the conversation while the turn
        # runs: the conversation is written first, the answer after, as in
        # any turn (the ledger rows are still written behind).
        try:
            await db(conversation_write, new_conversation)
        except BaseException:
            await ratelimit.slot_release(slots_key, turn_id)
            raise
        new_conversation = None
    events = PrivateEvents(conversation_id)
    runner = TurnRunner(
        hub=events,
        agent=agent,
        conversation_id=conversation_id,
        channel=channel,
        turn_id=turn_id,
        user_message_id=user_message_id,
        user_content=content,
        client_msg_id=None,
        last_seq=0,
        history_override=history,
        request_id=request_id,
        caller=caller,
        slots_key=slots_key,
        ports=WRITE_BEHIND_PORTS,
        new_conversation=new_conversation,
    )
    return _launch(hub, runner, first_seq=1, subscription=events.subscription)
