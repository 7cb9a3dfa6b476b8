"""Websocket frames against a real server: under the consumer's limit they
are handled; between it and the transport limit (1 MiB) they get an
``error`` frame and the socket stays; over the transport limit the server
closes with 1009 "message too big" (a close frame, not a dropped TCP
connection) and keeps serving."""

import asyncio

import httpx
import pytest
import websockets
from rest_framework_simplejwt.tokens import RefreshToken

from agenthub.testing import run_daphne, subprocess_env
from chat.consumers import MAX_FRAME_CHARS
from chat.models import Message
from chat.tests.helpers import make_live_agent

pytestmark = pytest.mark.django_db(transaction=True)

TRANSPORT_LIMIT = 1024 * 1024


def _auth(org) -> dict:
    refresh = RefreshToken.for_user(org.users["member"])
    refresh["org"] = str(org.organization.pk)
    return {"Authorization": f"Bearer {refresh.access_token}"}


async def _ws_url(base: str, auth: dict) -> str:
    async with httpx.AsyncClient() as client:
        ticket = await client.post(f"{base}/api/v1/chat/tickets", json={"agent": "helper"}, headers=auth)
    assert ticket.status_code == 201, ticket.text
    return base.replace("http://", "ws://") + ticket.json()["websocket_url"]


async def _frames(base: str, auth: dict):
    async with websockets.connect(await _ws_url(base, auth), max_size=None) as ws:
        assert '"conversation.ready"' in await asyncio.wait_for(ws.recv(), 10)

        # Between the consumer's limit and the transport's: an error frame, the socket stays.
        await ws.send("x" * (MAX_FRAME_CHARS + 1000))
        error = await asyncio.wait_for(ws.recv(), 10)
        assert '"frame_too_large"' in error
        await ws.send('{"type": "ping"}')
        assert '"pong"' in await asyncio.wait_for(ws.recv(), 10)

        # Over the transport limit: a close frame with 1009 and the reason.
        await ws.send("y" * (TRANSPORT_LIMIT + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "the server dropped the connection without a close frame"
    assert closed.value.rcvd.code == 1009
    assert closed.value.rcvd.reason

    # The server is healthy: the next connection works.
    async with websockets.connect(await _ws_url(base, auth)) as ws:
        assert '"conversation.ready"' in await asyncio.wait_for(ws.recv(), 10)
        await ws.send('{"type": "ping"}')
        assert '"pong"' in await asyncio.wait_for(ws.recv(), 10)


@pytest.mark.parametrize("server", ["agenthub.server", "uvicorn"])
def test_oversized_frames_get_an_error_frame_or_a_1009_close(org_a, server):
    make_live_agent(org_a.organization)
    with run_daphne(env=subprocess_env(), server=server) as base:
        asyncio.run(_frames(base, _auth(org_a)))
        assert httpx.get(f"{base}/health/live").status_code == 200
    assert Message.objects.count() == 0
