"""Admin for tools: operator-defined HTTP tools, the invocation log and drafts."""

from tools.admin import drafts, http_tools  # noqa: F401  (registers the admins)
