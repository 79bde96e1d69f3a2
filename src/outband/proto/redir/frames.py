"""Framing of the AMT redirection protocol (ports 16994/16995): message types, lengths, a buffered decoder.

Theory of operation: the protocol is a stream of messages whose first byte is the type; the length of each
message follows from its type and, for the variable ones, from a length field at a fixed offset
(AMT-PROTOCOLS.md §4).  :class:`FrameDecoder` accumulates bytes (a read may hold several messages or part of
one) and hands out complete :class:`Frame` objects.  It knows which side it decodes for: a message type the
peer is not allowed to send is a protocol error, as is a length above the caps, checked from the header
*before* any payload is buffered.  Two messages change shape with the session kind (0x40/0x41 start an IDE-R
session but also open the KVM channel), so the session layer tells the decoder the kind once it is known.
After a KVM channel is open the stream stops being framed (it carries RFB); :meth:`FrameDecoder.switch_to_raw`
turns the decoder into a pass-through.

All multi-byte integers of this protocol are little-endian.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..buffer import ReceiveBuffer


class RedirectionError(Exception):
    """Base of every redirection protocol error."""


class ProtocolError(RedirectionError, ValueError):
    """The peer broke the protocol (unknown type, bad length, wrong state): the session must close."""


class MessageType(enum.IntEnum):
    START_REDIRECTION_SESSION = 0x10
    START_REDIRECTION_SESSION_REPLY = 0x11
    END_REDIRECTION_SESSION = 0x12
    AUTHENTICATE_SESSION = 0x13
    AUTHENTICATE_SESSION_REPLY = 0x14

    SOL_START = 0x20
    SOL_START_REPLY = 0x21
    SOL_END = 0x22
    SOL_END_REPLY = 0x23
    SOL_KEEPALIVE_PING = 0x24
    SOL_KEEPALIVE_PONG = 0x25
    SOL_CONTROLS_TO_HOST = 0x27
    """Sent by MeshCommander right after the start reply (``00 00 1B 00 00 00`` after the sequence number);
    its meaning is undocumented (§10).  We read byte 8 as the console's control lines (RTS/DTR/BREAK, the
    bits of 0x29), which makes MeshCommander's message a no-op and gives a console a way to send a break."""
    SOL_DATA_TO_HOST = 0x28
    SOL_CONTROLS_FROM_HOST = 0x29
    SOL_DATA_FROM_HOST = 0x2A
    SOL_HEARTBEAT = 0x2B

    IDER_START = 0x40
    """Also the KVM channel start: ``40 00 00 00 00 00 00 00`` (8 bytes) in a KVMR session."""
    IDER_START_REPLY = 0x41
    """Also the KVM channel start reply (8 bytes) in a KVMR session."""
    IDER_END = 0x42
    IDER_END_REPLY = 0x43
    IDER_KEEPALIVE_PING = 0x44
    IDER_KEEPALIVE_PONG = 0x45
    IDER_RESET_OCCURRED = 0x46
    IDER_RESET_OCCURRED_RESPONSE = 0x47
    IDER_DISABLE_ENABLE_FEATURES = 0x48
    IDER_DISABLE_ENABLE_FEATURES_REPLY = 0x49
    IDER_ERROR_OCCURRED = 0x4A
    IDER_HEARTBEAT = 0x4B
    IDER_COMMAND_WRITTEN = 0x50
    IDER_COMMAND_END_RESPONSE = 0x51
    IDER_GET_DATA_FROM_HOST = 0x52
    IDER_DATA_FROM_HOST = 0x53
    IDER_DATA_TO_HOST = 0x54


class SessionKind(enum.Enum):
    """The redirection session kinds, by the 4-byte tag of StartRedirectionSession."""

    SOL = b"SOL "
    IDER = b"IDER"
    KVM = b"KVMR"


class Role(enum.Enum):
    """Which side a decoder works for: ``AMT`` decodes what consoles send, ``CONSOLE`` what AMT sends."""

    AMT = "amt"
    CONSOLE = "console"


T = MessageType
MAX_AUTH_PAYLOAD: Final = 1024
"""An auth payload holds eight short strings (each <= 255 bytes); anything larger is hostile."""
MAX_DATA: Final = 0xFFFF
"""SOL and IDE-R data lengths are u16 fields."""
MAX_MESSAGE: Final = 34 + MAX_DATA
"""The longest message the protocol can express (IDE-R data-to-host: 34-byte header + u16 payload)."""
MAX_FEED: Final = 64 * 1024
"""The most one :meth:`FrameDecoder.feed` may add (what an adapter reads at once)."""

KIND_MESSAGES: Final[dict[SessionKind, frozenset[MessageType]]] = {
    SessionKind.SOL: frozenset(t for t in MessageType if 0x20 <= t <= 0x2B),
    SessionKind.IDER: frozenset(t for t in MessageType if 0x40 <= t <= 0x54),
    SessionKind.KVM: frozenset({T.IDER_START, T.IDER_START_REPLY}),
}
"""The messages of each session kind: once a session is authenticated, nothing else but its end may come."""

LengthFn = Callable[[bytes], "int | None"]


def _fixed(n: int) -> LengthFn:
    return lambda head: n


def _u8_at(offset: int, base: int) -> LengthFn:
    return lambda head: base + head[offset] if len(head) > offset else None


def _u16_at(offset: int, base: int) -> LengthFn:
    def length(head: bytes) -> int | None:
        if len(head) < offset + 2:
            return None
        return base + int.from_bytes(head[offset : offset + 2], "little")

    return length


def _auth_length(head: bytes) -> int | None:
    if len(head) < 9:
        return None
    n: int = struct.unpack_from("<I", head, 5)[0]
    if n > MAX_AUTH_PAYLOAD:
        raise ProtocolError(f"authentication payload of {n} bytes exceeds {MAX_AUTH_PAYLOAD}")
    return 9 + n


# type -> (who may send it, total length from the bytes seen so far, or None while more are needed).
# 0x40/0x41 are absent: their layout depends on the session kind (_KIND_LAYOUT).
_C, _A = Role.CONSOLE, Role.AMT
_LAYOUT: Final[dict[MessageType, tuple[Role, LengthFn]]] = {
    T.START_REDIRECTION_SESSION: (_C, _fixed(8)),
    T.START_REDIRECTION_SESSION_REPLY: (_A, _u8_at(12, 13)),
    T.END_REDIRECTION_SESSION: (_C, _fixed(4)),
    T.AUTHENTICATE_SESSION: (_C, _auth_length),
    T.AUTHENTICATE_SESSION_REPLY: (_A, _auth_length),
    T.SOL_START: (_C, _fixed(24)),
    T.SOL_START_REPLY: (_A, _fixed(23)),
    T.SOL_END: (_C, _fixed(8)),
    T.SOL_END_REPLY: (_A, _fixed(8)),
    T.SOL_KEEPALIVE_PING: (_C, _fixed(8)),
    T.SOL_KEEPALIVE_PONG: (_A, _fixed(8)),
    T.SOL_CONTROLS_TO_HOST: (_C, _fixed(14)),
    T.SOL_DATA_TO_HOST: (_C, _u16_at(8, 10)),
    T.SOL_CONTROLS_FROM_HOST: (_A, _fixed(10)),
    T.SOL_DATA_FROM_HOST: (_A, _u16_at(8, 10)),
    T.IDER_END: (_C, _fixed(8)),
    T.IDER_END_REPLY: (_A, _fixed(8)),
    T.IDER_KEEPALIVE_PING: (_A, _fixed(8)),
    T.IDER_KEEPALIVE_PONG: (_C, _fixed(8)),
    T.IDER_RESET_OCCURRED: (_A, _fixed(9)),
    T.IDER_RESET_OCCURRED_RESPONSE: (_C, _fixed(8)),
    T.IDER_DISABLE_ENABLE_FEATURES: (_C, _fixed(13)),
    T.IDER_DISABLE_ENABLE_FEATURES_REPLY: (_A, _fixed(13)),
    T.IDER_ERROR_OCCURRED: (_A, _fixed(11)),
    T.IDER_COMMAND_WRITTEN: (_A, _fixed(28)),
    T.IDER_COMMAND_END_RESPONSE: (_C, _fixed(31)),
    T.IDER_GET_DATA_FROM_HOST: (_C, _fixed(31)),
    T.IDER_DATA_FROM_HOST: (_A, _u16_at(9, 14)),
    T.IDER_DATA_TO_HOST: (_C, _u16_at(9, 34)),
}
_KIND_LAYOUT: Final[dict[SessionKind, dict[MessageType, tuple[Role, LengthFn]]]] = {
    SessionKind.IDER: {T.IDER_START: (_C, _fixed(18)), T.IDER_START_REPLY: (_A, _u8_at(29, 30))},
    SessionKind.KVM: {T.IDER_START: (_C, _fixed(8)), T.IDER_START_REPLY: (_A, _fixed(8))},
}
# Heartbeats go both ways; amtterm echoes any 0x2B/0x24/0x4B/0x44 it receives.
_BOTH_WAYS: Final = {T.SOL_HEARTBEAT: 8, T.IDER_HEARTBEAT: 8}


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete message: its type and all its bytes (header included)."""

    type: MessageType
    data: bytes

    @property
    def seq(self) -> int:
        """The u32 sequence number at offset 4 of the SOL/IDE-R messages that carry one."""
        return int.from_bytes(self.data[4:8], "little") if len(self.data) >= 8 else 0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send.  ``alone`` asks the I/O layer to give it a write of its own and a moment before
    anything follows: amtterm consumes its whole receive buffer on a control reply (AMT-PROTOCOLS.md §11)."""

    data: bytes
    alone: bool = False


@dataclass(frozen=True, slots=True)
class RawData:
    """Bytes of the unframed stream after the switch (RFB inside a KVM session)."""

    data: bytes


class FrameDecoder:
    """Accumulates bytes from the peer and returns complete frames.

    ``peer`` is the side whose messages this decoder reads.  Until :meth:`set_kind` names an IDE-R or KVM
    session, a 0x40/0x41 is refused.  The buffer never exceeds one message plus one read: :meth:`feed`
    refuses more than :data:`MAX_FEED` at a time, and the caller drains complete frames after each feed.
    """

    def __init__(self, peer: Role) -> None:
        self.peer = peer
        self._buf = ReceiveBuffer()
        self._raw = False
        self._layout: dict[MessageType, tuple[Role, LengthFn]] = dict(_LAYOUT)

    def set_kind(self, kind: SessionKind) -> None:
        """The session kind is known: 0x40/0x41 take that kind's layout."""
        self._layout.update(_KIND_LAYOUT.get(kind, {}))

    def feed(self, data: bytes) -> None:
        if len(data) > MAX_FEED:
            raise ValueError(f"feed at most {MAX_FEED} bytes at a time")
        if not self._raw and len(self._buf) + len(data) > MAX_MESSAGE + MAX_FEED:
            raise ProtocolError("peer sent far more than one message without it being consumed")
        self._buf += data

    def switch_to_raw(self) -> None:
        """From now on every byte is stream data (the KVM channel carries RFB)."""
        self._raw = True

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> Frame | RawData | None:
        """The next complete message, or None until more bytes arrive."""
        if self._raw:
            if not self._buf:
                return None
            chunk = bytes(self._buf)
            self._buf.clear()
            return RawData(chunk)
        if not self._buf:
            return None
        code = self._buf[0]
        try:
            mtype = MessageType(code)
        except ValueError:
            raise ProtocolError(f"unknown message type 0x{code:02X}") from None
        data = self._buf.take(self._length(mtype, bytes(self._buf[:40])))
        return None if data is None else Frame(mtype, data)

    def _length(self, mtype: MessageType, head: bytes) -> int | None:
        if mtype in _BOTH_WAYS:
            return _BOTH_WAYS[mtype]
        entry = self._layout.get(mtype)
        if entry is None:
            raise ProtocolError(f"{mtype.name} (0x{int(mtype):02X}) outside an IDE-R or KVM session")
        sender, length = entry
        if sender is not self.peer:
            raise ProtocolError(f"{mtype.name} (0x{int(mtype):02X}) is not sent by the {self.peer.value} side")
        return length(head)
