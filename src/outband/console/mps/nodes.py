"""Several console processes, one fleet: reaching a CIRA device whose tunnel another MPS node holds.

A device's tunnel ends in exactly one console process (the node it dialled, through whatever balances port
4433).  Past one process -- several consoles on PostgreSQL, workers of the job queue -- the call for a device
often starts elsewhere.  Every node that holds tunnels may run a *relay* (``OUTBAND_MPS_RELAY_LISTEN``): a TLS
listener that opens a channel of one of its tunnels for another node and splices the bytes.  Theory of
operation::

    node A (wants device 7)                                node B (holds device 7's tunnel)
      presence: 7 online on B; mps_nodes: B relays at H:P, certificate SHA-256 F
      TLS to H:P, certificate pinned to F     ------->
      one line: a Fernet token of the request  ------->    decrypted with the console's keys (only a node
        {node, device, port, tls, pin, verify,             holding the secret key could have made it), no
         hostname, nonce}, made < 60 s ago                 older than 60 s, its nonce not seen before
                                               <-------    "OK" once the channel (and the TLS inside it, the pin
                                                           checked as for a local call) is open, else "ERR kind:
                                                           why" (offline, pin, unreachable, refused)
      the connection is now the device's port  <------>    bytes spliced to the channel until either end closes

What the relay carries is what a local channel would: TLS to the device (when the device uses it) is made and
checked by B exactly as B would for itself, and node A receives the device's plaintext over its own TLS link to
B.  The nodes trust each other through the secret key they already share (they decrypt the same stored
credentials); the certificate a node registers is self-signed and pinned by the others.  A node without an MPS
(a queue worker) only dials out.  Offline, ``ERR offline``, and a device no node holds both raise
:class:`~outband.console.devices.connect.DeviceOffline`, so jobs wait for it; a node that cannot be reached is
an unreachable device's error.

A relaying node renews its row's heartbeat every :data:`HEARTBEAT_SECONDS`.  A node killed outright leaves its
devices "online" on it; the first live node to see its heartbeat older than :data:`DEAD_AFTER_BEATS` beats
marks those devices offline (their tunnels ended with it) and drops its row, so the others stop dialling it
and jobs wait for the devices to dial in again.  A restarted node registers afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...aio.errors import CertificateMismatch, ConnectError
from ...aio.redirection import RedirectionStream, TcpStream
from ...aio.tls import client_context, fingerprint_of, normalize_fingerprint
from ..db.base import utcnow
from ..db.database import Database
from ..db.models import LABEL_LENGTH, CiraPresence, MpsNode
from ..devices.connect import DeviceOffline, DeviceTarget
from ..secrets import SecretBox, SecretKeyError
from .presence import mark_node_offline
from .registry import TunnelRegistry

log = logging.getLogger("outband.console.mps.relay")

MAX_LINE: Final = 2048
"""The request line (a Fernet token of some 300 bytes) and the answer line are capped at this."""
TOKEN_TTL: Final = 60
HANDSHAKE_SECONDS: Final = 10.0
SPLICE_CHUNK: Final = 64 * 1024
REMEMBERED_NONCES: Final = 100_000
HEARTBEAT_SECONDS: Final = 30.0
DEAD_AFTER_BEATS: Final = 4
OK: Final = b"OK\n"
OFFLINE: Final = "offline"
PIN_MISMATCH: Final = "pin"
NOT_HELD: Final = "not connected to any MPS node"


class RelayRequest(BaseModel):
    """What a node asks another for: a channel to ``port`` of ``device``, TLS inside it as it would make it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    node: str = Field(min_length=1, max_length=LABEL_LENGTH)
    device: int = Field(ge=1, le=2**31 - 1)
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    pin: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    """The device certificate's SHA-256 (hex) to require; else ``verify`` says whether to check its chain."""
    verify: bool = True
    hostname: str | None = Field(default=None, max_length=255)
    nonce: str = Field(pattern="^[0-9a-f]{32}$")


class RelayRefused(Exception):
    """A request line that is not one this node accepts (the reason is logged, and answered)."""


class NonceMemory:
    """Nonces seen within the token lifetime: a captured request cannot be played again."""

    def __init__(self, ttl: float = TOKEN_TTL, most: int = REMEMBERED_NONCES) -> None:
        self.ttl = ttl
        self.most = most
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, nonce: str, now: float) -> bool:
        while self._seen and (next(iter(self._seen.values())) < now - self.ttl or len(self._seen) >= self.most):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


def encode_request(box: SecretBox, request: RelayRequest) -> bytes:
    return box.seal(request).encode("ascii") + b"\n"


def decode_request(line: bytes, box: SecretBox, nonces: NonceMemory, now: float) -> RelayRequest:
    """The request a line carries, if a node holding the secret key made it within the token lifetime and it is
    not a replay; raises :class:`RelayRefused`."""
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise RelayRefused("request line too long or unterminated")
    try:
        request = box.unseal(line[:-1].decode("ascii"), RelayRequest, ttl=TOKEN_TTL)
    except (UnicodeDecodeError, SecretKeyError):
        raise RelayRefused("not a request from a node of this console (or older than the token lifetime)") from None
    if not nonces.first_time(request.nonce, now):
        raise RelayRefused("a request already seen")
    return request


@dataclass(frozen=True, slots=True)
class NodeRoute:
    name: str
    host: str
    port: int
    fingerprint: str


# ---------------------------------------------------------------------------------------------- the directory


async def register_node(db: Database, name: str, address: str, cert_file: Path) -> None:
    """Tell the other nodes where this one relays (and which certificate it presents), replacing what a previous
    start of the same node said."""
    values = {"name": name, "relay_address": address, "fingerprint": fingerprint_of(cert_file).lower()}
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    async with db.write() as session:
        statement = insert(MpsNode).values(**values, started_at=utcnow())
        await session.execute(statement.on_conflict_do_update(
            index_elements=[MpsNode.name],
            set_={"relay_address": statement.excluded.relay_address, "fingerprint": statement.excluded.fingerprint,
                  "started_at": statement.excluded.started_at}))


async def sweep_dead_nodes(db: Database, node: str, now: dt.datetime, *,
                           beat: float = HEARTBEAT_SECONDS) -> list[str]:
    """Renew this node's heartbeat, and take the nodes silent for :data:`DEAD_AFTER_BEATS` beats for dead: their
    devices offline, their rows gone.  Returns the dead nodes' names."""
    cutoff = now - dt.timedelta(seconds=beat * DEAD_AFTER_BEATS)
    async with db.write() as session:
        await session.execute(update(MpsNode).where(MpsNode.name == node).values(heartbeat_at=now))
        dead = list((await session.execute(select(MpsNode.name).where(
            MpsNode.name != node, or_(MpsNode.heartbeat_at.is_(None), MpsNode.heartbeat_at < cutoff)))).scalars())
        if dead:
            await session.execute(delete(MpsNode).where(MpsNode.name.in_(dead)))
    for name in dead:
        count = await mark_node_offline(db, name, f"MPS node {name} stopped answering (no heartbeat)", now)
        log.warning("MPS node %s is silent: taken for dead, %d device(s) marked offline", name, count)
    return dead


async def forget_node(db: Database, node: str) -> None:
    """A node stopping cleanly takes its row with it."""
    async with db.write() as session:
        await session.execute(delete(MpsNode).where(MpsNode.name == node))


async def route_of(db: Database, device_id: int) -> NodeRoute | None:
    """The relay of the node whose tunnel the device is on now (None: no node holds it, or that node relays
    for no one)."""
    async with db.read() as session:
        row = (await session.execute(
            select(MpsNode.name, MpsNode.relay_address, MpsNode.fingerprint)
            .join(CiraPresence, CiraPresence.mps_node == MpsNode.name)
            .where(CiraPresence.device_id == device_id, CiraPresence.online.is_(True)))).first()
    if row is None:
        return None
    host, _, port = row.relay_address.rpartition(":")
    return NodeRoute(row.name, host.strip("[]"), int(port), row.fingerprint)


# ---------------------------------------------------------------------------------------------- node B


class RelayServer:
    """This node's relay listener: channels of its own tunnels for the other nodes."""

    def __init__(self, registry: TunnelRegistry, box: SecretBox, node: str) -> None:
        self.registry = registry
        self.box = box
        self.node = node
        self.nonces = NonceMemory()
        self._server: asyncio.Server | None = None
        self._splices: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _FirstLine(loop, self._accepted), host, port, ssl=context,
                                                ssl_handshake_timeout=HANDSHAKE_SECONDS)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._splices):
            task.cancel()
        await asyncio.gather(*self._splices, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accepted(self, first: _FirstLine, transport: asyncio.Transport) -> None:
        task = asyncio.create_task(self._serve(first, transport), name="mps-node-relay")
        self._splices.add(task)
        task.add_done_callback(self._splices.discard)

    async def _serve(self, first: _FirstLine, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        try:
            device = await self._open(first, transport, peer)
            if device is not None:
                await splice(streams_over(transport, first.rest), device)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # the other node went away
        finally:
            transport.close()

    async def _open(self, first: _FirstLine, transport: asyncio.Transport, peer: object
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                line = await first.line
            request = decode_request(line, self.box, self.nonces, time.monotonic())
        except (ConnectionError, TimeoutError, RelayRefused) as exc:
            reason = str(exc) if isinstance(exc, RelayRefused) else "no request line"
            log.warning("node relay: refused a connection from %s: %s", peer, reason)
            transport.write(f"ERR refused: {reason}\n".encode())
            return None
        try:
            device = await self.registry.open_device_stream(
                request.device, request.port, tls=request.tls, pin=request.pin, verify=request.verify,
                hostname=request.hostname, seconds=HANDSHAKE_SECONDS, host=f"device {request.device}")
        except DeviceOffline:
            transport.write(f"ERR {OFFLINE}: no tunnel on node {self.node}\n".encode())
            return None
        except ConnectError as exc:
            kind = PIN_MISMATCH if isinstance(exc, CertificateMismatch) else "unreachable"
            transport.write(f"ERR {kind}: {exc}".encode()[:MAX_LINE - 1] + b"\n")
            return None
        log.debug("node relay: %s opened port %d of device %d for node %s", peer, request.port, request.device,
                  request.node)
        transport.write(OK)
        return device


async def splice(one: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 other: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Copy bytes both ways until either side ends; then close both (TLS cannot half-close)."""

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await source.read(SPLICE_CHUNK):
                sink.write(data)
                await sink.drain()

    tasks = [asyncio.create_task(pump(one[0], other[1])), asyncio.create_task(pump(other[0], one[1]))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        one[1].close()
        other[1].close()


# ---------------------------------------------------------------------------------------------- node A


class NodeRelay:
    """Reaching devices whose tunnels other nodes hold (the part of ``CiraRoutes`` a miss falls back to)."""

    def __init__(self, db: Database, box: SecretBox, node: str | None) -> None:
        self.db = db
        self.box = box
        self.node = node
        """This node's name (None: a process without an MPS)."""
        self._context = client_context(verify=False)  # the node's certificate is pinned instead

    def __contains__(self, device_id: object) -> bool:
        return False  # only a tunnel of this process counts as "here"

    def when_online(self, device_id: int, callback: Callable[[], None]) -> Callable[[], None]:
        return _nothing  # another node's tunnels arrive unseen: jobs look again on their own

    def connector(self, target: DeviceTarget) -> aiohttp.BaseConnector:
        return RelayConnector(self, target, limit_per_host=1)

    async def open_redirection(self, target: DeviceTarget, seconds: float) -> RedirectionStream:
        return TcpStream(*await self.open(target, target.redirection_port, tls=target.use_tls,
                                          pin=_hex_pin(target.fingerprint), verify=True, hostname=target.host,
                                          seconds=seconds))

    async def open(self, target: DeviceTarget, port: int, *, tls: bool, pin: str | None, verify: bool,
                   hostname: str | None, seconds: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream pair to the device's ``port`` through the node holding its tunnel."""
        transport, early = await self.connect(target, port, tls=tls, pin=pin, verify=verify, hostname=hostname,
                                              seconds=seconds)
        return streams_over(transport, early)

    async def connect(self, target: DeviceTarget, port: int, *, tls: bool, pin: str | None, verify: bool,
                      hostname: str | None, seconds: float) -> tuple[asyncio.Transport, bytes]:
        """A connection to the device's ``port`` through the node holding its tunnel: the transport, to be given
        its protocol with :func:`_hand_over`, and whatever arrived after the node's answer."""
        if target.device_id is None:
            raise DeviceOffline(NOT_HELD, host=target.host)
        route = await route_of(self.db, target.device_id)
        if route is None or route.name == self.node:  # no node holds it (or presence lags this node's own end)
            raise DeviceOffline(NOT_HELD, host=target.host)
        request = RelayRequest(node=self.node or "-", device=target.device_id, port=port, tls=tls, pin=pin,
                               verify=verify, hostname=hostname if tls else None, nonce=secrets.token_hex(16))
        where = f"MPS node {route.name} ({route.host}:{route.port})"
        loop = asyncio.get_running_loop()
        answer = _FirstLine(loop)
        try:
            async with asyncio.timeout(seconds):
                transport, _ = await loop.create_connection(lambda: answer, route.host, route.port,
                                                            ssl=self._context)
        except (OSError, TimeoutError) as exc:
            raise ConnectError(f"cannot reach {where}: {exc or 'timed out'}", host=target.host) from None
        try:
            if _peer_fingerprint(transport) != route.fingerprint:
                raise CertificateMismatch(f"{where} presents a certificate other than the one it registered",
                                          host=target.host)
            transport.write(encode_request(self.box, request))
            async with asyncio.timeout(seconds):
                line = await answer.line
        except (OSError, TimeoutError, RelayRefused) as exc:
            transport.close()
            raise ConnectError(f"{where} did not answer: {exc or 'timed out'}", host=target.host) from None
        except BaseException:
            transport.close()
            raise
        if line == OK:
            return transport, answer.rest
        transport.close()
        reason = line.decode("utf-8", "replace").strip().removeprefix("ERR ")
        if reason.startswith(OFFLINE):
            raise DeviceOffline(f"{where}: {reason}", host=target.host)
        if reason.startswith(PIN_MISMATCH):
            raise CertificateMismatch(f"through {where}: {reason}", host=target.host)
        raise ConnectError(f"{where}: {reason}", host=target.host)


class _FirstLine(asyncio.Protocol):
    """Reads the first line of a relay connection (the request, or the answer to it), capped at
    :data:`MAX_LINE`; keeps what follows for the protocol that takes over (:func:`_hand_over`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_connect: Callable[[_FirstLine, asyncio.Transport], None] | None = None) -> None:
        self.line: asyncio.Future[bytes] = loop.create_future()
        self.rest = b""
        self._buffer = bytearray()
        self._on_connect = on_connect

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._on_connect is not None:
            assert isinstance(transport, asyncio.Transport)
            self._on_connect(self, transport)

    def data_received(self, data: bytes) -> None:
        if self.line.done():
            self.rest += data
            return
        self._buffer += data
        end = self._buffer.find(b"\n")
        if end >= 0:
            self.line.set_result(bytes(self._buffer[:end + 1]))
            self.rest = bytes(self._buffer[end + 1:])
        elif len(self._buffer) > MAX_LINE:
            self._fail(RelayRefused("a line too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.line.done():
            self._fail(ConnectionResetError("the connection closed before a whole line"))

    def _fail(self, exc: Exception) -> None:
        self.line.set_exception(exc)
        self.line.exception()  # a waiter that gave up already need not hear of it (no "never retrieved" log)


def streams_over(transport: asyncio.Transport, early: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over a connection whose first line was read by :class:`_FirstLine`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=SPLICE_CHUNK, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    _hand_over(transport, protocol, early)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def _hand_over(transport: asyncio.Transport, protocol: asyncio.BaseProtocol, early: bytes) -> None:
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if early:
        assert isinstance(protocol, asyncio.Protocol)
        protocol.data_received(early)


class RelayConnector(aiohttp.BaseConnector):
    """aiohttp connections to a device through another node's relay (TLS to the device made by that node, as
    ``ssl=`` of the request asks: pinned, verified or not checked)."""

    def __init__(self, relay: NodeRelay, target: DeviceTarget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.relay = relay
        self.target = target

    async def _create_connection(self, req: ClientRequest, traces: list[Any],
                                 timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 -- aiohttp's signature
                                 ) -> ResponseHandler:
        tls = req.is_ssl()
        pin = req.ssl.fingerprint.hex() if isinstance(req.ssl, aiohttp.Fingerprint) else None
        verify = tls and pin is None and req.ssl is not False
        try:
            transport, early = await self.relay.connect(
                self.target, req.port or 0, tls=tls, pin=pin, verify=verify, hostname=req.host,
                seconds=timeout.sock_connect or timeout.connect or HANDSHAKE_SECONDS)
        except (DeviceOffline, CertificateMismatch):
            raise  # as they are: offline waits, a pin mismatch is a pin mismatch however the device was reached
        except ConnectError as exc:
            raise aiohttp.ClientConnectorError(req.connection_key, OSError(0, str(exc))) from exc
        handler = ResponseHandler(asyncio.get_running_loop())
        _hand_over(transport, handler, early)
        return handler


def _nothing() -> None:
    pass


def _hex_pin(fingerprint: str | None) -> str | None:
    return normalize_fingerprint(fingerprint).hex() if fingerprint else None


def _peer_fingerprint(transport: asyncio.BaseTransport) -> str | None:
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return hashlib.sha256(der).hexdigest() if der else None
