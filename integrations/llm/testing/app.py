"""The mock model server's ASGI app (see :mod:`integrations.llm.testing.mock_server`)."""

import asyncio
import itertools
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from integrations.llm.offline import tool_result_text
from integrations.llm.scripted import count_words, find_tool_mention, split_tokens, stable_hex, tool_call_id
from integrations.llm.testing.directives import (
    _ARGUMENT_PIECE,
    _ERROR_MODEL,
    MAX_BODY_BYTES,
    DirectiveError,
    MockConfig,
    _as_chat_message,
    _error_body,
    _intentional_abort,
    _prompt_tokens,
    _text_of,
    answer_tokens,
    parse_directives,
)


class _IntentionalAbortFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _intentional_abort.get()


_uvicorn_logger = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _IntentionalAbortFilter) for f in _uvicorn_logger.filters):
    _uvicorn_logger.addFilter(_IntentionalAbortFilter())


@dataclass
class _Plan:
    model: str
    stream: bool
    include_usage: bool
    prompt_tokens: int
    tokens: list[str] = field(default_factory=list)
    tool: tuple[str, str, str] | None = None  # id, name, arguments
    finish_reason: str = "stop"
    ttft: float = 0.0  # seconds
    delay: float = 0.0  # seconds
    drop_after: int | None = None


class _Request:
    """One chat request's connection state: notices a client disconnect."""

    __slots__ = ("gone", "receive", "watcher")

    def __init__(self, receive):
        self.receive = receive
        self.gone = False
        self.watcher: asyncio.Task | None = None

    def watch(self) -> None:
        if self.watcher is None:
            self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                return

    def stop(self) -> None:
        if self.watcher is not None and not self.watcher.done():
            self.watcher.cancel()


class MockLLMApp:
    """The ASGI application.  ``stats`` counts requests and injected faults."""

    def __init__(self, config: MockConfig | None = None):
        self.config = config or MockConfig()
        self.stats: Counter[str] = Counter()
        self._random = random.Random(self.config.seed)
        self._ids = itertools.count(1)
        self._id_prefix = stable_hex(time.time_ns(), length=8)
        self._closing = False
        self._closing_event: asyncio.Event | None = None
        models = {"object": "list", "data": [self._model_object(name) for name in self.config.models]}
        self._models_body = json.dumps(models).encode()

    @staticmethod
    def _model_object(name: str) -> dict:
        return {"id": name, "object": "model", "created": 1700000000, "owned_by": "agenthub-mock"}

    def begin_shutdown(self) -> None:
        """Ends open streams and hung requests (call on the server's loop)."""
        self._closing = True
        if self._closing_event is not None:
            self._closing_event.set()

    # --- ASGI ------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        self.stats["requests"] += 1
        method, path = scope["method"], scope["path"].rstrip("/")
        if path == "/v1/chat/completions":
            if method != "POST":
                return await self._json(send, 405, _error_body(405, "Use POST."))
            return await self._chat(scope, receive, send)
        if path == "/v1/models" and method == "GET":
            return await self._send(send, 200, self._models_body)
        if path.startswith("/v1/models/") and method == "GET":
            name = path.removeprefix("/v1/models/")
            if name in self.config.models or self.config.any_model:
                return await self._json(send, 200, self._model_object(name))
            return await self._json(send, 404, _error_body(404, f"The model `{name}` does not exist."))
        if path == "/health" and method == "GET":
            return await self._json(send, 200, {"status": "ok"})
        await self._json(send, 404, _error_body(404, f"Nothing at {scope['path']}.", code="not_found"))

    async def _send(self, send, status: int, body: bytes, headers: list | None = None) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or ()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _json(self, send, status: int, data: dict, headers: list | None = None) -> None:
        await self._send(send, status, json.dumps(data).encode(), headers)

    async def _read_body(self, receive) -> bytes | None:
        """The request body; ``None`` if the client left, raises
        :class:`OverflowError` past :data:`MAX_BODY_BYTES`."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > MAX_BODY_BYTES:
                raise OverflowError
            chunks.append(body)
            if not message.get("more_body"):
                return b"".join(chunks)

    # --- chat completions -----------------------------------------------------

    def _authorized(self, scope) -> bool:
        if not self.config.api_key:
            return True
        expected = f"Bearer {self.config.api_key}".encode()
        return any(name == b"authorization" and value == expected for name, value in scope["headers"])

    async def _chat(self, scope, receive, send) -> None:
        self.stats["chat_completions"] += 1
        try:
            body = await self._read_body(receive)
        except OverflowError:
            return await self._json(send, 413, _error_body(413))
        if body is None:
            return
        if not self._authorized(scope):
            return await self._json(send, 401, _error_body(401))
        try:
            data = json.loads(body)
        except ValueError:
            return await self._json(send, 400, _error_body(400, "The body is not valid JSON."))
        try:
            plan_or_fault = self._plan(data)
        except DirectiveError as exc:
            return await self._json(send, 400, _error_body(400, str(exc)))
        if isinstance(plan_or_fault, tuple):
            return await self._fault(plan_or_fault, receive, send)
        request = _Request(receive)
        try:
            if plan_or_fault.stream:
                await self._stream(plan_or_fault, request, send)
            else:
                await self._complete(plan_or_fault, request, send)
        finally:
            request.stop()

    def _plan(self, data: Any) -> _Plan | tuple:
        """What to answer, or a fault: ``("error", status, message)`` or ``("timeout",)``."""
        if not isinstance(data, dict):
            return ("error", 400, "The body must be a JSON object.")
        model = data.get("model")
        messages = data.get("messages")
        if not isinstance(model, str) or not model:
            return ("error", 400, "`model` is required.")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return ("error", 400, "`messages` must be a non-empty list of messages.")
        if (forced := _ERROR_MODEL.fullmatch(model)) is not None:
            return ("error", int(forced.group(1)), None)
        if not self.config.any_model and model not in self.config.models:
            return ("error", 404, f"The model `{model}` does not exist or you do not have access to it.")

        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        directives, prompt = parse_directives(_text_of(last_user.get("content")) if last_user else "")
        config = self.config
        if directives.error is not None:
            return ("error", directives.error, None)
        if directives.timeout:
            return ("timeout",)
        if config.error_rate and self._random.random() < config.error_rate:
            return ("error", config.error_status, None)
        if config.timeout_rate and self._random.random() < config.timeout_rate:
            return ("timeout",)
        drop_after = directives.drop_after
        if drop_after is None and config.drop_rate and self._random.random() < config.drop_rate:
            drop_after = config.drop_after

        stream = bool(data.get("stream"))
        options = data.get("stream_options")
        plan = _Plan(
            model=model,
            stream=stream,
            include_usage=stream and isinstance(options, dict) and bool(options.get("include_usage")),
            prompt_tokens=_prompt_tokens(messages),
            ttft=(directives.ttft_ms if directives.ttft_ms is not None else config.ttft_ms) / 1000,
            delay=(directives.token_delay_ms if directives.token_delay_ms is not None else config.token_delay_ms)
            / 1000,
            drop_after=drop_after,
        )

        tools = [
            tool["function"]["name"]
            for tool in data.get("tools") or ()
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name")
        ]
        if messages[-1].get("role") == "tool":
            plan.tokens = split_tokens(tool_result_text(tuple(_as_chat_message(m) for m in messages)))
        else:
            tool = directives.tool
            if tool is None and tools and messages[-1].get("role") == "user":
                tool = find_tool_mention(prompt, tools)
            if tool is not None:
                name, arguments = tool
                plan.tool = (tool_call_id(len(messages), prompt, name, arguments), name, arguments)
                plan.finish_reason = "tool_calls"
            else:
                count = directives.tokens if directives.tokens is not None else config.tokens
                plan.tokens = answer_tokens(prompt.strip(), count)
        limit = data.get("max_completion_tokens") or data.get("max_tokens")
        if plan.tool is None and isinstance(limit, int) and 0 < limit < len(plan.tokens):
            plan.tokens = plan.tokens[:limit]
            plan.finish_reason = "length"
        return plan

    async def _fault(self, fault: tuple, receive, send) -> None:
        if fault[0] == "timeout":
            self.stats["timeouts"] += 1
            request = _Request(receive)
            request.watch()
            closing = asyncio.ensure_future(self._wait_closing())
            try:
                await asyncio.wait({request.watcher, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
                request.stop()
            if not request.gone:  # the server is stopping
                await self._json(send, 503, _error_body(503, "The mock server is shutting down."))
            return
        _, status, message = fault
        self.stats["errors"] += 1
        headers = []
        if status == 429 or status >= 500:
            retry_after_ms = self.config.retry_after_ms
            headers = [
                (b"retry-after-ms", str(retry_after_ms).encode()),
                (b"retry-after", str(max(1, -(-retry_after_ms // 1000))).encode()),
            ]
        await self._json(send, status, _error_body(status, message), headers)

    async def _wait_closing(self) -> None:
        if self._closing_event is None:
            self._closing_event = asyncio.Event()
        if self._closing:
            return
        await self._closing_event.wait()

    async def _pause(self, seconds: float, request: _Request) -> bool:
        """Sleeps; False when the client left or the server is stopping."""
        if seconds > 0:
            request.watch()
            await asyncio.sleep(seconds)
        return not (request.gone or self._closing)

    def _completion_id(self) -> str:
        return f"chatcmpl-{self._id_prefix}{next(self._ids):016x}"

    async def _stream(self, plan: _Plan, request: _Request, send) -> None:
        self.stats["streams"] += 1
        completion_id = self._completion_id()
        usage_null = b',"usage":null' if plan.include_usage else b""
        head = (
            b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
            b'"system_fingerprint":"fp_mock","choices":[{"index":0,"delta":'
            % (completion_id.encode(), int(time.time()), json.dumps(plan.model).encode())
        )
        running = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

        if plan.tool is not None:
            call_id, name, arguments = plan.tool
            first = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                ],
                "refusal": None,
            }
            pieces = [head + json.dumps(first).encode() + running]
            for start in range(0, len(arguments), _ARGUMENT_PIECE):
                delta = {
                    "tool_calls": [{"index": 0, "function": {"arguments": arguments[start : start + _ARGUMENT_PIECE]}}]
                }
                pieces.append(head + json.dumps(delta).encode() + running)
            completion_tokens = 1 + count_words(arguments)
            droppable = False
        else:
            role = head + b'{"role":"assistant","content":"","refusal":null}' + running
            pieces = [head + b'{"content":' + json.dumps(token).encode() + b"}" + running for token in plan.tokens]
            # The role chunk travels with the first token (or alone).
            pieces[:1] = [role + pieces[0]] if pieces else [role]
            completion_tokens = len(plan.tokens)
            droppable = True
        tail = head + b'{},"logprobs":null,"finish_reason":"%s"}]' % plan.finish_reason.encode() + usage_null + b"}\n\n"
        if plan.include_usage:
            usage = json.dumps(self._usage(plan.prompt_tokens, completion_tokens)).encode()
            tail += (
                b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
                b'"system_fingerprint":"fp_mock","choices":[],"usage":%s}\n\n'
                % (completion_id.encode(), int(time.time()), json.dumps(plan.model).encode(), usage)
            )
        tail += b"data: [DONE]\n\n"

        # Pieces hold one token each (the first also the role chunk).
        drop_at = None
        if droppable and plan.drop_after is not None and plan.drop_after < max(len(plan.tokens), 1):
            drop_at = plan.drop_after
            self.stats["drops"] += 1

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", completion_id.encode()),
                ],
            }
        )
        if not await self._pause(plan.ttft, request):
            return self._abort()

        if drop_at is not None:
            pieces = pieces[:drop_at] if drop_at else []
            if plan.delay <= 0 or not pieces:
                if pieces:
                    await send({"type": "http.response.body", "body": b"".join(pieces), "more_body": True})
                return self._abort()
        elif plan.delay <= 0:
            await send({"type": "http.response.body", "body": b"".join(pieces) + tail, "more_body": False})
            return

        for index, piece in enumerate(pieces):
            if index and not await self._pause(plan.delay, request):
                return self._abort()
            last = index == len(pieces) - 1 and drop_at is None
            await send({"type": "http.response.body", "body": piece + tail if last else piece, "more_body": not last})
        if drop_at is not None:
            return self._abort()

    async def _complete(self, plan: _Plan, request: _Request, send) -> None:
        wait = plan.ttft + plan.delay * max(len(plan.tokens) - 1, 0)
        if not await self._pause(wait, request):
            return self._abort()
        message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.tokens), "refusal": None}
        completion_tokens = len(plan.tokens)
        if plan.tool is not None:
            call_id, name, arguments = plan.tool
            message["content"] = None
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ]
            completion_tokens = 1 + count_words(arguments)
        completion_id = self._completion_id()
        body = json.dumps(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": plan.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish_reason}],
                "usage": self._usage(plan.prompt_tokens, completion_tokens),
                "system_fingerprint": "fp_mock",
            }
        ).encode()
        headers = [(b"x-request-id", completion_id.encode())]
        if plan.drop_after is not None and plan.tool is None:
            # Announce the whole body, send part of it, hang up.
            self.stats["drops"] += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            return self._abort()
        await self._send(send, 200, body, headers)

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _abort() -> None:
        """Return from the app without completing the response: uvicorn then
        closes the connection, which is what a dropped stream looks like."""
        _intentional_abort.set(True)
