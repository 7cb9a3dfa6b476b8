"""Routes of the billing API under /api/v1/ (no trailing slashes)."""

from django.urls import path  # noqa: F401
from rest_framework.routers import SimpleRouter

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *router.urls,
]
