from django.urls import path

from agents.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/v1/agents/<slug:slug>/chat/", ChatConsumer.as_asgi()),
]
