"""The AMT side of APF: the client that dials an MPS, logs in, registers its ports and serves channels.

Theory of operation (:class:`AmtConnection`)::

    START               --start()-->            AWAIT_AUTH_SERVICE (sent PROTOCOL_VERSION, SERVICE_REQUEST auth)
    AWAIT_AUTH_SERVICE  --SERVICE_ACCEPT auth--> AWAIT_AUTH (sent USERAUTH_REQUEST password)
    AWAIT_AUTH          --USERAUTH_SUCCESS-->    AWAIT_PFWD_SERVICE (sent SERVICE_REQUEST pfwd)
                        --USERAUTH_FAILURE-->    CLOSED (InvalidCredentials)
    AWAIT_PFWD_SERVICE  --SERVICE_ACCEPT pfwd--> REGISTERING (sent the first tcpip-forward)
    REGISTERING         --REQUEST_SUCCESS/FAILURE--> REGISTERING (next port) or ESTABLISHED (Established event)
    REGISTERING, ESTABLISHED: channel messages, keepalives, KEEPALIVE_OPTIONS_REQUEST
    any state           --DISCONNECT-->          CLOSED

Ports are registered one at a time, each after the previous answer, as MeshCentral's AMT-side client does; real
AMT registers 16993, 16992, (664, 623,) 16995, 16994 and 5900 in that order.  The MPS may open channels as soon as
a port is registered, so channel messages are allowed while registering.  Only ``forwarded-tcpip`` channels to
a registered port are offered to the caller (ChannelRequested); other types are refused with UNKNOWN_CHANNEL_TYPE
and other ports with ADMINISTRATIVELY_PROHIBITED, without asking.

Keepalive: once established we send KEEPALIVE_REQUEST every ``keepalive_interval`` seconds (the MPS may change
it with KEEPALIVE_OPTIONS_REQUEST, which we echo back); a request not answered within the MPS's timeout (or one
interval when it gives none) ends the connection with ConnectionTimedOut, so a tunnel cut without a FIN is
noticed and redialled.  The whole login must finish within ``handshake_timeout``.
"""

from __future__ import annotations

import enum
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .codec import (
    ChannelOpen,
    ChannelOpenFailure,
    DecodeOptions,
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
    AMT_PORTS,
    AUTH_SERVICE,
    DEFAULT_WINDOW,
    FORWARDED_TCPIP,
    MAX_STRING,
    PFWD_SERVICE,
    MessageType,
    OpenFailureReason,
    TriggerReason,
)
from .errors import ConnectionTimedOut, InvalidCredentials, LocalProtocolError, ProtocolError
from .events import (
    Authenticated,
    ChannelRequested,
    Established,
    ForwardCancelled,
    ForwardRefused,
    KeepaliveOptionsChanged,
    PortForwarded,
)

T = MessageType
DEFAULT_KEEPALIVE_INTERVAL: Final = 30.0
"""Until the MPS says otherwise: well inside the 90 s both MPS implementations allow an idle tunnel."""


class AmtState(enum.Enum):
    START = "start"
    AWAIT_AUTH_SERVICE = "await-auth-service"
    AWAIT_AUTH = "await-auth"
    AWAIT_PFWD_SERVICE = "await-pfwd-service"
    REGISTERING = "registering"
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Pending:
    """A global request awaiting its answer (answers come in request order)."""

    port: int
    cancel: bool


class AmtConnection(ApfConnection[AmtState]):
    """One CIRA tunnel from AMT's side.  ``hostname`` is what AMT registers its ports under."""

    def __init__(
        self,
        *,
        system_uuid: uuid.UUID,
        username: str,
        password: str,
        hostname: str,
        ports: Iterable[int] = AMT_PORTS,
        trigger: TriggerReason = TriggerReason.PERIODIC,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        window: int = DEFAULT_WINDOW,
        max_channels: int = MAX_CHANNELS,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__(AmtState.START, AmtState.CLOSED, window=window, max_channels=max_channels,
                         handshake_timeout=handshake_timeout)
        for name, value in (("username", username), ("password", password), ("hostname", hostname)):
            if len(value.encode("utf-8")) > MAX_STRING:
                raise ValueError(f"the {name} is longer than APF's {MAX_STRING}-byte strings")
        self.system_uuid = system_uuid
        self.username = username
        self._password = password
        self.hostname = hostname
        self.trigger = trigger
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = 0.0
        self.forwarded_ports: list[int] = []
        self._to_register = deque(ports)
        self._pending: deque[_Pending] = deque()
        self._cookie = 0
        self._options_with_port = DecodeOptions(max_data=window, success_has_port=True)

    def start(self, now: float) -> None:
        """Say hello and ask for the authentication service (both at once, as MeshCentral's client does)."""
        if self.state is not AmtState.START:
            raise LocalProtocolError("the connection has started already")
        self.now = now
        self._send(ProtocolVersion(self.system_uuid, trigger=self.trigger))
        self._send(ServiceRequest(AUTH_SERVICE))
        self.state = AmtState.AWAIT_AUTH_SERVICE
        self._set_deadline("handshake", self.handshake_timeout)

    def forward_port(self, port: int) -> None:
        """Register one more port once established (the answer comes as PortForwarded or ForwardRefused)."""
        self._request(port, cancel=False)

    def cancel_forward(self, port: int) -> None:
        self._request(port, cancel=True)

    def _request(self, port: int, *, cancel: bool) -> None:
        if self.state is not AmtState.ESTABLISHED:
            raise LocalProtocolError(f"port requests need an established tunnel, not {self.state.value}")
        self._send_forward(port, cancel=cancel)

    def _send_forward(self, port: int, *, cancel: bool) -> None:
        self._send(TcpipForward(self.hostname, port, cancel=cancel))
        self._pending.append(_Pending(port, cancel))

    def _decode_options(self) -> DecodeOptions:
        if self._pending and not self._pending[0].cancel:
            return self._options_with_port
        return self._options

    # ------------------------------------------------------------------------------------------ login

    def _on_service_accept(self, message: ServiceAccept) -> None:
        expected = AUTH_SERVICE if self.state is AmtState.AWAIT_AUTH_SERVICE else PFWD_SERVICE
        if message.service != expected:
            raise ProtocolError(f"the MPS accepted {message.service!r} when we asked for {expected!r}")
        if self.state is AmtState.AWAIT_AUTH_SERVICE:
            self._send(UserAuthRequest(self.username, self._password))
            self.state = AmtState.AWAIT_AUTH
        else:
            self.state = AmtState.REGISTERING
            self._register_next()

    def _on_auth_success(self, message: UserAuthSuccess) -> None:
        self._events.append(Authenticated())
        self._send(ServiceRequest(PFWD_SERVICE))
        self.state = AmtState.AWAIT_PFWD_SERVICE

    def _on_auth_failure(self, message: UserAuthFailure) -> None:
        self._terminate(InvalidCredentials(f"the MPS refused user {self.username!r}"), by_peer=True, notify=False)

    # ------------------------------------------------------------------------------------------ ports

    def _register_next(self) -> None:
        if self._to_register:
            self._send_forward(self._to_register.popleft(), cancel=False)
            return
        self.state = AmtState.ESTABLISHED
        self._clear_deadline("handshake")
        self._set_deadline("keepalive", self.keepalive_interval)
        self._events.append(Established(tuple(self.forwarded_ports)))

    def _answered(self) -> _Pending:
        if not self._pending:
            raise ProtocolError("an answer to a global request we did not make")
        return self._pending.popleft()

    def _on_request_success(self, message: RequestSuccess) -> None:
        request = self._answered()
        if request.cancel:
            if request.port in self.forwarded_ports:
                self.forwarded_ports.remove(request.port)
            self._events.append(ForwardCancelled(self.hostname, request.port))
        else:
            if request.port not in self.forwarded_ports:
                self.forwarded_ports.append(request.port)
            self._events.append(PortForwarded(self.hostname, request.port))
        self._after_answer()

    def _on_request_failure(self, message: RequestFailure) -> None:
        request = self._answered()
        self._events.append(ForwardRefused(request.port))
        self._after_answer()

    def _after_answer(self) -> None:
        if self.state is AmtState.REGISTERING and not self._pending:
            self._register_next()

    # ------------------------------------------------------------------------------------------ channels

    def _on_channel_open(self, message: ChannelOpen) -> None:
        refusal = None
        if message.channel_type != FORWARDED_TCPIP:
            refusal = OpenFailureReason.UNKNOWN_CHANNEL_TYPE
        elif message.connected_port not in self.forwarded_ports:
            refusal = OpenFailureReason.ADMINISTRATIVELY_PROHIBITED
        elif len(self.channels) >= self.max_channels:
            refusal = OpenFailureReason.RESOURCE_SHORTAGE
        if refusal is not None:
            self._send(ChannelOpenFailure(message.sender_channel, refusal))
            return
        channel = self._new_channel(ChannelState.REQUESTED, message.channel_type, message.connected_address,
                                    message.connected_port, remote_id=message.sender_channel,
                                    send_credit=message.initial_window)
        self._events.append(ChannelRequested(channel.local_id, message.channel_type, message.connected_address,
                                             message.connected_port, message.originator_address,
                                             message.originator_port))

    # ------------------------------------------------------------------------------------------ keepalive

    def _on_keepalive_options(self, message: KeepaliveOptionsRequest) -> None:
        self._send(KeepaliveOptionsReply(message.interval, message.timeout))
        if message.interval > 0:  # 0 would mean "never": keep ours, or the MPS drops us as idle
            self.keepalive_interval = float(message.interval)
        self.keepalive_timeout = float(message.timeout)
        if self.state is AmtState.ESTABLISHED:
            self._set_deadline("keepalive", self.keepalive_interval)
        self._events.append(KeepaliveOptionsChanged(message.interval, message.timeout))

    def _on_keepalive_reply(self, message: KeepaliveReply) -> None:
        if message.cookie == self._cookie:
            self._clear_deadline("reply")

    def _send_keepalive(self) -> None:
        self._cookie = (self._cookie + 1) & 0xFFFFFFFF
        self._send(KeepaliveRequest(self._cookie))
        if "reply" not in self._deadlines:
            self._set_deadline("reply", self.keepalive_timeout or self.keepalive_interval)
        self._set_deadline("keepalive", self.keepalive_interval)

    def _reply_overdue(self) -> None:
        waited = self.keepalive_timeout or self.keepalive_interval
        self._terminate(ConnectionTimedOut(f"no keepalive reply within {waited:g} s"), by_peer=False, notify=True)

    TIMERS = {
        "keepalive": _send_keepalive,
        "reply": _reply_overdue,
        "handshake": ApfConnection._handshake_overdue,
    }


_S = AmtState
_LIVE: Final = (_S.REGISTERING, _S.ESTABLISHED)
_STARTED: Final = (_S.AWAIT_AUTH_SERVICE, _S.AWAIT_AUTH, _S.AWAIT_PFWD_SERVICE, *_LIVE)

AmtConnection.TRANSITIONS = transitions(
    ((_S.AWAIT_AUTH_SERVICE, _S.AWAIT_PFWD_SERVICE), T.SERVICE_ACCEPT, AmtConnection._on_service_accept),
    ((_S.AWAIT_AUTH,), T.USERAUTH_SUCCESS, AmtConnection._on_auth_success),
    ((_S.AWAIT_AUTH,), T.USERAUTH_FAILURE, AmtConnection._on_auth_failure),
    (_LIVE, T.REQUEST_SUCCESS, AmtConnection._on_request_success),
    (_LIVE, T.REQUEST_FAILURE, AmtConnection._on_request_failure),
    (_LIVE, T.CHANNEL_OPEN, AmtConnection._on_channel_open),
    *((_LIVE, kind, handler) for kind, handler in CHANNEL_MESSAGES),
    (_STARTED, T.KEEPALIVE_REQUEST, AmtConnection._on_keepalive_request),
    (_LIVE, T.KEEPALIVE_REPLY, AmtConnection._on_keepalive_reply),
    (_LIVE, T.KEEPALIVE_OPTIONS_REQUEST, AmtConnection._on_keepalive_options),
    (_STARTED, T.DISCONNECT, AmtConnection._on_disconnect),
)
