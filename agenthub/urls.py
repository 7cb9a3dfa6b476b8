from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as accounts_views
from agenthub import health, metrics

handler400 = "agenthub.errors.handler400"
handler403 = "agenthub.errors.handler403"
handler404 = "agenthub.errors.handler404"
handler500 = "agenthub.errors.handler500"

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("agents.urls")),
    path("", include("billing.urls")),
    path("", include("tools.urls")),
    path("", include("chat.urls")),
]

# Admin pages of the models that moved out of the agents app: old bookmarks
# and links in emails keep working.
MOVED_ADMIN = [
    re_path(
        rf"^admin/agents/(?P<model>{models})/(?P<rest>.*)$",
        RedirectView.as_view(url=f"/admin/{app}/%(model)s/%(rest)s", permanent=True, query_string=True),
    )
    for app, models in (("tools", "draft|httptool|toolinvocation"), ("chat", "conversation|message"))
]

urlpatterns = [
    *MOVED_ADMIN,
    # The admin's login behind the shared lock-out rule (accounts.lockout).
    path("admin/login/", accounts_views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("invitations/<str:token>/", accounts_views.invitation_page, name="invitation-page"),
    path("api/v1/", include(api_v1)),
    path("v1/", include("chat.openai_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
]
