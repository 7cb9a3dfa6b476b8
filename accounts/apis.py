"""Accounts API: who am I, the current organization and its members, API keys,
and JWT tokens.  Views parse input, call a service or selector and serialize."""

import contextlib

import django_filters
from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts import selectors, services
from accounts.authentication import ApiKeyPrincipal, JWTAuthentication, access_token_revoke
from accounts.models import ApiKey, Invitation, Membership, User
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    CurrentOrganizationSerializer,
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    MeSerializer,
    OrganizationUpdateSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
)
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.errors import ApplicationError, NotFoundError

LAST_OWNER = OpenApiResponse(description="The last owner cannot be removed or demoted (last_owner).")

ORG_HEADER_PARAMETER = OpenApiParameter(
    "X-Organization",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Organization id or slug to act in (users with several memberships).",
)


class TokenObtainApi(jwt_views.TokenObtainPairView):
    serializer_class = TokenObtainSerializer

    @extend_schema(responses={200: TokenPairSerializer}, summary="Obtain an access/refresh token pair")
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshApi(jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer


class TokenBlacklistApi(jwt_views.TokenBlacklistView):
    """Log out: the refresh token is blacklisted, and the access token sent in
    ``Authorization`` (if any) is refused from now until it expires."""

    @extend_schema(summary="Log out: revoke the refresh token and the access token in Authorization")
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            jwt = JWTAuthentication()
            header = jwt.get_header(request)
            raw = jwt.get_raw_token(header) if header else None
            if raw is not None:
                # An access token that is already invalid has nothing to revoke.
                with contextlib.suppress(InvalidToken, AuthenticationFailed):
                    access_token_revoke(jwt.get_validated_token(raw))
        return response


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer, parameters=[ORG_HEADER_PARAMETER], summary="The caller")
    def get(self, request):
        if isinstance(request.user, ApiKeyPrincipal):
            key = request.user.api_key
            data = {
                "auth_method": "api_key",
                "user": None,
                "api_key": key,
                "organization": key.organization,
                "role": key.role,
                "memberships": [],
            }
        else:
            memberships = list(selectors.memberships_of_user(user=request.user))
            try:
                tenant = tenant_for_request(request)
            except NotFoundError as exc:
                # A user awaiting an invitation has no organization yet; a header
                # naming an organization they are not in is a 404, as everywhere.
                if exc.code != "no_organization":
                    raise
                tenant = None
            data = {
                "auth_method": "session" if request.auth is None else "jwt",
                "user": request.user,
                "api_key": None,
                "organization": tenant.organization if tenant else None,
                "role": tenant.role if tenant else None,
                "memberships": memberships,
            }
        return Response(MeSerializer(data).data)


class CurrentOrganizationApi(APIView):
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.ADMIN

    def _payload(self, request):
        tenant = tenant_for_request(request)
        org = tenant.organization
        org.role = tenant.role
        org.member_count = Membership.objects.for_organization(org).aggregate(n=Count("pk"))["n"]
        return CurrentOrganizationSerializer(org).data

    @extend_schema(responses=CurrentOrganizationSerializer, parameters=[ORG_HEADER_PARAMETER])
    def get(self, request):
        return Response(self._payload(request))

    @extend_schema(
        request=OrganizationUpdateSerializer, responses=CurrentOrganizationSerializer, parameters=[ORG_HEADER_PARAMETER]
    )
    def patch(self, request):
        serializer = OrganizationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.organization_update(
            organization=tenant_for_request(request).organization, name=serializer.validated_data["name"]
        )
        return Response(self._payload(request))


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["role"]


@extend_schema_view(
    list=extend_schema(summary="Members of the current organization", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One member", parameters=[ORG_HEADER_PARAMETER]),
    partial_update=extend_schema(
        summary="Change a member's role",
        request=MemberUpdateSerializer,
        responses={200: MemberSerializer, 409: LAST_OWNER},
    ),
    destroy=extend_schema(
        summary="Remove a member",
        responses={204: None, 409: LAST_OWNER},
        parameters=[
            ORG_HEADER_PARAMETER,
            OpenApiParameter(
                "confirm_self", bool, required=False, description="Required (true) to remove your own membership."
            ),
        ],
    ),
)
class MemberViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    tenant_model = Membership
    serializer_class = MemberSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filterset_class = MemberFilter
    ordering_fields = ["created_at", "user__username", "role"]
    ordering = ["created_at"]
    search_fields = ["user__username", "user__email"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("user")

    def http_method_not_allowed(self, request, *args, **kwargs):
        if request.method == "POST":
            raise ApplicationError(
                "Members join by invitation: POST /api/v1/orgs/current/invitations {email, role}.",
                code="method_not_allowed",
                status_code=405,
            )
        return super().http_method_not_allowed(request, *args, **kwargs)

    def partial_update(self, request, pk=None):
        membership = self.get_object()
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            membership=membership, actor_role=self.tenant.role, role=serializer.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    def destroy(self, request, pk=None):
        confirm_self = request.query_params.get("confirm_self", "").lower() in ("true", "1", "yes")
        actor = request.user if isinstance(request.user, User) else None
        services.membership_remove(
            membership=self.get_object(), actor_role=self.tenant.role, actor=actor, confirm_self=confirm_self
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Invitation
        fields = ["role"]


@extend_schema_view(
    list=extend_schema(summary="Invitations of the current organization", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One invitation", parameters=[ORG_HEADER_PARAMETER]),
    create=extend_schema(
        summary="Invite someone by email (the answer is the same whether or not they have an account)",
        request=InvitationCreateSerializer,
        responses={
            201: InvitationSerializer,
            409: OpenApiResponse(
                description="Already a member (already_member), or too many pending invitations "
                "(too_many_pending_invitations)."
            ),
        },
        parameters=[ORG_HEADER_PARAMETER],
    ),
    destroy=extend_schema(
        summary="Revoke an invitation",
        responses={
            204: None,
            409: OpenApiResponse(description="Already accepted or revoked (invitation_not_pending)."),
        },
        parameters=[ORG_HEADER_PARAMETER],
    ),
)
class InvitationViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    tenant_model = Invitation
    serializer_class = InvitationSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filterset_class = InvitationFilter
    ordering_fields = ["created_at", "email", "expires_at"]
    ordering = ["-created_at"]
    search_fields = ["email"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("invited_by")

    def create(self, request):
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = self.tenant
        invitation = services.invitation_create(
            organization=tenant.organization,
            actor_role=tenant.role,
            invited_by=tenant.user,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.invitation_revoke(invitation=self.get_object(), actor_role=self.tenant.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptApi(APIView):
    """The signed-in user accepts an invitation sent to their email address."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={
            201: InvitationAcceptedSerializer,
            409: OpenApiResponse(description="You are already a member (already_member)."),
            410: OpenApiResponse(
                description="The invitation was used, revoked or has expired "
                "(invitation_used, invitation_revoked, invitation_expired)."
            ),
        },
        summary="Accept an invitation (the token from its link)",
    )
    def post(self, request):
        if not isinstance(request.user, User):
            raise ApplicationError(
                "Invitations are accepted by a person, not an API key.", code="permission_denied", status_code=403
            )
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.invitation_accept(token=serializer.validated_data["token"], user=request.user)
        return Response(InvitationAcceptedSerializer(membership).data, status=status.HTTP_201_CREATED)


class ApiKeyFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiKey
        fields = ["role", "revoked"]


@extend_schema_view(
    list=extend_schema(summary="API keys of the current organization", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One API key (never its secret)", parameters=[ORG_HEADER_PARAMETER]),
    create=extend_schema(
        summary="Create an API key; the response holds the secret, once",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke an API key", responses={204: None}),
)
class ApiKeyViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    tenant_model = ApiKey
    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filterset_class = ApiKeyFilter
    ordering_fields = ["created_at", "last_used_at", "name"]
    ordering = ["-created_at"]
    search_fields = ["name", "prefix"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("created_by")

    def create(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = self.tenant
        key, raw = services.api_key_create(
            organization=tenant.organization,
            actor_role=tenant.role,
            created_by=tenant.user,
            **serializer.validated_data,
        )
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
