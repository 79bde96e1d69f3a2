"""What an APF connection reports to its caller (both roles); the wire messages themselves stay inside."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .errors import ChannelOpenError, DisconnectError


@dataclass(frozen=True, slots=True)
class PeerHello:
    """MPS role: AMT introduced itself (PROTOCOL_VERSION)."""

    system_uuid: uuid.UUID
    major: int
    minor: int
    trigger: int


@dataclass(frozen=True, slots=True)
class AuthenticationRequested:
    """MPS role: AMT logged in; answer with ``accept_authentication()`` or ``reject_authentication()``."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"AuthenticationRequested(username={self.username!r})"


@dataclass(frozen=True, slots=True)
class Authenticated:
    """AMT role: the MPS accepted our credentials."""


@dataclass(frozen=True, slots=True)
class PortForwarded:
    """A ``tcpip-forward`` took effect: MPS role, AMT registered ``port`` under ``address`` (its host name);
    AMT role, the MPS accepted it."""

    address: str
    port: int


@dataclass(frozen=True, slots=True)
class ForwardCancelled:
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class ForwardRefused:
    """AMT role: the MPS answered a ``tcpip-forward`` with REQUEST_FAILURE."""

    port: int


@dataclass(frozen=True, slots=True)
class Established:
    """AMT role: every port registration has been answered; ``ports`` are the ones the MPS accepted."""

    ports: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ChannelRequested:
    """The peer asks for a channel; answer with ``accept_channel(channel_id)`` or ``reject_channel``."""

    channel_id: int
    channel_type: str
    address: str
    port: int
    originator_address: str
    originator_port: int


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """A channel we asked for was confirmed."""

    channel_id: int


@dataclass(frozen=True, slots=True)
class ChannelOpenFailed:
    channel_id: int
    error: ChannelOpenError


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Bytes for a channel; call ``acknowledge(channel_id, n)`` once they are consumed, which reopens the
    peer's send window (that is the back-pressure)."""

    channel_id: int
    data: bytes

    def __repr__(self) -> str:
        return f"DataReceived(channel_id={self.channel_id}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class WindowAdjusted:
    """The peer granted more credit; ``backlog`` is what still waits to be sent on the channel."""

    channel_id: int
    backlog: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    channel_id: int


@dataclass(frozen=True, slots=True)
class KeepaliveReceived:
    """MPS role: AMT's keepalive arrived (and was answered): proof of life for presence tracking."""

    cookie: int


@dataclass(frozen=True, slots=True)
class KeepaliveOptionsChanged:
    """AMT role: the MPS set the keepalive interval and reply timeout (seconds)."""

    interval: int
    timeout: int


@dataclass(frozen=True, slots=True)
class Terminated:
    """The connection is over: ``by_peer`` when the peer said so or vanished, else we ended it.  Any bytes
    still in ``data_to_send()`` (a DISCONNECT) go out before the transport closes."""

    error: DisconnectError
    by_peer: bool


Event = (
    PeerHello | AuthenticationRequested | Authenticated | PortForwarded | ForwardCancelled | ForwardRefused
    | Established | ChannelRequested | ChannelOpened | ChannelOpenFailed | DataReceived | WindowAdjusted
    | ChannelClosed | KeepaliveReceived | KeepaliveOptionsChanged | Terminated
)
