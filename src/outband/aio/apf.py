"""asyncio adapters for APF: a CIRA tunnel over a TLS stream in either role, and its channels as transports.

Layers::

    ChannelTransport   one APF channel as an asyncio.Transport, so any asyncio protocol runs over it exactly as
                       over TCP: StreamReaderProtocol (open_stream gives the StreamReader/StreamWriter pair the
                       redirection client takes), aiohttp's ResponseHandler (ApfConnector), and TLS through
                       loop.start_tls for 16993/16995.
    AmtTunnel          device side: dial_mps() connects and logs in; channels the MPS opens go to a
                       ChannelHandler (the engine splices them to its own listeners with splice_to_tcp).
    MpsTunnel          server side: serve_mps() accepts devices; an MpsHandler authenticates them and hears about
                       their hello, ports, keepalives and end; open_connection/open_stream reach a device's port.
    ApfConnector       an aiohttp connector whose connections are channels of one MpsTunnel, and
    TunnelWsmanTransport  the WsmanTransport built on it: AmtClient works over CIRA unchanged.

Why a connector rather than our own HTTP/1.1 exchange: WsmanTransport already does Digest, keep-alive, size caps
and error mapping on aiohttp; giving aiohttp channels instead of sockets reuses all of it.  The hook is
``BaseConnector._create_connection``, the one aiohttp's own UnixConnector and NamedPipeConnector override (aiohttp
is pinned below 4).

Theory of operation: a tunnel is an asyncio.Protocol on a plain TCP transport; it runs TLS itself on memory BIOs
(:class:`TlsSession`, for the memory reason given there) and holds one sans-I/O connection (``proto.apf``). Each
input -- decrypted bytes, the transport ending, the timer -- is fed to the connection with ``loop.time()``; its
events are dispatched and the bytes it queued are encrypted and written. A tunnel has exactly one TimerHandle,
re-armed only when the machine's next deadline moves earlier (a later deadline lets the early timer fire and
re-arm), so an idle fleet costs one timer per tunnel and no task. Back-pressure runs both ways: a channel's protocol
is paused while the peer's window holds back more than the high-water mark or the TCP transport itself is paused,
and received bytes are acknowledged (reopening the peer's window) only once handed to a protocol that is reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, Protocol, TypeVar

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest

from ..proto.apf import (
    AmtConnection,
    ApfError,
    AuthenticationRequested,
    ByApplication,
    ChannelClosed,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelRequested,
    DataReceived,
    DisconnectError,
    Established,
    Event,
    MpsConnection,
    MpsState,
    OpenFailureReason,
    Terminated,
    WindowAdjusted,
)
from .wsman_client import HTTP_PORT, TLS_PORT, WsmanTransport

log = logging.getLogger(__name__)

HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
CHANNEL_OPEN_TIMEOUT: Final = 30.0
CLOSE_GRACE: Final = 2.0
"""How long an ended tunnel may take to hand its last bytes to a peer before the connection is dropped."""
HANDSHAKE_TIMEOUT: Final = 30.0
HTTP_PROBE_REPLY: Final = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 40\r\n"
                           b"\r\noutband MPS: Intel AMT connects here.\r\n\r\n")
"""What a browser gets on the MPS port: like both MPS implementations, one port serves a probe and AMT."""

M = TypeVar("M", AmtConnection, MpsConnection)
_R = TypeVar("_R")


# ---------------------------------------------------------------------------------------------- channels


class ChannelTransport(asyncio.Transport):
    """One APF channel as a transport.  APF has no half-close, so ``can_write_eof()`` is False and ``close()``
    sends CHANNEL_CLOSE once queued data is out; the protocol's ``connection_lost`` comes when the channel
    is closed both ways (or the tunnel ends)."""

    _start_tls_compatible = True

    def __init__(self, tunnel: _Tunnel[Any], channel_id: int, protocol: asyncio.BaseProtocol,
                 extra: Mapping[str, Any]) -> None:
        super().__init__(dict(extra))
        self._tunnel = tunnel
        self.channel_id = channel_id
        self._protocol = protocol
        self._reading = True
        self._pending: deque[bytes] = deque()
        self._closing = False
        self._lost = False
        self._peer_gone: tuple[Exception | None] | None = None
        self._write_paused = False
        self._high = HIGH_WATER
        self._low = LOW_WATER

    # ------------------------------------------------------------------------------------------ reading

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._tunnel.loop.call_soon(self._drain_pending)

    def _deliver(self, data: bytes) -> None:
        if self._lost:
            return
        if not self._reading or self._pending:
            self._pending.append(data)
            return
        self._hand_over(data)

    def _hand_over(self, data: bytes) -> None:
        try:
            if isinstance(self._protocol, asyncio.BufferedProtocol):  # SSLProtocol, once TLS runs inside
                _feed_buffered(self._protocol, data)
            else:
                assert isinstance(self._protocol, asyncio.Protocol)
                self._protocol.data_received(data)
        except Exception:  # a protocol bug must not take the tunnel's other channels down
            log.exception("channel %d: the protocol failed on received data", self.channel_id)
            self._force_close(None)
            return
        self._tunnel._acknowledge(self.channel_id, len(data))

    def _drain_pending(self) -> None:
        while self._reading and self._pending and not self._lost:
            self._hand_over(self._pending.popleft())
        if self._peer_gone is not None and not self._pending:
            self._finish(self._peer_gone[0])

    def _peer_closed(self, exc: Exception | None) -> None:
        """The channel ended on the wire.  After a clean close, data still waiting for a paused reader is
        delivered first; when the whole tunnel died (``exc``) it is dropped."""
        self._peer_gone = (exc,)
        self._closing = True
        if exc is not None or not self._pending:
            self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._pending.clear()
        self._tunnel._forget(self.channel_id)
        self._protocol.connection_lost(exc)

    # ------------------------------------------------------------------------------------------ writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._tunnel._write(self.channel_id, bytes(data))
        self._check_pause()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return int(self._tunnel.machine.backlog(self.channel_id))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = HIGH_WATER if high is None else high
        self._low = min(self._high, LOW_WATER if low is None else low)
        self._check_pause()

    def _check_pause(self) -> None:
        if not self._write_paused and (self.get_write_buffer_size() > self._high or self._tunnel.writing_paused):
            self._write_paused = True
            self._call_protocol("pause_writing")

    def _check_resume(self) -> None:
        if self._write_paused and self.get_write_buffer_size() <= self._low and not self._tunnel.writing_paused:
            self._write_paused = False
            self._call_protocol("resume_writing")

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except Exception:
            log.exception("channel %d: protocol.%s() failed", self.channel_id, name)

    # ------------------------------------------------------------------------------------------ lifecycle

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._peer_gone is not None:  # closed on the wire already: only undelivered data remains
            self._finish(self._peer_gone[0])
        elif not self._closing:
            self._closing = True
            self._tunnel._close(self.channel_id, discard=False)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: Exception | None) -> None:
        """Drop queued data and close at once (what SSLProtocol calls on a TLS failure)."""
        self._closing = True
        self._tunnel._close(self.channel_id, discard=True)
        self._tunnel.loop.call_soon(self._finish, exc)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


def _feed_buffered(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        n = min(len(buffer), len(view))
        buffer[:n] = view[:n]
        protocol.buffer_updated(n)
        view = view[n:]


class _Placeholder(asyncio.Protocol):
    """Holds a channel until TLS takes it over (the TLS server does not speak first)."""


# ---------------------------------------------------------------------------------------------- tunnels


class TlsSession:
    """TLS for one tunnel, run on memory BIOs over a plain TCP transport.

    Why not ``loop.create_connection(ssl=...)``: asyncio's SSLProtocol keeps a 256 KiB read buffer per
    connection -- 2.5 GiB for the 10,000 tunnels an MPS must hold.  Here ciphertext is decrypted as it
    arrives, in ``READ_CHUNK`` steps, and OpenSSL's own state is all that stays per connection.
    """

    READ_CHUNK: Final = 16 * 1024

    def __init__(self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                           server_hostname=server_hostname)
        self.established = False

    def start(self) -> None:
        """Begin the handshake (a client's ClientHello lands in ``outgoing``)."""
        self._handshake()

    def feed(self, ciphertext: bytes) -> tuple[bytes, bool]:
        """Decrypt what arrived: (plaintext, whether the peer closed TLS).  Raises ssl.SSLError."""
        self.incoming.write(ciphertext)
        if not self.established and not self._handshake():
            return b"", False
        plaintext = bytearray()
        while True:
            try:
                chunk = self.ssl_object.read(self.READ_CHUNK)
            except ssl.SSLWantReadError:
                return bytes(plaintext), False
            except ssl.SSLZeroReturnError:
                return bytes(plaintext), True
            if not chunk:
                return bytes(plaintext), True
            plaintext += chunk

    def encrypt(self, plaintext: bytes) -> None:
        self.ssl_object.write(plaintext)

    def close(self) -> None:
        """Queue our close_notify (the peer's is not waited for)."""
        with contextlib.suppress(ssl.SSLError):
            self.ssl_object.unwrap()

    def ciphertext(self) -> bytes:
        return self.outgoing.read()

    def _handshake(self) -> bool:
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.established = True
        return True


class _Tunnel(asyncio.Protocol, Generic[M]):
    """What both roles share: TLS, feeding the machine, writing its output, the timer, channel transports."""

    def __init__(self, machine: M, tls: TlsSession, *, handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.machine: M = machine
        self.tls = tls
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.writing_paused = False
        self.channels: dict[int, ChannelTransport] = {}
        self.tls_error: ssl.SSLError | None = None
        """Why the TLS handshake or record layer failed, if it did."""
        self.closed: asyncio.Future[DisconnectError] = self.loop.create_future()
        """Resolves to the error that ended the tunnel (a ByApplication for a normal close)."""
        self.gone: asyncio.Future[None] = self.loop.create_future()
        """Resolves once the TCP connection itself is closed (at most CLOSE_GRACE after the end)."""
        self._handshake_timeout = handshake_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._abort_later: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if peername else ""
        self._abort_later = self.loop.call_later(self._handshake_timeout, self._tls_overdue)
        self._tls_step(self.tls.start)

    def data_received(self, data: bytes) -> None:
        was_up = self.tls.established
        result = self._tls_step(lambda: self.tls.feed(data))
        if result is None:
            return
        plaintext, peer_closed = result
        if self.tls.established and not was_up:
            if self._abort_later is not None:
                self._abort_later.cancel()
            self._start()
        if plaintext:
            self._on_plaintext(plaintext)
        if peer_closed:
            self._dispatch(self.machine.connection_lost(self.loop.time()))
        self._after()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._dispatch(self.machine.connection_lost(self.loop.time()))
        self._cancel_timer()
        if self._abort_later is not None:
            self._abort_later.cancel()
        if not self.gone.done():
            self.gone.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True
        for channel in list(self.channels.values()):
            channel._check_pause()

    def resume_writing(self) -> None:
        self.writing_paused = False
        for channel in list(self.channels.values()):
            channel._check_resume()

    # ------------------------------------------------------------------------------------------ API

    def close(self, error: DisconnectError | None = None) -> None:
        """End the tunnel, telling the peer why (DISCONNECT, by application unless ``error`` says otherwise)."""
        if not self.machine.closed:
            self._dispatch(self.machine.disconnect(error or ByApplication("closed"), self.loop.time()))
            self._after()
        elif self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection without a word (tests use this to cut a tunnel)."""
        if self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> DisconnectError:
        return await asyncio.shield(self.closed)

    # ------------------------------------------------------------------------------------------ TLS

    def _tls_step(self, step: Callable[[], _R]) -> _R | None:
        """Run a TLS operation and send what it produced; a TLS failure ends the tunnel (None)."""
        try:
            result = step()
        except ssl.SSLError as exc:
            self.tls_error = exc
            self._write_ciphertext()  # the alert, if OpenSSL made one
            if self.transport is not None:
                self.transport.abort()
            return None
        self._write_ciphertext()
        return result

    def _tls_overdue(self) -> None:
        self.tls_error = ssl.SSLError(f"TLS handshake not finished within {self._handshake_timeout:g} s")
        self.abort()

    def _write_ciphertext(self) -> None:
        data = self.tls.ciphertext()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # ------------------------------------------------------------------------------------------ machine I/O

    def _start(self) -> None:
        raise NotImplementedError

    def _on_plaintext(self, data: bytes) -> None:
        self._dispatch(self.machine.receive_data(data, self.loop.time()))

    def _on_event(self, event: Event) -> None:
        """Role-specific events (everything but channel data and the end)."""

    def _on_terminated(self, error: DisconnectError) -> None:
        """Role hook run when the tunnel ends."""

    def _after(self) -> None:
        self._flush()
        deadline = self.machine.next_deadline()
        if deadline is None:
            self._cancel_timer()
        elif self._timer is None or self._timer.when() > deadline:
            self._cancel_timer()
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _flush(self) -> None:
        data = self.machine.data_to_send()
        if data and self.tls.established and self.transport is not None and not self.transport.is_closing():
            self._tls_step(lambda: self.tls.encrypt(data))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch(self.machine.handle_timer(self.loop.time()))
        self._after()

    def _dispatch(self, events: list[Event]) -> None:
        ending = next((e for e in events if isinstance(e, Terminated)), None)
        channel_error = None if ending is None else ConnectionResetError(f"CIRA tunnel ended: {ending.error}")
        for event in events:
            if isinstance(event, DataReceived):
                channel = self.channels.get(event.channel_id)
                if channel is not None:
                    channel._deliver(event.data)
            elif isinstance(event, WindowAdjusted):
                channel = self.channels.get(event.channel_id)
                if channel is not None:
                    channel._check_resume()
            elif isinstance(event, ChannelClosed):
                channel = self.channels.get(event.channel_id)
                if channel is not None:
                    channel._peer_closed(channel_error)
                self._on_event(event)
            elif isinstance(event, Terminated):
                self._end(event.error)
            else:
                self._on_event(event)

    def _end(self, error: DisconnectError) -> None:
        self._flush()
        self._cancel_timer()
        if self.transport is not None and not self.gone.done():
            if self.tls.established:
                self._tls_step(self.tls.close)
            self.transport.close()  # sends what is buffered first: a peer that never reads would hold it
            if self._abort_later is not None:
                self._abort_later.cancel()
            self._abort_later = self.loop.call_later(CLOSE_GRACE, self.abort)
        if not self.closed.done():
            self.closed.set_result(error)
        self._on_terminated(error)

    # ------------------------------------------------------------------------------------------ for channels

    def _channel_transport(self, channel_id: int, protocol: asyncio.BaseProtocol) -> ChannelTransport:
        info = self.machine.channels[channel_id]
        extra: dict[str, Any] = {"peername": (self.peer, 0), "sockname": (info.address, info.port),
                                 "apf_channel": channel_id}
        extra["tunnel_ssl_object"] = self.tls.ssl_object
        channel = ChannelTransport(self, channel_id, protocol, extra)
        self.channels[channel_id] = channel
        return channel

    def _write(self, channel_id: int, data: bytes) -> None:
        if self.machine.closed:
            return
        self.machine.send(channel_id, data)
        self._flush()

    def _acknowledge(self, channel_id: int, n: int) -> None:
        self.machine.acknowledge(channel_id, n)
        self._flush()

    def _close(self, channel_id: int, *, discard: bool) -> None:
        self.machine.close_channel(channel_id, discard=discard)
        self._flush()

    def _forget(self, channel_id: int) -> None:
        self.channels.pop(channel_id, None)


# ---------------------------------------------------------------------------------------------- AMT side


class ChannelHandler(Protocol):
    """Called for each channel the MPS asks for; answer with ``tunnel.accept_channel`` or
    ``tunnel.reject_channel`` (now or later, e.g. after connecting somewhere)."""

    def __call__(self, tunnel: AmtTunnel, request: ChannelRequested) -> None: ...


class AmtTunnel(_Tunnel[AmtConnection]):
    """A CIRA tunnel from the device's side.  ``established`` resolves to the ports the MPS accepted."""

    def __init__(self, machine: AmtConnection, on_channel: ChannelHandler, tls: TlsSession, *,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        super().__init__(machine, tls, handshake_timeout=handshake_timeout)
        self._on_channel = on_channel
        self.established: asyncio.Future[tuple[int, ...]] = self.loop.create_future()

    def _start(self) -> None:
        self.machine.start(self.loop.time())

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Established) and not self.established.done():
            self.established.set_result(event.ports)
        elif isinstance(event, ChannelRequested):
            self._on_channel(self, event)

    def _on_terminated(self, error: DisconnectError) -> None:
        if not self.established.done():  # a TLS failure says more than "connection lost"
            self.established.set_exception(self.tls_error or error)
            self.established.exception()  # retrieved: a tunnel that never came up is reported by dial_mps

    def accept_channel(self, channel_id: int, protocol: asyncio.BaseProtocol) -> ChannelTransport:
        """Confirm the channel and connect ``protocol`` to it."""
        self.machine.accept_channel(channel_id)
        channel = self._channel_transport(channel_id, protocol)
        self._after()
        protocol.connection_made(channel)
        return channel

    def reject_channel(self, channel_id: int, reason: OpenFailureReason) -> None:
        if channel_id in self.machine.channels:
            self.machine.reject_channel(channel_id, reason)
            self._after()


async def dial_mps(host: str, port: int, machine: AmtConnection, on_channel: ChannelHandler, *,
                   ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                   dial_timeout: float = 30.0) -> AmtTunnel:
    """Connect to an MPS over TLS and log in; returns once the ports are registered.  Raises OSError or
    ssl.SSLError (no connection), a DisconnectError (refused or ended), or TimeoutError."""
    loop = asyncio.get_running_loop()
    tls = TlsSession(ssl_context, server_side=False, server_hostname=server_hostname or host)
    async with asyncio.timeout(dial_timeout):
        _, tunnel = await loop.create_connection(
            lambda: AmtTunnel(machine, on_channel, tls, handshake_timeout=dial_timeout), host, port)
        try:
            await asyncio.shield(tunnel.established)
        except BaseException:
            tunnel.abort()
            raise
    return tunnel


class _Splice(asyncio.Protocol):
    """One half of a bridge between two transports: what arrives here goes to the other side; when this
    side's outgoing buffer fills, the other side stops reading."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Splice | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


async def splice_to_tcp(tunnel: AmtTunnel, request: ChannelRequested, host: str, port: int, *,
                        connect_timeout: float = 10.0) -> None:
    """Serve a channel by connecting to ``host:port`` and copying both ways; a failed connect is answered
    with CONNECT_FAILED (as MeshCentral's AMT-side client does)."""
    local_side, channel_side = _Splice(), _Splice()
    local_side.peer, channel_side.peer = channel_side, local_side
    try:
        async with asyncio.timeout(connect_timeout):
            local, _ = await tunnel.loop.create_connection(lambda: local_side, host, port)
    except (OSError, TimeoutError) as exc:
        log.info("CIRA channel %d to %s:%d refused: %s", request.channel_id, host, port, exc)
        tunnel.reject_channel(request.channel_id, OpenFailureReason.CONNECT_FAILED)
        return
    except asyncio.CancelledError:  # cancelled as the connection completed: do not leak it
        if local_side.transport is not None:
            local_side.transport.close()
        raise
    local.pause_reading()  # until the channel is wired (a server may speak first)
    try:
        tunnel.accept_channel(request.channel_id, channel_side)
    except ApfError:  # the channel or the tunnel went away while we connected
        local.close()
        return
    local.resume_reading()


# ---------------------------------------------------------------------------------------------- MPS side


class MpsHandler(Protocol):
    """What a server running MPS tunnels decides and hears."""

    async def authenticate(self, tunnel: MpsTunnel, username: str, password: str) -> bool:
        """Whether this device may log in (``tunnel.machine.hello`` says which device it claims to be)."""
        ...

    def notify(self, tunnel: MpsTunnel, event: Event) -> None:
        """PeerHello, PortForwarded, ForwardCancelled, KeepaliveReceived, ChannelClosed and finally Terminated."""
        ...


class MpsTunnel(_Tunnel[MpsConnection]):
    """One device's tunnel on the server side."""

    def __init__(self, machine: MpsConnection, handler: MpsHandler, tls: TlsSession, *,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        super().__init__(machine, tls, handshake_timeout=handshake_timeout)
        self.handler = handler
        self._opening: dict[int, tuple[asyncio.Future[None], asyncio.BaseProtocol]] = {}
        self._auth_task: asyncio.Task[None] | None = None
        self._probed = False

    def _start(self) -> None:
        self.machine.start(self.loop.time())

    def _on_plaintext(self, data: bytes) -> None:
        if not self._probed:
            self._probed = True
            if self.machine.state is MpsState.AWAIT_VERSION and data[:4] in (b"GET ", b"HEAD"):
                self._tls_step(lambda: self.tls.encrypt(HTTP_PROBE_REPLY))
                self.close()
                return
        super()._on_plaintext(data)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, AuthenticationRequested):
            self._auth_task = self.loop.create_task(self._authenticate(event))
        elif isinstance(event, ChannelOpened | ChannelOpenFailed):
            waiter = self._opening.pop(event.channel_id, None)
            if waiter is None:
                return
            future, protocol = waiter
            if isinstance(event, ChannelOpenFailed):
                if not future.done():
                    future.set_exception(event.error)
                return
            channel = self._channel_transport(event.channel_id, protocol)
            protocol.connection_made(channel)
            if not future.done():
                future.set_result(None)
        else:
            self.handler.notify(self, event)

    def _on_terminated(self, error: DisconnectError) -> None:
        for future, _ in self._opening.values():
            if not future.done():
                future.set_exception(ConnectionResetError(f"CIRA tunnel ended: {error}"))
        self._opening.clear()
        if self._auth_task is not None:
            self._auth_task.cancel()
        self.handler.notify(self, Terminated(error, by_peer=not isinstance(error, ByApplication)))

    async def _authenticate(self, event: AuthenticationRequested) -> None:
        try:
            allowed = await self.handler.authenticate(self, event.username, event.password)
        except Exception:
            log.exception("MPS authentication of %r failed", event.username)
            allowed = False
        if self.machine.state is not MpsState.AUTH_PENDING:
            return
        if allowed:
            self.machine.accept_authentication()
        else:
            self._dispatch(self.machine.reject_authentication())
        self._after()

    async def open_connection(self, port: int, protocol_factory: Callable[[], asyncio.BaseProtocol], *,
                              ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                              open_timeout: float = CHANNEL_OPEN_TIMEOUT
                              ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Like ``loop.create_connection`` to the device's ``port``, through the tunnel.  Raises
        ChannelOpenError (refused), ConnectionResetError (tunnel gone), TimeoutError, ssl.SSLError."""
        protocol = protocol_factory()
        holder = _Placeholder() if ssl_context is not None else protocol
        channel_id = self.machine.open_channel(port)
        future: asyncio.Future[None] = self.loop.create_future()
        self._opening[channel_id] = (future, holder)
        self._after()
        try:
            async with asyncio.timeout(open_timeout):
                await future
        except BaseException:
            self._opening.pop(channel_id, None)
            self._close(channel_id, discard=True)
            raise
        channel = self.channels[channel_id]
        if ssl_context is None:
            return channel, protocol
        try:
            tls = await self.loop.start_tls(channel, protocol, ssl_context, server_hostname=server_hostname,
                                            ssl_handshake_timeout=open_timeout)
        except BaseException:
            channel.abort()
            raise
        assert isinstance(tls, asyncio.Transport)
        protocol.connection_made(tls)
        return tls, protocol

    async def open_stream(self, port: int, *, ssl_context: ssl.SSLContext | None = None,
                          server_hostname: str | None = None, limit: int = 2**16,
                          open_timeout: float = CHANNEL_OPEN_TIMEOUT
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream pair on a channel to ``port``, as ``asyncio.open_connection`` gives for TCP."""
        reader = asyncio.StreamReader(limit=limit, loop=self.loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self.loop)
        transport, _ = await self.open_connection(port, lambda: protocol, ssl_context=ssl_context,
                                                  server_hostname=server_hostname, open_timeout=open_timeout)
        return reader, asyncio.StreamWriter(transport, protocol, reader, self.loop)


async def serve_mps(handler: MpsHandler, host: str, port: int, ssl_context: ssl.SSLContext, *,
                    machine_factory: Callable[[], MpsConnection] = MpsConnection,
                    handshake_timeout: float = 30.0) -> asyncio.Server:
    """Listen for CIRA tunnels; each accepted device runs an :class:`MpsTunnel` with a fresh machine."""
    loop = asyncio.get_running_loop()

    def accept() -> MpsTunnel:
        tls = TlsSession(ssl_context, server_side=True)
        return MpsTunnel(machine_factory(), handler, tls, handshake_timeout=handshake_timeout)

    return await loop.create_server(accept, host, port)


# ---------------------------------------------------------------------------------------------- WS-MAN over APF


class ApfConnector(aiohttp.BaseConnector):
    """aiohttp connections opened as channels of one tunnel: port from the URL (16992 for http, 16993 for
    https), TLS inside the channel for https (``ssl=`` of the request: a context, a Fingerprint, or False for
    no verification)."""

    def __init__(self, tunnel: MpsTunnel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tunnel = tunnel

    async def _create_connection(self, req: ClientRequest, traces: list[Any],
                                 timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 -- aiohttp's signature
                                 ) -> ResponseHandler:
        port = req.port or (TLS_PORT if req.is_ssl() else HTTP_PORT)
        context: ssl.SSLContext | None = None
        fingerprint = req.ssl if isinstance(req.ssl, aiohttp.Fingerprint) else None
        if req.is_ssl():
            if isinstance(req.ssl, ssl.SSLContext):
                context = req.ssl
            else:
                context = ssl.create_default_context()
                if req.ssl is not True:  # pinned or explicitly unverified
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
        try:
            transport, protocol = await self.tunnel.open_connection(
                port, self._factory, ssl_context=context, server_hostname=req.host if context else None,
                open_timeout=timeout.sock_connect or timeout.connect or CHANNEL_OPEN_TIMEOUT)
        except ssl.SSLCertVerificationError as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except (ApfError, OSError, TimeoutError) as exc:
            raise aiohttp.ClientConnectorError(req.connection_key, OSError(0, f"CIRA channel: {exc}")) from exc
        if fingerprint is not None:
            fingerprint.check(transport)
        assert isinstance(protocol, ResponseHandler)
        return protocol


class TunnelWsmanTransport(WsmanTransport):
    """A WsmanTransport whose connections are channels of ``tunnel`` (Host header ``<device uuid>:port``, as
    the MPS sends it)."""

    def __init__(self, tunnel: MpsTunnel, username: str = "admin", password: str | None = None, *,
                 tls: bool = False, **kwargs: Any) -> None:
        device = tunnel.machine.system_uuid
        super().__init__(str(device) if device else tunnel.peer, username, password, tls=tls,
                         connector_factory=lambda: ApfConnector(tunnel, limit_per_host=1), **kwargs)
        self.tunnel = tunnel


__all__ = [
    "AmtTunnel",
    "ApfConnector",
    "ChannelHandler",
    "ChannelTransport",
    "MpsHandler",
    "MpsTunnel",
    "TunnelWsmanTransport",
    "dial_mps",
    "serve_mps",
    "splice_to_tcp",
]
