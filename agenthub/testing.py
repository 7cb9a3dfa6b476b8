"""Helpers for tests that run real processes: an ASGI server (daphne) on the
test database, reachable over loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_subprocess() -> str:
    """The URL of the database the tests are using (the test database)."""
    connection = connections["default"]
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        if connection.is_in_memory_db():
            raise RuntimeError(
                f"the test database {db['NAME']!r} is in memory: another process cannot open it "
                "(agenthub.settings.test makes it a file: DATABASES['default']['TEST']['NAME'])"
            )
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def subprocess_env(**extra) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agenthub.settings.test",
        "PYTHONUNBUFFERED": "1",
        "JOURNAL_DRAIN_IN_WEB": "true",  # servers drain the write-behind journal, as in production
    }
    env["DATABASE_URL"] = database_url_for_subprocess()
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ServerURL(str):
    """A server's base URL that also holds its process (to signal it)."""

    process: subprocess.Popen


@contextmanager
def run_daphne(
    *, env: dict | None = None, log_path: Path | None = None, timeout: float = 30, server: str = "agenthub.server"
):
    """Starts daphne on a free port, as production does (``agenthub.server``,
    or ``server="daphne"`` for the plain one), and yields its base URL once
    it serves."""
    port = free_port()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    argv = [sys.executable, "-m", server, "-b", "127.0.0.1", "-p", str(port), "agenthub.asgi:application"]
    if server == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--ws-max-size", str(1024 * 1024), "agenthub.asgi:application"]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env or subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = ServerURL(f"http://127.0.0.1:{port}")
    base.process = process
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server} exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not start in time")
            time.sleep(0.1)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log_path:
            log.close()


@contextmanager
def run_celery_worker(
    *,
    env: dict | None = None,
    log_path: Path,
    queues: str = "default,tools",
    concurrency: int = 2,
    pool: str = "prefork",
    timeout: float = 60,
):
    """Starts a real Celery worker (its own process group) and yields the
    ``Popen`` once it consumes; stopped with SIGTERM (or killed) on exit."""
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "agenthub",
            "worker",
            "-Q",
            queues,
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env or subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while " ready." not in log_path.read_text():
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start in time:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


async def journal_settle(timeout: float = 10.0) -> None:
    """Until everything journaled so far is in the database: applies what
    no drainer has taken yet, and waits for what a drainer (this process's
    or a server's) is applying."""
    import asyncio

    from agenthub import journal

    if not journal.enabled():
        return
    deadline = time.monotonic() + timeout
    while True:
        # Entries a drainer has held for a second (one whose event loop
        # ended with the request that started it) are taken over: applying
        # an entry twice writes it once.
        await journal.drain_all(claim_idle=True, idle_ms=1000)
        state = await journal.backlog()
        if not state["length"] and not state["pending"]:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"the journal did not settle in {timeout:g} s: {state}")
        await asyncio.sleep(0.02)


def journal_settle_sync(timeout: float = 10.0) -> None:
    """:func:`journal_settle` from a sync test."""
    import asyncio

    from agenthub.redis import get_redis

    async def settle():
        try:
            await journal_settle(timeout)
        finally:
            await get_redis().aclose()

    asyncio.run(settle())
