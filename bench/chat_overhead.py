"""What AgentHub adds to a model call.

Runs the project's mock model server and AgentHub (uvicorn or daphne,
production settings, Postgres, Redis, auth and persistence on) side by side
and measures, against a direct ``openai`` call to the same mock:

1. sequential, interleaved rounds: time-to-first-token and total-latency
   overhead (p50/p95/p99) of the websocket, SSE, non-streaming REST and
   ``/v1/chat/completions`` surfaces;
2. a concurrency sweep of streaming websocket sessions: the inter-token gap
   added on top of the model's own, delivered tokens/s, errors, and the
   server's CPU and memory.

    .venv/bin/python bench/chat_overhead.py            # defaults below
    .venv/bin/python bench/chat_overhead.py --rounds 300 --sweep 50,200,500

DATABASE_URL / REDIS_URL default to the local Postgres and Redis; the
benchmark uses its own database (``agenthub_bench``) and Redis database 9.
Targets (2-core machine): TTFT overhead p50 <= 3 ms and p99 <= 10 ms
sequential; 500 concurrent streams with added inter-token gap p99 <= 25 ms
and 0 errors.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"
TARGETS = {"ttft_p50": 3.0, "ttft_p99": 10.0, "gap_p99": 25.0}


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(args, mock_url: str) -> dict:
    database = urlsplit(args.database_url)
    redis = urlsplit(args.redis_url)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agenthub.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": urlunsplit(database._replace(path="/agenthub_bench")),
        "REDIS_URL": urlunsplit(redis._replace(path="/9")),
        "OPENAI_BASE_URL": mock_url,
        "OPENAI_API_KEY": "bench",
        "AGENTHUB_MODELS": "mock-model:128000",
        "THROTTLE_RATE_USER": "10000000/min",
        "THROTTLE_RATE_API_KEY": "10000000/min",
        # The chat limits stay on (their checks are part of what is measured)
        # but high enough for one bench user sending rounds back to back.
        "WS_FRAMES_PER_SECOND": "1000000",
        "WS_MESSAGES_PER_MINUTE_PER_CONNECTION": "100000000",
        "CHAT_MESSAGES_PER_MINUTE_PER_USER": "100000000",
        "CHAT_MAX_CONCURRENT_TURNS_PER_USER": "100000",
        "LOG_LEVEL": "WARNING",
        "LLM_MAX_RETRIES": "0",
        "PYTHONUNBUFFERED": "1",
    }


def create_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'agenthub_bench'").fetchone()
        if not exists:
            conn.execute("CREATE DATABASE agenthub_bench")


SEED = """
import django, json
django.setup()
from django.db import transaction
from accounts.models import Organization, Membership, User
from accounts.services import api_key_create
from agents.models import Agent, AgentVersion, AgentStatus
from chat.models import Conversation
with transaction.atomic():
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user, _ = User.objects.get_or_create(username="bench-member")
    user.set_password("%(password)s"); user.save()
    Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "member"})
    Conversation.objects.filter(organization=org).delete()
    Agent.objects.filter(organization=org).delete()
    agent = Agent.objects.create(organization=org, name="Bench", slug="bench", model="mock-model",
                                 system_prompt="You are a concise assistant.", status=AgentStatus.ACTIVE)
    version = AgentVersion.objects.create(organization=org, agent=agent, number=1, name=agent.name,
        system_prompt=agent.system_prompt, model=agent.model, fallback_models=[], temperature=0.2,
        max_output_tokens=512, max_tool_rounds=0)
    agent.live_version = version; agent.save()
    _, raw = api_key_create(organization=org, name="bench", role="member", actor_role="owner")
print(json.dumps({"api_key": raw}))
"""


def prepare(env: dict) -> str:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", SEED % {"password": PASSWORD}],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["api_key"]


def start_mock(args) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "mock_llm_server",
            "--port",
            "0",
            "--any-model",
            "--tokens",
            str(args.tokens),
            "--ttft-ms",
            str(args.ttft_ms),
            "--token-delay-ms",
            str(args.token_delay_ms),
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "agenthub.settings.local", "DEBUG": "false"},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline()
    if "listening on" not in line:
        raise RuntimeError(f"mock server did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[1] + "/v1"


def start_server(args, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    if args.server == "uvicorn":
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "agenthub.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "agenthub.server",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "agenthub.asgi:application",
        ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return process, base
        time.sleep(0.2)
    raise RuntimeError("AgentHub did not become ready")


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


class ProcessMeter:
    """CPU seconds and resident memory of a process, from /proc."""

    def __init__(self, pid: int):
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


# --- clients -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Clients:
    def __init__(self, base: str, mock_url: str, api_key: str, token: str):
        import httpx
        import openai

        self.base = base
        self.api_key = api_key
        self.auth = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        self.http = httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
        self.direct = openai.AsyncOpenAI(base_url=mock_url, api_key="bench", max_retries=0)
        self.via_agenthub = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=api_key, max_retries=0)
        self.sse_session: str | None = None
        self.rest_session: str | None = None
        self.ws = None

    async def ticket_url(self) -> str:
        response = await self.http.post("/api/v1/chat/tickets", json={"agent": "bench"}, headers=self.auth)
        response.raise_for_status()
        return self.base.replace("http://", "ws://") + response.json()["websocket_url"]

    async def open_ws(self):
        import websockets

        ws = await websockets.connect(await self.ticket_url(), max_queue=None, compression=None)
        ready = json.loads(await ws.recv())
        assert ready["type"] == "conversation.ready", ready
        return ws

    async def direct_call(self) -> tuple[float, float]:
        start = time.perf_counter()
        ttft = None
        stream = await self.direct.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "Summarise our refund policy."}], stream=True
        )
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - start
        return ttft, time.perf_counter() - start

    async def websocket(self) -> tuple[float, float]:
        if self.ws is None:
            self.ws = await self.open_ws()
        start = time.perf_counter()
        ttft = None
        await self.ws.send(json.dumps({"type": "message", "content": "Summarise our refund policy."}))
        while True:
            event = json.loads(await self.ws.recv())
            if event["type"] == "token" and ttft is None:
                ttft = time.perf_counter() - start
            elif event["type"] == "turn.finished":
                if event["status"] != "complete":
                    raise RuntimeError(f"turn {event['status']}")
                return ttft, time.perf_counter() - start
            elif event["type"] == "error":
                raise RuntimeError(event["code"])

    async def sse(self) -> tuple[float, float]:
        body = {"agent": "bench", "prompt": "Summarise our refund policy."}
        if self.sse_session:
            body["session_id"] = self.sse_session
        start = time.perf_counter()
        ttft = None
        headers = {**self.auth, "Accept": "text/event-stream"}
        async with self.http.stream("POST", "/api/v1/chat", json=body, headers=headers) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("event: token") and ttft is None:
                    ttft = time.perf_counter() - start
                elif line.startswith("data: ") and self.sse_session is None:
                    self.sse_session = json.loads(line[6:])["conversation_id"]
                elif line.startswith("event: turn.finished"):
                    total = time.perf_counter() - start
            return ttft, total

    async def rest(self) -> tuple[float, float]:
        body = {"agent": "bench", "prompt": "Summarise our refund policy."}
        if self.rest_session:
            body["session_id"] = self.rest_session
        start = time.perf_counter()
        response = await self.http.post("/api/v1/chat", json=body, headers=self.auth)
        total = time.perf_counter() - start
        response.raise_for_status()
        self.rest_session = response.json()["session_id"]
        return None, total

    async def openai_compatible(self) -> tuple[float, float]:
        start = time.perf_counter()
        ttft = None
        stream = await self.via_agenthub.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": "Summarise our refund policy."}], stream=True
        )
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - start
        return ttft, time.perf_counter() - start


async def sequential(clients: Clients, rounds: int, warmup: int) -> dict:
    modes = {
        "websocket": clients.websocket,
        "sse": clients.sse,
        "rest": clients.rest,
        "openai": clients.openai_compatible,
    }
    samples = {name: {"ttft": [], "total": []} for name in modes}
    for index in range(warmup + rounds):
        order = list(modes.items())
        random.shuffle(order)
        base_ttft, base_total = await clients.direct_call()
        for name, call in order:
            ttft, total = await call()
            if index >= warmup:
                if ttft is not None:
                    samples[name]["ttft"].append((ttft - base_ttft) * 1000)
                samples[name]["total"].append((total - base_total) * 1000)
    return samples


async def sweep_level(clients: Clients, sessions: int, token_delay_ms: float, tokens: int) -> dict:
    import websockets

    sockets = []
    errors = 0
    for chunk_start in range(0, sessions, 50):
        results = await asyncio.gather(
            *(clients.open_ws() for _ in range(min(50, sessions - chunk_start))), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                errors += 1
            else:
                sockets.append(result)
    gaps: list[float] = []
    delivered = 0

    async def one(ws):
        nonlocal errors, delivered
        prompt = f"Go [[mock:tokens={tokens}]] [[mock:token_delay_ms={token_delay_ms}]]"
        await ws.send(json.dumps({"type": "message", "content": prompt}))
        last = None
        try:
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                now = time.perf_counter()
                if event["type"] == "token":
                    delivered += 1
                    if last is not None:
                        gaps.append((now - last) * 1000 - token_delay_ms)
                    last = now
                elif event["type"] == "turn.finished":
                    if event["status"] != "complete":
                        errors += 1
                    return
                elif event["type"] == "error":
                    errors += 1
        except (TimeoutError, websockets.ConnectionClosed):
            errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(ws) for ws in sockets))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "sessions": sessions,
        "gap_p50": percentile(gaps, 50),
        "gap_p99": percentile(gaps, 99),
        "tokens_per_s": delivered / elapsed,
        "errors": errors + (sessions - len(sockets)) * 0,
        "elapsed": elapsed,
    }


def fmt(value: float) -> str:
    return f"{value:7.2f}"


async def run(args) -> None:
    import httpx

    create_database(args.database_url)
    mock, mock_url = start_mock(args)
    env = bench_env(args, mock_url)
    server = None
    try:
        api_key = prepare(env)
        server, base = start_server(args, env)
        meter = ProcessMeter(server.pid)
        token = httpx.post(
            f"{base}/api/v1/auth/token/", json={"username": "bench-member", "password": PASSWORD}
        ).json()["access"]
        clients = Clients(base, mock_url, api_key, token)

        print(
            f"AgentHub {args.server} at {base}; mock model: ttft {args.ttft_ms} ms, "
            f"{args.tokens} tokens every {args.token_delay_ms} ms; Postgres + Redis; auth and persistence on."
        )
        print(
            f"\n1) Sequential overhead vs a direct openai call to the same mock, {args.rounds} interleaved rounds (ms)"
        )
        samples = await sequential(clients, args.rounds, args.warmup)
        print(f"{'surface':<12} {'TTFT p50':>9} {'p95':>7} {'p99':>7}   {'total p50':>9} {'p95':>7} {'p99':>7}")
        for name, data in samples.items():
            ttft = data["ttft"]
            total = data["total"]
            ttft_cols = " ".join(fmt(percentile(ttft, q)) for q in (50, 95, 99)) if ttft else "      -       -       -"
            print(f"{name:<12} {ttft_cols}   {' '.join(fmt(percentile(total, q)) for q in (50, 95, 99))}")
        ws = samples["websocket"]["ttft"]
        print(
            f"target: websocket TTFT overhead p50 <= {TARGETS['ttft_p50']} ms (got {percentile(ws, 50):.2f}), "
            f"p99 <= {TARGETS['ttft_p99']} ms (got {percentile(ws, 99):.2f})"
        )
        if clients.ws is not None:
            await clients.ws.close()

        print(
            f"\n2) Concurrent streaming websocket sessions: {args.sweep_tokens} tokens every "
            f"{args.sweep_token_delay_ms} ms per session"
        )
        print(
            f"{'sessions':>8} {'added gap p50':>14} {'p99':>7} {'tokens/s':>9} {'errors':>6} {'server CPU':>10} {'RSS MB':>7}"
        )
        for level in args.sweep:
            cpu_before, wall_before = meter.cpu_seconds(), time.perf_counter()
            result = await sweep_level(clients, level, args.sweep_token_delay_ms, args.sweep_tokens)
            cpu = (meter.cpu_seconds() - cpu_before) / (time.perf_counter() - wall_before) * 100
            print(
                f"{level:>8} {fmt(result['gap_p50']):>14} {fmt(result['gap_p99'])} {result['tokens_per_s']:>9.0f} "
                f"{result['errors']:>6} {cpu:>9.0f}% {meter.rss_mb():>7.0f}"
            )
            await asyncio.sleep(1)
        print(f"target: 500 sessions with added inter-token gap p99 <= {TARGETS['gap_p99']} ms and 0 errors")
        await clients.http.aclose()
    finally:
        if server is not None:
            stop(server)
        stop(mock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--ttft-ms", type=float, default=20)
    parser.add_argument("--token-delay-ms", type=float, default=5)
    parser.add_argument("--sweep", type=lambda v: [int(x) for x in v.split(",")], default=[50, 200, 500])
    parser.add_argument("--sweep-tokens", type=int, default=40)
    parser.add_argument("--sweep-token-delay-ms", type=float, default=50)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
