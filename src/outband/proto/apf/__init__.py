"""APF (AMT Port Forwarding), the protocol inside a CIRA tunnel, as a sans-I/O codec and two state machines.

:class:`AmtConnection` is the device side (what an engine runs to dial an MPS), :class:`MpsConnection` the
server side (what a console's MPS runs per device).  Both take bytes and a time and give events and bytes to
send; ``outband.aio.apf`` runs them over TLS streams.
"""

from .amt import AmtConnection, AmtState
from .codec import DecodeOptions, Message, decode_exact, decode_message
from .connection import ApfConnection, Channel, ChannelState
from .constants import (
    AMT_PORTS,
    DEFAULT_WINDOW,
    MAX_DATA,
    MAX_STRING,
    VNC_PORT,
    DisconnectReason,
    MessageType,
    OpenFailureReason,
    TriggerReason,
)
from .errors import (
    ApfError,
    ByApplication,
    ChannelOpenError,
    ConnectionLost,
    ConnectionTimedOut,
    DisconnectError,
    InvalidCredentials,
    LocalProtocolError,
    ProtocolError,
)
from .events import (
    Authenticated,
    AuthenticationRequested,
    ChannelClosed,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelRequested,
    DataReceived,
    Established,
    Event,
    ForwardCancelled,
    ForwardRefused,
    KeepaliveOptionsChanged,
    KeepaliveReceived,
    PeerHello,
    PortForwarded,
    Terminated,
    WindowAdjusted,
)
from .mps import MpsConnection, MpsState

__all__ = [
    "AMT_PORTS",
    "DEFAULT_WINDOW",
    "MAX_DATA",
    "MAX_STRING",
    "VNC_PORT",
    "AmtConnection",
    "AmtState",
    "ApfConnection",
    "ApfError",
    "Authenticated",
    "AuthenticationRequested",
    "ByApplication",
    "Channel",
    "ChannelClosed",
    "ChannelOpenError",
    "ChannelOpenFailed",
    "ChannelOpened",
    "ChannelRequested",
    "ChannelState",
    "ConnectionLost",
    "ConnectionTimedOut",
    "DataReceived",
    "DecodeOptions",
    "DisconnectError",
    "DisconnectReason",
    "Established",
    "Event",
    "ForwardCancelled",
    "ForwardRefused",
    "InvalidCredentials",
    "KeepaliveOptionsChanged",
    "KeepaliveReceived",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "MpsConnection",
    "MpsState",
    "OpenFailureReason",
    "PeerHello",
    "PortForwarded",
    "ProtocolError",
    "Terminated",
    "TriggerReason",
    "WindowAdjusted",
    "decode_exact",
    "decode_message",
]
