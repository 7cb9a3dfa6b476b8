import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from accounts.channels_auth import WebsocketAuthMiddleware
from accounts.models import Membership
from accounts.services import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


class WhoAmI(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        scope = self.scope
        await self.send_json(
            {
                "user": getattr(scope["user"], "username", None) if scope["user"].is_authenticated else None,
                "organization": scope["organization"].slug if scope["organization"] else None,
                "role": scope["role"],
                "auth_error": scope["auth_error"],
            }
        )


application = WebsocketAuthMiddleware(URLRouter([path("ws/whoami/", WhoAmI.as_asgi())]))


async def connect(query: str = "") -> dict:
    communicator = WebsocketCommunicator(application, f"/ws/whoami/{query}")
    connected, _ = await communicator.connect()
    assert connected
    payload = await communicator.receive_json_from()
    await communicator.disconnect()
    return payload


async def test_ticket_authenticates_once(org_a):
    ticket = await database_sync_to_async(ws_ticket_issue)(
        user=org_a.users["operator"], organization=org_a.organization
    )
    assert await connect(f"?ticket={ticket}") == {
        "user": "alpha-operator",
        "organization": "alpha",
        "role": "operator",
        "auth_error": None,
    }
    second = await connect(f"?ticket={ticket}")
    assert second["user"] is None
    assert second["auth_error"]["code"] == "invalid_ticket"


async def test_no_ticket_is_anonymous(org_a):
    assert await connect() == {"user": None, "organization": None, "role": None, "auth_error": None}


async def test_unknown_and_oversized_tickets_are_refused(org_a):
    for ticket in ("nope", "x" * 500):
        payload = await connect(f"?ticket={ticket}")
        assert payload["user"] is None
        assert payload["auth_error"]["code"] == "invalid_ticket"


async def test_ticket_of_a_removed_member_is_refused(org_a):
    user = org_a.users["member"]
    ticket = await database_sync_to_async(ws_ticket_issue)(user=user, organization=org_a.organization)
    await database_sync_to_async(Membership.objects.filter(user=user).delete)()
    payload = await connect(f"?ticket={ticket}")
    assert payload["user"] is None
    assert payload["auth_error"]["code"] == "invalid_ticket"


async def test_concurrent_redemptions_succeed_once(org_a):
    ticket = await database_sync_to_async(ws_ticket_issue)(user=org_a.users["viewer"], organization=org_a.organization)
    results = await asyncio.gather(*(connect(f"?ticket={ticket}") for _ in range(10)))
    assert sum(1 for r in results if r["user"] == "alpha-viewer") == 1
