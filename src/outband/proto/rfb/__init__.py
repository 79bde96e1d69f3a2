"""RFB 3.8 (the VNC protocol, RFC 6143) as AMT's KVM speaks it, sans-I/O: both roles, pixel formats (16-bit
RGB565, 8-bit RGB332 and grey, 32-bit), RAW and AMT's RLE tiles, DesktopSize, key and pointer events, and
Intel's in-band extensions riding in cut text (AMT-PROTOCOLS.md §4.5)."""

from .client import DesktopResized, FramebufferUpdated, RfbClient, ServerInitialised
from .errors import RfbProtocolError
from .messages import CutText, Encoding, KeyEvent, KvmData, KvmExt, PointerEvent
from .pixels import GREY4, GREY8, RGB332, RGB565, RGB888, PixelFormat
from .server import ClientInitialised, IndexedSurface, RfbServer

__all__ = [
    "GREY4",
    "GREY8",
    "RGB332",
    "RGB565",
    "RGB888",
    "ClientInitialised",
    "CutText",
    "DesktopResized",
    "Encoding",
    "FramebufferUpdated",
    "IndexedSurface",
    "KeyEvent",
    "KvmData",
    "KvmExt",
    "PixelFormat",
    "PointerEvent",
    "RfbClient",
    "RfbProtocolError",
    "RfbServer",
    "ServerInitialised",
]
