"""Serving the mock model server: uvicorn in a thread of its own, for tests,
benchmarks and ``manage.py mock_llm_server``."""

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from integrations.llm.testing.app import MockLLMApp
from integrations.llm.testing.directives import MockConfig


class SignalFreeServer(uvicorn.Server):
    """A uvicorn server whose owner handles signals (or runs it in a thread)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: MockLLMApp, config: MockConfig) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        log_config=None,  # leave the process's logging configuration alone
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        backlog=4096,
        timeout_keep_alive=75,  # longer than clients keep idle connections
        timeout_graceful_shutdown=2,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class MockServer:
    """The mock server running on its own event loop in a background thread."""

    def __init__(self, config: MockConfig | None = None):
        self.config = config or MockConfig()
        self.app = MockLLMApp(self.config)
        self._server = SignalFreeServer(uvicorn_config(self.app, self.config))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return url_for(self.config.host, self.port)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://host:port/v1``)."""
        return f"{self.url}/v1"

    @property
    def connection_ids(self) -> frozenset[int]:
        """Ids of the client connections open now (a reused keep-alive
        connection keeps its id)."""
        return frozenset(id(connection) for connection in list(self._server.server_state.connections))

    def start(self, timeout: float = 10.0) -> "MockServer":
        sock = bind_socket(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), name="mock-llm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("The mock LLM server did not start in time.")
        if self._error is not None:
            raise RuntimeError("The mock LLM server failed to start.") from self._error
        return self

    def _run(self, sock: socket.socket) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                self._loop = runner.get_loop()
                runner.run(self._serve(sock))
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            sock.close()
            self._ready.set()

    async def _serve(self, sock: socket.socket) -> None:
        task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started and not task.done():
            await asyncio.sleep(0.005)
        self._ready.set()
        await task

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                self._loop.call_soon_threadsafe(self.app.begin_shutdown)
        self._server.should_exit = True
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def run_in_thread(config: MockConfig | None = None) -> tuple[str, Callable[[], None]]:
    """Starts the mock server in a background thread; returns its OpenAI base
    URL (``http://host:port/v1``) and a function that stops it."""
    server = MockServer(config).start()
    return server.base_url, server.stop


@contextlib.contextmanager
def serving(config: MockConfig | None = None) -> Iterator[MockServer]:
    """The mock server for the duration of a ``with`` block."""
    with MockServer(config) as server:
        yield server
