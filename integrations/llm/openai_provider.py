"""A provider for OpenAI and every OpenAI-compatible server (vLLM, Ollama,
llama.cpp, Azure...), through the ``openai`` SDK's async client.

One client per provider and per event loop: an HTTP connection pool belongs to
the loop that opened it.  The ASGI server has one loop, so one pool serves
every chat; code that runs on short-lived loops (tests, ``async_to_sync``)
gets a fresh client per loop, and clients of closed loops are dropped.

The pool is sized for hundreds of concurrent streams (HTTP/1.1 holds one
connection per stream).  The SDK sends the request, retries connection
errors, timeouts, 408, 409, 429 and 5xx ``max_retries`` times with backoff
(honouring Retry-After) and raises typed errors for failed statuses.  The
stream body is read through the SDK's raw streaming response and decoded here
(plain JSON, no pydantic model per chunk): per chunk that costs about half the
CPU, which is what bounds the number of concurrent streams a process can carry.
Every failure surfaces as :class:`LLMError`.
"""

import asyncio
import contextlib
import json
import logging
import ssl
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import httpx2
import openai

from integrations.llm.types import ChatRequest, Finish, LLMError, StreamEvent, TextDelta, ToolCall, Usage

logger = logging.getLogger(__name__)

# Enough for 500+ concurrent streams per process, kept alive between chats.
MAX_CONNECTIONS = 1000
# Idle connections are dropped before servers drop them (uvicorn, and so
# vLLM, closes idle keep-alive connections after 5 s): reusing a connection
# the server is closing would fail the request.
KEEPALIVE_EXPIRY_SECONDS = 4.0
# After [DONE], how long to wait for the end of the body so that the
# connection can go back to the pool.
DRAIN_SECONDS = 0.1

# Reading the body failed: the HTTP clients' errors (what the SDK itself treats
# as connection errors).
_TIMEOUT_ERRORS = (httpx2.TimeoutException, httpx.TimeoutException)
_READ_ERRORS = (httpx2.RequestError, httpx.RequestError, anyio.EndOfStream, ssl.SSLError)


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _StreamState:
    tool_parts: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None


async def sse_events(response: httpx2.Response) -> AsyncIterator[tuple[str, str]]:
    """``(event, data)`` for each server-sent event of ``response``.

    Lines are split from the raw bytes (ended by LF or CRLF): a fraction of
    the cost of the HTTP client's text-line decoder, per chunk of every
    stream."""
    event, data = "", []
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if data:
                    yield event or "message", "\n".join(data)
                event, data = "", []
                continue
            if line.startswith(b":"):
                continue  # a comment (keep-alive)
            name, _, value = line.decode("utf-8", "replace").partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    if pending.strip():
        name, _, value = pending.decode("utf-8", "replace").strip().partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a last event without its blank line
        yield event or "message", "\n".join(data)


class OpenAICompatibleProvider:
    """Streams chat completions from an OpenAI-compatible server.

    ``base_url`` empty means api.openai.com (which then needs ``api_key``);
    a self-hosted server usually needs no key.  ``timeout`` bounds each wait
    for the server (including the gap between two streamed chunks),
    ``connect_timeout`` the TCP/TLS connect.  ``transport`` replaces the
    HTTP transport (an ``httpx2`` transport: the SDK's HTTP client).
    """

    def __init__(
        self,
        *,
        name: str = "openai",
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        max_connections: int = MAX_CONNECTIONS,
        transport: httpx2.AsyncBaseTransport | None = None,
    ):
        self.name = name
        self.base_url = base_url or None
        self._api_key = api_key or ""
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.max_connections = max_connections
        self._transport = transport  # a custom HTTP transport (tests, proxies)
        self._clients: dict[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the API key
        return f"OpenAICompatibleProvider(name={self.name!r}, base_url={self.base_url!r})"

    # --- clients ---------------------------------------------------------------

    def _new_client(self) -> openai.AsyncOpenAI:
        timeout = httpx2.Timeout(self.timeout, connect=self.connect_timeout)
        http_client = httpx2.AsyncClient(
            timeout=timeout,
            limits=httpx2.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            ),
            follow_redirects=True,
            transport=self._transport,
        )
        return openai.AsyncOpenAI(
            # Self-hosted servers usually ignore the key, but the SDK wants one.
            api_key=self._api_key or "not-needed",
            base_url=self.base_url,
            timeout=timeout,
            max_retries=self.max_retries,
            http_client=http_client,
        )

    def client(self) -> openai.AsyncOpenAI:
        """The client of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for stale in [other for other in self._clients if other.is_closed()]:
                    del self._clients[stale]
                client = self._clients[loop] = self._new_client()
            return client

    async def aclose(self) -> None:
        """Closes the running loop's client and its connections."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.close()

    # --- streaming -------------------------------------------------------------

    def _create_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """:meth:`_body` as the SDK's ``create`` arguments (messages and
        tools passed through as they are, not re-validated per call)."""
        body = self._body(request)
        passed = {key: body.pop(key) for key in ("messages", "tools") if key in body}
        return {**body, "messages": [], "extra_body": passed}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [message.as_openai() for message in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [tool.as_openai() for tool in request.tools]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            body["max_tokens"] = request.max_output_tokens
        return body

    async def _send(self, request: ChatRequest) -> httpx2.Response:
        """The upstream's streaming response, sent through the SDK client's
        HTTP client (its connection pool, timeouts, headers and error types)
        without the SDK's per-request machinery (request option models, its
        retry loop, response wrappers), which cost more CPU than the rest of
        the call: with ``max_retries`` 0 (the gateway retries across
        deployments itself) there is nothing for that machinery to do."""
        client = self.client()
        http = client._client
        headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
        headers.update(client.auth_headers)
        outgoing = http.build_request(
            "POST", f"{client.base_url}chat/completions", json=self._body(request), headers=headers
        )
        try:
            response = await http.send(outgoing, stream=True)
        except httpx2.TimeoutException as exc:
            error = openai.APITimeoutError(request=outgoing)
            error.__cause__ = exc
            raise error from exc
        except httpx2.RequestError as exc:
            raise openai.APIConnectionError(request=outgoing) from exc
        if response.status_code >= 400:
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise client._make_status_error_from_response(response)
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if not self.base_url and not self._api_key:
            raise LLMError(
                f"No API key is configured for {self.name}: set OPENAI_API_KEY, or OPENAI_BASE_URL for a "
                "self-hosted OpenAI-compatible server.",
                kind="auth",
                provider=self.name,
            )
        state = _StreamState()
        async with contextlib.AsyncExitStack() as stack:
            try:
                if self.max_retries:
                    response = await stack.enter_async_context(
                        self.client().chat.completions.with_streaming_response.create(**self._create_kwargs(request))
                    )
                    http_response = response.http_response
                else:
                    http_response = await self._send(request)
                    stack.push_async_callback(http_response.aclose)
            except openai.OpenAIError as exc:
                raise self._error(exc, model=request.model) from exc
            events = await stack.enter_async_context(aclosing(sse_events(http_response)))
            done = False
            try:
                async for event, data in events:
                    if data == "[DONE]":
                        done = True
                        break
                    for item in self._read_chunk(event, data, state):
                        yield item
            except _TIMEOUT_ERRORS as exc:
                raise LLMError(
                    f"{self.name}: the model server stopped sending mid-stream (no data for {self.timeout:g} s).",
                    kind="timeout",
                    provider=self.name,
                ) from exc
            except _READ_ERRORS as exc:
                raise LLMError(
                    f"{self.name}: the connection to the model server dropped mid-stream.",
                    kind="stream_dropped",
                    provider=self.name,
                ) from exc
            if done:
                await self._drain(events)

        if state.finish_reason is None:
            raise LLMError(
                f"{self.name}: the stream ended without a finish reason.",
                kind="stream_dropped",
                provider=self.name,
            )
        calls = [call for index in sorted(state.tool_parts) if (call := self._tool_call(state.tool_parts[index]))]
        for call in calls:
            yield call
        reason = state.finish_reason
        if calls and reason == "stop":
            reason = "tool_calls"  # some servers (Ollama) say "stop" after tool calls
        yield Finish(reason=reason, usage=state.usage or Usage(reported=False), model=state.model or request.model)

    def _read_chunk(self, event: str, data: str, state: _StreamState) -> list[TextDelta]:
        """Applies one ``chat.completion.chunk`` to ``state``; its text deltas."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise LLMError(
                f"{self.name}: the model server sent a malformed stream chunk.", kind="server_error", provider=self.name
            )
        error = chunk.get("error")
        if error or event == "error":
            message = error.get("message") if isinstance(error, dict) else error
            raise LLMError(
                f"{self.name}: the model server reported an error mid-stream: {self._scrub(str(message or data))[:500]}",
                kind="server_error",
                provider=self.name,
            )
        state.model = chunk.get("model") or state.model
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            details = usage.get("prompt_tokens_details")
            state.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0),
            )
        deltas = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or (choice.get("index") or 0) != 0:
                continue  # AgentHub asks for one choice
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if content:
                    deltas.append(TextDelta(content))
                for position, part in enumerate(delta.get("tool_calls") or ()):
                    if isinstance(part, dict):
                        self._add_tool_call_part(state.tool_parts, part, position)
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
        return deltas

    @staticmethod
    async def _drain(events: AsyncIterator) -> None:
        """Reads what follows [DONE] (normally only the end of the body), so
        that the connection goes back to the pool instead of being closed."""
        with contextlib.suppress(*_READ_ERRORS), anyio.move_on_after(DRAIN_SECONDS):
            async for _ in events:
                pass

    @staticmethod
    def _add_tool_call_part(tool_parts: dict[int, _ToolCallParts], part: dict, position: int) -> None:
        part_id = part.get("id")
        index = part.get("index")
        if not isinstance(index, int):  # servers that send whole calls without an index
            index = next((i for i, p in tool_parts.items() if part_id and p.id == part_id), len(tool_parts) + position)
        parts = tool_parts.setdefault(index, _ToolCallParts())
        if part_id and not parts.id:
            parts.id = str(part_id)
        function = part.get("function")
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
            if name and name != parts.name:
                parts.name += str(name)
            if arguments:
                parts.arguments += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def _tool_call(self, parts: _ToolCallParts) -> ToolCall | None:
        if not parts.name:
            logger.warning("Dropped a streamed tool call without a name", extra={"provider": self.name})
            return None
        return ToolCall(
            id=parts.id or f"call_{uuid.uuid4().hex[:24]}",
            name=parts.name,
            arguments=parts.arguments or "{}",
        )

    # --- errors ----------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 4:
            text = text.replace(self._api_key, "***")
        return text

    def _error(self, exc: openai.OpenAIError, *, model: str) -> LLMError:
        """The :class:`LLMError` for an SDK error raised before streaming began."""
        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.APITimeoutError):
            kind = "timeout"
            if isinstance(exc.__cause__, httpx2.ConnectTimeout | httpx.ConnectTimeout):
                message = f"could not connect to the model server within {self.connect_timeout:g} s"
            elif isinstance(exc.__cause__, httpx2.PoolTimeout | httpx.PoolTimeout):
                message = f"no free connection to the model server within {self.timeout:g} s"
            else:
                message = f"the model server did not answer within {self.timeout:g} s"
        elif isinstance(exc, openai.APIConnectionError):
            kind, message = "connection", "could not connect to the model server"
        elif isinstance(exc, openai.RateLimitError):
            kind, message = "rate_limited", "the model server is rate limiting requests"
        elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            kind, message = "auth", "the model server refused the credentials"
        elif isinstance(exc, openai.NotFoundError):
            kind, message = "unknown_model", f"the model server does not know the model {model!r}"
        elif isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            kind, message = "bad_request", "the model server rejected the request"
        elif isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                kind, message = "server_error", "the model server failed"
            elif exc.status_code == 408:
                kind, message = "timeout", "the model server timed out"
            elif exc.status_code == 409:
                kind, message = "server_error", "the model server reported a conflict"
            else:
                kind, message = "bad_request", "the model server rejected the request"
        elif isinstance(exc, openai.APIError):
            kind, message = "server_error", "the model server failed"
        else:
            kind, message = "bad_request", "the request could not be sent"
        detail = self._server_message(exc)
        text = f"{self.name}: {message}" + (f" ({status})" if status else "") + (f": {detail}" if detail else ".")
        return LLMError(text, kind=kind, provider=self.name, status_code=status)

    def _server_message(self, exc: openai.OpenAIError) -> str:
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return self._scrub(error["message"])[:500]
        if isinstance(exc, openai.APIStatusError | openai.APIConnectionError):
            return ""
        return self._scrub(str(exc))[:500]
