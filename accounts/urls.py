from django.urls import path
from rest_framework.routers import SimpleRouter
from rest_framework_simplejwt import views as jwt_views

from accounts import apis

router = SimpleRouter(trailing_slash=False)
router.register("orgs/current/members", apis.MemberViewSet, basename="member")
router.register("orgs/current/invitations", apis.InvitationViewSet, basename="invitation")
router.register("api-keys", apis.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("auth/token/", apis.TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/token/verify/", jwt_views.TokenVerifyView.as_view(), name="token-verify"),
    path("auth/token/blacklist/", apis.TokenBlacklistApi.as_view(), name="token-blacklist"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("orgs/current", apis.CurrentOrganizationApi.as_view(), name="org-current"),
    path("invitations/accept", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    *router.urls,
]
