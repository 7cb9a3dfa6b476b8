"""The Celery tool path of a chat turn, end to end.

Runs the project's mock model server, AgentHub (uvicorn, production settings,
Postgres, Redis, auth and persistence on), a real Celery worker on the
``tools`` queue and a load helper, all as separate processes, and drives
sequential websocket chat turns whose model calls one tool:

- ``bench_echo`` (Celery, ``bench/bench_tools.py``): the turn enqueues
  the ``agents.tasks.tool_execute`` task, the worker reports ``tool.started`` and the
  result back through the channel layer;
- ``bench_echo_inline``: the same tool run inside the turn (reference);
- ``direct``: the same two model calls made straight to the mock with the
  ``openai`` client, the tool run locally (the baseline of the other benches).

Measured, at idle and under a background load of ``tool_execute`` tasks
(bench_echo, no reply channel, enqueued with ``apply_async`` at ``--load-rate``
per second by the helper process):

1. start delay: enqueue -> worker start, the ``queued_ms`` of ``tool.started``
   (two ``time.time()`` stamps: the turn's just before ``apply_async``, the
   worker's as ``tool_execute_remote`` starts);
2. round trip: enqueue -> the websocket client has received ``tool.finished``.
   The client reads the turn's own enqueue stamp from the bench tool's result
   and takes ``time.time()`` as the frame arrives: one clock (same machine),
   no estimate.  It is split into the server part (``round_trip_ms`` of
   ``tool.finished``: enqueue -> the turn has the worker's result) and the
   delivery (hub -> websocket -> client);
3. whole-turn latency against the direct baseline and the inline tool.

    .venv/bin/python bench/tool_path.py                       # prefork, defaults below
    .venv/bin/python bench/tool_path.py --pools prefork,threads,solo --rounds 100
    .venv/bin/python bench/tool_path.py --pools prefork+dbreuse   # what-if, see bench/bench_tools.py

Every process is started in a session of its own and stopped (SIGTERM, then
SIGKILL to its whole process group) on exit, on an error and on Ctrl-C.

DATABASE_URL / REDIS_URL default to the local Postgres and Redis; the
benchmark uses its own database (``agenthub_bench_tools``) and Redis database
10 (flushed at start).  Targets (2-core machine): start delay p50 <= 5 ms and
p99 <= 25 ms; round trip p99 <= 30 ms; at idle and under 200 tasks/s.
"""

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat_overhead import ProcessMeter, percentile, start_mock, start_server  # noqa: E402
from bench.chat_overhead import bench_env as chat_bench_env  # noqa: E402

DATABASE = "agenthub_bench_tools"
REDIS_DB = 10
ORG_SLUG = "bench-tools"
AGENT_SLUG = "bench-tools"
USERNAME = "bench-tools-member"
PASSWORD = "bench-password-1"
SYSTEM_PROMPT = "You are a concise assistant."
TARGETS = {"start_p50": 5.0, "start_p99": 25.0, "round_trip_p99": 30.0}
TURN_TIMEOUT = 30.0
HELPER_PREFIX = "@@"
TOOL_PARAMETERS = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 200}},
    "required": ["text"],
    "additionalProperties": False,
}
TOOL_SPECS = [
    {"type": "function", "function": {"name": name, "description": "Benchmark tool.", "parameters": TOOL_PARAMETERS}}
    for name in ("bench_echo", "bench_echo_inline")
]


# --- processes ------------------------------------------------------------------------------

_processes: list[subprocess.Popen] = []
_redis_url: list[str] = []


def _spawn(command: list[str], **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, **kwargs)
    _processes.append(process)
    return process


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the process's group (its own session), then SIGKILL to
    whatever is left of it, children included."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def stop_all() -> None:
    while _processes:
        stop_group(_processes.pop())


atexit.register(stop_all)


def bench_env(args, mock_url: str) -> dict:
    env = chat_bench_env(args, mock_url)
    database = urlsplit(args.database_url)
    redis = urlsplit(args.redis_url)
    env.update(
        {
            "DATABASE_URL": urlunsplit(database._replace(path=f"/{DATABASE}")),
            "REDIS_URL": urlunsplit(redis._replace(path=f"/{REDIS_DB}")),
            "AGENTHUB_EXTRA_TOOL_MODULES": "bench.bench_tools",
            "PYTHONPATH": str(ROOT),
        }
    )
    # The broker and the result backend follow REDIS_URL (database 10).
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CELERY_RESULT_BACKEND", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def create_database(database_url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")


SEED = """
import django
django.setup()
from django.db import transaction
from accounts.models import Organization, Membership, User
from agents.models import Agent, AgentVersion, AgentStatus
from chat.models import Conversation
from tools.models import ToolInvocation
with transaction.atomic():
    org, _ = Organization.objects.get_or_create(slug=%(org)r, defaults={"name": "Bench tools"})
    user, _ = User.objects.get_or_create(username=%(user)r)
    user.set_password(%(password)r); user.save()
    Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "member"})
    ToolInvocation.objects.filter(organization=org).delete()
    Conversation.objects.filter(organization=org).delete()
    Agent.objects.filter(organization=org).delete()
    agent = Agent.objects.create(organization=org, name="Bench tools", slug=%(agent)r, model="mock-model",
                                 system_prompt=%(system)r, status=AgentStatus.ACTIVE, max_tool_rounds=1)
    version = AgentVersion.objects.create(organization=org, agent=agent, number=1, name=agent.name,
        system_prompt=agent.system_prompt, model=agent.model, fallback_models=[], temperature=0.2,
        max_output_tokens=512, max_tool_rounds=1,
        tools=[{"tool": "bench_echo"}, {"tool": "bench_echo_inline"}])
    agent.live_version = version; agent.save()
"""


def prepare(env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    seed = SEED % {
        "org": ORG_SLUG,
        "user": USERNAME,
        "password": PASSWORD,
        "agent": AGENT_SLUG,
        "system": SYSTEM_PROMPT,
    }
    subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, check=True)


WHAT_IF_DB_REUSE = "+dbreuse"


def start_worker(env: dict, variant: str, concurrency: int, log: Path) -> subprocess.Popen:
    """``variant``: a Celery pool (prefork, threads, solo), optionally with
    ``+dbreuse``: the what-if of ``CELERY_DB_REUSE_MAX`` (see bench/bench_tools.py)."""
    pool = variant.removesuffix(WHAT_IF_DB_REUSE)
    if variant.endswith(WHAT_IF_DB_REUSE):
        env = {**env, "BENCH_CELERY_DB_REUSE_MAX": "1000000"}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "agenthub",
        "worker",
        "-Q",
        "tools",
        "--pool",
        pool,
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "WARNING",
        "-n",
        f"bench-tools-{os.getpid()}@%h",
    ]
    if pool != "solo":
        command[command.index("--pool") + 2 : command.index("--pool") + 2] = ["--concurrency", str(concurrency)]
    with log.open("ab") as out:
        return _spawn(command, env=env, stdout=out, stderr=subprocess.STDOUT)


class GroupMeter:
    """CPU seconds of a set of processes, from /proc: those of a process
    group (a worker and its pool children), or those with a given command
    name (``postgres``, ``redis-server``), with their reaped children (a
    Postgres backend that has exited)."""

    def __init__(self, pgid: int | None = None, name: str | None = None):
        self.pgid = pgid
        self.name = name
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = tail.split()
            if (self.pgid is not None and int(fields[2]) == self.pgid) or (
                self.name is not None and head.split("(", 1)[1] == self.name
            ):
                total += sum(int(value) for value in fields[11:15])
        return total / self.ticks


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Meters:
    def __init__(self, server: subprocess.Popen, worker: subprocess.Popen, helper: subprocess.Popen):
        self.meters = {
            "server": ProcessMeter(server.pid),
            "worker": GroupMeter(pgid=worker.pid),
            "load helper": GroupMeter(pgid=helper.pid),
            "postgres": GroupMeter(name="postgres"),
            "redis": GroupMeter(name="redis-server"),
        }

    def snapshot(self) -> dict:
        values = {name: meter.cpu_seconds() for name, meter in self.meters.items()}
        values["_machine"] = machine_busy()
        values["_wall"] = time.perf_counter()
        return values

    def since(self, before: dict) -> dict:
        after = self.snapshot()
        wall = after["_wall"] - before["_wall"]
        cpu = {name: (after[name] - before[name]) / wall * 100 for name in self.meters}
        busy = after["_machine"][0] - before["_machine"][0]
        total = after["_machine"][1] - before["_machine"][1]
        cpu["machine"] = busy / total * 100 * os.cpu_count() if total else float("nan")
        return cpu


# --- the helper process: load generator and micro-profiles (Django, production settings) -----


def helper_main() -> None:
    import django

    django.setup()
    import redis
    from django.conf import settings

    from accounts.models import Organization
    from tools.models import ToolInvocation
    from tools.tasks import tool_execute

    org_id = str(Organization.objects.get(slug=ORG_SLUG).id)
    r = redis.Redis.from_url(settings.REDIS_URL)
    options = {"expires": 10, "soft_time_limit": 10, "time_limit": 15}

    def payload(call_id: str, reply_to: str | None = None) -> dict:
        return {
            "invocation_id": str(uuid.uuid4()),
            "tool": "bench_echo",
            "call_id": call_id,
            "arguments": {"text": "load"},
            "context": {"organization_id": org_id, "role": "member"},
            "reply_to": reply_to,
            "enqueued_at": time.time(),
        }

    state: dict = {}

    def load(rate: float, tag: str, stop: threading.Event) -> None:
        interval = 1 / rate
        costs: list[float] = []
        sent = 0
        started = time.perf_counter()
        due = started
        while not stop.is_set():
            now = time.perf_counter()
            if now < due:
                time.sleep(min(due - now, 0.05))
                continue
            tool_execute.apply_async(kwargs={"payload": payload(f"load-{tag}-{sent}")}, **options)
            costs.append((time.perf_counter() - now) * 1000)
            sent += 1
            due += interval
        state["result"] = {
            "sent": sent,
            "elapsed": time.perf_counter() - started,
            "apply_p50": percentile(costs, 50),
            "apply_p99": percentile(costs, 99),
        }

    def reply(value: dict) -> None:
        sys.stdout.write(HELPER_PREFIX + json.dumps(value) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        command = json.loads(line)
        kind = command["cmd"]
        if kind == "ready":
            deadline = time.monotonic() + command.get("timeout", 60)
            ok = False
            # tool_execute keeps no Celery result: the worker's invocation
            # row says it ran the task.
            while time.monotonic() < deadline and not ok:
                probe = payload("ready")
                tool_execute.apply_async(kwargs={"payload": probe}, **options)
                until = time.monotonic() + 2
                while time.monotonic() < until and not ok:
                    ok = ToolInvocation.objects.filter(pk=probe["invocation_id"], status="ok").exists()
                    time.sleep(0.05)
            reply({"ok": ok})
        elif kind == "load_start":
            stop = threading.Event()
            thread = threading.Thread(target=load, args=(command["rate"], command["tag"], stop), daemon=True)
            state.update(stop=stop, thread=thread, tag=command["tag"])
            thread.start()
            reply({"ok": True})
        elif kind == "load_stop":
            state["stop"].set()
            state["thread"].join()
            result = state["result"]
            result["depth_at_stop"] = r.llen("tools")
            rows = ToolInvocation.objects.filter(organization_id=org_id, call_id__startswith=f"load-{state['tag']}-")
            result["completed_at_stop"] = rows.filter(status="ok").count()
            deadline = time.monotonic() + 30
            while r.llen("tools") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # the last reserved tasks finish
            result["depth_after_drain"] = r.llen("tools")
            result["completed"] = rows.filter(status="ok").count()
            reply(result)
        elif kind == "profile":  # runs with no worker: the tasks it enqueues are then dropped
            result = helper_profile(command.get("n", 200), payload, options)
            r.delete("tools")
            reply(result)
        elif kind == "quit":
            reply({"ok": True})
            return


def helper_profile(n: int, payload, options: dict) -> dict:
    """Costs of the pieces of the tool path, measured alone at idle."""
    import asyncio as aio

    from channels.layers import get_channel_layer

    from tools.services.execution import tool_execute_remote
    from tools.tasks import _sender_loop, channel_send, tool_execute

    def timed(call, count=n, spacing=0.005) -> list[float]:
        values = []
        for _ in range(count):
            started = time.perf_counter()
            call()
            values.append((time.perf_counter() - started) * 1000)
            time.sleep(spacing)
        return values

    def summary(values: list[float]) -> list[float]:
        return [round(percentile(values, 50), 3), round(percentile(values, 99), 3)]

    out = {}
    out["apply_async (as the turn calls it)"] = summary(
        timed(lambda: tool_execute.apply_async(kwargs={"payload": payload("profile")}, **options))
    )
    out["apply_async, ignore_result=True"] = summary(
        timed(lambda: tool_execute.apply_async(kwargs={"payload": payload("profile")}, ignore_result=True, **options))
    )
    out["apply_async, ignore_result=True, kwargsrepr given (no saferepr)"] = summary(
        timed(
            lambda: tool_execute.apply_async(
                kwargs={"payload": payload("profile")}, ignore_result=True, kwargsrepr="{}", **options
            )
        )
    )
    out["channel_send from sync code (worker's notify)"] = summary(
        timed(lambda: channel_send(f"agenthub.tool.bench!{uuid.uuid4().hex}", {"type": "tool.started"}))
    )

    async def ping_pong() -> tuple[list[float], list[float]]:
        layer = get_channel_layer()
        channel = await layer.new_channel("agenthub.tool.")
        sends, trips = [], []
        for _ in range(n):
            started = time.perf_counter()
            await layer.send(channel, {"type": "tool.finished", "result": {"status": "ok", "text": "x" * 100}})
            sent = time.perf_counter()
            await layer.receive(channel)
            sends.append((sent - started) * 1000)
            trips.append((time.perf_counter() - started) * 1000)
        return sends, trips

    sends, trips = aio.run_coroutine_threadsafe(ping_pong(), _sender_loop()).result(timeout=60)
    out["channel layer send (async)"] = summary(sends)
    out["channel layer send -> receive (same process)"] = summary(trips)
    out["tool_execute_remote without Celery (lookup, validate, run, DB record)"] = summary(
        timed(lambda: tool_execute_remote(payload("profile"), None), spacing=0.001)
    )
    return out


class Helper:
    def __init__(self, env: dict):
        self.process = _spawn(
            [sys.executable, str(Path(__file__).resolve()), "--helper"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()

    def call(self, **command) -> dict:
        with self.lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            while True:
                line = self.process.stdout.readline()
                if not line:
                    raise RuntimeError("the helper process exited")
                if line.startswith(HELPER_PREFIX):
                    return json.loads(line[len(HELPER_PREFIX) :])

    async def acall(self, **command) -> dict:
        return await asyncio.to_thread(self.call, **command)


# --- clients ------------------------------------------------------------------------------------


def prompt_for(tool: str) -> str:
    return f"Echo this. [[mock:tool={tool} {json.dumps({'text': 'ping'})}]]"


class Clients:
    def __init__(self, base: str, mock_url: str, token: str):
        import httpx
        import openai

        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.AsyncClient(base_url=base, timeout=60)
        self.direct = openai.AsyncOpenAI(base_url=mock_url, api_key="bench", max_retries=0)
        self.ws = None

    async def open_ws(self) -> None:
        import websockets

        if self.ws is not None:
            await self.ws.close()
        response = await self.http.post("/api/v1/chat/tickets", json={"agent": AGENT_SLUG}, headers=self.auth)
        response.raise_for_status()
        url = self.base.replace("http://", "ws://") + response.json()["websocket_url"]
        self.ws = await websockets.connect(url, max_queue=None, compression=None)
        ready = json.loads(await self.ws.recv())
        assert ready["type"] == "conversation.ready", ready

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.aclose()
        await self.direct.close()

    async def turn(self, tool: str) -> dict:
        """One websocket turn whose model calls ``tool``; client stamps are
        ``time.time()`` taken as each frame arrives."""
        sample: dict = {"error": None}
        started = time.perf_counter()
        await self.ws.send(json.dumps({"type": "message", "content": prompt_for(tool)}))
        deadline = started + TURN_TIMEOUT
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), max(deadline - time.perf_counter(), 0.001))
            except TimeoutError:
                sample["error"] = "timeout"
                await self.open_ws()  # a fresh conversation: the old turn may still run
                return sample
            arrived = time.time()
            event = json.loads(raw)
            kind = event["type"]
            if kind == "tool.started":
                sample["started_seen"] = arrived
                sample["queued_ms"] = event.get("queued_ms")
            elif kind == "tool.finished":
                sample["finished_seen"] = arrived
                sample["round_trip_ms"] = event.get("round_trip_ms")
                if event.get("status") != "ok":
                    sample["error"] = f"tool {event.get('status')}"
                else:
                    with contextlib.suppress(ValueError, TypeError):
                        result = json.loads(event.get("result") or "")
                        sample["enqueued_at"] = result.get("enqueued_at")
                        sample["handler_at"] = result.get("handler_at")
            elif kind == "error":
                sample["error"] = event.get("code")
            elif kind == "turn.finished":
                sample["total_ms"] = (time.perf_counter() - started) * 1000
                if event.get("status") != "complete" and not sample["error"]:
                    sample["error"] = f"turn {event.get('status')}"
                return sample

    async def direct_turn(self) -> dict:
        """The same two model calls straight to the mock, the tool run here."""
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt_for("bench_echo")}]
        started = time.perf_counter()
        stream = await self.direct.chat.completions.create(
            model="mock-model", messages=messages, tools=TOOL_SPECS, stream=True
        )
        call = {"id": "", "name": "", "arguments": ""}
        async for chunk in stream:
            for delta in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
        text = json.loads(call["arguments"])["text"]
        result = json.dumps({"echo": text, "enqueued_at": time.time(), "handler_at": time.time()})
        messages += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": result},
        ]
        stream = await self.direct.chat.completions.create(
            model="mock-model", messages=messages, tools=TOOL_SPECS, stream=True
        )
        async for _ in stream:
            pass
        return {"error": None, "total_ms": (time.perf_counter() - started) * 1000}


# --- phases -------------------------------------------------------------------------------------


async def phase(clients: Clients, rounds: int, max_seconds: float) -> dict:
    """Interleaved rounds (direct, inline tool, Celery tool in random order)."""
    modes = {
        "direct": clients.direct_turn,
        "inline": lambda: clients.turn("bench_echo_inline"),
        "celery": lambda: clients.turn("bench_echo"),
    }
    samples: dict[str, list[dict]] = {name: [] for name in modes}
    deadline = time.perf_counter() + max_seconds
    done = 0
    while done < rounds and time.perf_counter() < deadline:
        order = list(modes.items())
        random.shuffle(order)
        for name, call in order:
            try:
                sample = await call()
            except Exception as exc:  # a broken socket or a failed model call: count it, go on
                sample = {"error": type(exc).__name__}
                with contextlib.suppress(Exception):
                    await clients.open_ws()
            samples[name].append(sample)
        done += 1
    return {"samples": samples, "rounds": done}


def derive(result: dict) -> dict:
    """Per-turn figures in ms, paired within a round where relevant."""
    samples = result["samples"]
    out: dict[str, list[float]] = {
        key: []
        for key in (
            "start",
            "round_trip",
            "server_round_trip",
            "delivery",
            "started_seen",
            "preamble",
            "handler_to_result",
            "inline_segment",
            "total_celery",
            "total_inline",
            "total_direct",
            "celery_minus_direct",
            "inline_minus_direct",
            "celery_minus_inline",
            "celery_over_direct",
        )
    }
    errors = {name: sum(1 for s in rows if s.get("error")) for name, rows in samples.items()}
    timeouts = sum(1 for rows in samples.values() for s in rows if s.get("error") in ("timeout", "tool timeout"))
    for s in samples["celery"]:
        if s.get("error") in ("tool timeout", "timeout"):
            # No result within the tool's timeout (10 s) plus grace: counted
            # as "timeout" (infinite) in the percentiles, not dropped.
            out["start"].append(math.inf if s.get("queued_ms") is None else s["queued_ms"])
            out["round_trip"].append(math.inf)
            continue
        if s.get("error") or s.get("enqueued_at") is None or s.get("queued_ms") is None:
            continue
        enqueued, started = s["enqueued_at"], s["enqueued_at"] + s["queued_ms"] / 1000
        out["start"].append(s["queued_ms"])
        out["round_trip"].append((s["finished_seen"] - enqueued) * 1000)
        if s.get("round_trip_ms") is not None:
            out["server_round_trip"].append(s["round_trip_ms"])
            out["delivery"].append((s["finished_seen"] - enqueued) * 1000 - s["round_trip_ms"])
            out["handler_to_result"].append(s["round_trip_ms"] - (s["handler_at"] - enqueued) * 1000)
        out["started_seen"].append((s["started_seen"] - started) * 1000)
        out["preamble"].append((s["handler_at"] - started) * 1000)
    for s in samples["inline"]:
        if not s.get("error") and "started_seen" in s and "finished_seen" in s:
            out["inline_segment"].append((s["finished_seen"] - s["started_seen"]) * 1000)
    for celery, inline, direct in zip(samples["celery"], samples["inline"], samples["direct"], strict=False):
        ok = [x.get("total_ms") if not x.get("error") else None for x in (celery, inline, direct)]
        for name, value in zip(("total_celery", "total_inline", "total_direct"), ok, strict=True):
            if value is not None:
                out[name].append(value)
        if None not in ok:
            out["celery_minus_direct"].append(ok[0] - ok[2])
            out["inline_minus_direct"].append(ok[1] - ok[2])
            out["celery_minus_inline"].append(ok[0] - ok[1])
            out["celery_over_direct"].append(ok[0] / ok[2])
    return {"values": out, "errors": errors, "timeouts": timeouts, "rounds": result["rounds"]}


def cell(values: list[float], q: float, width: int = 8, unit: str = "") -> str:
    if not values:
        return f"{'-':>{width}}"
    value = percentile(values, q)
    return f"{'timeout':>{width}}" if math.isinf(value) else f"{value:>{width - len(unit)}.2f}{unit}"


def report(pool: str, args, idle: dict, loaded: dict, load_stats: dict, cpu: dict) -> dict:
    rows = [
        ("start delay: enqueue -> worker start (queued_ms)", "start", "p50<=5, p99<=25"),
        ("round trip: enqueue -> client has tool.finished", "round_trip", "p99<=30"),
        ("  = enqueue -> turn has the result (round_trip_ms)", "server_round_trip", ""),
        ("  + turn -> client (hub, websocket)", "delivery", ""),
        ("worker start -> client has tool.started", "started_seen", ""),
        ("worker start -> tool handler runs", "preamble", ""),
        ("handler runs -> turn has the result", "handler_to_result", ""),
        ("inline tool: tool.started -> tool.finished", "inline_segment", ""),
        ("turn, Celery tool (send -> turn.finished)", "total_celery", ""),
        ("turn, inline tool", "total_inline", ""),
        ("direct openai: 2 calls + local tool", "total_direct", ""),
        ("Celery turn - direct (paired)", "celery_minus_direct", ""),
        ("inline turn - direct (paired)", "inline_minus_direct", ""),
        ("Celery turn - inline turn (paired)", "celery_minus_inline", ""),
        ("Celery turn / direct (ratio)", "celery_over_direct", ""),
    ]
    label = f"under {args.load_rate:g}/s"
    width = max(len(label) + 4, 8)
    print(f"\n{'ms':<52} {'idle p50':>8} {'p99':>8}   {label + ' p50':>{width}} {'p99':>8}   target")
    for title, key, target in rows:
        unit = "x" if key == "celery_over_direct" else ""
        a, b = idle["values"][key], loaded["values"][key]
        print(
            f"{title:<52} {cell(a, 50, unit=unit)} {cell(a, 99, unit=unit)}   "
            f"{cell(b, 50, width, unit)} {cell(b, 99, unit=unit)}   {target}"
        )
    for name, data in (("idle", idle), (label, loaded)):
        e = data["errors"]
        print(
            f"{name}: {data['rounds']} rounds; errors celery {e['celery']}, inline {e['inline']}, "
            f"direct {e['direct']} (of which turn or tool timeouts {data['timeouts']}); CPU % of one core: "
            + ", ".join(f"{k} {v:.0f}" for k, v in cpu[name].items())
        )
    if load_stats:
        sent, elapsed = load_stats["sent"], load_stats["elapsed"]
        expired = sent - load_stats["completed"]
        print(
            f"background load: {sent} tool_execute tasks in {elapsed:.1f} s = {sent / elapsed:.0f}/s "
            f"(asked {args.load_rate:g}/s; apply_async p50 {load_stats['apply_p50']:.2f} ms, "
            f"p99 {load_stats['apply_p99']:.2f} ms); the worker completed {load_stats['completed_at_stop']} "
            f"meanwhile = {load_stats['completed_at_stop'] / elapsed:.0f}/s; tools queue depth at stop "
            f"{load_stats['depth_at_stop']}; in all {load_stats['completed']} completed"
            + (f", {expired} expired unrun (expires=10 s)" if expired else "")
        )
    verdicts = {}
    for name, data in (("idle", idle), ("load", loaded)):
        v = data["values"]
        verdicts[name] = {
            "start_p50": percentile(v["start"], 50),
            "start_p99": percentile(v["start"], 99),
            "round_trip_p99": percentile(v["round_trip"], 99),
            "errors": sum(data["errors"].values()),
        }
    met = []
    for name, got in verdicts.items():
        if name == "load" and args.load_rate <= 0:
            continue
        checks = [
            _check("start p50", got["start_p50"], TARGETS["start_p50"]),
            _check("start p99", got["start_p99"], TARGETS["start_p99"]),
            _check("round trip p99", got["round_trip_p99"], TARGETS["round_trip_p99"]),
        ]
        ok = all(passed for passed, _ in checks) and got["errors"] == 0
        met.append(ok)
        texts = "; ".join(text for _, text in checks)
        print(f"targets {pool} {name}: {'MET' if ok else 'MISSED'} ({texts}; errors {got['errors']})")
    return {"met": all(met)}


def _check(title: str, value: float, limit: float) -> tuple[bool, str]:
    if math.isnan(value):
        return False, f"{title}: no samples"
    if math.isinf(value):
        return False, f"{title}: timeout > {limit:g}"
    return value <= limit, f"{title} {value:.2f} {'<=' if value <= limit else '>'} {limit:g}"


async def run_pool(pool: str, args, env: dict, clients: Clients, server, helper: Helper) -> dict:
    log = Path(tempfile.gettempdir()) / f"agenthub-bench-tools-worker-{os.getpid()}.log"
    worker = start_worker(env, pool, args.concurrency, log)
    try:
        deadline = time.monotonic() + 60
        while not (await helper.acall(cmd="ready", timeout=3))["ok"]:
            if worker.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"the Celery worker did not run a task (log {log}):\n{tail}")
        meters = Meters(server, worker, helper.process)
        base_pool = pool.removesuffix(WHAT_IF_DB_REUSE)
        concurrency = "" if base_pool == "solo" else f" --concurrency {args.concurrency}"
        print(
            f"\n=== Celery worker: --pool {base_pool}{concurrency} -Q tools --without-heartbeat --without-gossip "
            f"--without-mingle ==="
        )
        if pool.endswith(WHAT_IF_DB_REUSE):
            print(
                "what-if: the worker's processes keep their database pool between tasks "
                "(as CELERY_DB_REUSE_MAX would; bench/bench_tools.py)"
            )
        await clients.open_ws()
        await phase(clients, args.warmup, args.phase_seconds)
        cpu = {}
        before = meters.snapshot()
        idle = derive(await phase(clients, args.rounds, args.phase_seconds))
        cpu["idle"] = meters.since(before)

        label = f"under {args.load_rate:g}/s"
        load_stats = {}
        if args.load_rate > 0:
            await clients.open_ws()
            await helper.acall(cmd="load_start", rate=args.load_rate, tag=f"{pool}-{uuid.uuid4().hex[:8]}")
            # On an error or Ctrl-C the helper (and its load thread) is stopped with the other processes.
            await asyncio.sleep(2)  # steady state
            before = meters.snapshot()
            loaded = derive(await phase(clients, args.rounds, args.phase_seconds))
            cpu[label] = meters.since(before)
            load_stats = await helper.acall(cmd="load_stop")
        else:
            loaded = derive({"samples": {"direct": [], "inline": [], "celery": []}, "rounds": 0})
            cpu[label] = {}
        result = report(pool, args, idle, loaded, load_stats, cpu)
    finally:
        stop_group(worker)
        if worker in _processes:
            _processes.remove(worker)
    log.unlink(missing_ok=True)
    return result


async def run(args) -> None:
    import httpx
    import redis

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)

    create_database(args.database_url)
    mock, mock_url = start_mock(args)
    _processes.append(mock)
    env = bench_env(args, mock_url)
    _redis_url.append(env["REDIS_URL"])
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    prepare(env)
    server, base = start_server(argparse.Namespace(server="uvicorn"), env)
    _processes.append(server)
    helper = Helper(env)
    token = httpx.post(f"{base}/api/v1/auth/token/", json={"username": USERNAME, "password": PASSWORD}).json()["access"]
    clients = Clients(base, mock_url, token)
    print(
        f"AgentHub uvicorn at {base}; mock model: ttft {args.ttft_ms} ms, token delay {args.token_delay_ms} ms; "
        f"Postgres {DATABASE}, Redis db {REDIS_DB} (channel layer, broker, results); {args.rounds} interleaved "
        f"rounds (direct, inline tool, Celery tool) per phase after {args.warmup} warm-up rounds, "
        f"at most {args.phase_seconds:g} s each."
    )
    print(
        "Round trip = the turn's enqueue stamp (time.time() before apply_async, read back from the bench tool's "
        "result)\n  -> the websocket client's time.time() as the tool.finished frame arrives; same machine, one clock."
    )
    print(
        f"Background load: agents.tasks.tool_execute(bench_echo, no reply channel).apply_async at "
        f"{args.load_rate:g}/s from a separate process."
    )
    try:
        results = {}
        for pool in args.pools:
            results[pool] = await run_pool(pool, args, env, clients, server, helper)
        if args.profile:
            print("\nPieces of the path, measured alone at idle in the helper process (ms, p50 / p99):")
            for name, (p50, p99) in (await helper.acall(cmd="profile", n=200)).items():
                print(f"  {name:<72} {p50:>7.3f} {p99:>7.3f}")
        print(
            "\nSummary: "
            + ", ".join(f"{p} {'targets met' if r['met'] else 'targets missed'}" for p, r in results.items())
        )
        await helper.acall(cmd="quit")
    finally:
        await clients.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pools",
        type=lambda v: v.split(","),
        default=["prefork"],
        help="prefork, threads, solo, each optionally +dbreuse (comma list)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="worker processes (tools wait on I/O: more than the cores)"
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--phase-seconds", type=float, default=45, help="time cap of a measured phase")
    parser.add_argument("--load-rate", type=float, default=200, help="background tool tasks per second (0: none)")
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--ttft-ms", type=float, default=5)
    parser.add_argument("--token-delay-ms", type=float, default=1)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    args = parser.parse_args()
    if args.helper:
        helper_main()
        return
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; stopping the processes", file=sys.stderr)
    finally:
        stop_all()
        if _redis_url:  # the bench's own Redis database: queued tasks, results, channel messages
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(_redis_url[0]).flushdb()


if __name__ == "__main__":
    main()
