"""``python manage.py mock_llm_server``: the OpenAI-compatible mock model
server (see :mod:`integrations.llm.testing.mock_server`) as a process, for end-to-end
tests, benchmarks and trying AgentHub without a model server.

Point AgentHub at it with ``OPENAI_BASE_URL=http://HOST:PORT/v1``.
"""

import asyncio
import signal
import sys

from django.core.management.base import BaseCommand, CommandError

from integrations.llm.testing.mock_server import (
    DEFAULT_MODELS,
    MockConfig,
    MockLLMApp,
    SignalFreeServer,
    bind_socket,
    new_event_loop,
    url_for,
    uvicorn_config,
)


def fraction(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(value)
    return rate


def milliseconds(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(value)
    return number


def count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Runs an OpenAI-compatible mock model server (deterministic answers, injectable faults)."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        defaults = MockConfig()
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8001, help="Port; 0 picks a free one (default 8001).")
        parser.add_argument(
            "--models",
            default=",".join(DEFAULT_MODELS),
            help="Comma-separated model names served (default: %(default)s).",
        )
        parser.add_argument("--any-model", action="store_true", help="Serve any model name instead of 404.")
        parser.add_argument("--tokens", type=count, default=defaults.tokens, help="Answer length in tokens.")
        parser.add_argument("--ttft-ms", type=milliseconds, default=0.0, help="Time to first token.")
        parser.add_argument("--token-delay-ms", type=milliseconds, default=0.0, help="Delay between tokens.")
        parser.add_argument("--error-rate", type=fraction, default=0.0, help="Share of requests that fail (0-1).")
        parser.add_argument(
            "--error-status",
            type=int,
            choices=(429, 500, 502, 503),
            default=500,
            help="Status of the failures --error-rate injects.",
        )
        parser.add_argument("--timeout-rate", type=fraction, default=0.0, help="Share of requests never answered.")
        parser.add_argument("--drop-rate", type=fraction, default=0.0, help="Share of streams cut mid-way.")
        parser.add_argument(
            "--drop-after", type=count, default=defaults.drop_after, help="Tokens sent before a stream is cut."
        )
        parser.add_argument(
            "--retry-after-ms",
            type=count,
            default=defaults.retry_after_ms,
            help="Retry-After(-Ms) sent with injected 429 and 5xx errors.",
        )
        parser.add_argument("--api-key", default=None, help="Require this bearer key (default: no key needed).")
        parser.add_argument("--seed", type=int, default=None, help="Seed of the random faults.")

    def handle(self, *args, **options):
        try:
            config = MockConfig(
                host=options["host"],
                port=options["port"],
                models=tuple(name.strip() for name in options["models"].split(",") if name.strip()),
                any_model=options["any_model"],
                tokens=options["tokens"],
                ttft_ms=options["ttft_ms"],
                token_delay_ms=options["token_delay_ms"],
                error_rate=options["error_rate"],
                error_status=options["error_status"],
                timeout_rate=options["timeout_rate"],
                drop_rate=options["drop_rate"],
                drop_after=options["drop_after"],
                retry_after_ms=options["retry_after_ms"],
                api_key=options["api_key"],
                seed=options["seed"],
            )
            sock = bind_socket(config.host, config.port)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(self._serve(config, sock))

    async def _serve(self, config: MockConfig, sock) -> None:
        app = MockLLMApp(config)
        server = SignalFreeServer(uvicorn_config(app, config))

        def stop() -> None:
            app.begin_shutdown()
            if server.should_exit:  # a second signal: stop waiting for open streams
                server.force_exit = True
            server.should_exit = True

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if server.started:
            port = sock.getsockname()[1]
            self.stdout.write(f"mock LLM server listening on {url_for(config.host, port)}")
            self.stdout.flush()
            sys.stdout.flush()
        await serving
