"""Routes of the tools API under /api/v1/ (no trailing slashes)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tools import apis as tool_apis

router = SimpleRouter(trailing_slash=False)
router.register("drafts", tool_apis.DraftViewSet, basename="draft")
router.register("tool-invocations", tool_apis.ToolInvocationViewSet, basename="tool-invocation")

urlpatterns = [
    path("tools", tool_apis.ToolCatalogApi.as_view(), name="tool-list"),
    *router.urls,
]
