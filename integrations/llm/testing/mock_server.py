"""An OpenAI-compatible model server for tests and benchmarks.

A plain ASGI app served by uvicorn (httptools, uvloop), so the real ``openai``
client code runs against it, and fast enough to be the baseline of the
benchmarks (hundreds of concurrent streams).  No Django.

Endpoints: ``GET /v1/models``, ``GET /v1/models/<id>``,
``POST /v1/chat/completions`` (streaming SSE or not, usage, tool calls) and
``GET /health``.

Answers are deterministic: ``tokens`` words derived from the prompt.  When the
request offers tools and the last user message names one, the answer is a call
to it (arguments from ``name({...})`` right after the name); when the last
message is a tool result, the answer reports it.

Faults, for the whole server (:class:`MockConfig`) or per request, through
directives in the last user message (removed before answering; they apply to
every call until the next user message, except ``tool``, which yields to a
tool result so that a tool round ends)::

    [[mock:error=500]]  [[mock:error=429]]  (any 4xx/5xx status)
    [[mock:timeout]]            accept, never answer
    [[mock:drop_after=3]]       close the connection after 3 tokens, no [DONE]
    [[mock:tokens=5]]  [[mock:ttft_ms=50]]  [[mock:token_delay_ms=5]]
    [[mock:tool=NAME]]  [[mock:tool=NAME {"json": "args"}]]

A request for the model ``mock-error-<status>`` (e.g. ``mock-error-500``)
always fails with that status, which makes fallbacks easy to test.

In-process use::

    with serving(MockConfig(tokens=8)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")

Command line: ``python manage.py mock_llm_server --help``.
"""

from integrations.llm.testing.app import MockLLMApp
from integrations.llm.testing.directives import (
    DEFAULT_MODELS,
    DirectiveError,
    Directives,
    MockConfig,
    answer_tokens,
    parse_directives,
)
from integrations.llm.testing.serving import (
    MockServer,
    SignalFreeServer,
    bind_socket,
    new_event_loop,
    run_in_thread,
    serving,
    url_for,
    uvicorn_config,
)

__all__ = [
    "DEFAULT_MODELS",
    "DirectiveError",
    "Directives",
    "MockConfig",
    "MockLLMApp",
    "MockServer",
    "SignalFreeServer",
    "answer_tokens",
    "bind_socket",
    "new_event_loop",
    "parse_directives",
    "run_in_thread",
    "serving",
    "url_for",
    "uvicorn_config",
]
