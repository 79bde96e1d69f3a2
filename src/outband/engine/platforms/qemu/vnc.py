"""The VM's screen for KVM: QEMU's VNC server read as an RFB client, re-served as AMT's KVM.

QEMU draws the VM's display (text mode or graphics) and serves it over VNC on a unix socket
(``-vnc unix:vnc.sock``).  :class:`VncDisplay` connects to it with our RFB client, asking for 8-bit RGB332
pixels: one byte per pixel, which *is* an index into the 256-colour RGB332 palette, so the copy the client keeps
is already the picture of palette indices our RFB server encodes (an
:class:`~outband.proto.rfb.server.IndexedSurface`) and nothing is converted in Python.  Only RAW and DesktopSize
are asked of QEMU (its encoding 16 is ZRLE, not AMT's RLE); the console gets AMT's tiles, RLE and whatever
pixel format it asks for from our server.

:class:`VncDisplay` is the QEMU machine's ``display`` (a :class:`~outband.engine.platforms.base.Display`), which
the engine's KVM kind serves as it serves any platform's.  Each KVM session follows it through a
:class:`VncView` (``width``, ``height``, ``palette``, ``region`` as an IndexedSurface; ``attach(on_change)`` --
``on_change`` is called after each update from QEMU -- and ``detach()``); keys go to QEMU as X keysyms and the
pointer as RFB pointer events, unchanged (QEMU maps keysyms to scancodes itself).  The VNC connection is open
only while a session follows the display, and follows QEMU across restarts (:meth:`VncDisplay.set_source`);
while no VM runs the picture is black, as a monitor with no signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from ....proto.rfb.client import DesktopResized, FramebufferUpdated, RfbClient
from ....proto.rfb.encodings import PixelBuffer
from ....proto.rfb.errors import RfbProtocolError
from ....proto.rfb.messages import Encoding
from ....proto.rfb.pixels import RGB, RGB332

log = logging.getLogger(__name__)

PALETTE: Final[tuple[RGB, ...]] = tuple(RGB332.rgb_of(bytes([index])) for index in range(256))
"""RGB332 pixel value -> colour: the palette of the picture QEMU sends."""
NO_SIGNAL: Final = (640, 480)
"""The (black) picture shown while no VM runs."""
ENCODINGS: Final = (Encoding.RAW, Encoding.DESKTOP_SIZE)
READ_SIZE: Final = 256 * 1024

ChangeListener = Callable[[], None]


class VncDisplay:
    """One VM's screen, keyboard and mouse through QEMU's VNC server."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self._source: Path | None = None
        self._followers: dict[VncView, ChangeListener | None] = {}
        self._client: RfbClient | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._blank = PixelBuffer.blank(*NO_SIGNAL, RGB332)

    # ------------------------------------------------------------------------------------------ the picture

    @property
    def picture(self) -> PixelBuffer:
        client = self._client
        return client.framebuffer if client is not None and client.ready else self._blank

    def view(self) -> VncView:
        """A view for one KVM session (follow it with ``attach``)."""
        return VncView(self)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.ready

    # ------------------------------------------------------------------------------------------ input

    def key(self, keysym: int, down: bool) -> None:
        if self._client is not None and self._client.ready:
            self._client.key(keysym, down)
            self._flush()

    def pointer(self, buttons: int, x: int, y: int) -> None:
        if self._client is not None and self._client.ready:
            picture = self.picture
            self._client.pointer(buttons, min(x, picture.width - 1), min(y, picture.height - 1))
            self._flush()

    # ------------------------------------------------------------------------------------------ source

    def set_source(self, path: Path | None) -> None:
        """Where QEMU's VNC socket is now (None: no VM runs); reconnects if a session is watching."""
        self._source = path
        self._disconnect()
        if path is not None and self._followers:
            self._connect()
        self._changed()

    def _follow(self, view: VncView, on_change: ChangeListener | None) -> None:
        self._followers[view] = on_change
        if self._task is None and self._source is not None:
            self._connect()

    def _unfollow(self, view: VncView) -> None:
        self._followers.pop(view, None)
        if not self._followers:
            self._disconnect()

    def _changed(self) -> None:
        for listener in list(self._followers.values()):
            if listener is not None:
                listener()

    def _connect(self) -> None:
        assert self._source is not None
        self._task = asyncio.get_running_loop().create_task(self._run(self._source), name="qemu-vnc")

    def _disconnect(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._drop()

    def _drop(self) -> None:
        writer, self._writer, self._client = self._writer, None, None
        if writer is not None:
            writer.close()

    async def close(self) -> None:
        task = self._task
        self._disconnect()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _flush(self) -> None:
        if self._client is not None and self._writer is not None and not self._writer.is_closing():
            data = self._client.data_to_send()
            if data:
                self._writer.write(data)

    async def _run(self, path: Path) -> None:
        """One VNC connection: feed what QEMU sends to the client, tell followers about each update."""
        try:
            reader, self._writer = await asyncio.open_unix_connection(str(path))
            self._client = RfbClient(pixel_format=RGB332, encodings=ENCODINGS)
            while data := await reader.read(READ_SIZE):
                self._client.receive_data(data)
                self._flush()
                if any(isinstance(e, FramebufferUpdated | DesktopResized) for e in self._client.events()):
                    self._changed()
        except (OSError, RfbProtocolError) as exc:
            log.info("VNC connection to %s ended: %s", path, exc)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self._drop()
                self._changed()


class VncView:
    """One KVM session's view of a :class:`VncDisplay` (a :class:`~outband.engine.platforms.base.DisplayView`)."""

    def __init__(self, display: VncDisplay) -> None:
        self.display = display
        self.palette: Sequence[RGB] = PALETTE

    @property
    def width(self) -> int:
        return self.display.picture.width

    @property
    def height(self) -> int:
        return self.display.picture.height

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        picture = self.display.picture
        pixels = memoryview(picture.pixels)
        start, stride = y * picture.width + x, picture.width
        return b"".join([pixels[at : at + width] for at in range(start, start + height * stride, stride)])

    def attach(self, on_change: ChangeListener | None = None) -> None:
        self.display._follow(self, on_change)

    def detach(self) -> None:
        self.display._unfollow(self)

    def key(self, keysym: int, down: bool) -> None:
        self.display.key(keysym, down)

    def pointer(self, buttons: int, x: int, y: int) -> None:
        self.display.pointer(buttons, x, y)


__all__ = ["PALETTE", "VncDisplay", "VncView"]
