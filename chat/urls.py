from django.urls import path
from rest_framework.routers import SimpleRouter

from chat.apis import chat as chat_apis
from chat.apis import sessions as session_apis

router = SimpleRouter(trailing_slash=False)
router.register("sessions", session_apis.SessionViewSet, basename="session")

urlpatterns = [
    path("chat", chat_apis.ChatApi.as_view(), name="chat"),
    path("chat/tickets", chat_apis.ChatTicketApi.as_view(), name="chat-tickets"),
    path(
        "sessions/<uuid:pk>/history",
        session_apis.SessionViewSet.as_view({"get": "history"}),
        name="session-history",
    ),
    path("sessions/<uuid:pk>/events", session_apis.SessionEventsApi.as_view(), name="session-events"),
    *router.urls,
]
