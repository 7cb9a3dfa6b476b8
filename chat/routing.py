from django.urls import path

from chat.consumers import ChatConsumer, OperatorConsumer

websocket_urlpatterns = [
    path("ws/v1/agents/<slug:slug>/chat/", ChatConsumer.as_asgi()),
    path("ws/v1/operator/", OperatorConsumer.as_asgi()),
]
