"""APF messages on the wire: encoders named after wire types, a cursor decoder, one dataclass per message.

APF has no framing: a message is its type byte and fields, and only the fields say where it ends (AMT-PROTOCOLS.md
§5.2).  So the decoder works on a stream buffer: :func:`decode_message` returns the first whole message and its
length, or None when the buffer ends inside one.  Every length is checked against its cap *before* the decoder
waits for the bytes it announces, so a hostile peer can make us hold at most one capped message: strings are at
most 2048 bytes and data at most ``max_data`` (1 MiB, or the receive window the connection granted).

Two fields depend on context rather than on the bytes: REQUEST_SUCCESS carries the bound port only when it
answers a ``tcpip-forward`` (the connection knows which request is pending, :class:`DecodeOptions`), and
USERAUTH_REQUEST carries a password only for the ``password`` method.  Integers are big-endian; text is UTF-8 (a
byte sequence that is not becomes U+FFFD, so such a user name or password can only fail to match).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final

from .constants import (
    CANCEL_TCPIP_FORWARD,
    MAX_DATA,
    MAX_STRING,
    PASSWORD_METHOD,
    PFWD_SERVICE,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    RESERVED_U32,
    TCPIP_FORWARD,
    UDP_SEND_TO,
    MessageType,
    TriggerReason,
)
from .errors import ProtocolError

T = MessageType
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
PROTOCOL_VERSION_RESERVED: Final = 64

# ---------------------------------------------------------------------------------------------- encoders


def u8(value: int) -> bytes:
    return bytes((value,))


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def u16(value: int) -> bytes:
    return _U16.pack(value)


def u32(value: int) -> bytes:
    return _U32.pack(value)


def string(value: str | bytes) -> bytes:
    """u32 length + bytes; text goes out as UTF-8."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return _U32.pack(len(raw)) + raw


# ---------------------------------------------------------------------------------------------- decoder


class Incomplete(Exception):
    """The buffer ends inside the message: wait for more bytes (never escapes :func:`decode_message`)."""


class Cursor:
    """Reads fields off a buffer from a position; short input raises :class:`Incomplete`, bad input
    :class:`~outband.proto.apf.errors.ProtocolError`."""

    __slots__ = ("_buf", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._buf = buf
        self.pos = pos

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self._buf):
            raise Incomplete
        chunk = bytes(self._buf[self.pos : end])
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def boolean(self) -> bool:
        return self.u8() != 0

    def u16(self) -> int:
        value: int = _U16.unpack(self._take(2))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def string(self, *, limit: int = MAX_STRING, what: str = "string") -> bytes:
        length = self.u32()
        if length > limit:
            raise ProtocolError(f"{what} of {length} bytes exceeds the {limit}-byte cap")
        return self._take(length)

    def text(self, *, limit: int = MAX_STRING, what: str = "string") -> str:
        return self.string(limit=limit, what=what).decode("utf-8", "replace")

    def check_end(self) -> None:
        if self.pos != len(self._buf):
            raise ProtocolError(f"{len(self._buf) - self.pos} bytes after the end of the message")


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What the bytes alone do not tell the decoder (see the module docstring)."""

    max_data: int = MAX_DATA
    success_has_port: bool = False


DEFAULT_OPTIONS: Final = DecodeOptions()

# ---------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason: int
    TYPE: ClassVar = T.DISCONNECT

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.reason) + u16(0)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> Disconnect:
        reason = c.u32()
        c.u16()
        return cls(reason)


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    service: str
    TYPE: ClassVar = T.SERVICE_REQUEST

    def encode(self) -> bytes:
        return u8(self.TYPE) + string(self.service)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ServiceRequest:
        return cls(c.text(what="service name"))


@dataclass(frozen=True, slots=True)
class ServiceAccept:
    service: str
    TYPE: ClassVar = T.SERVICE_ACCEPT

    def encode(self) -> bytes:
        return u8(self.TYPE) + string(self.service)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ServiceAccept:
        return cls(c.text(what="service name"))


@dataclass(frozen=True, slots=True)
class UserAuthRequest:
    """``password`` is None for any method but ``password`` (AMT also knows ``none``)."""

    username: str
    password: str | None
    service: str = PFWD_SERVICE
    method: str = PASSWORD_METHOD
    TYPE: ClassVar = T.USERAUTH_REQUEST

    def encode(self) -> bytes:
        out = u8(self.TYPE) + string(self.username) + string(self.service) + string(self.method)
        if self.method == PASSWORD_METHOD:
            out += boolean(False) + string(self.password or "")
        return out

    def __repr__(self) -> str:  # never show the password in logs or test output
        return f"UserAuthRequest(username={self.username!r}, method={self.method!r})"

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> UserAuthRequest:
        username = c.text(what="user name")
        service = c.text(what="service name")
        method = c.text(what="method name")
        password = None
        if method == PASSWORD_METHOD:
            c.boolean()  # "change password" flag, always FALSE
            password = c.text(what="password")
        return cls(username, password, service, method)


@dataclass(frozen=True, slots=True)
class UserAuthFailure:
    """SSH's layout (methods that may continue, partial success).  Both MPS implementations append a
    second zero byte; an AMT client stops reading after a failure, so the stray byte is never parsed."""

    methods: str = PASSWORD_METHOD
    partial_success: bool = False
    TYPE: ClassVar = T.USERAUTH_FAILURE

    def encode(self) -> bytes:
        return u8(self.TYPE) + string(self.methods) + boolean(self.partial_success)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> UserAuthFailure:
        return cls(c.text(what="method list"), c.boolean())


@dataclass(frozen=True, slots=True)
class UserAuthSuccess:
    TYPE: ClassVar = T.USERAUTH_SUCCESS

    def encode(self) -> bytes:
        return u8(self.TYPE)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> UserAuthSuccess:
        return cls()


@dataclass(frozen=True, slots=True)
class TcpipForward:
    """GLOBAL_REQUEST ``tcpip-forward`` (or, with ``cancel``, ``cancel-tcpip-forward``): AMT asks the MPS to
    route channels for ``port``; ``address`` is AMT's host name."""

    address: str
    port: int
    cancel: bool = False
    want_reply: bool = True
    TYPE: ClassVar = T.GLOBAL_REQUEST

    @property
    def name(self) -> str:
        return CANCEL_TCPIP_FORWARD if self.cancel else TCPIP_FORWARD

    def encode(self) -> bytes:
        return u8(self.TYPE) + string(self.name) + boolean(self.want_reply) + string(self.address) + u32(self.port)


@dataclass(frozen=True, slots=True)
class UdpSendTo:
    """GLOBAL_REQUEST ``udp-send-to@amt.intel.com``: a datagram AMT wants sent (neither MPS acts on it)."""

    address: str
    port: int
    originator_address: str
    originator_port: int
    data: bytes
    want_reply: bool = False
    TYPE: ClassVar = T.GLOBAL_REQUEST

    def encode(self) -> bytes:
        return (u8(self.TYPE) + string(UDP_SEND_TO) + boolean(self.want_reply) + string(self.address)
                + u32(self.port) + string(self.originator_address) + u32(self.originator_port) + string(self.data))


@dataclass(frozen=True, slots=True)
class OtherGlobalRequest:
    """A request name we do not know.  Its payload, if any, cannot be delimited (APF has no length field), so
    like both MPS implementations we read the name and flag only."""

    name: str
    want_reply: bool
    TYPE: ClassVar = T.GLOBAL_REQUEST

    def encode(self) -> bytes:
        return u8(self.TYPE) + string(self.name) + boolean(self.want_reply)


GlobalRequest = TcpipForward | UdpSendTo | OtherGlobalRequest


def _decode_global_request(c: Cursor, options: DecodeOptions) -> GlobalRequest:
    name = c.text(what="request name")
    want_reply = c.boolean()
    if name in (TCPIP_FORWARD, CANCEL_TCPIP_FORWARD):
        address = c.text(what="bind address")
        return TcpipForward(address, c.u32(), cancel=name == CANCEL_TCPIP_FORWARD, want_reply=want_reply)
    if name == UDP_SEND_TO:
        address = c.text(what="address")
        port = c.u32()
        originator = c.text(what="originator address")
        originator_port = c.u32()
        data = c.string(limit=options.max_data, what="datagram")
        return UdpSendTo(address, port, originator, originator_port, data, want_reply)
    return OtherGlobalRequest(name, want_reply)


@dataclass(frozen=True, slots=True)
class RequestSuccess:
    """``port`` is the bound port when answering ``tcpip-forward``, None otherwise."""

    port: int | None = None
    TYPE: ClassVar = T.REQUEST_SUCCESS

    def encode(self) -> bytes:
        return u8(self.TYPE) + (u32(self.port) if self.port is not None else b"")

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> RequestSuccess:
        return cls(c.u32() if options.success_has_port else None)


@dataclass(frozen=True, slots=True)
class RequestFailure:
    TYPE: ClassVar = T.REQUEST_FAILURE

    def encode(self) -> bytes:
        return u8(self.TYPE)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> RequestFailure:
        return cls()


@dataclass(frozen=True, slots=True)
class ChannelOpen:
    channel_type: str
    sender_channel: int
    initial_window: int
    connected_address: str
    connected_port: int
    originator_address: str
    originator_port: int
    TYPE: ClassVar = T.CHANNEL_OPEN

    def encode(self) -> bytes:
        return (u8(self.TYPE) + string(self.channel_type) + u32(self.sender_channel) + u32(self.initial_window)
                + u32(RESERVED_U32) + string(self.connected_address) + u32(self.connected_port)
                + string(self.originator_address) + u32(self.originator_port))

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelOpen:
        channel_type = c.text(what="channel type")
        sender, window = c.u32(), c.u32()
        c.u32()  # reserved (SSH's maximum packet size)
        address = c.text(what="connected address")
        port = c.u32()
        originator = c.text(what="originator address")
        return cls(channel_type, sender, window, address, port, originator, c.u32())


@dataclass(frozen=True, slots=True)
class ChannelOpenConfirmation:
    recipient_channel: int
    sender_channel: int
    initial_window: int
    TYPE: ClassVar = T.CHANNEL_OPEN_CONFIRMATION

    def encode(self) -> bytes:
        return (u8(self.TYPE) + u32(self.recipient_channel) + u32(self.sender_channel) + u32(self.initial_window)
                + u32(RESERVED_U32))

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelOpenConfirmation:
        recipient, sender, window = c.u32(), c.u32(), c.u32()
        c.u32()
        return cls(recipient, sender, window)


@dataclass(frozen=True, slots=True)
class ChannelOpenFailure:
    """The two trailing fields are SSH's description and language strings; APF peers send them empty (two
    zero u32s), which is the same bytes."""

    recipient_channel: int
    reason: int
    description: str = ""
    TYPE: ClassVar = T.CHANNEL_OPEN_FAILURE

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.recipient_channel) + u32(self.reason) + string(self.description) + string("")

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelOpenFailure:
        recipient, reason = c.u32(), c.u32()
        description = c.text(what="failure description")
        c.string(what="language tag")
        return cls(recipient, reason, description)


@dataclass(frozen=True, slots=True)
class ChannelWindowAdjust:
    recipient_channel: int
    bytes_to_add: int
    TYPE: ClassVar = T.CHANNEL_WINDOW_ADJUST

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.recipient_channel) + u32(self.bytes_to_add)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelWindowAdjust:
        return cls(c.u32(), c.u32())


@dataclass(frozen=True, slots=True)
class ChannelData:
    recipient_channel: int
    data: bytes
    TYPE: ClassVar = T.CHANNEL_DATA

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.recipient_channel) + string(self.data)

    def __repr__(self) -> str:
        return f"ChannelData(recipient_channel={self.recipient_channel}, {len(self.data)} bytes)"

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelData:
        recipient = c.u32()
        return cls(recipient, c.string(limit=options.max_data, what="channel data"))


@dataclass(frozen=True, slots=True)
class ChannelClose:
    recipient_channel: int
    TYPE: ClassVar = T.CHANNEL_CLOSE

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.recipient_channel)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ChannelClose:
        return cls(c.u32())


@dataclass(frozen=True, slots=True)
class ProtocolVersion:
    """AMT's hello.  The UUID goes out with its first three fields little-endian, as SMBIOS stores it and
    both MPS implementations read it (``guidToStr``): that is :attr:`uuid.UUID.bytes_le`."""

    system_uuid: uuid.UUID
    major: int = PROTOCOL_MAJOR
    minor: int = PROTOCOL_MINOR
    trigger: int = TriggerReason.PERIODIC
    TYPE: ClassVar = T.PROTOCOL_VERSION

    def encode(self) -> bytes:
        return (u8(self.TYPE) + u32(self.major) + u32(self.minor) + u32(self.trigger) + self.system_uuid.bytes_le
                + bytes(PROTOCOL_VERSION_RESERVED))

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> ProtocolVersion:
        major, minor, trigger = c.u32(), c.u32(), c.u32()
        system_uuid = uuid.UUID(bytes_le=c.raw(16))
        c.raw(PROTOCOL_VERSION_RESERVED)
        return cls(system_uuid, major, minor, trigger)


@dataclass(frozen=True, slots=True)
class KeepaliveRequest:
    cookie: int
    TYPE: ClassVar = T.KEEPALIVE_REQUEST

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.cookie)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> KeepaliveRequest:
        return cls(c.u32())


@dataclass(frozen=True, slots=True)
class KeepaliveReply:
    cookie: int
    TYPE: ClassVar = T.KEEPALIVE_REPLY

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.cookie)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> KeepaliveReply:
        return cls(c.u32())


@dataclass(frozen=True, slots=True)
class KeepaliveOptionsRequest:
    """The MPS asks AMT to send keepalives every ``interval`` seconds; ``timeout`` (s) is how long a reply
    may take (0: the MPS does not say)."""

    interval: int
    timeout: int
    TYPE: ClassVar = T.KEEPALIVE_OPTIONS_REQUEST

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.interval) + u32(self.timeout)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> KeepaliveOptionsRequest:
        return cls(c.u32(), c.u32())


@dataclass(frozen=True, slots=True)
class KeepaliveOptionsReply:
    interval: int
    timeout: int
    TYPE: ClassVar = T.KEEPALIVE_OPTIONS_REPLY

    def encode(self) -> bytes:
        return u8(self.TYPE) + u32(self.interval) + u32(self.timeout)

    @classmethod
    def decode_body(cls, c: Cursor, options: DecodeOptions) -> KeepaliveOptionsReply:
        return cls(c.u32(), c.u32())


Message = (
    Disconnect | ServiceRequest | ServiceAccept | UserAuthRequest | UserAuthFailure | UserAuthSuccess
    | TcpipForward | UdpSendTo | OtherGlobalRequest | RequestSuccess | RequestFailure | ChannelOpen
    | ChannelOpenConfirmation | ChannelOpenFailure | ChannelWindowAdjust | ChannelData | ChannelClose
    | ProtocolVersion | KeepaliveRequest | KeepaliveReply | KeepaliveOptionsRequest | KeepaliveOptionsReply
)

_DECODERS: Final[dict[MessageType, Callable[[Cursor, DecodeOptions], Message]]] = {
    T.DISCONNECT: Disconnect.decode_body,
    T.SERVICE_REQUEST: ServiceRequest.decode_body,
    T.SERVICE_ACCEPT: ServiceAccept.decode_body,
    T.USERAUTH_REQUEST: UserAuthRequest.decode_body,
    T.USERAUTH_FAILURE: UserAuthFailure.decode_body,
    T.USERAUTH_SUCCESS: UserAuthSuccess.decode_body,
    T.GLOBAL_REQUEST: _decode_global_request,
    T.REQUEST_SUCCESS: RequestSuccess.decode_body,
    T.REQUEST_FAILURE: RequestFailure.decode_body,
    T.CHANNEL_OPEN: ChannelOpen.decode_body,
    T.CHANNEL_OPEN_CONFIRMATION: ChannelOpenConfirmation.decode_body,
    T.CHANNEL_OPEN_FAILURE: ChannelOpenFailure.decode_body,
    T.CHANNEL_WINDOW_ADJUST: ChannelWindowAdjust.decode_body,
    T.CHANNEL_DATA: ChannelData.decode_body,
    T.CHANNEL_CLOSE: ChannelClose.decode_body,
    T.PROTOCOL_VERSION: ProtocolVersion.decode_body,
    T.KEEPALIVE_REQUEST: KeepaliveRequest.decode_body,
    T.KEEPALIVE_REPLY: KeepaliveReply.decode_body,
    T.KEEPALIVE_OPTIONS_REQUEST: KeepaliveOptionsRequest.decode_body,
    T.KEEPALIVE_OPTIONS_REPLY: KeepaliveOptionsReply.decode_body,
}


def message_type(first_byte: int) -> MessageType:
    """The type a message starts with; a number APF does not define is a protocol error (both MPS
    implementations and MeshCentral's AMT-side client end the connection on one)."""
    try:
        return MessageType(first_byte)
    except ValueError:
        raise ProtocolError(f"unknown message type {first_byte}") from None


def _decode_body(buf: bytes | bytearray | memoryview, options: DecodeOptions, start: int = 0
                 ) -> tuple[Message, Cursor]:
    cursor = Cursor(buf, start + 1)
    return _DECODERS[message_type(buf[start])](cursor, options), cursor


def decode_message(buf: bytes | bytearray | memoryview, options: DecodeOptions = DEFAULT_OPTIONS, *,
                   start: int = 0) -> tuple[Message, int] | None:
    """The first message in ``buf`` from ``start`` and its length in bytes, or None if ``buf`` ends inside it.
    Fields are copied out, so the caller may resize ``buf`` afterwards, even after an error."""
    if start >= len(buf):
        return None
    try:
        message, cursor = _decode_body(buf, options, start)
    except Incomplete:
        return None
    return message, cursor.pos - start


def decode_exact(data: bytes, options: DecodeOptions = DEFAULT_OPTIONS) -> Message:
    """Exactly one message: short input or trailing bytes are protocol errors."""
    if not data:
        raise ProtocolError("empty message")
    try:
        message, cursor = _decode_body(data, options)
    except Incomplete:
        raise ProtocolError("truncated message") from None
    cursor.check_end()
    return message
