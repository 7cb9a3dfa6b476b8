"""Prometheus metrics of tool calls and drafts."""

from prometheus_client import Counter, Histogram

from agenthub.metrics import LATENCY_BUCKETS, tenant_label
from tools.registry import builtin_tool

tool_executions = Counter(
    "agenthub_tool_executions_total",
    "Tool calls by tool, where they ran and outcome (ok, error, timeout, refused, invalid, drafted).",
    ["tool", "execution", "status"],
)
tool_duration = Histogram(
    "agenthub_tool_duration_seconds", "Duration of tool executions.", ["tool", "execution"], buckets=LATENCY_BUCKETS
)
draft_decisions = Counter(
    "agenthub_draft_decisions_total",
    "Draft decisions and outcomes (confirmed, rejected, expired, executed, failed).",
    ["tool", "outcome"],
)


def tool_label(name: str) -> str:
    """A tool's label: built-in and Python tools are the platform's and keep
    their names; operator-defined (HTTP) tools are an organization's data."""
    return name if builtin_tool(name) is not None else tenant_label(name)
