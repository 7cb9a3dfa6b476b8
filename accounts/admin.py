"""Admin for users, organizations, memberships and API keys.

Superusers see every organization; other staff see only the organizations
where they are an owner or admin.  Writes go through the services, so the
admin obeys the same rules as the API (last owner, key roles).
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.html import format_html

from accounts import services
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.roles import Role
from agenthub.errors import ApplicationError

ADMIN_ROLES = (Role.OWNER, Role.ADMIN)
OPERATOR_ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR)


def managed_organization_ids(user, roles=ADMIN_ROLES) -> list:
    """The organizations where ``user`` holds one of ``roles``."""
    return list(
        Membership.objects.filter(user=user, role__in=roles, organization__is_active=True).values_list(
            "organization_id", flat=True
        )
    )


class ReadOnlyAdminMixin:
    """A record, not a form: shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantScopedAdmin(admin.ModelAdmin):
    """Scopes the change list, lookups and foreign-key choices to the staff
    user's organizations."""

    organization_field = "organization"
    # Staff see the organizations where they hold one of these roles.
    staff_roles = ADMIN_ROLES

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        organizations = managed_organization_ids(request.user, self.staff_roles)
        return queryset.filter(**{f"{self.organization_field}__in": organizations})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization" and not request.user.is_superuser:
            organizations = managed_organization_ids(request.user, self.staff_roles)
            kwargs["queryset"] = Organization.objects.filter(pk__in=organizations)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "date_joined")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(memberships__organization_id__in=managed_organization_ids(request.user)).distinct()


def actor_role(request, organization) -> str | None:
    """The staff user's role in ``organization`` (superusers act as owners)."""
    if request.user.is_superuser:
        return Role.OWNER
    membership = Membership.objects.filter(user=request.user, organization=organization).first()
    return membership.role if membership else None


class MembershipInline(admin.TabularInline):
    """Read-only here: roles change on the membership page, through the
    service that guards the last owner."""

    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    organization_field = "pk"
    list_display = ("name", "slug", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=managed_organization_ids(request.user))

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__name")
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        return ("organization", "user") if obj is not None else ()

    def has_add_permission(self, request):
        # People join by invitation (and accept it themselves); only a
        # superuser places an existing account directly.
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        role = actor_role(request, obj.organization)
        try:
            if change:
                previous = Membership.objects.get(pk=obj.pk)
                obj.role, new_role = previous.role, obj.role
                services.membership_change_role(membership=obj, actor_role=role, role=new_role)
            else:
                obj.save()
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc

    def _remove(self, request, obj):
        # The admin's deletion page is itself the explicit confirmation.
        services.membership_remove(
            membership=obj, actor_role=actor_role(request, obj.organization), actor=request.user, confirm_self=True
        )

    def delete_model(self, request, obj):
        try:
            self._remove(request, obj)
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            try:
                self._remove(request, obj)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite by email: saving sends the one-time link; the person becomes a
    member only by accepting it."""

    list_display = ("email", "organization", "role", "status", "invited_by", "created_at", "expires_at")
    list_filter = ("role", "organization")
    search_fields = ("email",)
    fields = ("organization", "email", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at")
    readonly_fields = ("status", "invited_by", "created_at", "expires_at", "accepted_at")
    actions = ["revoke_selected", "resend_selected"]

    @admin.display(description="status")
    def status(self, obj):
        return obj.status_at(timezone.now()) if obj.pk else "-"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("organization", "email", "role", *self.readonly_fields, "revoked_at")
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record stays

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            invitation = services.invitation_create(
                organization=obj.organization,
                actor_role=actor_role(request, obj.organization),
                invited_by=request.user,
                email=obj.email,
                role=obj.role,
            )
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk = invitation.pk
        obj._state.adding = False
        self.message_user(request, f"Invitation sent to {invitation.email}.", messages.SUCCESS)

    def _for_each(self, request, queryset, verb: str, act) -> None:
        """Runs ``act(invitation, role)`` on each selected invitation through
        the services, reporting refusals one by one."""
        done = 0
        for invitation in queryset:
            try:
                act(invitation, actor_role(request, invitation.organization))
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{invitation.email}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{verb} {done} invitation(s).", messages.SUCCESS)

    @admin.action(description="Revoke selected invitations")
    def revoke_selected(self, request, queryset):
        self._for_each(
            request, queryset, "Revoked", lambda inv, role: services.invitation_revoke(invitation=inv, actor_role=role)
        )

    @admin.action(description="Send selected invitations again (new link, new expiry)")
    def resend_selected(self, request, queryset):
        def resend(invitation, role):
            services.invitation_create(
                organization=invitation.organization,
                actor_role=role,
                invited_by=request.user,
                email=invitation.email,
                role=invitation.role,
            )

        self._for_each(request, queryset, "Sent again", resend)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("name", "prefix", "organization", "role", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("role", "organization")
    search_fields = ("name", "prefix")
    fields = ("organization", "name", "role", "expires_at", "prefix", "created_by", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "last_used_at", "revoked_at")
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # the key is fixed once made; only revoke it
            return ("organization", "name", "role", "expires_at", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            key, raw = services.api_key_create(
                organization=obj.organization,
                name=obj.name,
                role=obj.role,
                expires_at=obj.expires_at,
                created_by=request.user,
                actor_role=actor_role(request, obj.organization),
            )
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk = key.pk
        obj._state.adding = False
        self.message_user(
            request,
            f"API key created. Copy it now, it will not be shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(api_key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


# --- shared by the apps' admins ------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


def has_role_somewhere(request, roles) -> bool:
    return request.user.is_superuser or bool(managed_organization_ids(request.user, roles))


class RoleGatedAdmin(TenantScopedAdmin):
    """A tenant-scoped admin that staff without one of ``staff_roles`` in any
    organization cannot open at all (403), rather than seeing an empty list."""

    def has_module_permission(self, request):
        return super().has_module_permission(request) and has_role_somewhere(request, self.staff_roles)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and has_role_somewhere(request, self.staff_roles)


def write_organizations(request, roles):
    if request.user.is_superuser:
        return Organization.objects.filter(is_active=True)
    return Organization.objects.filter(pk__in=managed_organization_ids(request.user, roles))
