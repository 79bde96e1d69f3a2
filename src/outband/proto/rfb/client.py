"""The client end of RFB 3.8 (3.7 and 3.3 servers too), keeping a decoded copy of the framebuffer.

Theory of operation (:class:`RfbClient`)::

    VERSION          the server's version -> ours (3.8, or the server's if older)
    SECURITY         3.7/3.8: we choose from the server's list: VNC Authentication (2) when we were given a
                     password and it is offered (AMT's port 5900), else None (inside a redirection session the
                     redirection login already authenticated us); 3.3: the server names the type.  A failure
                     carries a reason string.
    CHALLENGE        VNC Authentication: the 16-byte challenge -> its DES encryption with the password
    SECURITY_RESULT  0 = ok; a failure carries a reason in 3.8 only.  Sent in 3.8 always, before that only
                     after VNC Authentication
    SERVER_INIT      size, the server's pixel format, its name -> we send SetPixelFormat, SetEncodings (RLE,
                     RAW, the Intel extensions, DesktopSize: what MeshCommander sends) and ask for everything
    NORMAL           FramebufferUpdate rectangles (RAW, RLE, DesktopSize) decode into :attr:`framebuffer`;
                     Bell, ServerCutText (Intel extensions recognised) and SetColourMapEntries (skipped: we only
                     use true colour) are read too.  After each complete update the next incremental request
                     goes out by itself unless ``auto_refresh`` is off.

Hostile input: every length (name, cut text, rectangle body, colour map) is capped before it is buffered, a
rectangle must lie inside the framebuffer, and an encoding we did not ask for is a protocol error.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from .encodings import PixelBuffer, RectDecoder, rle_body_cap
from .endpoint import RfbEndpoint
from .errors import RfbProtocolError
from .messages import (
    KVM_DATA_CHANNEL,
    MAX_CUT_TEXT,
    MAX_NAME,
    RECT_HEADER,
    VERSION_LENGTH,
    ClientMessage,
    CutText,
    Encoding,
    KvmData,
    KvmExt,
    Security,
    ServerMessage,
    classify_cut_text,
    encode_cut_text,
    encode_key_event,
    encode_pointer_event,
    encode_set_encodings,
    encode_set_pixel_format,
    encode_update_request,
    encode_version,
    kvm_ext_payload,
    parse_version,
)
from .pixels import PIXEL_FORMAT_SIZE, RGB565, PixelFormat, to_rgb
from .vncauth import CHALLENGE_LENGTH, vnc_response

MAX_FRAMEBUFFER_BYTES: Final = 64 * 1024 * 1024
"""The largest framebuffer (width x height x bytes per pixel) a client accepts to hold."""
MAX_BUFFERED: Final = 2 * MAX_FRAMEBUFFER_BYTES
"""Unparsed server bytes tolerated: the largest legitimate message (a RAW rectangle filling the largest
framebuffer, or its RLE equivalent) plus a read's worth."""
DEFAULT_ENCODINGS: Final = (Encoding.RLE, Encoding.RAW, Encoding.INTEL_KVM_EXTENSIONS, Encoding.DESKTOP_SIZE)


class ClientState(enum.Enum):
    VERSION = "version"
    SECURITY = "security"
    CHALLENGE = "challenge"
    SECURITY_RESULT = "security-result"
    SERVER_INIT = "server-init"
    NORMAL = "normal"
    UPDATE = "update"
    """Inside a FramebufferUpdate: rectangles still to come."""


@dataclass(frozen=True, slots=True)
class ServerInitialised:
    width: int
    height: int
    name: str
    server_format: bytes
    """The server's own pixel format, as sent (it may be one we would not use)."""


@dataclass(frozen=True, slots=True)
class FramebufferUpdated:
    rectangles: tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class DesktopResized:
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Bell:
    pass


RfbClientEvent = ServerInitialised | FramebufferUpdated | DesktopResized | Bell | CutText | KvmData | KvmExt


class RfbClient(RfbEndpoint[RfbClientEvent]):
    def __init__(self, *, pixel_format: PixelFormat = RGB565, encodings: tuple[int, ...] = DEFAULT_ENCODINGS,
                 shared: bool = True, auto_refresh: bool = True, password: str | None = None) -> None:
        pixel_format.validate()
        super().__init__(max_buffered=MAX_BUFFERED, overflow="the server sent more than any message can hold")
        self.password = password
        """For VNC Authentication (port 5900's RFB password); None: only security type None is spoken."""
        self.format = pixel_format
        self.encodings = tuple(encodings)
        self.shared = shared
        self.auto_refresh = auto_refresh
        self.state = ClientState.VERSION
        self.version = (3, 8)
        self.name = ""
        self.framebuffer = PixelBuffer.blank(0, 0, pixel_format)
        self.updates = 0
        self._decoder = RectDecoder()
        self._rects_left = 0
        self._rects: list[tuple[int, int, int, int]] = []
        self._resized = False

    @property
    def ready(self) -> bool:
        return self.state in (ClientState.NORMAL, ClientState.UPDATE)

    # ------------------------------------------------------------------------------------------ requests

    def request_update(self, incremental: bool = True) -> None:
        self._out.append(encode_update_request(incremental, 0, 0, self.framebuffer.width, self.framebuffer.height))

    def key(self, keysym: int, down: bool) -> None:
        self._out.append(encode_key_event(down, keysym))

    def pointer(self, buttons: int, x: int, y: int) -> None:
        self._out.append(encode_pointer_event(buttons, x, y))

    def cut_text(self, text: str) -> None:
        self._out.append(encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, text.encode("latin-1", "replace")))

    def kvm_ext(self, command: int, value: int | None = None) -> None:
        self._out.append(encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, kvm_ext_payload(command, value)))

    def kvm_data(self, payload: bytes = b"") -> None:
        """A KvmDataChannel message for the host agent (an empty one is MeshCommander's keep-alive)."""
        self._out.append(encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, KVM_DATA_CHANNEL + payload))

    def set_pixel_format(self, fmt: PixelFormat) -> None:
        """Switch formats: the copy is blanked and everything is asked for again."""
        fmt.validate()
        self.format = fmt
        self._out.append(encode_set_pixel_format(fmt))
        if self.ready:
            self.framebuffer = PixelBuffer.blank(self.framebuffer.width, self.framebuffer.height, fmt)
            self.request_update(incremental=False)

    def rgb(self) -> bytes:
        """The framebuffer as packed 8-bit RGB (for a screenshot)."""
        return to_rgb(bytes(self.framebuffer.pixels), self.framebuffer.format)

    # ------------------------------------------------------------------------------------------ parsing

    def _step(self) -> bool:
        return _STEPS[self.state](self)

    def _on_version(self) -> bool:
        data = self._buf.take(VERSION_LENGTH)
        if data is None:
            return False
        major, minor = parse_version(data)
        if major != 3 or minor < 3:
            raise RfbProtocolError(f"RFB version {major}.{minor} is not spoken here")
        self.version = (3, 8) if minor >= 8 else (3, 7) if minor == 7 else (3, 3)
        self._out.append(encode_version(*self.version))
        self.state = ClientState.SECURITY
        return True

    def _on_security(self) -> bool:
        if self.version == (3, 3):
            data = self._buf.peek(4)
            if data is None:
                return False
            kind = int.from_bytes(data, "big")
            if kind == Security.INVALID:
                return self._failure(4)
            del self._buf[:4]
            if kind not in self._speakable():
                raise RfbProtocolError(f"the server wants security type {kind}; {self._spoken()}")
            self._security_chosen(Security(kind))
            return True
        if not self._buf:
            return False
        count = self._buf[0]
        if count == 0:
            return self._failure(1)
        data = self._buf.take(1 + count)
        if data is None:
            return False
        choice = next((kind for kind in self._speakable() if kind in data[1:]), None)
        if choice is None:
            raise RfbProtocolError(f"the server offers security types {list(data[1:])}; {self._spoken()}")
        self._out.append(bytes([choice]))
        self._security_chosen(choice)
        return True

    def _speakable(self) -> tuple[Security, ...]:
        """Security types we can speak, the one we prefer first."""
        return (Security.VNC, Security.NONE) if self.password is not None else (Security.NONE,)

    def _spoken(self) -> str:
        return "only None is supported" if self.password is None else "only VNC Authentication and None are supported"

    def _security_chosen(self, kind: Security) -> None:
        if kind is Security.VNC:
            self.state = ClientState.CHALLENGE
        elif self.version >= (3, 8):
            self.state = ClientState.SECURITY_RESULT
        else:
            self._client_init()

    def _on_challenge(self) -> bool:
        challenge = self._buf.take(CHALLENGE_LENGTH)
        if challenge is None:
            return False
        assert self.password is not None  # VNC Authentication is only chosen with a password
        self._out.append(vnc_response(self.password, bytes(challenge)))
        self.state = ClientState.SECURITY_RESULT
        return True

    def _on_security_result(self) -> bool:
        data = self._buf.peek(4)
        if data is None:
            return False
        if int.from_bytes(data, "big") != 0:
            if self.version < (3, 8):
                raise RfbProtocolError("the server refused the connection: authentication failed")
            return self._failure(4)
        del self._buf[:4]
        self._client_init()
        return True

    def _failure(self, skip: int) -> bool:
        """A refusal: ``skip`` header bytes, then a u32-length reason string."""
        head = self._buf.peek(skip + 4)
        if head is None:
            return False
        length = int.from_bytes(head[skip:], "big")
        if length > MAX_NAME:
            raise RfbProtocolError("the server refused the connection (reason too long to show)")
        data = self._buf.peek(skip + 4 + length)
        if data is None:
            return False
        reason = data[skip + 4 :].decode("utf-8", "replace")
        raise RfbProtocolError(f"the server refused the connection: {reason}")

    def _client_init(self) -> None:
        self._out.append(bytes([int(self.shared)]))
        self.state = ClientState.SERVER_INIT

    def _on_server_init(self) -> bool:
        head = self._buf.peek(24)
        if head is None:
            return False
        name_length = int.from_bytes(head[20:24], "big")
        if name_length > MAX_NAME:
            raise RfbProtocolError(f"desktop name of {name_length} bytes exceeds {MAX_NAME}")
        data = self._buf.take(24 + name_length)
        if data is None:
            return False
        width, height = struct.unpack_from(">HH", data)
        self._resize(width, height)
        self.name = data[24:].decode("utf-8", "replace")
        self._out.append(encode_set_pixel_format(self.format))
        self._out.append(encode_set_encodings(list(self.encodings)))
        self.request_update(incremental=False)
        self.state = ClientState.NORMAL
        self._events.append(ServerInitialised(width, height, self.name, data[4 : 4 + PIXEL_FORMAT_SIZE]))
        return True

    def _resize(self, width: int, height: int) -> None:
        if width * height * self.format.bytes_per_pixel > MAX_FRAMEBUFFER_BYTES:
            raise RfbProtocolError(f"a {width}x{height} framebuffer is larger than this client holds")
        self.framebuffer = PixelBuffer.blank(width, height, self.format)

    def _on_message(self) -> bool:
        if not self._buf:
            return False
        kind = self._buf[0]
        if kind == ServerMessage.FRAMEBUFFER_UPDATE:
            data = self._buf.take(4)
            if data is None:
                return False
            self._rects_left = int.from_bytes(data[2:4], "big")
            self._rects = []
            self.state = ClientState.UPDATE
            if self._rects_left == 0:
                self._update_done()
            return True
        if kind == ServerMessage.BELL:
            del self._buf[:1]
            self._events.append(Bell())
            return True
        if kind == ServerMessage.SERVER_CUT_TEXT:
            head = self._buf.peek(8)
            if head is None:
                return False
            length = int.from_bytes(head[4:8], "big")
            if length > MAX_CUT_TEXT:
                raise RfbProtocolError(f"cut text of {length} bytes exceeds {MAX_CUT_TEXT}")
            data = self._buf.take(8 + length)
            if data is None:
                return False
            self._events.append(classify_cut_text(data[8:]))
            return True
        if kind == ServerMessage.SET_COLOUR_MAP_ENTRIES:
            head = self._buf.peek(6)
            if head is None:
                return False
            first, count = struct.unpack_from(">HH", head, 2)
            if first + count > 0x10000:
                raise RfbProtocolError("colour map entries beyond 65536")
            return self._buf.take(6 + 6 * count) is not None
        raise RfbProtocolError(f"unknown server message type {kind}")

    def _on_rectangle(self) -> bool:
        head = self._buf.peek(RECT_HEADER.size)
        if head is None:
            return False
        x, y, width, height, encoding = RECT_HEADER.unpack(head)
        if encoding == Encoding.DESKTOP_SIZE and Encoding.DESKTOP_SIZE in self.encodings:
            del self._buf[: RECT_HEADER.size]
            self._resize(width, height)
            self._resized = True
            self._events.append(DesktopResized(width, height))
            return self._rectangle_done(None)
        if encoding not in self.encodings or encoding not in (Encoding.RAW, Encoding.RLE):
            raise RfbProtocolError(f"rectangle in encoding {encoding}, which was not asked for")
        if width == 0 or height == 0 or x + width > self.framebuffer.width or y + height > self.framebuffer.height:
            raise RfbProtocolError(f"rectangle {width}x{height}+{x}+{y} outside the "
                                   f"{self.framebuffer.width}x{self.framebuffer.height} framebuffer")
        if encoding == Encoding.RAW:
            size = width * height * self.format.bytes_per_pixel
            data = self._buf.take(RECT_HEADER.size + size)
            if data is None:
                return False
            self._decoder.raw(self.framebuffer, x, y, width, height, data[RECT_HEADER.size :])
        else:
            prefix = self._buf.peek(RECT_HEADER.size + 4)
            if prefix is None:
                return False
            length = int.from_bytes(prefix[RECT_HEADER.size :], "big")
            if length > rle_body_cap(width, height, self.format):
                raise RfbProtocolError(f"RLE rectangle of {length} bytes is larger than {width}x{height} can be")
            data = self._buf.take(RECT_HEADER.size + 4 + length)
            if data is None:
                return False
            self._decoder.rle(self.framebuffer, x, y, width, height, data[RECT_HEADER.size + 4 :])
        return self._rectangle_done((x, y, width, height))

    def _rectangle_done(self, rect: tuple[int, int, int, int] | None) -> bool:
        if rect is not None:
            self._rects.append(rect)
        self._rects_left -= 1
        if self._rects_left == 0:
            self._update_done()
        return True

    def _update_done(self) -> None:
        self.state = ClientState.NORMAL
        self.updates += 1
        self._events.append(FramebufferUpdated(tuple(self._rects)))
        if self._resized:
            self._resized = False
            self.request_update(incremental=False)
        elif self.auto_refresh:
            self.request_update(incremental=True)


_STEPS: Final = {
    ClientState.VERSION: RfbClient._on_version,
    ClientState.SECURITY: RfbClient._on_security,
    ClientState.CHALLENGE: RfbClient._on_challenge,
    ClientState.SECURITY_RESULT: RfbClient._on_security_result,
    ClientState.SERVER_INIT: RfbClient._on_server_init,
    ClientState.NORMAL: RfbClient._on_message,
    ClientState.UPDATE: RfbClient._on_rectangle,
}

__all__ = [
    "DEFAULT_ENCODINGS",
    "MAX_FRAMEBUFFER_BYTES",
    "Bell",
    "ClientState",
    "DesktopResized",
    "FramebufferUpdated",
    "RfbClient",
    "RfbClientEvent",
    "ServerInitialised",
]
