"""Misbehaving devices on loopback: one that never answers, one that hangs up mid-call, a proxy that hangs up
on the first connections and then passes traffic to a real engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class FaultServer:
    port: int
    connections: int = 0
    requests: int = 0
    """Requests whose headers arrived completely (they reached the 'device')."""
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a request has arrived."""

    def saw_request(self) -> None:
        self.requests += 1
        self.arrived.set()


async def _read_request(reader: asyncio.StreamReader) -> bool:
    try:
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return False
    return True


@asynccontextmanager
async def _serve(make: Callable[[FaultServer], Handler]) -> AsyncIterator[FaultServer]:
    state = FaultServer(0)
    handler = make(state)

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.writers.append(writer)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for writer in state.writers:
            writer.close()
        await server.wait_closed()


def black_hole() -> contextlib.AbstractAsyncContextManager[FaultServer]:
    """Accepts, reads the request, never answers."""
    def make(state: FaultServer) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if await _read_request(reader):
                state.saw_request()
            await asyncio.Event().wait()
        return handle
    return _serve(make)


def hang_up() -> contextlib.AbstractAsyncContextManager[FaultServer]:
    """Reads the whole request, then closes the connection without a word."""
    def make(state: FaultServer) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if await _read_request(reader):
                state.saw_request()
        return handle
    return _serve(make)


def flaky_proxy(host: str, port: int, *, drops: int) -> contextlib.AbstractAsyncContextManager[FaultServer]:
    """Hangs up on the first ``drops`` connections after their first request, then relays to host:port."""
    def make(state: FaultServer) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if state.connections <= drops:
                if await _read_request(reader):
                    state.saw_request()
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(ConnectionError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            try:
                await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        return handle
    return _serve(make)
