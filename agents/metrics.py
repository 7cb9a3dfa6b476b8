"""Prometheus metrics of the chat runtime (multiprocess-safe through
prometheus_client when PROMETHEUS_MULTIPROC_DIR is set)."""

from prometheus_client import Counter, Gauge, Histogram

from agenthub.metrics import tenant_label

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

chat_requests = Counter(
    "agenthub_chat_requests_total", "Chat turns by agent, channel and final status.", ["agent", "channel", "status"]
)
turn_duration = Histogram(
    "agenthub_chat_turn_duration_seconds", "Duration of chat turns.", ["agent", "channel"], buckets=LATENCY_BUCKETS
)
time_to_first_token = Histogram(
    "agenthub_chat_time_to_first_token_seconds",
    "Time from the user's message to the first token.",
    ["agent", "channel"],
    buckets=LATENCY_BUCKETS,
)
websocket_connections = Gauge(
    "agenthub_websocket_connections", "Open chat websocket connections.", multiprocess_mode="livesum"
)
active_turns = Gauge("agenthub_chat_active_turns", "Chat turns running now.", multiprocess_mode="livesum")

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

ws_rate_limited = Counter(
    "agenthub_chat_rate_limited_total",
    "Chat messages and frames refused by a limit (frame rate, message rate per connection or user, concurrent turns).",
    ["reason"],
)


def tool_label(name: str) -> str:
    """A tool's label: built-in and Python tools are the platform's and keep
    their names; operator-defined (HTTP) tools are an organization's data."""
    from agents.tools.registry import builtin_tool

    return name if builtin_tool(name) is not None else tenant_label(name)


def agent_label(slug: str) -> str:
    return tenant_label(slug)
