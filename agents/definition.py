"""An agent definition's fields, declared once.  The selectors, services,
YAML documents, serializers, admin and the chat runtime's query all derive
their field lists from these."""

# Who the agent is (not versioned: renaming does not need a publish).
IDENTITY_FIELDS = ("name", "slug", "description", "industry")
# How the agent behaves; a published version freezes these.
BEHAVIOUR_FIELDS = (
    "system_prompt",
    "model",
    "fallback_models",
    "temperature",
    "max_output_tokens",
    "max_tool_rounds",
    "response_cache",
)
# Numbers with model defaults that templates and imports may leave out.
TUNING_FIELDS = ("temperature", "max_output_tokens", "max_tool_rounds")

# What an operator edits (API, admin).
EDITABLE_FIELDS = IDENTITY_FIELDS + BEHAVIOUR_FIELDS
# What a version snapshots, compared to tell unpublished changes.
SNAPSHOT_FIELDS = ("name", *BEHAVIOUR_FIELDS)
# A version's behaviour including its tool grants (YAML ``spec``, the runtime).
SPEC_FIELDS = (*BEHAVIOUR_FIELDS, "tools")
# A published version's columns the chat runtime loads for a turn.
RUNTIME_VERSION_FIELDS = ("id", "number", *SPEC_FIELDS)
