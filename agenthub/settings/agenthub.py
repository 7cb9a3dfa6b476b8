"""AgentHub's own knobs: version, invitations, the model layer, the chat
runtime and its rate limits, tools and drafts, and /metrics."""

from .environment import env

AGENTHUB_VERSION = "0.1.0"

# Invitations (accounts): how long a link works, how many may be pending per
# organization, how many an organization may send per hour; links point at
# AGENTHUB_PUBLIC_URL (never at the request's Host header).
INVITATION_TTL_SECONDS = env.int("INVITATION_TTL_SECONDS", default=7 * 86400)
INVITATIONS_MAX_PENDING = env.int("INVITATIONS_MAX_PENDING", default=200)
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=50)
AGENTHUB_PUBLIC_URL = env.str("AGENTHUB_PUBLIC_URL", default="http://127.0.0.1:8000")

# --- model layer (integrations.llm) -------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
# "offline" is the built-in deterministic model of the embedded demo; every
# other name is served by the OpenAI-compatible server at OPENAI_BASE_URL.
AGENTHUB_DEFAULT_MODEL = env.str(
    "AGENTHUB_DEFAULT_MODEL", default="gpt-4o-mini" if (OPENAI_API_KEY or OPENAI_BASE_URL) else "offline"
)
# Models operators may choose, as "name" or "name:context_window_tokens".
AGENTHUB_MODELS = env.list(
    "AGENTHUB_MODELS", default=["offline:8192", "gpt-4o-mini:128000", "gpt-4o:128000", "gpt-4.1-mini:1000000"]
)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60.0)
LLM_CONNECT_TIMEOUT_SECONDS = env.float("LLM_CONNECT_TIMEOUT_SECONDS", default=5.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_OFFLINE_TOKEN_DELAY_MS = env.int("LLM_OFFLINE_TOKEN_DELAY_MS", default=25)
# Retries of a failed model call (429, 5xx, timeouts, connection errors) before
# any token was streamed: on another deployment of the model when there is one,
# with backoff when the same one is tried again.
LLM_RETRY_BACKOFF_SECONDS = env.float("LLM_RETRY_BACKOFF_SECONDS", default=0.25)
# Circuit breakers per model deployment, shared by every process through Redis:
# open after THRESHOLD failures within WINDOW seconds, one probe after TIMEOUT
# seconds (a deployment may override both in the admin).
CIRCUIT_BREAKER_THRESHOLD = env.int("CIRCUIT_BREAKER_THRESHOLD", default=5)
CIRCUIT_BREAKER_TIMEOUT_SECS = env.int("CIRCUIT_BREAKER_TIMEOUT_SECS", default=30)
CIRCUIT_BREAKER_WINDOW_SECS = env.int("CIRCUIT_BREAKER_WINDOW_SECS", default=60)
# Calls in flight per organization, across processes (0: no cap), and how long a
# call waits for a free slot (its organization's or a deployment's) before it is
# refused with capacity_exceeded.
MODEL_MAX_CONCURRENT_PER_ORGANIZATION = env.int("MODEL_MAX_CONCURRENT_PER_ORGANIZATION", default=0)
MODEL_SLOT_WAIT_SECONDS = env.float("MODEL_SLOT_WAIT_SECONDS", default=2.0)
# How long an agent's response cache keeps an answer (agents opt in).
RESPONSE_CACHE_TTL_SECONDS = env.int("RESPONSE_CACHE_TTL_SECONDS", default=3600)
# How soon a process sees deployments changed in the admin by another process.
MODEL_ROUTES_REFRESH_SECONDS = env.float("MODEL_ROUTES_REFRESH_SECONDS", default=5.0)

# On SIGTERM a web process (daphne via agenthub.server) stops starting turns, lets
# running ones finish up to this long, then tells websockets to reconnect elsewhere.
DRAIN_TIMEOUT_SECONDS = env.float("DRAIN_TIMEOUT_SECONDS", default=25.0)

# Write-behind (agenthub.journal): the OpenAI-compatible API's conversations,
# messages and ledger rows go through a Redis stream and are written in batches
# (needs REDIS_URL; off: written on the request's path).  An entry a dead process
# had taken is picked up by another after JOURNAL_CLAIM_IDLE_SECONDS.
WRITE_BEHIND = env.bool("WRITE_BEHIND", default=True)
JOURNAL_CLAIM_IDLE_SECONDS = env.float("JOURNAL_CLAIM_IDLE_SECONDS", default=30.0)
# Web processes drain the journal themselves; off, only Celery beat's
# chat.tasks.journal_drain (every minute) and manage.py journal_drain do.
JOURNAL_DRAIN_IN_WEB = env.bool("JOURNAL_DRAIN_IN_WEB", default=True)

# --- chat runtime (the chat app) ------------------------------------------------------
CONVERSATION_TTL_SECONDS = env.int("CONVERSATION_TTL_SECONDS", default=3600)
CHAT_MAX_PROMPT_CHARS = env.int("CHAT_MAX_PROMPT_CHARS", default=32000)
# The most messages one /v1/chat/completions request may send (the whole prompt must
# also fit the agent's model context window).
CHAT_MAX_MESSAGES = env.int("CHAT_MAX_MESSAGES", default=500)
CHAT_HISTORY_MAX_MESSAGES = env.int("CHAT_HISTORY_MAX_MESSAGES", default=50)
CHAT_REPLAY_MAX_EVENTS = env.int("CHAT_REPLAY_MAX_EVENTS", default=5000)
CHAT_REPLAY_TTL_SECONDS = env.int("CHAT_REPLAY_TTL_SECONDS", default=3600)
CHAT_TURN_TIMEOUT_SECONDS = env.int("CHAT_TURN_TIMEOUT_SECONDS", default=300)
# Limits on chat traffic (agenthub.ratelimit). Websocket frames of any type, per
# connection; websocket messages per connection; messages per user (or API key
# or visitor) across all connections and processes (Redis); turns running at
# once per user, on every surface (websocket, REST/SSE, /v1). 0 turns a limit off.
WS_FRAMES_PER_SECOND = env.float("WS_FRAMES_PER_SECOND", default=10)
WS_FRAME_BURST = env.int("WS_FRAME_BURST", default=30)
WS_MESSAGES_PER_MINUTE_PER_CONNECTION = env.float("WS_MESSAGES_PER_MINUTE_PER_CONNECTION", default=20)
WS_MESSAGE_BURST_PER_CONNECTION = env.int("WS_MESSAGE_BURST_PER_CONNECTION", default=5)
CHAT_MESSAGES_PER_MINUTE_PER_USER = env.float("CHAT_MESSAGES_PER_MINUTE_PER_USER", default=60)
CHAT_MESSAGE_BURST_PER_USER = env.int("CHAT_MESSAGE_BURST_PER_USER", default=10)
CHAT_MAX_CONCURRENT_TURNS_PER_USER = env.int("CHAT_MAX_CONCURRENT_TURNS_PER_USER", default=4)

# --- tools and drafts (the tools app) --------------------------------------------
# Modules whose @tool functions are registered at start-up (the built-ins, plus yours).
AGENTHUB_TOOL_MODULES = ["tools.builtin", *env.list("AGENTHUB_EXTRA_TOOL_MODULES", default=[])]
TOOL_DEFAULT_TIMEOUT_SECONDS = env.int("TOOL_DEFAULT_TIMEOUT_SECONDS", default=30)
TOOL_RESULT_MAX_CHARS = env.int("TOOL_RESULT_MAX_CHARS", default=16000)
# Pending drafts expire after this long (swept by Celery beat every minute).
DRAFT_TTL_SECONDS = env.int("DRAFT_TTL_SECONDS", default=86400)

# --- billing (the billing app) ---------------------------------------------------
# The currency of organizations without a billing account of their own.
BILLING_DEFAULT_CURRENCY = env.str("BILLING_DEFAULT_CURRENCY", default="USD").upper()
# Budgets and prices are cached in each process for this long: a new budget
# or price applies everywhere within it (and at once in the process that
# wrote it).
BILLING_CONFIG_CACHE_SECONDS = env.float("BILLING_CONFIG_CACHE_SECONDS", default=5.0)
# The output tokens a call reserves against budgets when its agent sets no
# maximum.
BILLING_DEFAULT_MAX_OUTPUT_TOKENS = env.int("BILLING_DEFAULT_MAX_OUTPUT_TOKENS", default=4096)
# With Redis unreachable, budgets cannot be checked: refuse model calls
# (the default) rather than run them unmetered.  On for single-node demos
# that accept the risk.
BILLING_FAIL_OPEN = env.bool("BILLING_FAIL_OPEN", default=False)
# The name at the top of invoices.
BILLING_SELLER_NAME = env.str("BILLING_SELLER_NAME", default="AgentHub")
# Stripe (payments of invoices through Checkout).  Empty keys switch it off:
# invoices are then paid by recording bank transfers.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_SUCCESS_URL = env.str("STRIPE_SUCCESS_URL", default="http://127.0.0.1:8000/admin/billing/invoice/")
STRIPE_CANCEL_URL = env.str("STRIPE_CANCEL_URL", default="http://127.0.0.1:8000/admin/billing/invoice/")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
# A signed event older than this is refused (a replay).
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)

# --- metrics ----------------------------------------------------------------------
# /metrics needs a bearer token or a client address (or network) from the
# allowlist. With neither set it is closed, unless METRICS_ALLOW_ANONYMOUS is
# on (the development default; check --deploy warns about it).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
METRICS_ALLOW_ANONYMOUS = env.bool("METRICS_ALLOW_ANONYMOUS", default=False)
# Labels naming an organization's objects (agent slugs, operator-defined tool
# names) are hidden unless this is on: anyone who can scrape /metrics would
# otherwise learn every tenant's agents and volumes.
METRICS_TENANT_LABELS = env.bool("METRICS_TENANT_LABELS", default=False)
PROMETHEUS_EXPORT_MIGRATIONS = False
