"""Conversations in the admin: read-only, written by the chat runtime."""

from django.contrib import admin

from accounts.admin import OPERATOR_ROLES, TenantScopedAdmin
from chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ("created_at", "role", "content", "status", "model", "tokens_in", "tokens_out", "ttft_ms", "latency_ms")
    readonly_fields = fields
    ordering = ("created_at",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    """Conversations are written by the chat runtime; the admin reads them."""

    staff_roles = OPERATOR_ROLES  # operators build and test agents
    list_display = ("id", "agent", "organization", "channel", "status", "user", "last_seq", "updated_at")
    list_filter = ("channel", "status", "organization")
    list_select_related = ("agent", "organization", "user")
    search_fields = ("id", "agent__slug", "user__username", "visitor_id")
    readonly_fields = (
        "organization",
        "agent",
        "version",
        "user",
        "api_key",
        "visitor_id",
        "channel",
        "status",
        "metadata",
        "last_seq",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
