"""Routes of the agents app under /api/v1/ (no trailing slashes)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from agents.apis import agents, catalog, grants

router = SimpleRouter(trailing_slash=False)
router.register("agents", agents.AgentViewSet, basename="agent")
router.register("templates", catalog.TemplateViewSet, basename="template")

urlpatterns = [
    path("industries", catalog.IndustryListApi.as_view(), name="industry-list"),
    path("config", catalog.AgentConfigApi.as_view(), name="agent-config"),
    path("agents/<str:id>/tools", grants.AgentToolsApi.as_view(), name="agent-tools"),
    *router.urls,
]
