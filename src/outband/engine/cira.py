"""The engine's CIRA client: keep a tunnel to the MPS and serve its channels from the engine's own listeners.

Where the MPS comes from, in order: the command line (``outband engine --cira HOST:PORT --cira-user U
--cira-password P [--cira-ca FILE | --cira-insecure]``), else the WS-MAN configuration a console stored as it
configures real AMT (``services.remoteaccess.cira_config``: AddMpServer, a periodic AddRemoteAccessPolicyRule,
the MPS root from AddTrustedRootCertificate, environment detection saying we are outside the intranet).  The
WS-MAN path verifies the MPS as AMT does: the certificate must chain to a trusted root added over WS-MAN and
match the configured CN (or AccessInfo).

Theory of operation (:class:`CiraClient`): one task per engine that has an MPS, looping dial -> serve -> back
off.  Dialling is TLS, then APF (``aio.apf.dial_mps``): PROTOCOL_VERSION with the platform's UUID, password
login, ``tcpip-forward`` for each port the engine serves (16993, 16992, 16995, 16994; 5900 only when KVM on
5900 is enabled and served).  While connected the task just waits for the tunnel to end -- keepalives run on the
tunnel's one timer -- and each channel the MPS opens is spliced to the engine's own listener for that port, so
WS-MAN, TLS and redirection reach the very same code as over TCP.  After a failure or a drop the next dial
waits ``Backoff.delay(n)``: exponential with jitter, so a fleet whose MPS restarts does not return all at once.
An engine without an MPS has no task; a timer re-reads the WS-MAN configuration every ``config_poll`` seconds
(AMT's periodic policy likewise decides when to dial).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..aio.apf import AmtTunnel, dial_mps, splice_to_tcp
from ..proto.apf import (
    AMT_PORTS,
    VNC_PORT,
    AmtConnection,
    ApfError,
    ChannelRequested,
    DisconnectError,
    OpenFailureReason,
)
from .registry import Service
from .services.redirection import redirection_state
from .services.remoteaccess import AUTH_PASSWORD, CiraConfig, MpsServer, cira_config
from .services.runtimestate import runtime

if TYPE_CHECKING:
    from .core import Engine
    from .server import EngineServer

log = logging.getLogger(__name__)

service = Service("cira")

DEFAULT_MPS_PORT: Final = 4433
PERIODIC_TRIGGER: Final = 2
CONFIG_POLL: Final = 30.0

LocalPorts = Callable[[int], "tuple[str, int] | None"]
"""Where the engine itself serves an AMT port (host, port), or None when it does not serve it."""


# ---------------------------------------------------------------------------------------------- where to dial


@dataclass(frozen=True, slots=True)
class CiraTarget:
    """One MPS to dial, however it was configured."""

    host: str
    port: int
    username: str
    password: str
    server_name: str
    """What the MPS certificate must name (its CN or a subject alternative name)."""
    tls: ssl.SSLContext
    source: str

    def __repr__(self) -> str:
        return f"CiraTarget({self.host}:{self.port} as {self.username!r}, from {self.source})"


@dataclass(frozen=True, slots=True)
class CiraOptions:
    """The command line's MPS, which takes precedence over any WS-MAN configuration."""

    host: str
    port: int
    username: str
    password: str
    ca_file: Path | None = None
    insecure: bool = False

    @classmethod
    def parse(cls, address: str, username: str | None, password: str | None, *, ca_file: Path | None = None,
              insecure: bool = False) -> CiraOptions:
        """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) plus credentials; raises ValueError with what is wrong."""
        if address.startswith("["):
            host, _, rest = address[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif address.count(":") == 1:
            host, port_text = address.split(":")
        else:  # a bare name or a bare IPv6 address
            host, port_text = address, ""
        if not host:
            raise ValueError("--cira needs HOST or HOST:PORT")
        try:
            port = int(port_text) if port_text else DEFAULT_MPS_PORT
        except ValueError:
            raise ValueError(f"--cira port {port_text!r} is not a number") from None
        if not 0 < port < 65536:
            raise ValueError(f"--cira port {port} is out of range")
        if not username or not password:
            raise ValueError("--cira needs --cira-user and --cira-password")
        if ca_file is not None and insecure:
            raise ValueError("--cira-ca and --cira-insecure exclude each other")
        if ca_file is not None and not ca_file.is_file():
            raise ValueError(f"--cira-ca {ca_file} is not a file")
        return cls(host, port, username, password, ca_file, insecure)

    def target(self) -> CiraTarget:
        if self.insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            context.hostname_checks_common_name = True
        return CiraTarget(self.host, self.port, self.username, self.password, self.host, context, "command line")


def _trusting(roots_der: tuple[bytes, ...]) -> ssl.SSLContext:
    """A client context that trusts exactly the roots added over WS-MAN and checks the name like AMT (the CN
    counts when the certificate has no alternative names)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.hostname_checks_common_name = True
    pem = "".join(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii") for der in roots_der)
    context.load_verify_locations(cadata=pem)
    return context


def configured_targets(engine: Engine, config: CiraConfig | None = None) -> list[CiraTarget]:
    """The MPS servers AMT would dial now, in order of access: those of the periodic policy, while environment
    detection says we are outside the intranet, that use password authentication, with a trusted root."""
    config = config if config is not None else cira_config(engine)
    if config is None:
        return []
    policy = config.policy(PERIODIC_TRIGGER)
    if policy is None or not config.outside_intranet(engine.config.domain):
        return []
    if not config.trusted_roots_der:
        log.warning("%s: CIRA is configured but no trusted root certificate was added", engine.config.engine_id)
        return []
    context = _trusting(config.trusted_roots_der)
    return [target for server in policy.servers if (target := _target(engine, server, context)) is not None]


def _target(engine: Engine, server: MpsServer, context: ssl.SSLContext) -> CiraTarget | None:
    if server.auth_method != AUTH_PASSWORD or not server.username or not server.password:
        log.warning("%s: MPS %s uses mutual TLS authentication, which this engine does not do yet",
                    engine.config.engine_id, server.host)
        return None
    return CiraTarget(server.host, server.port, server.username, server.password,
                      server.common_name or server.host, context, f"WS-MAN {server.name}")


# ---------------------------------------------------------------------------------------------- the client


@dataclass(slots=True)
class Backoff:
    """Delays between dials: ``base * 2**(n-1)`` capped at ``cap``, the upper half of it randomised."""

    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class CiraTuning:
    """How the client paces itself (tests shrink these)."""

    backoff: Backoff = field(default_factory=Backoff)
    config_poll: float = CONFIG_POLL
    keepalive_interval: float = 30.0
    dial_timeout: float = 30.0


DEFAULT_TUNING: Final = CiraTuning()
"""Shared by every client not given its own: a fleet keeps one backoff random generator, not one per engine."""


@dataclass(slots=True)
class CiraStatus:
    """What the client is doing, for logs, tests and the engine's own view."""

    connected: bool = False
    target: CiraTarget | None = None
    dials: int = 0
    connects: int = 0
    failures: int = 0
    last_error: str = ""
    delays: list[float] = field(default_factory=list)
    """The back-off delays waited, most recent last (the last few only)."""


class CiraClient:
    """Keeps one engine's CIRA tunnel up."""

    MAX_DELAYS_KEPT: Final = 16

    def __init__(self, engine: Engine, local: LocalPorts, override: CiraOptions | None = None, *,
                 tuning: CiraTuning | None = None) -> None:
        self.engine = engine
        self.local = local
        self.override = override.target() if override is not None else None
        self.tuning = tuning or DEFAULT_TUNING
        self.status = CiraStatus()
        self.tunnel: AmtTunnel | None = None
        self._last_tunnel: AmtTunnel | None = None
        self._changed_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._splices: set[asyncio.Task[None]] = set()
        self._stopped = False

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Dial now if an MPS is configured, else look again every ``config_poll`` seconds."""
        self._stopped = False
        self._check_config()

    def stop(self) -> None:
        """Stop at once: no further dial, the tunnel ended (DISCONNECT, then the connection closes within
        ``aio.apf.CLOSE_GRACE``), nothing left running afterwards."""
        self._stopped = True
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        if self.tunnel is not None:
            self._last_tunnel = self.tunnel
            self.tunnel.close()
        for task in (self._task, *self._splices):
            if task is not None:
                task.cancel()

    async def aclose(self) -> None:
        """Stop, and wait until the task, the channels and the connection are all gone."""
        self.stop()
        tasks = [t for t in (self._task, *self._splices) if t is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._last_tunnel is not None:
            await asyncio.shield(self._last_tunnel.gone)

    def targets(self) -> list[CiraTarget]:
        return [self.override] if self.override is not None else configured_targets(self.engine)

    def _check_config(self) -> None:
        self._poll = None
        if self._stopped or self._task is not None:
            return
        if self.targets():
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"cira {self.engine.config.engine_id}")
        else:
            self._poll = asyncio.get_running_loop().call_later(self.tuning.config_poll, self._check_config)

    # ------------------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        failures = 0
        turn = 0
        try:
            while not self._stopped:
                targets = self.targets()
                if not targets:
                    break
                target = targets[turn % len(targets)]
                turn += 1
                if await self._serve(target):
                    failures = 1  # a drop after a good connection waits the shortest delay
                else:
                    failures += 1
                delay = self.tuning.backoff.delay(failures)
                self.status.delays = [*self.status.delays[-(self.MAX_DELAYS_KEPT - 1):], delay]
                self._changed()
                await asyncio.sleep(delay)
        finally:
            self._task = None
        if not self._stopped:  # the configuration went away: watch for it to come back
            self._check_config()

    async def _serve(self, target: CiraTarget) -> bool:
        """One connection: True if it came up (and has now ended), False if it could not."""
        self.status.target = target
        self.status.dials += 1
        ports = self._ports()
        machine = AmtConnection(system_uuid=uuid.UUID(self.engine.uuid), username=target.username,
                                password=target.password, hostname=self._hostname(), ports=ports,
                                keepalive_interval=self.tuning.keepalive_interval,
                                handshake_timeout=self.tuning.dial_timeout)
        try:
            tunnel = await dial_mps(target.host, target.port, machine, self._on_channel, ssl_context=target.tls,
                                    server_hostname=target.server_name, dial_timeout=self.tuning.dial_timeout)
        except (OSError, ssl.SSLError, ApfError, TimeoutError) as exc:
            self._failed(target, exc)
            return False
        self.tunnel = tunnel
        self.status.connected = True
        self.status.connects += 1
        log.info("%s: CIRA tunnel to %s:%d up, ports %s", self.engine.config.engine_id, target.host, target.port,
                 machine.forwarded_ports)
        self._changed()
        try:
            error = await tunnel.wait_closed()
        finally:
            self.tunnel = None
            self.status.connected = False
        self.status.last_error = str(error)
        log.info("%s: CIRA tunnel to %s:%d ended: %s", self.engine.config.engine_id, target.host, target.port, error)
        self._changed()
        return True

    def _failed(self, target: CiraTarget, exc: BaseException) -> None:
        self.status.failures += 1
        kind = "refused" if isinstance(exc, DisconnectError) else "failed"
        self.status.last_error = f"{type(exc).__name__}: {exc}"
        log.info("%s: CIRA dial to %s:%d %s: %s", self.engine.config.engine_id, target.host, target.port, kind,
                 self.status.last_error)
        self._changed()

    def _changed(self) -> None:
        event, self._changed_event = self._changed_event, asyncio.Event()
        event.set()

    async def wait_until(self, condition: Callable[[CiraStatus], bool]) -> CiraStatus:
        """Wait (no polling) until ``condition(status)`` holds; bound it with ``asyncio.timeout``."""
        while not condition(self.status):
            await self._changed_event.wait()
        return self.status

    def _ports(self) -> list[int]:
        ports = [p for p in AMT_PORTS if self.local(p) is not None]
        if self.local(VNC_PORT) is not None and redirection_state(self.engine).port_5900:
            ports.append(VNC_PORT)
        return ports

    def _hostname(self) -> str:
        host = self.engine.config.hostname or "outband"
        return f"{host}.{self.engine.config.domain}" if self.engine.config.domain else host

    def _on_channel(self, tunnel: AmtTunnel, request: ChannelRequested) -> None:
        where = self.local(request.port)
        if where is None:
            tunnel.reject_channel(request.channel_id, OpenFailureReason.CONNECT_FAILED)
            return
        task = asyncio.get_running_loop().create_task(splice_to_tcp(tunnel, request, *where))
        self._splices.add(task)
        task.add_done_callback(self._splices.discard)


# ---------------------------------------------------------------------------------------------- wiring


def client_of(engine: Engine) -> CiraClient | None:
    holder: list[CiraClient] = runtime(engine, "cira", list)
    return holder[0] if holder else None


def listeners_of(server: EngineServer, address: str) -> LocalPorts:
    """The engine's own listeners on ``address``: the channels of its tunnel loop back to them."""
    kinds = {16992: (False, False, False), 16993: (True, False, False), 16994: (False, True, False),
             16995: (True, True, False), VNC_PORT: (False, False, True)}
    host = "127.0.0.1" if ipaddress.ip_address(address).is_unspecified else address

    def where(port: int) -> tuple[str, int] | None:
        if port not in kinds:
            return None
        tls, redirection, vnc = kinds[port]
        try:
            return host, server.bound_port(address, tls=tls, redirection=redirection, vnc=vnc)
        except KeyError:
            return None

    return where


def attach(server: EngineServer, override: CiraOptions | None = None, tuning: CiraTuning | None = None
           ) -> list[CiraClient]:
    """Give every engine of a started server its CIRA client (stopped again by the engine's stop hook when
    the engine runs the ``cira`` service)."""
    clients = []
    for address, engine in server.engines.items():
        client = CiraClient(engine, listeners_of(server, address), override, tuning=tuning)
        holder: list[CiraClient] = runtime(engine, "cira", list)
        for old in holder:
            old.stop()
        holder[:] = [client]
        client.start()
        clients.append(client)
    return clients


@service.on_stop
def _stop(engine: Engine) -> None:
    """An engine that stops must not keep a tunnel, or dial again."""
    client = client_of(engine)
    if client is not None:
        client.stop()
