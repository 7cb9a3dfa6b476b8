from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.roles import Role
from accounts.tenancy import ORG_CLAIM, membership_of_claim_exists, org_lookup_filter
from agenthub.api.serializers import StrictModelSerializer, StrictSerializer, StrictSerializerMixin


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]
        read_only_fields = fields


class OrganizationUpdateSerializer(StrictModelSerializer):
    name = serializers.CharField(min_length=1, max_length=200)

    class Meta:
        model = Organization
        fields = ["name"]


class CurrentOrganizationSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices, read_only=True, help_text="Your role here.")
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role", "member_count"]
        read_only_fields = fields


class MembershipBriefSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["organization", "role"]
        read_only_fields = fields


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]
        read_only_fields = fields


class ApiKeyBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    auth_method = serializers.ChoiceField(choices=["jwt", "api_key", "session"])
    user = UserSerializer(allow_null=True)
    api_key = ApiKeyBriefSerializer(allow_null=True)
    organization = OrganizationSerializer(allow_null=True, help_text="The organization this request acts in.")
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    memberships = MembershipBriefSerializer(many=True)


class MemberSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at", "updated_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null when an API key invited."
    )
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_status(self, obj) -> str:
        return obj.status_at(timezone.now())


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=128, help_text="The token from the invitation link.")


class InvitationAcceptedSerializer(serializers.Serializer):
    organization = OrganizationSerializer(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)


class MemberUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who created the key (null: a key or a script).",
    )
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields

    def get_is_active(self, obj) -> bool:
        now = timezone.now()
        return obj.revoked_at is None and (obj.expires_at is None or obj.expires_at > now)


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(min_length=1, max_length=100)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class TokenObtainSerializer(StrictSerializerMixin, TokenObtainPairSerializer):
    """Username and password for a token pair; ``organization`` (id or slug)
    optionally binds the tokens to one of the user's organizations."""

    organization = serializers.CharField(required=False, max_length=64, write_only=True)

    def validate(self, attrs):
        super().validate(attrs)
        requested = attrs.get("organization")
        memberships = Membership.objects.filter(user=self.user, organization__is_active=True)
        if requested:
            membership = memberships.filter(**org_lookup_filter(requested)).first()
            if membership is None:
                raise serializers.ValidationError({"organization": ["You are not a member of this organization."]})
        else:
            membership = memberships.order_by("created_at").first()
        # The tokens are bound to a membership (the chosen one, else the
        # first): removing it ends them (accounts.tenancy).
        refresh = self.get_token(self.user)
        if membership is not None:
            refresh[ORG_CLAIM] = str(membership.organization_id)
        return {"refresh": str(refresh), "access": str(refresh.access_token)}


class TokenRefreshSerializer(StrictSerializerMixin, jwt_serializers.TokenRefreshSerializer):
    """simplejwt's refresh, refused (401) once the user is disabled or the
    membership the token was issued for is gone."""

    def validate(self, attrs):
        token = RefreshToken(attrs["refresh"])  # raises TokenError (401) when invalid
        user_id = token.get(jwt_settings.USER_ID_CLAIM)
        if not User.objects.filter(pk=user_id, is_active=True).exists():
            raise AuthenticationFailed("The user of this token no longer exists or is disabled.", code="user_inactive")
        claimed = token.get(ORG_CLAIM)
        if claimed and not membership_of_claim_exists(user_id=user_id, organization_id=claimed):
            raise AuthenticationFailed(
                "The membership this token was issued for no longer exists. Log in again.", code="membership_revoked"
            )
        return super().validate(attrs)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
