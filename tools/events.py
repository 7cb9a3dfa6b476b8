"""What a tool call and a draft report while they happen.  The chat protocol
(:mod:`chat.events`) carries these as events of the same names; a workflow
step records them in its own log."""

TOOL_STARTED = "tool.started"
TOOL_FINISHED = "tool.finished"
DRAFT_CREATED = "draft.created"
DRAFT_UPDATED = "draft.updated"
