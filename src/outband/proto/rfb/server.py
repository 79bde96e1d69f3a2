"""The server end of RFB 3.8 as AMT's KVM plays it, over a picture of palette indices.

Theory of operation (:class:`RfbServer`)::

    VERSION    start() sends "RFB 003.008"; the client's version picks 3.3, 3.7 or 3.8 (RFC 6143 §7.1.1)
    SECURITY   3.7/3.8: one security type offered, the client must choose it.  3.3: the server names it.
               Inside a redirection session (16994/16995) that type is None: the redirection login has
               authenticated the user already, so AMT offers nothing else (AMT-PROTOCOLS.md §4.5); 3.8 then
               gets SecurityResult OK.  On port 5900 (``vnc_auth``) it is VNC Authentication (type 2):
    CHALLENGE  16 random bytes sent; the client's 16-byte response awaited
    DECIDING   a VncLoginAttempt event; parsing stops until the caller, having checked the response with
               verify(password) and asked its own questions (lockout, consent, a session already open),
               calls grant() -- SecurityResult OK -- or deny(reason) -- SecurityResult failed, with the reason
               string in 3.8 -- after which the server is CLOSED and ignores the client
    INIT       ClientInit (the shared flag) -> ServerInit: size, AMT's default RGB565 format, the name
    NORMAL     client messages become events; FramebufferUpdateRequests are answered from the surface

Updates: the framebuffer is cut on a fixed 64x64 grid, every tile its own rectangle (AMT's way; MeshCommander
rejects larger ones), encoded with the first of RLE (16) and RAW (0) the client listed.  An incremental request
gets only the tiles that changed since this client last received them; with nothing changed it stays pending
until :meth:`refresh` finds a change.  When the surface changes size a client that listed DesktopSize gets a
DesktopSize rectangle (and then asks for the whole picture); one that did not keeps seeing the part that fits
its old size.  The Intel cut-text extensions are answered (compression on/off, decimation) or passed up as
events; plain cut text is an event too.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from .encodings import RectEncoder
from .endpoint import RfbEndpoint
from .errors import RfbProtocolError
from .messages import (
    MAX_NAME,
    TILE,
    VERSION_3_8,
    VERSION_LENGTH,
    ClientCutText,
    ClientMessageEvent,
    CutText,
    Encoding,
    KeyEvent,
    KvmData,
    KvmExt,
    KvmExtCommand,
    PointerEvent,
    Security,
    ServerMessage,
    SetEncodings,
    SetPixelFormat,
    UpdateRequest,
    classify_cut_text,
    client_message_length,
    encode_cut_text,
    encode_rect_header,
    encode_update_header,
    kvm_ext_payload,
    parse_client_message,
    parse_version,
)
from .pixels import RGB, RGB565, PaletteEncoder, PixelFormat
from .vncauth import CHALLENGE_LENGTH, new_challenge, response_matches

MAX_BUFFERED: Final = 2 * 1024 * 1024
"""Unprocessed client bytes tolerated (one maximal cut text plus slack)."""


class IndexedSurface(Protocol):
    """What the server shows: a picture of palette indices (one byte per pixel) and its palette."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def palette(self) -> Sequence[RGB]: ...

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        """Indices of a rectangle, row after row (it lies inside the surface)."""
        ...


class ServerState(enum.Enum):
    VERSION = "version"
    SECURITY = "security"
    CHALLENGE = "challenge"
    DECIDING = "deciding"
    INIT = "init"
    NORMAL = "normal"
    CLOSED = "closed"


SECURITY_RESULT_OK: Final = 0
SECURITY_RESULT_FAILED: Final = 1


@dataclass(frozen=True, slots=True)
class ClientInitialised:
    shared: bool
    version: tuple[int, int]


@dataclass(frozen=True, slots=True)
class VncLoginAttempt:
    """The client answered the VNC challenge: check it (:meth:`RfbServer.verify`), then grant or deny."""


RfbServerEvent = (ClientInitialised | VncLoginAttempt | KeyEvent | PointerEvent | CutText | KvmData | KvmExt
                  | SetPixelFormat)


class RfbServer(RfbEndpoint[RfbServerEvent]):
    def __init__(self, surface: IndexedSurface, *, name: str = "outband", pixel_format: PixelFormat = RGB565,
                 vnc_auth: bool = False) -> None:
        super().__init__(max_buffered=MAX_BUFFERED, overflow="the client sent more than it lets the server process")
        self.surface = surface
        self.security = Security.VNC if vnc_auth else Security.NONE
        self._challenge = b""
        self._response = b""
        self._verified = False
        self.name = name.encode("utf-8")[:255]
        self.format = pixel_format
        self.state = ServerState.VERSION
        self.version = (3, 8)
        self.encodings: tuple[int, ...] = ()
        self._pending: UpdateRequest | None = None
        self._client_size = (surface.width, surface.height)
        self._snapshot: dict[tuple[int, int, int, int], bytes] = {}
        self._palette: tuple[RGB, ...] = ()
        self._compression = False
        self._encoder = self._make_encoder()
        self.updates_sent = 0

    # ------------------------------------------------------------------------------------------ I/O

    def start(self) -> None:
        self._out.append(VERSION_3_8)

    def refresh(self) -> None:
        """The surface may have changed: answer a waiting update request if there is something new."""
        if self.state is ServerState.NORMAL:
            self._serve()

    def send_cut_text(self, payload: bytes) -> None:
        self._out.append(encode_cut_text(ServerMessage.SERVER_CUT_TEXT, payload))

    # ------------------------------------------------------------------------------------------ parsing

    def _step(self) -> bool:
        if self.state is ServerState.VERSION:
            data = self._buf.take(VERSION_LENGTH)
            if data is None:
                return False
            self._on_version(data)
        elif self.state is ServerState.SECURITY:
            data = self._buf.take(1)
            if data is None:
                return False
            if data[0] != self.security:
                raise RfbProtocolError(f"security type {data[0]} was not offered")
            self._security_chosen()
        elif self.state is ServerState.CHALLENGE:
            data = self._buf.take(CHALLENGE_LENGTH)
            if data is None:
                return False
            self._response = bytes(data)
            self.state = ServerState.DECIDING
            self._events.append(VncLoginAttempt())
        elif self.state in (ServerState.DECIDING, ServerState.CLOSED):
            return False  # the caller decides first; after a refusal nothing the client says matters
        elif self.state is ServerState.INIT:
            data = self._buf.take(1)
            if data is None:
                return False
            self._on_client_init(bool(data[0]))
        else:
            data = self._buf.take(client_message_length(self._buf))
            if data is None:
                return False
            self._on_message(parse_client_message(data))
        return True

    def _on_version(self, data: bytes) -> None:
        major, minor = parse_version(data)
        if major != 3:
            raise RfbProtocolError(f"RFB version {major}.{minor} is not spoken here")
        self.version = (3, 8) if minor >= 8 else (3, 7) if minor == 7 else (3, 3)
        if self.version == (3, 3):
            self._out.append(struct.pack(">I", self.security))
            self._security_chosen()
        else:
            self._out.append(bytes([1, self.security]))
            self.state = ServerState.SECURITY

    def _security_chosen(self) -> None:
        if self.security is Security.VNC:
            self._challenge = new_challenge()
            self._out.append(self._challenge)
            self.state = ServerState.CHALLENGE
            return
        if self.version >= (3, 8):
            self._out.append(struct.pack(">I", SECURITY_RESULT_OK))
        self.state = ServerState.INIT

    # ------------------------------------------------------------------------------------------ VNC login

    def verify(self, password: str) -> bool:
        """Whether the client's response answers the challenge for ``password`` (constant time; an empty
        password never matches).  Only a matching verify lets :meth:`grant` go ahead."""
        if self.state is not ServerState.DECIDING:
            raise RuntimeError("there is no VNC response to verify")
        self._verified = response_matches(password, self._challenge, self._response)
        return self._verified

    def grant(self) -> None:
        """Admit the client whose response :meth:`verify` accepted: SecurityResult OK, then the handshake."""
        if self.state is not ServerState.DECIDING or not self._verified:
            raise RuntimeError("only a verified VNC response can be granted")
        self._out.append(struct.pack(">I", SECURITY_RESULT_OK))
        self.state = ServerState.INIT
        self._parse()  # a ClientInit may have come with the response

    def deny(self, reason: str) -> None:
        """Refuse the login: SecurityResult failed (with ``reason`` for a 3.8 client); the caller then closes."""
        if self.state is not ServerState.DECIDING:
            raise RuntimeError("there is no VNC login to deny")
        result = struct.pack(">I", SECURITY_RESULT_FAILED)
        if self.version >= (3, 8):
            text = reason.encode("utf-8")[:MAX_NAME]
            result += struct.pack(">I", len(text)) + text
        self._out.append(result)
        self.state = ServerState.CLOSED

    @property
    def closed(self) -> bool:
        """The login was denied: send what is queued, then close the connection."""
        return self.state is ServerState.CLOSED

    def _on_client_init(self, shared: bool) -> None:
        width, height = self._client_size = (self.surface.width, self.surface.height)
        self._out.append(struct.pack(">HH", width, height) + self.format.encode()
                         + struct.pack(">I", len(self.name)) + self.name)
        self.state = ServerState.NORMAL
        self._events.append(ClientInitialised(shared, self.version))

    def _on_message(self, message: ClientMessageEvent) -> None:
        if isinstance(message, UpdateRequest):
            self._on_update_request(message)
        elif isinstance(message, SetPixelFormat):
            self.format = message.format
            self._encoder = self._make_encoder()
            self._events.append(message)
        elif isinstance(message, SetEncodings):
            self.encodings = message.encodings
            self._encoder = self._make_encoder()
        elif isinstance(message, ClientCutText):
            self._on_cut_text(message.payload)
        else:
            self._events.append(message)

    def _on_cut_text(self, payload: bytes) -> None:
        content = classify_cut_text(payload)
        if isinstance(content, KvmExt):
            if content.command == KvmExtCommand.SET_COMPRESSION and content.value in (0, 1):
                self._compression = bool(content.value)
                self._encoder.set_compression(self._compression)
                self.send_cut_text(kvm_ext_payload(KvmExtCommand.COMPRESSION_REPORT, content.value))
            elif content.command == KvmExtCommand.SET_DECIMATION and content.value is not None:
                self.send_cut_text(kvm_ext_payload(KvmExtCommand.DECIMATION_REPORT, content.value, b"\0"))
        self._events.append(content)

    # ------------------------------------------------------------------------------------------ updates

    def _make_encoder(self) -> RectEncoder:
        encoding = next((Encoding(e) for e in self.encodings if e in (Encoding.RLE, Encoding.RAW)), Encoding.RAW)
        self._palette = tuple(self.surface.palette)
        self._snapshot.clear()
        encoder = RectEncoder(PaletteEncoder(self.format, self._palette), encoding)
        encoder.set_compression(self._compression)
        return encoder

    def _on_update_request(self, request: UpdateRequest) -> None:
        pending = self._pending
        if pending is not None:  # merge: the bounding box, incremental only if both are
            x0, y0 = min(pending.x, request.x), min(pending.y, request.y)
            x1 = max(pending.x + pending.width, request.x + request.width)
            y1 = max(pending.y + pending.height, request.y + request.height)
            request = UpdateRequest(pending.incremental and request.incremental, x0, y0, x1 - x0, y1 - y0)
        self._pending = request
        self._serve()

    def _serve(self) -> None:
        request = self._pending
        if request is None:
            return
        size = (self.surface.width, self.surface.height)
        if size != self._client_size and Encoding.DESKTOP_SIZE in self.encodings:
            self._client_size = size
            self._snapshot.clear()
            self._pending = None
            self._out.append(encode_update_header(1) + encode_rect_header(0, 0, *size, Encoding.DESKTOP_SIZE))
            self.updates_sent += 1
            return
        if tuple(self.surface.palette) != self._palette:
            self._encoder = self._make_encoder()
        rects = list(self._changed_tiles(request))
        if not rects and request.incremental:
            return  # nothing new: the request waits for a change
        self._pending = None
        self._out.append(encode_update_header(len(rects)))
        self._out.extend(rects)
        self.updates_sent += 1

    def _changed_tiles(self, request: UpdateRequest) -> list[bytes]:
        width = min(self._client_size[0], self.surface.width)
        height = min(self._client_size[1], self.surface.height)
        x0, y0 = min(request.x, width), min(request.y, height)
        x1, y1 = min(request.x + request.width, width), min(request.y + request.height, height)
        out = []
        for ty in range(y0 - y0 % TILE, y1, TILE):
            for tx in range(x0 - x0 % TILE, x1, TILE):
                x, y = max(tx, x0), max(ty, y0)
                w, h = min(tx + TILE, x1) - x, min(ty + TILE, y1) - y
                if w <= 0 or h <= 0:
                    continue
                indices = self.surface.region(x, y, w, h)
                key = (x, y, w, h)
                if request.incremental and self._snapshot.get(key) == indices:
                    continue
                self._snapshot[key] = indices
                out.append(self._encoder.rect(x, y, w, h, indices))
        return out


__all__ = ["ClientInitialised", "IndexedSurface", "RfbServer", "RfbServerEvent", "ServerState", "VncLoginAttempt"]
