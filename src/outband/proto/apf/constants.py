"""APF numbers: message types, disconnect reasons, channel-open failure reasons, service names and caps.

APF reuses the SSH connection protocol's message numbers (RFC 4254) without SSH's transport, and adds AMT's own
(192, 208-211) (AMT-PROTOCOLS.md §5.2).  The caps are the Open AMT MPS's: 2048 bytes for any string, 1 MiB for
the data of one message (``APFProcessor.ts``); MeshCentral's MPS checks the same numbers.
"""

from __future__ import annotations

import enum
from typing import Final


class MessageType(enum.IntEnum):
    DISCONNECT = 1
    SERVICE_REQUEST = 5
    SERVICE_ACCEPT = 6
    USERAUTH_REQUEST = 50
    USERAUTH_FAILURE = 51
    USERAUTH_SUCCESS = 52
    GLOBAL_REQUEST = 80
    REQUEST_SUCCESS = 81
    REQUEST_FAILURE = 82
    CHANNEL_OPEN = 90
    CHANNEL_OPEN_CONFIRMATION = 91
    CHANNEL_OPEN_FAILURE = 92
    CHANNEL_WINDOW_ADJUST = 93
    CHANNEL_DATA = 94
    CHANNEL_CLOSE = 97
    PROTOCOL_VERSION = 192
    KEEPALIVE_REQUEST = 208
    KEEPALIVE_REPLY = 209
    KEEPALIVE_OPTIONS_REQUEST = 210
    KEEPALIVE_OPTIONS_REPLY = 211


class DisconnectReason(enum.IntEnum):
    """Codes of the DISCONNECT message (SSH's, which APF keeps; MPS ``APFDisconnectCode``)."""

    HOST_NOT_ALLOWED_TO_CONNECT = 1
    PROTOCOL_ERROR = 2
    KEY_EXCHANGE_FAILED = 3
    RESERVED = 4
    MAC_ERROR = 5
    COMPRESSION_ERROR = 6
    SERVICE_NOT_AVAILABLE = 7
    PROTOCOL_VERSION_NOT_SUPPORTED = 8
    HOST_KEY_NOT_VERIFIABLE = 9
    CONNECTION_LOST = 10
    BY_APPLICATION = 11
    TOO_MANY_CONNECTIONS = 12
    AUTH_CANCELLED_BY_USER = 13
    NO_MORE_AUTH_METHODS_AVAILABLE = 14
    INVALID_CREDENTIALS = 15
    CONNECTION_TIMED_OUT = 16
    BY_POLICY = 17
    TEMPORARILY_UNAVAILABLE = 18


class OpenFailureReason(enum.IntEnum):
    """Codes of CHANNEL_OPEN_FAILURE."""

    ADMINISTRATIVELY_PROHIBITED = 1
    CONNECT_FAILED = 2
    UNKNOWN_CHANNEL_TYPE = 3
    RESOURCE_SHORTAGE = 4


class TriggerReason(enum.IntEnum):
    """Why AMT opened the tunnel (PROTOCOL_VERSION's third field)."""

    USER_INITIATED = 1
    ALERT = 2
    PROVISIONING = 3
    PERIODIC = 4
    LME = 254


AUTH_SERVICE: Final = "auth@amt.intel.com"
PFWD_SERVICE: Final = "pfwd@amt.intel.com"
PASSWORD_METHOD: Final = "password"  # noqa: S105 -- the method name, not a secret
TCPIP_FORWARD: Final = "tcpip-forward"
CANCEL_TCPIP_FORWARD: Final = "cancel-tcpip-forward"
UDP_SEND_TO: Final = "udp-send-to@amt.intel.com"
FORWARDED_TCPIP: Final = "forwarded-tcpip"
"""Channels the MPS opens towards a port AMT registered."""
DIRECT_TCPIP: Final = "direct-tcpip"
"""Channels AMT opens towards the MPS side (alerts); both MPS implementations refuse them."""

MAX_STRING: Final = 2048
MAX_DATA: Final = 1024 * 1024
DEFAULT_WINDOW: Final = 32768
"""The receive window both MPS implementations grant per channel."""
MAX_SEND_CHUNK: Final = 32768
"""Largest CHANNEL_DATA we send at once, whatever credit the peer grants."""
PROTOCOL_MAJOR: Final = 1
PROTOCOL_MINOR: Final = 0
RESERVED_U32: Final = 0xFFFFFFFF
"""What APF puts where SSH has the maximum packet size (CHANNEL_OPEN, CHANNEL_OPEN_CONFIRMATION)."""

AMT_PORTS: Final = (16993, 16992, 16995, 16994)
"""The ports an engine registers, in the order real AMT does (it also registers 664 and 623, which we do not
serve, and 5900 when KVM on the standard port is enabled; MPS comment in ``globalRequest``)."""
VNC_PORT: Final = 5900
