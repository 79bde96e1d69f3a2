"""Running engines: listeners on 16992 (HTTP) and 16993 (TLS), the redirection ports 16994 (TCP) and 16995
(TLS), and KVM's VNC port 5900, for one engine or a fleet in one process.

Each engine listens on its own address with the standard ports (AMT tools assume them).  A fleet gives
engine *i* the address ``fleet_base + i`` on the loopback network; all share one aiohttp application, one
state database and one event loop.  Listening sockets are created directly (no aiohttp site objects per
address) to keep the cost per engine down to its file descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from ..aio.listen import listening_socket
from .core import Engine
from .http import make_app
from .redirection import RedirectionConfig, RedirectionListener, default_handlers
from .redirection.vnc import VncListener

FD_HEADROOM = 256
LISTEN_BACKLOG = 128
"""Descriptors beyond the listening sockets: the state database, standard streams, a few connections."""


@dataclass(frozen=True, slots=True)
class Ports:
    http: int = 16992
    tls: int | None = 16993
    redirection: int | None = None
    """16994 on a real engine; None serves no redirection (SOL, IDE-R, KVM)."""
    redirection_tls: int | None = None
    """16995 on a real engine (needs the TLS context too)."""
    vnc: int | None = None
    """5900 on a real engine: KVM for standard VNC viewers, served only while a console has switched it on
    (``redirection/vnc.py``); None does not listen at all."""


class EngineServer:
    """Serves engines keyed by their listening address."""

    def __init__(self, engines: Mapping[str, Engine], ports: Ports, tls: ssl.SSLContext | None = None, *,
                 redirection: RedirectionConfig | None = None) -> None:
        self.engines = dict(engines)
        self.ports = ports
        self.tls = tls
        self.redirection_config = redirection or RedirectionConfig()
        self.redirection: dict[str, RedirectionListener] = {}
        self.vnc: dict[str, VncListener] = {}
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._bound: dict[tuple[str, bool, bool, bool], int] = {}

    async def start(self) -> None:
        self._check_fd_limit()
        for engine in self.engines.values():
            await engine.start()
        self._runner = web.AppRunner(make_app(self.engines), access_log=None, handle_signals=False)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        listeners: list[tuple[int, ssl.SSLContext | None]] = [(self.ports.http, None)]
        if self.ports.tls is not None and self.tls is not None:
            listeners.append((self.ports.tls, self.tls))
        for address in self.engines:
            for port, context in listeners:
                sock = listening_socket(address, port, backlog=LISTEN_BACKLOG)
                self._bound[(address, context is not None, False, False)] = int(sock.getsockname()[1])
                self._servers.append(await loop.create_server(server, sock=sock, ssl=context))
        await self._start_redirection()
        await self._start_vnc()

    async def _start_redirection(self) -> None:
        listeners: list[tuple[int, ssl.SSLContext | None]] = []
        if self.ports.redirection is not None:
            listeners.append((self.ports.redirection, None))
        if self.ports.redirection_tls is not None and self.tls is not None:
            listeners.append((self.ports.redirection_tls, self.tls))
        if not listeners:
            return
        for address, engine in self.engines.items():
            redirection = RedirectionListener(engine, default_handlers(), self.redirection_config)
            self.redirection[address] = redirection
            for port, context in listeners:
                sock = listening_socket(address, port, backlog=LISTEN_BACKLOG)
                self._bound[(address, context is not None, True, False)] = int(sock.getsockname()[1])
                self._servers.append(await asyncio.start_server(redirection.serve, sock=sock, ssl=context))

    async def _start_vnc(self) -> None:
        if self.ports.vnc is None:
            return
        for address, engine in self.engines.items():
            vnc = self.vnc[address] = VncListener(engine, self.redirection_config)
            sock = listening_socket(address, self.ports.vnc, backlog=LISTEN_BACKLOG)
            self._bound[(address, False, False, True)] = int(sock.getsockname()[1])
            self._servers.append(await asyncio.start_server(vnc.serve, sock=sock))

    def _check_fd_limit(self) -> None:
        """Raise the descriptor limit for the listeners (and room for connections), or say at once that the
        fleet cannot fit, rather than failing thousands of sockets in."""
        tls = self.tls is not None
        ports = (self.ports.http, self.ports.tls if tls else None, self.ports.redirection,
                 self.ports.redirection_tls if tls else None, self.ports.vnc)
        per_engine = sum(port is not None for port in ports)
        needed = len(self.engines) * per_engine + FD_HEADROOM
        limit = raise_fd_limit(len(self.engines) * (per_engine + 2) + FD_HEADROOM)
        if limit < needed:
            raise OSError(errno.EMFILE, f"{len(self.engines)} engines with {per_engine} listening port(s) each need "
                          f"{needed} file descriptors, but this process may open {limit}: raise the limit "
                          "(ulimit -n; the hard limit needs privileges) or run fewer engines or ports")

    def bound_port(self, address: str | None = None, *, tls: bool = False, redirection: bool = False,
                   vnc: bool = False) -> int:
        """The port actually bound for an engine's address (tests ask for port 0)."""
        address = address or next(iter(self.engines))
        return self._bound[(address, tls, redirection, vnc)]

    async def stop(self) -> None:
        for srv in self._servers:
            srv.close()
        for redirection in self.redirection.values():
            await redirection.aclose()
        for vnc in self.vnc.values():
            await vnc.aclose()
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._servers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for engine in self.engines.values():
            await engine.stop()


def raise_fd_limit(wanted: int) -> int:
    """Fleet mode needs several descriptors per engine; raise the soft limit as far as the hard one allows.
    Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else soft
