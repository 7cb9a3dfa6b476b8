"""Routes of the agents app under /api/v1/ (no trailing slashes)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from agents import apis

router = SimpleRouter(trailing_slash=False)
router.register("agents", apis.AgentViewSet, basename="agent")
router.register("templates", apis.TemplateViewSet, basename="template")

urlpatterns = [
    path("industries", apis.IndustryListApi.as_view(), name="industry-list"),
    path("config", apis.AgentConfigApi.as_view(), name="agent-config"),
    *router.urls,
]
