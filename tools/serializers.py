"""Serializers for the tools API: the tool catalog, drafts and tool
invocations.

Input serializers are strict (unknown fields are a 400); which tools exist
and who may decide a draft are the services' rules.
"""

from rest_framework import serializers

from accounts.roles import Role
from agenthub.api.serializers import JSONObjectField, StrictSerializer
from tools.models import Draft, ToolExecution, ToolInvocation

LIST_RESULT_CHARS = 500
RESULT_HELP = f"The whole result; in lists, its first {LIST_RESULT_CHARS} characters (see result_chars)."


def result_of(obj) -> str:
    """The result, or in a list its first characters (the list's queryset
    annotates ``result_preview`` and ``result_chars`` and defers the rest)."""
    preview = getattr(obj, "result_preview", None)
    return preview if preview is not None else obj.result


def result_chars_of(obj) -> int:
    length = getattr(obj, "result_chars", None)
    return length if length is not None else len(obj.result)


# --- the catalog ----------------------------------------------------------------------------


class ToolSerializer(serializers.Serializer):
    """A tool the organization's agents may be granted (``ToolDefinition.describe()``)."""

    name = serializers.CharField()
    description = serializers.CharField()
    parameters = JSONObjectField(help_text="JSON schema of the arguments.")
    min_role = serializers.ChoiceField(choices=Role.choices, help_text="The weakest role that may use the tool.")
    requires_approval = serializers.BooleanField(help_text="Calls become drafts that a person confirms.")
    approver_role = serializers.ChoiceField(choices=Role.choices, help_text="The weakest role that may decide drafts.")
    allow_self_approval = serializers.BooleanField(
        help_text="Whether the person who asked for a draft may decide it themselves."
    )
    execution = serializers.ChoiceField(choices=ToolExecution.choices)
    timeout_seconds = serializers.FloatField()
    max_result_chars = serializers.IntegerField()
    source = serializers.ChoiceField(
        choices=[("builtin", "Built in"), ("http", "HTTP tool")],
        help_text="'builtin' (part of AgentHub) or 'http' (an operator's HTTP tool).",
    )


# --- drafts ------------------------------------------------------------------------------------


class DraftSerializer(serializers.ModelSerializer):
    """A draft.  The keys of ``draft.created`` / ``draft.updated`` events
    mean the same here; users and API keys are given by id."""

    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    agent_id = serializers.UUIDField(read_only=True, allow_null=True)
    arguments = JSONObjectField(read_only=True, help_text="The arguments the agent proposed.")
    edited_arguments = JSONObjectField(
        read_only=True, allow_null=True, help_text="The approver's edited arguments, run instead."
    )
    requested_by = serializers.UUIDField(
        source="requested_by_id", read_only=True, allow_null=True, help_text="The user whose chat proposed it."
    )
    requested_by_api_key = serializers.UUIDField(
        source="requested_by_api_key_id", read_only=True, allow_null=True, help_text="The API key that chatted."
    )
    decided_by = serializers.UUIDField(source="decided_by_id", read_only=True, allow_null=True)
    decided_by_api_key = serializers.UUIDField(source="decided_by_api_key_id", read_only=True, allow_null=True)
    result = serializers.SerializerMethodField(help_text=RESULT_HELP)
    result_chars = serializers.SerializerMethodField(help_text="Length of the whole result.")

    class Meta:
        model = Draft
        fields = [
            "id",
            "tool",
            "status",
            "summary",
            "arguments",
            "edited_arguments",
            "conversation_id",
            "agent_id",
            "requested_by",
            "requested_by_api_key",
            "requested_role",
            "approver_role",
            "allow_self_approval",
            "decided_by",
            "decided_by_api_key",
            "decided_at",
            "decision_note",
            "expires_at",
            "result",
            "result_chars",
            "error",
            "executed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_result(self, obj) -> str:
        return result_of(obj)

    def get_result_chars(self, obj) -> int:
        return result_chars_of(obj)


class DraftConfirmSerializer(StrictSerializer):
    """Confirm a pending draft, optionally with edited arguments."""

    note = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")
    arguments = JSONObjectField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Edited arguments to run instead of the proposed ones (checked against the tool's schema); "
        "null or absent: run the proposed arguments.",
    )

    def validate_arguments(self, value):
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class DraftRejectSerializer(StrictSerializer):
    note = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")


# --- tool invocations ---------------------------------------------------------------------------


class ToolInvocationSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True, allow_null=True)
    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    draft_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The draft this call created or ran.")
    user_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The user whose chat made the call.")
    api_key_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The API key that chatted.")
    arguments = JSONObjectField(read_only=True)
    result_truncated = serializers.BooleanField(
        read_only=True, help_text="The tool's result was cut at the tool's max_result_chars."
    )
    result = serializers.SerializerMethodField(help_text=RESULT_HELP)
    result_chars = serializers.SerializerMethodField(help_text="Length of the whole (stored) result.")

    class Meta:
        model = ToolInvocation
        fields = [
            "id",
            "tool",
            "call_id",
            "status",
            "execution",
            "agent_id",
            "conversation_id",
            "draft_id",
            "user_id",
            "api_key_id",
            "role",
            "arguments",
            "result",
            "result_chars",
            "result_truncated",
            "error",
            "duration_ms",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_result(self, obj) -> str:
        return result_of(obj)

    def get_result_chars(self, obj) -> int:
        return result_chars_of(obj)
