"""A small MPS for tests: accepts CIRA tunnels on loopback, checks credentials, tracks devices, reaches ports.

Built on ``outband.aio.apf``'s server role exactly as a console's MPS is, so tests of the engine's CIRA client
exercise the same tunnel code from both ends::

    async with LoopbackMps({"device-user": "Secret1!"}, tls_dir=tmp_path) as mps:
        ...point an engine at 127.0.0.1:mps.port, trusting mps.cert_file...
        device = await mps.wait_device()
        async with device.amt_client("admin", admin_password) as amt:
            settings = await amt.get("AMT_GeneralSettings")
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..aio.apf import MpsTunnel, TunnelWsmanTransport, serve_mps
from ..aio.tls import generate_self_signed, server_context
from ..client.amt import AmtClient
from ..proto.apf import (
    DisconnectError,
    Event,
    KeepaliveReceived,
    MpsConnection,
    PeerHello,
    PortForwarded,
    Terminated,
)


@dataclass
class ConnectedDevice:
    """One tunnel the MPS accepted (kept after it ends, with ``ended`` set)."""

    tunnel: MpsTunnel
    username: str
    connected_at: float
    keepalives: int = 0
    last_keepalive: float | None = None
    ended: DisconnectError | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def system_uuid(self) -> uuid.UUID | None:
        return self.tunnel.machine.system_uuid

    @property
    def ports(self) -> dict[int, str]:
        return self.tunnel.machine.forwarded

    @property
    def online(self) -> bool:
        return self.ended is None

    def wsman(self, username: str, password: str, **kwargs: Any) -> TunnelWsmanTransport:
        return TunnelWsmanTransport(self.tunnel, username, password, **kwargs)

    @asynccontextmanager
    async def amt_client(self, username: str, password: str, **kwargs: Any) -> AsyncIterator[AmtClient]:
        """An AmtClient whose requests travel through this tunnel."""
        transport = self.wsman(username, password, **kwargs)
        try:
            yield AmtClient(transport.host, transport=transport)
        finally:
            await transport.close()


class LoopbackMps:
    """Accepts devices whose CIRA user name and password are in ``credentials``."""

    def __init__(self, credentials: Mapping[str, str], *, tls_dir: Path, common_name: str = "localhost",
                 machine_factory: Callable[[], MpsConnection] = MpsConnection) -> None:
        self.credentials = dict(credentials)
        self.tls_dir = tls_dir
        self.common_name = common_name
        self.machine_factory = machine_factory
        self.devices: list[ConnectedDevice] = []
        self.refused: list[str] = []
        """User names whose login was refused."""
        self._by_tunnel: dict[MpsTunnel, ConnectedDevice] = {}
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self.port = 0

    @property
    def cert_file(self) -> Path:
        """The MPS certificate (self-signed: it is its own root, what an engine must trust)."""
        return self.tls_dir / "mps-cert.pem"

    @property
    def cert_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_file.read_bytes()).public_bytes(Encoding.DER)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> LoopbackMps:
        key = self.tls_dir / "mps-key.pem"
        if not self.cert_file.exists():
            generate_self_signed(self.cert_file, key, self.common_name, hosts=[host, "localhost"])
        self._server = await serve_mps(self, host, port, server_context(self.cert_file, key),
                                       machine_factory=self.machine_factory)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        tunnels = [device.tunnel for device in self.connected()]
        for tunnel in tunnels:
            tunnel.close()
        for tunnel in tunnels:
            await asyncio.shield(tunnel.gone)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackMps:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------ MpsHandler

    async def authenticate(self, tunnel: MpsTunnel, username: str, password: str) -> bool:
        expected = self.credentials.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            self.refused.append(username)
            self._notify_change()
            return False
        device = ConnectedDevice(tunnel, username, tunnel.loop.time())
        self._by_tunnel[tunnel] = device
        self.devices.append(device)
        self._notify_change()
        return True

    def notify(self, tunnel: MpsTunnel, event: Event) -> None:
        device = self._by_tunnel.get(tunnel)
        if device is None:  # before a successful login only the hello and the end can happen
            return
        device.events.append(event)
        if isinstance(event, KeepaliveReceived):
            device.keepalives += 1
            device.last_keepalive = tunnel.loop.time()
        elif isinstance(event, Terminated):
            device.ended = event.error
            del self._by_tunnel[tunnel]
        elif not isinstance(event, PeerHello | PortForwarded):
            return
        self._notify_change()

    # ------------------------------------------------------------------------------------------ queries

    def connected(self) -> list[ConnectedDevice]:
        return [d for d in self.devices if d.online]

    def _notify_change(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, condition: Callable[[LoopbackMps], bool]) -> None:
        """Wait without polling until ``condition(self)`` holds (bound it with ``asyncio.timeout``)."""
        while not condition(self):
            await self._changed.wait()

    async def wait_device(self, *, ports: tuple[int, ...] = (16992,), after: int = 0) -> ConnectedDevice:
        """The first connected device (beyond the first ``after`` ever seen) with ``ports`` registered."""

        def found(mps: LoopbackMps) -> bool:
            return any(d.online and all(p in d.ports for p in ports) for d in mps.devices[after:])

        await self.wait_until(found)
        return next(d for d in self.devices[after:] if d.online and all(p in d.ports for p in ports))
