"""Serving a console over HTTP with uvicorn, started and stopped from inside a running event loop (so
``outband up`` can run engines beside it, and tests can ask for port 0 and learn the real one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Final

import uvicorn

from ..aio.listen import listening_socket
from .api.app import create_app
from .runtime import Runtime

log = logging.getLogger("outband.console")

STARTUP_TIMEOUT: Final = 30.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: it would re-raise a caught SIGTERM after shutting down and so
    kill the process before the console closes its runtime.  The owner decides (ConsoleServer.stop_on_signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ConsoleServer:
    """``await server.start()`` binds and serves; ``server.url`` is where; ``await server.stop()`` drains
    requests in flight and returns.  The runtime stays the caller's to close."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime = runtime
        self._socket = listening_socket(host, port, backlog=1024)
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(create_app(runtime), log_config=None, access_log=True, lifespan="off",
                                server_header=False, proxy_headers=False, timeout_graceful_shutdown=10)
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="console-http")
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not self._server.started:
                if self._task.done():
                    await self._task
                    raise RuntimeError("the console's HTTP server stopped while starting")
                await asyncio.sleep(0.01)
        log.info("console listening", extra={"url": self.url})

    def stop_on_signals(self) -> None:
        """SIGINT/SIGTERM start a graceful stop (a second SIGINT forces it)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._server.handle_exit, sig, None)

    async def wait(self) -> None:
        """Until the server stops (SIGINT/SIGTERM, or :meth:`stop`)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._socket.close()
