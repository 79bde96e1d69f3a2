"""The console's MPS: where CIRA devices dial in (TLS, 4433 by default), log in, and stay connected.

Theory of operation (:class:`MpsService`, a runtime service; one :class:`~outband.aio.apf.MpsTunnel` per
device connection)::

    TLS + PROTOCOL_VERSION (the device's system UUID)
      -> login: the device is looked up by UUID among the CIRA devices; it must present its own MPS
         credentials if it has some, else the shared ones from the settings.  An unknown UUID is refused, or,
         when auto-registration is on and the shared login is right, added as a new CIRA device.  Refusals are
         audited (``cira.login`` failed).
      -> the first WS-MAN port registered (tcpip-forward 16993/16992): published in the registry, presence
         written online (connected since, node, peer); the console's calls to the device now go through it:
         jobs waiting for it are woken, and the health poller reads its power state
      -> each KEEPALIVE: presence's last keepalive
      -> the tunnel ends (the device closed it, the TCP connection died, nothing heard for the idle timeout of
         three keepalive intervals, or the console stopped): withdrawn, presence written offline -- unless a
         newer tunnel of the same device replaced it already.

Security: with the shared login any device that knows it can claim any UUID of a device without credentials
of its own (the same trust Open AMT's and MeshCentral's MPS give a shared password); per-device credentials,
stored encrypted like the AMT password, close that.  The certificate is the console's own (generated in the
data directory on first start) unless one is given; AMT must trust its root and find its CN.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select

from ...aio.apf import MpsTunnel, serve_mps
from ...aio.tls import fingerprint_of, generate_self_signed, server_context
from ...proto.apf import (
    ByApplication,
    Event,
    KeepaliveReceived,
    MpsConnection,
    PeerHello,
    PortForwarded,
    Terminated,
)
from ..audit import FAILED, record_entry
from ..db.base import utcnow
from ..db.models import NAME_LENGTH, Device, Transport
from ..jobs.health import HealthPoller
from ..runtime import Runtime
from ..secrets import SecretKeyError
from .nodes import HEARTBEAT_SECONDS, NodeRelay, RelayServer, forget_node, register_node, sweep_dead_nodes
from .presence import PresenceWriter
from .registry import TunnelRegistry
from .settings import DEFAULT_MPS_LISTEN, MpsSettings, names_one_host

log = logging.getLogger("outband.console.mps")

WSMAN_PORTS: Final = frozenset({16992, 16993})
CERT_DIR: Final = "mps"
GENERATED_CN: Final = "outband-mps"


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a login says about a tunnel: the device it is."""

    device_id: int
    name: str


class LoginRefused(Exception):
    """Why a device may not log in (audited, never sent to the device: it only learns USERAUTH_FAILURE)."""


class MpsService:
    """Runs the MPS listener for one console process (one MPS node)."""

    name = "mps"

    def __init__(self, settings: MpsSettings | None = None, *, presence_interval: float = 0.25) -> None:
        self.settings = settings or MpsSettings()
        self.registry = TunnelRegistry()
        self.presence_interval = presence_interval
        self.port = 0
        self.host = ""
        self.cert_file: Path | None = None
        self._runtime: Runtime | None = None
        self._server: asyncio.Server | None = None
        self._presence: PresenceWriter | None = None
        self._claims: dict[MpsTunnel, _Claim] = {}
        self._tunnels: set[MpsTunnel] = set()
        self.relay: RelayServer | None = None
        self.heartbeat = HEARTBEAT_SECONDS
        """Seconds between this node's heartbeats (when it relays)."""
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def node(self) -> str:
        return self.settings.mps_node

    @property
    def presence(self) -> PresenceWriter:
        if self._presence is None:
            raise RuntimeError("the MPS is not running")
        return self._presence

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the MPS certificate (what to compare when AMT is told to trust it)."""
        if self.cert_file is None:
            raise RuntimeError("the MPS is not running")
        return fingerprint_of(self.cert_file)

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        context = self._tls_context(runtime.settings.data_dir)
        self._presence = PresenceWriter(runtime.db, self.node, interval=self.presence_interval)
        await self._presence.start()
        host, port = self.settings.listen_address
        try:
            self._server = await self._listen(host, port, context)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.settings.listen_given or port == 0:
                await self._presence.close()
                raise OSError(exc.errno, f"the MPS cannot listen on {host}:{port}: {exc.strerror}") from None
            # the default port is taken (another console on this machine): serve anyway, elsewhere
            self._server = await self._listen(host, 0, context)
            log.warning("MPS port %d is taken; listening on %d instead (devices must be told; set "
                        "OUTBAND_MPS_LISTEN to choose)", port, self._server.sockets[0].getsockname()[1])
        self.host, self.port = host, int(self._server.sockets[0].getsockname()[1])
        self.registry.remote = NodeRelay(runtime.db, runtime.box, self.node)
        if self.settings.relay_enabled:
            await self._start_relay(runtime, context)
        runtime.connector.cira = self.registry
        log.info("MPS listening", extra={"address": f"{host}:{self.port}", "node": self.node,
                                         "certificate": str(self.cert_file)})

    async def _start_relay(self, runtime: Runtime, context: ssl.SSLContext) -> None:
        """Relay for the other nodes (with the MPS certificate, which they pin) and tell them where."""
        assert self.cert_file is not None
        relay = RelayServer(self.registry, runtime.box, self.node)
        host, port = self.settings.relay_listen_address
        try:
            await relay.start(host, port, context)
        except OSError as exc:
            await self.stop()
            raise OSError(exc.errno, f"the MPS node relay cannot listen on {host}:{port}: {exc.strerror}") from None
        self.relay = relay
        address = self.settings.mps_relay_address or f"{_bracketed(host)}:{relay.port}"
        await register_node(runtime.db, self.node, address, self.cert_file)
        self._heartbeat = asyncio.create_task(self._beat(runtime), name=f"mps heartbeat {self.node}")
        log.info("MPS node relay listening", extra={"address": address, "node": self.node})

    async def _beat(self, runtime: Runtime) -> None:
        """Renew this node's heartbeat, and take silent nodes for dead (``nodes.sweep_dead_nodes``)."""
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await sweep_dead_nodes(runtime.db, self.node, utcnow(), beat=self.heartbeat)
            except Exception:  # the database is away for a moment: the next beat tries again
                log.exception("MPS node heartbeat failed")

    async def _listen(self, host: str, port: int, context: ssl.SSLContext) -> asyncio.Server:
        return await serve_mps(self, host, port, context, machine_factory=self._machine)

    def _machine(self) -> MpsConnection:
        return MpsConnection(keepalive_interval=self.settings.mps_keepalive, idle_timeout=self.settings.idle_timeout)

    def _tls_context(self, data_dir: Path) -> ssl.SSLContext:
        given = self.settings.mps_cert_file, self.settings.mps_key_file
        if given[0] is not None and given[1] is not None:
            cert, key = given[0], given[1]
        else:
            cert, key = data_dir / CERT_DIR / "cert.pem", data_dir / CERT_DIR / "key.pem"
            if not cert.exists():
                cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                names = self.settings.mps_names
                host = self.settings.listen_address[0] if self.settings.enabled else ""
                named = [host] if names_one_host(host) else []
                hosts = list(dict.fromkeys([*names, *named, "localhost", "127.0.0.1"]))
                generate_self_signed(cert, key, names[0] if names else GENERATED_CN, hosts=hosts)
                log.info("generated the MPS certificate %s (SHA-256 %s)", cert, fingerprint_of(cert))
        self.cert_file = cert
        return server_context(cert, key)

    async def stop(self) -> None:
        """Stop accepting, end every tunnel (DISCONNECT by application), store their end, release the port."""
        if self._runtime is not None and self._runtime.connector.cira is self.registry:
            self._runtime.connector.cira = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
            if self._runtime is not None:
                await forget_node(self._runtime.db, self.node)
        if self._server is not None:
            self._server.close()
        tunnels = list(self._tunnels)
        for tunnel in tunnels:
            tunnel.close(ByApplication("the console is stopping"))
        for tunnel in tunnels:
            await asyncio.shield(tunnel.gone)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._presence is not None:
            await self._presence.close()

    # ------------------------------------------------------------------------------------------ MpsHandler

    async def authenticate(self, tunnel: MpsTunnel, username: str, password: str) -> bool:
        system_uuid = tunnel.machine.system_uuid
        try:
            if system_uuid is None:  # the machine asks for a login only after PROTOCOL_VERSION
                raise LoginRefused("no system UUID")
            claim = await self._login(system_uuid, username, password)
        except LoginRefused as exc:
            await self._audit_refusal(tunnel, username, system_uuid, str(exc))
            return False
        if tunnel.machine.closed:  # it went away while we looked: nothing to track
            return False
        self._claims[tunnel] = claim
        return True

    async def _login(self, system_uuid: uuid.UUID, username: str, password: str) -> _Claim:
        runtime = self._runtime
        assert runtime is not None
        async with runtime.db.read() as session:
            devices = (await session.execute(
                select(Device.id, Device.name, Device.cira_username, Device.cira_password_enc)
                .where(Device.uuid == str(system_uuid), Device.transport == Transport.CIRA).limit(2))).all()
        if len(devices) > 1:
            raise LoginRefused(f"more than one CIRA device has the UUID {system_uuid}")
        if devices:
            device_id, name, own_username, own_password_enc = devices[0]
            if own_username is not None and own_password_enc is not None:
                try:
                    expected = (own_username, runtime.box.decrypt(own_password_enc))
                except SecretKeyError:
                    raise LoginRefused("its stored MPS password cannot be decrypted") from None
                if not _same_login((username, password), expected):
                    raise LoginRefused("wrong device MPS credentials")
            elif not self._shared_login_ok(username, password):
                raise LoginRefused("wrong shared MPS credentials")
            return _Claim(device_id, name)
        if not self.settings.mps_auto_register:
            raise LoginRefused(f"unknown device {system_uuid} (auto-registration is off)")
        if not self._shared_login_ok(username, password):
            raise LoginRefused("wrong shared MPS credentials")
        return await self._register(system_uuid)

    def _shared_login_ok(self, username: str, password: str) -> bool:
        shared = self.settings.shared_login
        return shared is not None and _same_login((username, password), shared)

    async def _register(self, system_uuid: uuid.UUID) -> _Claim:
        """Add a device that dialled in unknown (auto-registration), with the configured AMT account."""
        runtime = self._runtime
        assert runtime is not None
        assert self.settings.mps_amt_password is not None
        name = f"cira-{system_uuid}"[:NAME_LENGTH]
        async with runtime.db.write() as session:
            existing = (await session.execute(select(Device.id).where(Device.name == name))).scalar_one_or_none()
            if existing is not None:  # named so by a user, not as a CIRA device of this UUID
                raise LoginRefused(f"a device named {name} exists but is not the CIRA device {system_uuid}")
            device = Device(name=name, host=str(system_uuid), uuid=str(system_uuid), transport=Transport.CIRA,
                            username=self.settings.mps_amt_username,
                            password_enc=runtime.box.encrypt(self.settings.mps_amt_password.get_secret_value()))
            session.add(device)
            await session.flush()
            device_id = device.id
        log.info("CIRA device %s registered as %s", system_uuid, name)
        return _Claim(device_id, name)

    async def _audit_refusal(self, tunnel: MpsTunnel, username: str, system_uuid: uuid.UUID | None,
                             reason: str) -> None:
        runtime = self._runtime
        assert runtime is not None
        log.warning("CIRA login of %s from %s refused: %s", system_uuid, tunnel.peer, reason)
        with contextlib.suppress(Exception):  # the refusal stands even if the audit cannot be written
            await record_entry(runtime.db, action="cira.login", outcome=FAILED, via="system", client=tunnel.peer,
                               detail={"uuid": str(system_uuid), "username": username[:64], "reason": reason,
                                       "node": self.node})

    def notify(self, tunnel: MpsTunnel, event: Event) -> None:
        if isinstance(event, PeerHello):  # the first event of every tunnel: hold it until it is gone
            self._tunnels.add(tunnel)
            tunnel.gone.add_done_callback(lambda _: self._tunnels.discard(tunnel))
        claim = self._claims.get(tunnel)
        if claim is None:
            return  # before a login only the hello and the end happen, and a refused tunnel has no device
        try:
            if isinstance(event, PortForwarded):
                if event.port in WSMAN_PORTS and self.registry.get(claim.device_id) is not tunnel:
                    self._came(tunnel, claim)
            elif isinstance(event, KeepaliveReceived):
                if self.registry.get(claim.device_id) is tunnel:
                    self.presence.keepalive(claim.device_id, utcnow())
            elif isinstance(event, Terminated):
                del self._claims[tunnel]
                if self.registry.withdraw(claim.device_id, tunnel):
                    self.presence.disconnected(claim.device_id, str(event.error), utcnow())
                    log.info("CIRA device %s offline: %s", claim.name, event.error)
        except Exception:  # a bookkeeping bug must not take the tunnel down with it
            log.exception("MPS: handling %r of %s failed", event, claim.name)

    def _came(self, tunnel: MpsTunnel, claim: _Claim) -> None:
        replaced = self.registry.publish(claim.device_id, tunnel)
        if replaced is not None:
            self._claims.pop(replaced, None)  # its end is not this device's end any more
            replaced.close(ByApplication("replaced by a newer tunnel of the same device"))
        self.presence.connected(claim.device_id, tunnel.peer, utcnow())
        health = self._runtime.service("health") if self._runtime is not None else None
        if isinstance(health, HealthPoller):  # what it last knew may be hours old: read its power state now
            health.poll_soon(claim.device_id)
        log.info("CIRA device %s online from %s (%s)", claim.name, tunnel.peer, tunnel.machine.system_uuid)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _same_login(given: tuple[str, str], expected: tuple[str, str]) -> bool:
    """Both parts compared in constant time (no early exit on the user name)."""
    user_ok = hmac.compare_digest(given[0].encode(), expected[0].encode())
    password_ok = hmac.compare_digest(given[1].encode(), expected[1].encode())
    return user_ok and password_ok


__all__ = ["DEFAULT_MPS_LISTEN", "LoginRefused", "MpsService"]
