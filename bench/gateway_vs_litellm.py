"""AgentHub's OpenAI-compatible path side by side with LiteLLM proxy.

In one run, against the same mock model server (the project's, 32-token
answers): a direct ``openai`` call to the mock (the baseline), the same call
through LiteLLM proxy 1.80.0 (installed by this script into
``bench/.litellm-venv``, never a project dependency; one worker, no
database, a master key), and through AgentHub's ``/v1/chat/completions``
(daphne or uvicorn, production settings, Postgres, Redis, an API key, the
agent's conversation persisted, budgets and metering on).

1. Sequential, interleaved rounds with the official ``openai`` client:
   time-to-first-token and whole-stream overhead over the direct call.
2. Throughput: ``--clients`` concurrent clients posting non-streaming
   requests for ``--seconds`` each: requests/s and latency.

    .venv/bin/python bench/gateway_vs_litellm.py [--rounds 200] [--clients 20] [--seconds 10]

Targets (issue 10): TTFT overhead p50 below LiteLLM's and <= 5 ms, p99 <= 15
ms; whole 32-token stream overhead <= 10 ms; non-streaming requests/s at
least 1.5x LiteLLM's with the same number of processes.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat_overhead import (  # noqa: E402
    bench_env,
    create_database,
    free_port,
    percentile,
    prepare,
    start_mock,
    start_server,
    stop,
)

LITELLM_VERSION = "1.80.0"
LITELLM_VENV = ROOT / "bench" / ".litellm-venv"
MASTER_KEY = "sk-bench-master"
PROMPT = [{"role": "user", "content": "Summarise our refund policy."}]
TARGETS = {"ttft_p50": 5.0, "ttft_p99": 15.0, "stream": 10.0, "rps_ratio": 1.5}


def litellm_binary() -> Path:
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print(f"installing LiteLLM proxy {LITELLM_VERSION} into {LITELLM_VENV} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"], check=True
        )
    return binary


def start_litellm(mock_url: str) -> tuple[subprocess.Popen, str]:
    config = Path(tempfile.mkdtemp()) / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: mock-model\n"
        "    litellm_params:\n"
        "      model: openai/mock-model\n"
        f"      api_base: {mock_url}\n"
        "      api_key: bench\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(LITELLM_LOG="ERROR", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [
            str(litellm_binary()),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import httpx

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health/liveliness", timeout=1).status_code == 200:
                return process, base
        if process.poll() is not None:
            raise RuntimeError("LiteLLM proxy exited at start")
        time.sleep(0.3)
    raise RuntimeError("LiteLLM proxy did not start")


async def stream_once(client, model: str) -> tuple[float, float]:
    start = time.perf_counter()
    ttft = None
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    async for chunk in stream:
        if ttft is None and chunk.choices and chunk.choices[0].delta.content:
            ttft = time.perf_counter() - start
    return ttft, time.perf_counter() - start


async def sequential(targets: dict, rounds: int, warmup: int) -> dict:
    import random

    samples = {name: {"ttft": [], "total": []} for name in targets}
    order = list(targets)
    for index in range(warmup + rounds):
        random.shuffle(order)
        results = {name: await stream_once(*targets[name]) for name in order}
        if index < warmup:
            continue
        for name, (ttft, total) in results.items():
            samples[name]["ttft"].append(ttft * 1000)
            samples[name]["total"].append(total * 1000)
    return samples


async def throughput(client, model: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker():
        nonlocal errors
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                await client.chat.completions.create(model=model, messages=PROMPT)
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "errors": errors,
    }


def overhead(samples: dict, name: str, key: str) -> list[float]:
    return [a - b for a, b in zip(samples[name][key], samples["direct"][key], strict=True)]


async def run(args) -> None:
    import openai

    create_database(args.database_url)
    mock, mock_url = start_mock(args)
    processes = [mock]
    try:
        env = bench_env(args, mock_url)
        api_key = prepare(env)
        # Calls are priced as in production (an unpriced call logs a warning each time).
        subprocess.run(
            [sys.executable, "manage.py", "billing_seed_prices", "mock-model"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        agenthub, base = start_server(args, env)
        processes.append(agenthub)
        litellm, litellm_base = start_litellm(mock_url)
        processes.append(litellm)
        limits = {"max_retries": 0, "timeout": 60}
        targets = {
            "direct": (openai.AsyncOpenAI(base_url=mock_url, api_key="bench", **limits), "mock-model"),
            "litellm": (openai.AsyncOpenAI(base_url=f"{litellm_base}/v1", api_key=MASTER_KEY, **limits), "mock-model"),
            "agenthub": (openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=api_key, **limits), "bench"),
        }
        samples = await sequential(targets, args.rounds, args.warmup)
        print(f"\n/v1/chat/completions, streaming {args.tokens} tokens: {args.rounds} interleaved rounds")
        print(f"{'overhead over direct (ms)':<28}{'TTFT p50':>10}{'p95':>8}{'p99':>8}{'stream p50':>12}{'p99':>8}")
        figures = {}
        for name in ("litellm", "agenthub"):
            ttft, total = overhead(samples, name, "ttft"), overhead(samples, name, "total")
            figures[name] = (statistics.median(ttft), percentile(ttft, 99), statistics.median(total))
            print(
                f"{name:<28}{statistics.median(ttft):>10.2f}{percentile(ttft, 95):>8.2f}{percentile(ttft, 99):>8.2f}"
                f"{statistics.median(total):>12.2f}{percentile(total, 99):>8.2f}"
            )
        direct = samples["direct"]
        print(
            f"(direct call: TTFT p50 {statistics.median(direct['ttft']):.2f} ms, stream p50 "
            f"{statistics.median(direct['total']):.2f} ms)"
        )

        print(f"\nnon-streaming, {args.clients} concurrent clients, {args.seconds:g} s each")
        rates = {}
        for name in ("direct", "litellm", "agenthub"):
            result = await throughput(*targets[name], args.clients, args.seconds)
            rates[name] = result["rps"]
            print(
                f"{name:<10} {result['rps']:>8.1f} req/s   p50 {result['p50']:.1f} ms   p99 {result['p99']:.1f} ms"
                f"   errors {result['errors']}"
            )

        ah, ll = figures["agenthub"], figures["litellm"]
        ratio = rates["agenthub"] / rates["litellm"] if rates["litellm"] else float("nan")
        print("\ntargets")
        print(
            f"TTFT p50 {ah[0]:.2f} ms: below LiteLLM's {ll[0]:.2f} and <= {TARGETS['ttft_p50']:g} ms: "
            f"{'met' if ah[0] < ll[0] and ah[0] <= TARGETS['ttft_p50'] else 'MISSED'}"
        )
        print(
            f"TTFT p99 {ah[1]:.2f} ms <= {TARGETS['ttft_p99']:g} ms: {'met' if ah[1] <= TARGETS['ttft_p99'] else 'MISSED'}"
        )
        print(
            f"whole stream p50 {ah[2]:.2f} ms <= {TARGETS['stream']:g} ms: "
            f"{'met' if ah[2] <= TARGETS['stream'] else 'MISSED'}"
        )
        print(
            f"requests/s {ratio:.2f}x LiteLLM's >= {TARGETS['rps_ratio']:g}x: "
            f"{'met' if ratio >= TARGETS['rps_ratio'] else 'MISSED'}"
        )
    finally:
        for process in reversed(processes):
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="daphne")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--ttft-ms", type=float, default=0)
    parser.add_argument("--token-delay-ms", type=float, default=0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
