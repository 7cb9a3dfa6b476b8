"""Prometheus metrics of the chat runtime (multiprocess-safe through
prometheus_client when PROMETHEUS_MULTIPROC_DIR is set)."""

from prometheus_client import Counter, Gauge, Histogram

from agenthub.metrics import LATENCY_BUCKETS, tenant_label

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

ws_rate_limited = Counter(
    "agenthub_chat_rate_limited_total",
    "Chat messages and frames refused by a limit (frame rate, message rate per connection or user, concurrent turns).",
    ["reason"],
)


def agent_label(slug: str) -> str:
    return tenant_label(slug)
