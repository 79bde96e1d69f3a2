"""The MPS side of APF: accepts an AMT's tunnel, checks its login, records its ports, opens channels to them.

Theory of operation (:class:`MpsConnection`)::

    AWAIT_VERSION       --PROTOCOL_VERSION-->          AWAIT_AUTH_SERVICE (PeerHello event)
    AWAIT_AUTH_SERVICE  --SERVICE_REQUEST auth-->      AWAIT_AUTH (sent SERVICE_ACCEPT)
    AWAIT_AUTH          --USERAUTH_REQUEST password--> AUTH_PENDING (AuthenticationRequested event)
                        --USERAUTH_REQUEST other-->    AWAIT_AUTH (sent USERAUTH_FAILURE "password"; 3 tries)
    AUTH_PENDING        --accept_authentication()-->   AWAIT_PFWD_SERVICE (sent USERAUTH_SUCCESS)
                        --reject_authentication()-->   CLOSED (sent USERAUTH_FAILURE, as both MPS do)
    AWAIT_PFWD_SERVICE  --SERVICE_REQUEST pfwd-->      ESTABLISHED (sent SERVICE_ACCEPT)
    ESTABLISHED         --GLOBAL_REQUEST-->            ESTABLISHED (tcpip-forward: REQUEST_SUCCESS(port) and
                                                       PortForwarded; cancel: REQUEST_SUCCESS; others: failure)
    ESTABLISHED: channel messages, KEEPALIVE_OPTIONS_REPLY; any state: KEEPALIVE_REQUEST, DISCONNECT
    a SERVICE_REQUEST for any other service -->        CLOSED (DISCONNECT SERVICE_NOT_AVAILABLE)

Where we are stricter than the Open AMT MPS and MeshCentral: they accept ``pfwd`` and port requests without a
login (AMT-PROTOCOLS.md §7 rule 6 says not to), and silently ignore unknown service names (which leaves the device
waiting); we close with a reason.  Where we follow them: AMT-initiated channels (``direct-tcpip``) are refused with
UNKNOWN_CHANNEL_TYPE; ``udp-send-to`` is read and dropped; an unknown global request is read up to its want-reply
flag (its payload cannot be delimited) and answered with REQUEST_FAILURE if it wants an answer.

Keepalive: after answering the first ``tcpip-forward`` we send KEEPALIVE_OPTIONS_REQUEST (interval 30 s, timeout
0, MeshCentral's values).  Both MPS implementations wait for the 5900 forward, which a device without KVM on 5900
never sends; asking after the first port reaches every device.  A connection that sends nothing for
``idle_timeout`` (90 s, both MPS's ``MAX_IDLE``) is closed, and so is one that has not finished logging in
within ``handshake_timeout``.
"""

from __future__ import annotations

import enum
import uuid
from typing import Final

from .codec import (
    ChannelOpen,
    ChannelOpenFailure,
    GlobalRequest,
    KeepaliveOptionsReply,
    KeepaliveOptionsRequest,
    KeepaliveReply,
    KeepaliveRequest,
    ProtocolVersion,
    RequestFailure,
    RequestSuccess,
    ServiceAccept,
    ServiceRequest,
    TcpipForward,
    UserAuthFailure,
    UserAuthRequest,
    UserAuthSuccess,
)
from .connection import (
    CHANNEL_MESSAGES,
    DEFAULT_HANDSHAKE_TIMEOUT,
    MAX_CHANNELS,
    ApfConnection,
    ChannelState,
    transitions,
)
from .constants import (
    AUTH_SERVICE,
    DEFAULT_WINDOW,
    FORWARDED_TCPIP,
    PASSWORD_METHOD,
    PFWD_SERVICE,
    PROTOCOL_MAJOR,
    MessageType,
    OpenFailureReason,
)
from .errors import (
    ChannelOpenError,
    ConnectionTimedOut,
    InvalidCredentials,
    LocalProtocolError,
    NoMoreAuthMethods,
    ProtocolVersionNotSupported,
    ServiceNotAvailable,
)
from .events import AuthenticationRequested, Event, ForwardCancelled, KeepaliveReceived, PeerHello, PortForwarded

T = MessageType
KEEPALIVE_INTERVAL: Final = 30
IDLE_TIMEOUT: Final = 90.0
MAX_FORWARDS: Final = 16
MAX_AUTH_ATTEMPTS: Final = 3
ORIGINATOR_PORTS: Final = (1024, 30000)
"""MeshCentral's MPS rotates the originator port of its channels through 1024..31023."""


class MpsState(enum.Enum):
    AWAIT_VERSION = "await-version"
    AWAIT_AUTH_SERVICE = "await-auth-service"
    AWAIT_AUTH = "await-auth"
    AUTH_PENDING = "auth-pending"
    AWAIT_PFWD_SERVICE = "await-pfwd-service"
    ESTABLISHED = "established"
    CLOSED = "closed"


class MpsConnection(ApfConnection[MpsState]):
    """One device's tunnel as the MPS sees it.  ``hello`` and ``username`` say who it is; ``forwarded``
    maps each registered port to the address AMT registered it under."""

    def __init__(
        self,
        *,
        keepalive_interval: int = KEEPALIVE_INTERVAL,
        keepalive_timeout: int = 0,
        idle_timeout: float = IDLE_TIMEOUT,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        window: int = DEFAULT_WINDOW,
        max_channels: int = MAX_CHANNELS,
        max_forwards: int = MAX_FORWARDS,
        originator_address: str = "127.0.0.1",
    ) -> None:
        super().__init__(MpsState.AWAIT_VERSION, MpsState.CLOSED, window=window, max_channels=max_channels,
                         handshake_timeout=handshake_timeout)
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = keepalive_timeout
        self.idle_timeout = idle_timeout
        self.max_forwards = max_forwards
        self.originator_address = originator_address
        self.hello: ProtocolVersion | None = None
        self.username: str | None = None
        self.forwarded: dict[int, str] = {}
        self.keepalive_agreed: tuple[int, int] | None = None
        """What AMT echoed in KEEPALIVE_OPTIONS_REPLY."""
        self._auth_attempts = 0
        self._options_sent = False
        self._originator_seq = 0

    def start(self, now: float) -> None:
        """The transport is up: start the login and idle clocks."""
        self.now = now
        self._set_deadline("handshake", self.handshake_timeout)
        self._set_deadline("idle", self.idle_timeout)

    @property
    def system_uuid(self) -> uuid.UUID | None:
        return self.hello.system_uuid if self.hello is not None else None

    def _input_seen(self) -> None:
        if "idle" in self._deadlines:
            self._set_deadline("idle", self.idle_timeout)

    # ------------------------------------------------------------------------------------------ login

    def _on_protocol_version(self, message: ProtocolVersion) -> None:
        if message.major != PROTOCOL_MAJOR:
            raise ProtocolVersionNotSupported(f"APF {message.major}.{message.minor}; we speak {PROTOCOL_MAJOR}.x")
        self.hello = message
        self.state = MpsState.AWAIT_AUTH_SERVICE
        self._events.append(PeerHello(message.system_uuid, message.major, message.minor, message.trigger))

    def _on_service_request(self, message: ServiceRequest) -> None:
        wanted = AUTH_SERVICE if self.state is MpsState.AWAIT_AUTH_SERVICE else PFWD_SERVICE
        if message.service != wanted:
            raise ServiceNotAvailable(f"service {message.service!r} is not available now (expected {wanted!r})")
        self._send(ServiceAccept(message.service))
        if self.state is MpsState.AWAIT_AUTH_SERVICE:
            self.state = MpsState.AWAIT_AUTH
        else:
            self.state = MpsState.ESTABLISHED
            self._clear_deadline("handshake")

    def _on_userauth_request(self, message: UserAuthRequest) -> None:
        if message.method != PASSWORD_METHOD or message.password is None:
            self._auth_attempts += 1
            self._send(UserAuthFailure(PASSWORD_METHOD))
            if self._auth_attempts >= MAX_AUTH_ATTEMPTS:
                raise NoMoreAuthMethods(f"{self._auth_attempts} logins without a password")
            return
        self.username = message.username
        self.state = MpsState.AUTH_PENDING
        self._events.append(AuthenticationRequested(message.username, message.password))

    def accept_authentication(self) -> None:
        self._expect(MpsState.AUTH_PENDING)
        self._send(UserAuthSuccess())
        self.state = MpsState.AWAIT_PFWD_SERVICE

    def reject_authentication(self, reason: str = "wrong user name or password") -> list[Event]:
        """Refuse the login: USERAUTH_FAILURE, then the connection closes (a Terminated event)."""
        self._expect(MpsState.AUTH_PENDING)
        self._send(UserAuthFailure(PASSWORD_METHOD))
        self._terminate(InvalidCredentials(reason), by_peer=False, notify=False)
        return self._drain()

    def _expect(self, state: MpsState) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot do that in state {self.state.value}")

    # ------------------------------------------------------------------------------------------ global requests

    def _on_global_request(self, message: GlobalRequest) -> None:
        if not isinstance(message, TcpipForward):
            if message.want_reply:
                self._send(RequestFailure())
            return
        if message.cancel:
            self.forwarded.pop(message.port, None)
            self._send(RequestSuccess())
            self._events.append(ForwardCancelled(message.address, message.port))
            return
        if message.port not in self.forwarded and len(self.forwarded) >= self.max_forwards:
            self._send(RequestFailure())
            return
        self.forwarded[message.port] = message.address
        self._send(RequestSuccess(message.port))
        self._events.append(PortForwarded(message.address, message.port))
        if not self._options_sent:
            self._options_sent = True
            self._send(KeepaliveOptionsRequest(self.keepalive_interval, self.keepalive_timeout))

    # ------------------------------------------------------------------------------------------ channels

    def open_channel(self, port: int) -> int:
        """Ask AMT for a ``forwarded-tcpip`` channel to a registered port; returns its id (ChannelOpened or
        ChannelOpenFailed follows).  Data may be queued on it right away."""
        self._expect(MpsState.ESTABLISHED)
        if port not in self.forwarded:
            raise LocalProtocolError(f"the device has not registered port {port}")
        if len(self.channels) >= self.max_channels:
            raise ChannelOpenError(OpenFailureReason.RESOURCE_SHORTAGE, f"{self.max_channels} channels are open")
        address = self.forwarded[port]
        channel = self._new_channel(ChannelState.OPENING, FORWARDED_TCPIP, address, port)
        low, span = ORIGINATOR_PORTS
        originator_port = low + self._originator_seq % span
        self._originator_seq += 1
        self._send(ChannelOpen(FORWARDED_TCPIP, channel.local_id, channel.window, address, port,
                               self.originator_address, originator_port))
        return channel.local_id

    def _on_channel_open(self, message: ChannelOpen) -> None:
        self._send(ChannelOpenFailure(message.sender_channel, OpenFailureReason.UNKNOWN_CHANNEL_TYPE))

    # ------------------------------------------------------------------------------------------ keepalive

    def _on_device_keepalive(self, message: KeepaliveRequest) -> None:
        self._send(KeepaliveReply(message.cookie))
        self._events.append(KeepaliveReceived(message.cookie))

    def _on_keepalive_options_reply(self, message: KeepaliveOptionsReply) -> None:
        self.keepalive_agreed = (message.interval, message.timeout)

    def _on_keepalive_reply(self, message: KeepaliveReply) -> None:
        """AMT answering a keepalive we did not send: harmless, as both MPS implementations treat it."""

    def _idle(self) -> None:
        self._terminate(ConnectionTimedOut(f"nothing received for {self.idle_timeout:g} s"), by_peer=False,
                        notify=True)

    TIMERS = {"idle": _idle, "handshake": ApfConnection._handshake_overdue}


_S = MpsState
_ANY: Final = tuple(s for s in MpsState if s is not MpsState.CLOSED)
_OPEN: Final = (_S.ESTABLISHED,)

MpsConnection.TRANSITIONS = transitions(
    ((_S.AWAIT_VERSION,), T.PROTOCOL_VERSION, MpsConnection._on_protocol_version),
    ((_S.AWAIT_AUTH_SERVICE, _S.AWAIT_PFWD_SERVICE), T.SERVICE_REQUEST, MpsConnection._on_service_request),
    ((_S.AWAIT_AUTH,), T.USERAUTH_REQUEST, MpsConnection._on_userauth_request),
    (_OPEN, T.GLOBAL_REQUEST, MpsConnection._on_global_request),
    (_OPEN, T.CHANNEL_OPEN, MpsConnection._on_channel_open),
    *((_OPEN, kind, handler) for kind, handler in CHANNEL_MESSAGES),
    (_ANY, T.KEEPALIVE_REQUEST, MpsConnection._on_device_keepalive),
    (_OPEN, T.KEEPALIVE_REPLY, MpsConnection._on_keepalive_reply),
    (_OPEN, T.KEEPALIVE_OPTIONS_REPLY, MpsConnection._on_keepalive_options_reply),
    (_ANY, T.DISCONNECT, MpsConnection._on_disconnect),
)
