"""KVM for the device SDK: :class:`KvmSession` (an RFB client over the redirection protocol), screenshots as
PNG, and :class:`VncBridge`, a local VNC server that any viewer can open.

Theory of operation: a KVM session is a redirection session of kind ``KVMR`` whose channel opens with two
8-byte messages (0x40 from us, 0x41 from AMT) and then carries RFB unframed (AMT-PROTOCOLS.md §4.5).
:func:`open_kvm_channel` logs in, stops the frame decoder (RFB is not framed) and reads AMT's 0x41 from the
raw stream, returning whatever RFB bytes came with it.  :class:`KvmSession` then runs
:class:`~outband.proto.rfb.client.RfbClient` over the channel in a pump task: the decoded framebuffer is
always current, updates are asked for continuously, key and pointer events go straight out.
:class:`VncBridge` relays a local viewer's RFB stream to a KVM channel instead, rewriting only the viewer's
encoding list (:class:`~outband.proto.rfb.relay.ViewerFilter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ..aio.errors import BadResponse, RequestTimeout, TransportError
from ..aio.redirection import RedirectionClient, TcpStream
from ..proto.redir.console import DEFAULT_PREFERENCE
from ..proto.redir.frames import Frame, MessageType, ProtocolError, SessionKind
from ..proto.redir.kvm import KVM_START, ChannelOpening
from ..proto.redir.session import AuthType
from ..proto.rfb.client import DEFAULT_ENCODINGS, FramebufferUpdated, RfbClient, RfbClientEvent
from ..proto.rfb.encodings import PixelBuffer
from ..proto.rfb.errors import RfbProtocolError
from ..proto.rfb.keys import keysyms_for_text
from ..proto.rfb.pixels import RGB565, PixelFormat
from ..proto.rfb.relay import ViewerFilter
from .redirection import DeviceSession
from .streams import StreamFactory

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG (colour type 2, no interlace) of packed ``rgb`` rows."""
    if len(rgb) != width * height * 3:
        raise ValueError(f"{len(rgb)} bytes are not {width}x{height} RGB pixels")
    step = width * 3
    raw = b"".join(b"\x00" + rgb[y * step : (y + 1) * step] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


@dataclass(frozen=True, slots=True)
class KvmChannel:
    """An open KVM channel: the redirection connection (now unframed) and the RFB bytes already received."""

    client: RedirectionClient
    early: bytes


async def open_kvm_channel(open_stream: StreamFactory, username: str, password: str, *, host: str,
                           preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
                           login_timeout: float = 30.0) -> KvmChannel:
    """Log in to a KVMR session and open its channel; raises a TransportError subclass on failure."""
    stream = await open_stream()
    client = await RedirectionClient.login(stream, SessionKind.KVM, username, password, host=host,
                                           preference=preference, login_timeout=login_timeout)
    return await start_kvm_channel(client, host=host, within=login_timeout)


async def start_kvm_channel(client: RedirectionClient, *, host: str, within: float) -> KvmChannel:
    """Open the channel of a logged-in KVMR session (closing the session if that fails)."""
    try:
        client.session.decoder.switch_to_raw()
        await client.send(KVM_START)
        return KvmChannel(client, await asyncio.wait_for(_opening(client, host), within))
    except TimeoutError:
        await client.aclose()
        raise RequestTimeout(f"the KVM channel did not open within {within:g} s", host=host) from None
    except BaseException:
        await client.aclose()
        raise


async def _opening(client: RedirectionClient, host: str) -> bytes:
    opening = ChannelOpening(MessageType.IDER_START_REPLY)
    while True:
        item = await client.receive()
        if item is None:
            raise BadResponse(f"the device closed the KVM session before it opened ({client.end_reason})",
                              host=host)
        if isinstance(item, Frame):
            raise BadResponse(f"{item.type.name} instead of the KVM channel reply", host=host)
        try:
            rest = opening.feed(item.data)
        except ProtocolError as exc:
            raise BadResponse(str(exc), host=host) from None
        if rest is not None:
            return rest


class KvmSession(DeviceSession):
    """The device's screen, keyboard and mouse.

    >>> async with KvmSession("10.0.0.5", password=secret) as kvm:            # doctest: +SKIP
    ...     await kvm.type_text("uname -a\\n")
    ...     await kvm.wait_update()
    ...     Path("screen.png").write_bytes(kvm.screenshot())
    """

    KIND = SessionKind.KVM

    def __init__(
        self,
        host: str,
        username: str = "admin",
        password: str = "",
        *,
        port: int | None = None,
        tls: bool = False,
        fingerprint: str | None = None,
        verify: bool = True,
        preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
        stream_factory: StreamFactory | None = None,
        timeout: float = 30.0,
        pixel_format: PixelFormat = RGB565,
        encodings: tuple[int, ...] = DEFAULT_ENCODINGS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, username, password, port=port, tls=tls, fingerprint=fingerprint, verify=verify,
                         preference=preference, stream_factory=stream_factory, timeout=timeout, clock=clock)
        self.rfb = RfbClient(pixel_format=pixel_format, encodings=encodings)
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Log in, open the KVM channel, and finish the RFB handshake and the first full update."""
        channel = await start_kvm_channel(await self._login(), host=self.host, within=self.timeout)
        self._client = channel.client
        try:
            self._feed(channel.early)
            await self._flush()
            self._pump_task = asyncio.get_running_loop().create_task(self._pump(channel.client),
                                                                     name=f"kvm-{self.host}")
            await asyncio.wait_for(self._wait(lambda: self.rfb.updates > 0), self.timeout)
        except TimeoutError:
            await self.close()
            raise RequestTimeout(f"no picture from the device within {self.timeout:g} s", host=self.host) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        await self._stop_pump()
        if client is not None:
            await client.aclose()
        self._finish("closed by us")

    # ------------------------------------------------------------------------------------------ screen

    @property
    def framebuffer(self) -> PixelBuffer:
        return self.rfb.framebuffer

    @property
    def updates(self) -> int:
        """Complete framebuffer updates received so far."""
        return self.rfb.updates

    async def wait_update(self, within: float | None = None) -> None:
        """Until the next complete framebuffer update after this call (one that changed something)."""
        seen = self.rfb.updates
        await asyncio.wait_for(self._wait(lambda: self.rfb.updates > seen), within or self.timeout)

    async def wait_for(self, predicate: Callable[[KvmSession], bool], within: float | None = None) -> None:
        """Until ``predicate(self)`` holds after an update (e.g. some text appeared on the screen)."""
        await asyncio.wait_for(self._wait(lambda: predicate(self)), within or self.timeout)

    async def request_update(self, incremental: bool = True) -> None:
        """Ask for an update now: the whole screen (``incremental`` False) or what changed.  The session asks
        for the next incremental update by itself after each one unless ``rfb.auto_refresh`` is off."""
        self.rfb.request_update(incremental)
        await self._flush()

    def screenshot(self) -> bytes:
        """The current picture as PNG."""
        buffer = self.rfb.framebuffer
        return encode_png(buffer.width, buffer.height, self.rfb.rgb())

    # ------------------------------------------------------------------------------------------ input

    async def key(self, keysym: int, down: bool | None = None) -> None:
        """Press and release a key (``down`` None), or only press or release it."""
        for state in ((True, False) if down is None else (down,)):
            self.rfb.key(keysym, state)
        await self._flush()

    async def type_text(self, text: str) -> None:
        for keysym in keysyms_for_text(text):
            self.rfb.key(keysym, True)
            self.rfb.key(keysym, False)
        await self._flush()

    async def pointer(self, x: int, y: int, buttons: int = 0) -> None:
        self.rfb.pointer(buttons, x, y)
        await self._flush()

    # ------------------------------------------------------------------------------------------ pump

    def _check_open(self) -> RedirectionClient:
        if self._client is None or self.end_reason is not None:
            raise TransportError(f"the KVM session is over ({self.end_reason or 'not open'})", host=self.host)
        return self._client

    def _feed(self, data: bytes) -> list[RfbClientEvent]:
        try:
            self.rfb.receive_data(data)
        except RfbProtocolError as exc:
            raise BadResponse(f"RFB: {exc}", host=self.host) from None
        events = self.rfb.events()
        if any(isinstance(e, FramebufferUpdated) for e in events):
            self._changed.set()
        return events

    async def _flush(self) -> None:
        client = self._check_open()
        async with self._send_lock:
            data = self.rfb.data_to_send()
            if data:
                await client.send(data)

    async def _pump(self, client: RedirectionClient) -> None:
        try:
            while True:
                item = await client.receive()
                if item is None:
                    self._finish(client.end_reason or "connection closed by the device")
                    return
                if isinstance(item, Frame):
                    raise BadResponse(f"{item.type.name} inside the KVM channel", host=self.host)
                self._feed(item.data)
                await self._flush()
        except (TransportError, ConnectionError) as exc:
            self._finish(str(exc))

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self.end_reason is not None:
                raise TransportError(f"the KVM session ended: {self.end_reason}", host=self.host)
            self._changed.clear()
            await self._changed.wait()

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._changed.set()


class VncBridge:
    """A local VNC server: each viewer that connects gets its own KVM channel to the device, relayed byte for
    byte (except the encoding list, see :mod:`~outband.proto.rfb.relay`).  ``open_channel`` opens one."""

    def __init__(self, open_channel: Callable[[], Awaitable[KvmChannel]]) -> None:
        self._open_channel = open_channel
        self.viewers = 0
        self.errors: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The ``asyncio.start_server`` callback: relay one viewer until either side closes."""
        viewer = TcpStream(reader, writer)
        self.viewers += 1
        try:
            channel = await self._open_channel()
        except TransportError as exc:
            self.errors.append(str(exc))
            await viewer.aclose()
            return
        device = channel.client
        if channel.early:
            viewer.write(channel.early)
        upstream = asyncio.ensure_future(self._to_device(viewer, device))
        downstream = asyncio.ensure_future(self._to_viewer(device, viewer))
        try:
            await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (upstream, downstream):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TransportError, ConnectionError, RfbProtocolError):
                    await task
            await device.aclose()
            await viewer.aclose()

    @staticmethod
    async def _to_device(viewer: TcpStream, device: RedirectionClient) -> None:
        rewrite = ViewerFilter()
        while data := await viewer.read():
            forward = rewrite.feed(data)
            if forward:
                await device.send(forward)

    @staticmethod
    async def _to_viewer(device: RedirectionClient, viewer: TcpStream) -> None:
        while (item := await device.receive()) is not None:
            if isinstance(item, Frame):
                return
            viewer.write(item.data)
            await viewer.drain()


__all__ = ["KvmChannel", "KvmSession", "VncBridge", "encode_png", "open_kvm_channel", "start_kvm_channel"]
