"""Websocket routes of every app, collected in one list for the ASGI router."""

from chat.routing import websocket_urlpatterns as agents_routes

websocket_urlpatterns: list = [*agents_routes]
