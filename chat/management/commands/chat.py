"""``manage.py chat <agent-slug>``: talk to an agent from the terminal,
token by token, through the same runtime as every other chat surface."""

import asyncio
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.callers import Caller
from accounts.models import Membership
from agenthub.errors import ApplicationError
from chat import events
from chat.models import Channel
from chat.runtime.hub import get_hub
from chat.services.agents import chat_agent_resolve
from chat.services.conversations import conversation_open
from chat.services.turns import turn_cancel, turn_start


class Command(BaseCommand):
    help = "Chat with an agent in the terminal (streams the answer). Type /quit to leave; Ctrl-C stops an answer."

    def add_arguments(self, parser):
        parser.add_argument("agent", help="The agent's slug.")
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--user", required=True, help="Username of a member (member role or above).")
        parser.add_argument("--session", help="Continue this conversation id.")
        parser.add_argument("--message", "-m", action="append", help="Send this message and exit (repeatable).")

    def handle(self, *args, agent, org, user, session, message, **options):
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(organization__slug=org, user__username=user, user__is_active=True)
            .first()
        )
        if membership is None:
            raise CommandError(f"{user} is not a member of the organization '{org}'.")
        caller = Caller.from_member(
            organization_id=membership.organization_id, role=membership.role, user_id=membership.user_id
        )
        try:
            asyncio.run(self._chat(caller, agent, session, message))
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    async def _chat(self, caller, slug, session, scripted):
        agent = await chat_agent_resolve(organization_id=caller.organization_id, slug=slug)
        info = await conversation_open(caller=caller, agent=agent, conversation_id=session, channel=Channel.CLI)
        self.stdout.write(f"Chatting with {agent.name} (v{agent.version_number}); conversation {info.id}")
        pending = list(scripted or [])
        while True:
            if scripted is not None:
                if not pending:
                    break
                text = pending.pop(0)
                self.stdout.write(f"you> {text}")
            else:
                try:
                    text = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    break
            if text.strip() in ("/quit", "/exit"):
                break
            if not text.strip():
                continue
            await self._turn(caller, slug, info.id, text)
        await get_hub().flush()

    async def _turn(self, caller, slug, conversation_id, text):
        agent = await chat_agent_resolve(organization_id=caller.organization_id, slug=slug)
        try:
            handle = await turn_start(
                caller=caller,
                agent=agent,
                conversation_id=conversation_id,
                content=text,
                channel=Channel.CLI,
                subscribe=True,
            )
        except ApplicationError as exc:
            self.stderr.write(f"error: {exc.message}")
            return
        subscription = handle.subscription
        sys.stdout.write(f"{agent.slug}> ")
        try:
            while True:
                data = (await subscription.next()).data
                if data["type"] == events.TOKEN:
                    sys.stdout.write(data["delta"])
                    sys.stdout.flush()
                elif data["type"] == events.ERROR:
                    sys.stdout.write(f"\n[error {data['code']}: {data['message']}]")
                elif data["type"] == events.TURN_FINISHED:
                    usage = data["usage"]
                    sys.stdout.write(
                        f"\n[{data['status']}, {usage['total_tokens']} tokens, {data['latency_ms']:.0f} ms]\n"
                    )
                    break
        except asyncio.CancelledError:
            await turn_cancel(conversation_id=conversation_id)
            raise
        finally:
            await subscription.close()
            await asyncio.shield(handle.task)
