"""RFB 3.8 messages (RFC 6143) as AMT's KVM speaks them: constants, encoders, and the client-message parser.

Every parser works on a buffer that may hold a partial message (it returns None until the message is whole)
and checks every length against a cap before anything is buffered or allocated for it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from .errors import RfbProtocolError
from .pixels import PIXEL_FORMAT_SIZE, PixelFormat

VERSION_LENGTH: Final = 12
VERSION_3_8: Final = b"RFB 003.008\n"
MAX_CUT_TEXT: Final = 1024 * 1024
"""Longest clipboard (or Intel extension) payload accepted in either direction."""
MAX_ENCODINGS: Final = 256
"""Most encodings a SetEncodings may list (real clients send fewer than 30)."""
MAX_NAME: Final = 4096
"""Longest desktop name (ServerInit) or failure reason accepted."""
TILE: Final = 64
"""AMT sends (and MeshCommander accepts) rectangles of at most 64x64 pixels."""


class ClientMessage(enum.IntEnum):
    SET_PIXEL_FORMAT = 0
    SET_ENCODINGS = 2
    FRAMEBUFFER_UPDATE_REQUEST = 3
    KEY_EVENT = 4
    POINTER_EVENT = 5
    CLIENT_CUT_TEXT = 6


class ServerMessage(enum.IntEnum):
    FRAMEBUFFER_UPDATE = 0
    SET_COLOUR_MAP_ENTRIES = 1
    BELL = 2
    SERVER_CUT_TEXT = 3


class Encoding(enum.IntEnum):
    RAW = 0
    COPY_RECT = 1
    RLE = 16
    """ZRLE-style tiles; AMT's flavour wraps them in a raw deflate stream (stored blocks unless zlib is on)."""
    INTEL_KVM_EXTENSIONS = 1092
    """Advertises the Intel in-band extensions (KvmDataChannel / KvmExtCmd in cut text)."""
    DESKTOP_SIZE = -223


class Security(enum.IntEnum):
    INVALID = 0
    NONE = 1
    VNC = 2


def parse_version(data: bytes) -> tuple[int, int]:
    """``RFB xxx.yyy\\n`` -> (major, minor)."""
    if len(data) != VERSION_LENGTH or data[:4] != b"RFB " or data[7:8] != b"." or data[11:] != b"\n":
        raise RfbProtocolError(f"not an RFB protocol version: {bytes(data[:12])!r}")
    try:
        return int(data[4:7]), int(data[8:11])
    except ValueError:
        raise RfbProtocolError(f"not an RFB protocol version: {bytes(data[:12])!r}") from None


def encode_version(major: int, minor: int) -> bytes:
    return f"RFB {major:03d}.{minor:03d}\n".encode()


# ---------------------------------------------------------------------------------------------- Intel extensions

KVM_DATA_CHANNEL: Final = b"\0KvmDataChannel\0"
KVM_EXT_CMD: Final = b"\0KvmExtCmd\0"


class KvmExtCommand(enum.IntEnum):
    """``\\0KvmExtCmd\\0`` commands (MeshCommander ``amt-desktop``)."""

    DECIMATION_REPORT = 1
    SET_DECIMATION = 2
    COMPRESSION_REPORT = 3
    SET_COMPRESSION = 4


@dataclass(frozen=True, slots=True)
class CutText:
    """Plain clipboard text (Latin-1, as RFB defines it)."""

    text: str


@dataclass(frozen=True, slots=True)
class KvmData:
    """A KvmDataChannel payload (host-agent data; an empty one is a keep-alive)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KvmExt:
    command: int
    value: int | None
    extra: bytes = b""


def classify_cut_text(data: bytes) -> CutText | KvmData | KvmExt:
    """A cut-text payload is clipboard text unless it starts with one of Intel's NUL-framed markers."""
    if data.startswith(KVM_DATA_CHANNEL):
        return KvmData(bytes(data[len(KVM_DATA_CHANNEL) :]))
    if data.startswith(KVM_EXT_CMD) and len(data) > len(KVM_EXT_CMD):
        rest = data[len(KVM_EXT_CMD) :]
        return KvmExt(rest[0], rest[1] if len(rest) > 1 else None, bytes(rest[2:]))
    return CutText(bytes(data).decode("latin-1"))


def kvm_ext_payload(command: int, value: int | None = None, extra: bytes = b"") -> bytes:
    return KVM_EXT_CMD + bytes([command]) + (bytes([value]) if value is not None else b"") + extra


# ---------------------------------------------------------------------------------------------- encoders


def encode_set_pixel_format(fmt: PixelFormat) -> bytes:
    return bytes([ClientMessage.SET_PIXEL_FORMAT, 0, 0, 0]) + fmt.encode()


def encode_set_encodings(encodings: list[int]) -> bytes:
    return struct.pack(">BxH", ClientMessage.SET_ENCODINGS, len(encodings)) + b"".join(
        struct.pack(">i", e) for e in encodings)


def encode_update_request(incremental: bool, x: int, y: int, width: int, height: int) -> bytes:
    return struct.pack(">BBHHHH", ClientMessage.FRAMEBUFFER_UPDATE_REQUEST, int(incremental), x, y, width, height)


def encode_key_event(down: bool, keysym: int) -> bytes:
    return struct.pack(">BBxxI", ClientMessage.KEY_EVENT, int(down), keysym)


def encode_pointer_event(buttons: int, x: int, y: int) -> bytes:
    return struct.pack(">BBHH", ClientMessage.POINTER_EVENT, buttons, x, y)


def encode_cut_text(message: ClientMessage | ServerMessage, payload: bytes) -> bytes:
    if len(payload) > MAX_CUT_TEXT:
        raise ValueError(f"cut text is at most {MAX_CUT_TEXT} bytes")
    return struct.pack(">BxxxI", message, len(payload)) + payload


def encode_update_header(rectangles: int) -> bytes:
    return struct.pack(">BxH", ServerMessage.FRAMEBUFFER_UPDATE, rectangles)


RECT_HEADER: Final = struct.Struct(">HHHHi")


def encode_rect_header(x: int, y: int, width: int, height: int, encoding: int) -> bytes:
    return RECT_HEADER.pack(x, y, width, height, encoding)


# ---------------------------------------------------------------------------------------------- client messages


@dataclass(frozen=True, slots=True)
class SetPixelFormat:
    format: PixelFormat


@dataclass(frozen=True, slots=True)
class SetEncodings:
    encodings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    incremental: bool
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class KeyEvent:
    down: bool
    keysym: int


@dataclass(frozen=True, slots=True)
class PointerEvent:
    buttons: int
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class ClientCutText:
    payload: bytes


ClientMessageEvent = SetPixelFormat | SetEncodings | UpdateRequest | KeyEvent | PointerEvent | ClientCutText

_FIXED: Final = {
    ClientMessage.SET_PIXEL_FORMAT: 4 + PIXEL_FORMAT_SIZE,
    ClientMessage.FRAMEBUFFER_UPDATE_REQUEST: 10,
    ClientMessage.KEY_EVENT: 8,
    ClientMessage.POINTER_EVENT: 6,
}


def client_message_length(buf: bytes | bytearray) -> int | None:
    """Total length of the client message at the start of ``buf``, None until its header is complete."""
    if not buf:
        return None
    try:
        kind = ClientMessage(buf[0])
    except ValueError:
        raise RfbProtocolError(f"unknown client message type {buf[0]}") from None
    fixed = _FIXED.get(kind)
    if fixed is not None:
        return fixed
    if kind is ClientMessage.SET_ENCODINGS:
        if len(buf) < 4:
            return None
        count = int.from_bytes(buf[2:4], "big")
        if count > MAX_ENCODINGS:
            raise RfbProtocolError(f"SetEncodings lists {count} encodings, more than {MAX_ENCODINGS}")
        return 4 + 4 * count
    if len(buf) < 8:
        return None
    length = int.from_bytes(buf[4:8], "big")
    if length > MAX_CUT_TEXT:
        raise RfbProtocolError(f"cut text of {length} bytes exceeds {MAX_CUT_TEXT}")
    return 8 + length


def parse_client_message(data: bytes) -> ClientMessageEvent:
    """One whole client message (its length as :func:`client_message_length` gave)."""
    kind = ClientMessage(data[0])
    if kind is ClientMessage.SET_PIXEL_FORMAT:
        return SetPixelFormat(PixelFormat.decode(data[4:]))
    if kind is ClientMessage.SET_ENCODINGS:
        count = int.from_bytes(data[2:4], "big")
        return SetEncodings(struct.unpack_from(f">{count}i", data, 4))
    if kind is ClientMessage.FRAMEBUFFER_UPDATE_REQUEST:
        incremental, x, y, width, height = struct.unpack_from(">BHHHH", data, 1)
        return UpdateRequest(bool(incremental), x, y, width, height)
    if kind is ClientMessage.KEY_EVENT:
        down, keysym = struct.unpack_from(">BxxI", data, 1)
        return KeyEvent(bool(down), keysym)
    if kind is ClientMessage.POINTER_EVENT:
        buttons, x, y = struct.unpack_from(">BHH", data, 1)
        return PointerEvent(buttons, x, y)
    return ClientCutText(bytes(data[8:]))


__all__ = [
    "KVM_DATA_CHANNEL",
    "KVM_EXT_CMD",
    "MAX_CUT_TEXT",
    "MAX_ENCODINGS",
    "MAX_NAME",
    "RECT_HEADER",
    "TILE",
    "VERSION_3_8",
    "VERSION_LENGTH",
    "ClientCutText",
    "ClientMessage",
    "ClientMessageEvent",
    "CutText",
    "Encoding",
    "KeyEvent",
    "KvmData",
    "KvmExt",
    "KvmExtCommand",
    "PointerEvent",
    "Security",
    "ServerMessage",
    "SetEncodings",
    "SetPixelFormat",
    "UpdateRequest",
    "classify_cut_text",
    "client_message_length",
    "encode_cut_text",
    "encode_key_event",
    "encode_pointer_event",
    "encode_rect_header",
    "encode_set_encodings",
    "encode_set_pixel_format",
    "encode_update_header",
    "encode_update_request",
    "encode_version",
    "kvm_ext_payload",
    "parse_client_message",
    "parse_version",
]
