from django.urls import path
from rest_framework.routers import SimpleRouter

from chat.apis import chat as chat_apis

router = SimpleRouter(trailing_slash=False)
router.register("sessions", chat_apis.SessionViewSet, basename="session")

urlpatterns = [
    path("chat", chat_apis.ChatApi.as_view(), name="chat"),
    path("chat/tickets", chat_apis.ChatTicketApi.as_view(), name="chat-tickets"),
    path(
        "sessions/<uuid:pk>/history",
        chat_apis.SessionViewSet.as_view({"get": "history"}),
        name="session-history",
    ),
    path("sessions/<uuid:pk>/events", chat_apis.SessionEventsApi.as_view(), name="session-events"),
    *router.urls,
]
