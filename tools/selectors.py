"""What a caller may see of drafts and tool calls: everything of their
organization for operators and above, their own otherwise (the rule of
:mod:`accounts.callers`)."""

from django.db.models import QuerySet

from accounts.callers import Caller, rows_visible_to
from tools.models import Draft, ToolInvocation


def draft_list_for(*, caller: Caller) -> QuerySet[Draft]:
    """The drafts the caller may see: the ones they asked for, or all of the
    organization's for operators and above."""
    return rows_visible_to(Draft.objects.all(), caller, user_field="requested_by", api_key_field="requested_by_api_key")


def tool_invocation_list_for(*, caller: Caller) -> QuerySet[ToolInvocation]:
    """The tool calls the caller may see (as for drafts)."""
    return rows_visible_to(ToolInvocation.objects.all(), caller, user_field="user", api_key_field="api_key")
