"""Serializers for the agents API.

Input serializers are strict (unknown fields are a 400) and check types and
lengths; the rules that need the database or the configuration (available
models, unique slugs, publishing state) are the services'.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.roles import Role
from agenthub.api.serializers import StrictBooleanField, StrictSerializer
from agents import catalog, selectors
from agents.definition import EDITABLE_FIELDS, SNAPSHOT_FIELDS
from agents.models import Agent, AgentStatus, AgentVersion, ResponseCache
from agents.services.agents import BULK_MAX_IDS, MAX_FALLBACK_MODELS, TEXT_LIMITS, BulkAction
from agents.services.grants import GRANTS_MAX
from agents.services.publishing import NOTE_MAX

# --- fields ------------------------------------------------------------------------------------


class StrictFloatField(serializers.FloatField):
    """A number; ``true``/``false`` are not numbers."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- agents ------------------------------------------------------------------------------------


class AgentVersionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentVersion
        fields = ["id", "number", "published_at"]
        read_only_fields = fields


class AgentSerializer(serializers.ModelSerializer):
    fallback_models = serializers.ListField(child=serializers.CharField(), read_only=True)
    live_version = AgentVersionBriefSerializer(
        read_only=True, allow_null=True, help_text="The version chats run against; null until published."
    )
    has_unpublished_changes = serializers.SerializerMethodField(
        help_text="True when the definition differs from the live version (or there is none)."
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username; null when made with an API key."
    )
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username of the last editor."
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            *EDITABLE_FIELDS,
            "status",
            "live_version",
            "has_unpublished_changes",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_unpublished_changes(self, obj) -> bool:
        return selectors.agent_has_unpublished_changes(obj)


def _industry_choices():
    return [("", "(none)"), *((i.id, i.name) for i in catalog.industry_list())]


class AgentWriteSerializer(StrictSerializer):
    """Create (``name`` required) or change (every field optional) an agent."""

    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(
        max_length=64, required=False, help_text="Unique in the organization; derived from the name when omitted."
    )
    description = serializers.CharField(max_length=TEXT_LIMITS["description"], allow_blank=True, required=False)
    industry = serializers.ChoiceField(
        choices=_industry_choices(), allow_blank=True, required=False, help_text="An id from /api/v1/industries."
    )
    system_prompt = serializers.CharField(
        max_length=TEXT_LIMITS["system_prompt"], allow_blank=True, required=False, trim_whitespace=False
    )
    model = serializers.CharField(
        max_length=100, required=False, help_text="One of the models in /api/v1/config; defaults to the default model."
    )
    fallback_models = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=MAX_FALLBACK_MODELS,
        required=False,
        help_text="Models tried in order when the model fails.",
    )
    temperature = StrictFloatField(min_value=0.0, max_value=2.0, required=False)
    max_output_tokens = StrictIntegerField(min_value=1, max_value=32768, required=False)
    max_tool_rounds = StrictIntegerField(min_value=0, max_value=20, required=False)
    response_cache = serializers.ChoiceField(
        choices=ResponseCache.choices,
        required=False,
        help_text="off; deterministic (replay answers of calls at temperature 0); always.",
    )


class AgentVersionSerializer(serializers.ModelSerializer):
    published_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username; null when published with an API key.",
    )
    fallback_models = serializers.ListField(child=serializers.CharField(), read_only=True)
    tools = serializers.ListField(child=serializers.CharField(), read_only=True)
    is_live = serializers.SerializerMethodField()

    class Meta:
        model = AgentVersion
        fields = [
            "id",
            "number",
            *SNAPSHOT_FIELDS,
            "tools",
            "note",
            "published_by",
            "published_at",
            "is_live",
        ]
        read_only_fields = fields

    def get_is_live(self, obj) -> bool:
        return str(obj.pk) == str(self.context.get("live_version_id"))


class AgentPublishSerializer(StrictSerializer):
    """Publish or deploy: an optional note recorded on the new version."""

    note = serializers.CharField(max_length=NOTE_MAX, allow_blank=True, required=False, default="")


class AgentRollbackSerializer(StrictSerializer):
    """The version to make live again."""

    version = StrictIntegerField(min_value=1, help_text="The number of the version to make live.")


class AgentStatusSerializer(StrictSerializer):
    """The new status."""

    status = serializers.ChoiceField(choices=AgentStatus.choices, help_text="'active' needs a published version.")


class AgentBulkSerializer(StrictSerializer):
    """One action on several agents, all or nothing."""

    action = serializers.ChoiceField(
        choices=BulkAction.CHOICES, help_text="enable and disable need the operator role, delete the admin role."
    )
    ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=BULK_MAX_IDS, help_text="Agent ids."
    )


class AgentBulkResultSerializer(serializers.Serializer):
    """What the bulk action did: the agents it applied to, in request order."""

    action = serializers.ChoiceField(choices=BulkAction.CHOICES)
    count = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.UUIDField())


class AgentImportSerializer(StrictSerializer):
    """An agent document sent as JSON."""

    yaml = serializers.CharField(trim_whitespace=False, help_text="An agent document (see the export endpoint).")


# --- templates ------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "array",
                "items": {"type": "string", "maxLength": catalog.ITEM_MAX},
                "maxItems": catalog.ITEMS_MAX,
            },
            {"type": "string", "maxLength": catalog.GOALS_TEXT_MAX},
        ]
    }
)
class GoalsField(serializers.Field):
    """A list of goals, or text with one goal per line."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class TemplateAnswersSerializer(serializers.Serializer):
    """The answers a template asks for.  This describes them in the schema;
    the template service checks them (unknown keys too) and reports errors
    as ``answers.<name>``."""

    company_name = serializers.CharField(max_length=catalog.COMPANY_NAME_MAX)
    tone = serializers.CharField(max_length=catalog.TONE_MAX, required=False, help_text="e.g. friendly, professional")
    goals = GoalsField(required=False, help_text="A list, or text with one goal per line.")
    do = serializers.ListField(
        child=serializers.CharField(max_length=catalog.ITEM_MAX), max_length=catalog.ITEMS_MAX, required=False
    )
    dont = serializers.ListField(
        child=serializers.CharField(max_length=catalog.ITEM_MAX), max_length=catalog.ITEMS_MAX, required=False
    )
    extra = serializers.CharField(max_length=catalog.EXTRA_MAX, required=False, allow_blank=True)


@extend_schema_field(TemplateAnswersSerializer)
class AnswersField(serializers.DictField):
    """An object, passed to the template service as it is."""


class TemplatePreviewSerializer(StrictSerializer):
    """The answers to render the template with."""

    answers = AnswersField()


class TemplatePreviewResultSerializer(serializers.Serializer):
    template = serializers.CharField()
    prompt = serializers.CharField()


class AgentFromTemplateSerializer(StrictSerializer):
    """A template, the new agent's name (and optionally slug and model), and
    the answers the template asks for."""

    template = serializers.ChoiceField(
        choices=[(t.id, t.name) for t in catalog.TEMPLATES], help_text="A template id from /api/v1/templates."
    )
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=64, required=False)
    model = serializers.CharField(max_length=100, required=False)
    answers = AnswersField()


class AnswerFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(choices=["string", "text", "list", "string_or_list"])
    required = serializers.BooleanField()
    help_text = serializers.CharField()
    max_length = serializers.IntegerField(allow_null=True)
    max_items = serializers.IntegerField(allow_null=True)
    suggestions = serializers.ListField(child=serializers.CharField())
    default = serializers.JSONField(allow_null=True, help_text="The template's default answer, if any.")


class TemplateSerializer(serializers.Serializer):
    id = serializers.CharField()
    industry = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    agent_name = serializers.CharField(help_text="A suggested name for agents made from it.")
    default_tone = serializers.CharField()
    suggested_goals = serializers.ListField(child=serializers.CharField())


class TemplateDetailSerializer(TemplateSerializer):
    practices = serializers.ListField(child=serializers.CharField(), help_text="How the assistant works.")
    suggested_do = serializers.ListField(child=serializers.CharField())
    suggested_dont = serializers.ListField(child=serializers.CharField())
    safety = serializers.SerializerMethodField(help_text="The industry's safety lines every prompt includes.")
    answer_fields = serializers.SerializerMethodField(help_text="The answers the template asks for.")

    def get_safety(self, obj) -> list[str]:
        industry = catalog.industry_get(obj.industry)
        return list(industry.safety) if industry else []

    @extend_schema_field(AnswerFieldSerializer(many=True))
    def get_answer_fields(self, obj):
        return AnswerFieldSerializer(catalog.answer_fields_for(obj), many=True).data


class IndustrySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    safety = serializers.ListField(child=serializers.CharField())
    templates = serializers.SerializerMethodField(help_text="Ids of the industry's templates.")

    def get_templates(self, obj) -> list[str]:
        return catalog.template_ids_of(obj.id)


# --- configuration ------------------------------------------------------------------------------


class ModelInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    provider = serializers.CharField(help_text="'offline' (built in) or 'openai' (an OpenAI-compatible server).")
    context_window = serializers.IntegerField(help_text="Tokens.")


class AgentDefaultsSerializer(serializers.Serializer):
    temperature = serializers.FloatField()
    max_output_tokens = serializers.IntegerField()
    max_tool_rounds = serializers.IntegerField()


class RangeSerializer(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()


class AgentLimitsSerializer(serializers.Serializer):
    temperature = RangeSerializer()
    max_output_tokens = RangeSerializer()
    max_tool_rounds = RangeSerializer()
    system_prompt_max_chars = serializers.IntegerField()
    description_max_chars = serializers.IntegerField()
    max_fallback_models = serializers.IntegerField()


class AgentConfigSerializer(serializers.Serializer):
    models = ModelInfoSerializer(many=True)
    default_model = serializers.CharField()
    defaults = AgentDefaultsSerializer()
    limits = AgentLimitsSerializer()
    chat_max_prompt_chars = serializers.IntegerField(help_text="The longest chat message accepted, in characters.")


# --- grants ------------------------------------------------------------------------------------


class ToolGrantSerializer(StrictSerializer):
    """One tool granted to an agent; null overrides keep the tool's own rule."""

    tool = serializers.CharField(max_length=64, help_text="A tool name from /api/v1/tools.")
    min_role = serializers.ChoiceField(
        choices=Role.choices,
        allow_null=True,
        required=False,
        default=None,
        help_text="Null: the tool's own minimum role.",
    )
    requires_approval = StrictBooleanField(
        allow_null=True, required=False, default=None, help_text="Null: the tool's own approval rule."
    )


class AgentToolsWriteSerializer(StrictSerializer):
    """The agent's complete set of grants (it replaces the current one)."""

    tools = ToolGrantSerializer(many=True, max_length=GRANTS_MAX, help_text="Each tool at most once.")


class AgentToolsSerializer(serializers.Serializer):
    agent = serializers.UUIDField(help_text="The agent's id.")
    tools = ToolGrantSerializer(many=True, help_text="The working grants (what the next publish records).")
    published = ToolGrantSerializer(
        many=True, allow_null=True, help_text="The grants of the live version, which chats use; null until published."
    )
    unpublished = serializers.BooleanField(help_text="True when the grants differ from the live version's.")
    detail = serializers.CharField(help_text="Grants apply to chats when the agent is next published.")
