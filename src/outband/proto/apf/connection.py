"""What both APF roles share: parsing under a transition table, channels with flow control, timers, the end.

Theory of operation.  A connection is a state (an Enum of its role) plus a transition table keyed by
``(state, message type)``: the type byte of the next message is looked up *before* its body is decoded, so input
that is not allowed now is refused at its first byte and never buffered.  A type APF does not define, or a known
one out of place, is a protocol error; the connection then ends with DISCONNECT(2) -- both MPS implementations
and MeshCentral's AMT-side client close the socket on such input, we say why first.  The caller feeds bytes with
``receive_data(data, now)`` and gets events; whatever is to be sent accumulates in ``data_to_send()``.

Channels. Each side names a channel by its own id; messages carry the *recipient's* id, so a channel records both.
Flow control is SSH's: we may send only as many bytes as the peer's window allows (``send`` queues the rest,
WINDOW_ADJUST releases it), and the peer may send at most what we granted (``window`` per channel, 32768 like both
MPS implementations). Received bytes reopen the window only when the caller acknowledges them (``acknowledge``),
with one WINDOW_ADJUST once more than half the window is consumed -- MPS's rule -- so a slow reader slows the peer
instead of growing a buffer. APF has no EOF message (SSH's 96 is not part of it): a channel ends with CHANNEL_CLOSE,
which the other side answers with its own; a local close waits until queued data is out.

Messages about a channel id we do not know are dropped, as both MPS implementations do: a close crossing data
on the wire makes them legitimate.  Data beyond the granted window is a protocol error.

Time is the caller's: every entry point takes ``now`` (any monotonic clock, in seconds).  The connection keeps
named deadlines (handshake, keepalive, reply, idle); ``next_deadline()`` says when to call ``handle_timer(now)``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, Generic, TypeVar

from .codec import (
    ChannelClose,
    ChannelData,
    ChannelOpenConfirmation,
    ChannelOpenFailure,
    ChannelWindowAdjust,
    DecodeOptions,
    Disconnect,
    KeepaliveReply,
    KeepaliveRequest,
    Message,
    decode_message,
    message_type,
)
from .constants import DEFAULT_WINDOW, MAX_SEND_CHUNK, MessageType, OpenFailureReason
from .errors import (
    ChannelOpenError,
    ConnectionLost,
    ConnectionTimedOut,
    DisconnectError,
    LocalProtocolError,
    ProtocolError,
)
from .events import (
    ChannelClosed,
    ChannelOpened,
    ChannelOpenFailed,
    DataReceived,
    Event,
    Terminated,
    WindowAdjusted,
)

MAX_CHANNELS: Final = 32
"""Channels open at once on one connection; more are refused with RESOURCE_SHORTAGE."""
MAX_WINDOW: Final = 0xFFFFFFFF
DEFAULT_HANDSHAKE_TIMEOUT: Final = 30.0


class ChannelState(enum.Enum):
    REQUESTED = "requested"
    """The peer asked; we have not answered."""
    OPENING = "opening"
    """We asked; the peer has not answered."""
    OPEN = "open"
    CLOSING = "closing"
    """We sent CHANNEL_CLOSE and wait for the peer's."""


@dataclass(slots=True)
class Channel:
    local_id: int
    remote_id: int
    state: ChannelState
    channel_type: str
    address: str
    port: int
    window: int
    """The receive window we grant."""
    send_credit: int = 0
    receive_credit: int = 0
    unacknowledged: int = 0
    send_queue: bytearray = field(default_factory=bytearray)
    close_when_flushed: bool = False


S = TypeVar("S", bound=enum.Enum)


class ApfConnection(Generic[S]):
    """The machinery both roles share; a role class provides the table, its states and its handlers."""

    TRANSITIONS: ClassVar[Mapping[tuple[enum.Enum, MessageType], Callable[..., None]]]
    TIMERS: ClassVar[Mapping[str, Callable[..., None]]]

    def __init__(self, state: S, closed: S, *, window: int = DEFAULT_WINDOW, max_channels: int = MAX_CHANNELS,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> None:
        if not 0 < window <= MAX_WINDOW:
            raise ValueError("the channel window is 1..2**32-1 bytes")
        self.state: S = state
        self._closed_state: S = closed
        self.window = window
        self.max_channels = max_channels
        self.handshake_timeout = handshake_timeout
        self.channels: dict[int, Channel] = {}
        self.now = 0.0
        self._next_channel_id = 1
        self._in = bytearray()
        self._out = bytearray()
        self._events: list[Event] = []
        self._deadlines: dict[str, float] = {}
        self._options = DecodeOptions(max_data=window)

    # ------------------------------------------------------------------------------------------ I/O

    @property
    def closed(self) -> bool:
        return self.state is self._closed_state

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Take bytes from the peer; a protocol error ends the connection (a Terminated event), never raises."""
        if self.closed:
            return []
        self.now = now
        self._input_seen()
        self._in += data
        try:
            self._parse()
        except DisconnectError as exc:
            self._terminate(exc, by_peer=False, notify=True)
        return self._drain()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def connection_lost(self, now: float) -> list[Event]:
        """The transport ended under us (no DISCONNECT came)."""
        self.now = now
        self._terminate(ConnectionLost("the connection was closed"), by_peer=True, notify=False)
        return self._drain()

    def disconnect(self, error: DisconnectError, now: float) -> list[Event]:
        """End the connection ourselves, telling the peer ``error.code`` in a DISCONNECT."""
        self.now = now
        self._terminate(error, by_peer=False, notify=True)
        return self._drain()

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> list[Event]:
        """Run every deadline that has passed (the caller's clock says when)."""
        self.now = now
        for name, when in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if self.closed:
                break
            if when <= now and self._deadlines.get(name) == when:
                del self._deadlines[name]
                self.TIMERS[name](self)
        return self._drain()

    def _parse(self) -> None:
        buffer, pos = self._in, 0
        try:
            while pos < len(buffer) and not self.closed:
                kind = message_type(buffer[pos])
                handler = self.TRANSITIONS.get((self.state, kind))
                if handler is None:
                    raise ProtocolError(f"{kind.name} not expected in state {self.state.value}")
                decoded = decode_message(buffer, self._decode_options(), start=pos)
                if decoded is None:
                    break
                message, length = decoded
                pos += length
                handler(self, message)
        finally:
            del buffer[:pos]

    def _decode_options(self) -> DecodeOptions:
        return self._options

    def _input_seen(self) -> None:
        """Hook: a role that tracks idleness refreshes its deadline here."""

    def _send(self, message: Message) -> None:
        self._out += message.encode()

    def _drain(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def _set_deadline(self, name: str, delay: float) -> None:
        self._deadlines[name] = self.now + delay

    def _clear_deadline(self, name: str) -> None:
        self._deadlines.pop(name, None)

    def _terminate(self, error: DisconnectError, *, by_peer: bool, notify: bool) -> None:
        if self.closed:
            return
        if notify:
            self._send(Disconnect(error.code))
        for channel_id in list(self.channels):
            self._events.append(ChannelClosed(channel_id))
        self.channels.clear()
        self._deadlines.clear()
        self._in = bytearray()
        self.state = self._closed_state
        self._events.append(Terminated(error, by_peer))

    def _on_disconnect(self, message: Disconnect) -> None:
        self._terminate(DisconnectError.for_code(message.reason, "closed by the peer"), by_peer=True, notify=False)

    def _on_keepalive_request(self, message: KeepaliveRequest) -> None:
        self._send(KeepaliveReply(message.cookie))

    def _handshake_overdue(self) -> None:
        """The ``handshake`` deadline: a peer that never finishes logging in must not hold the connection."""
        self._terminate(ConnectionTimedOut(f"login not finished within {self.handshake_timeout:g} s "
                                           f"(stuck in {self.state.value})"), by_peer=False, notify=True)

    # ------------------------------------------------------------------------------------------ channels

    def _new_channel(self, state: ChannelState, channel_type: str, address: str, port: int, *,
                     remote_id: int = 0, send_credit: int = 0) -> Channel:
        while self._next_channel_id in self.channels or self._next_channel_id == 0:
            self._next_channel_id = (self._next_channel_id + 1) & 0xFFFFFFFF
        channel = Channel(self._next_channel_id, remote_id, state, channel_type, address, port, self.window,
                          send_credit=send_credit, receive_credit=self.window)
        self._next_channel_id = (self._next_channel_id + 1) & 0xFFFFFFFF
        self.channels[channel.local_id] = channel
        return channel

    def _channel(self, channel_id: int, *states: ChannelState) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None or channel.state not in states:
            found = "no such channel" if channel is None else f"channel is {channel.state.value}"
            raise LocalProtocolError(f"channel {channel_id}: {found}")
        return channel

    def accept_channel(self, channel_id: int) -> None:
        """Confirm a channel the peer requested (a ChannelRequested event)."""
        channel = self._channel(channel_id, ChannelState.REQUESTED)
        channel.state = ChannelState.OPEN
        self._send(ChannelOpenConfirmation(channel.remote_id, channel.local_id, channel.window))

    def reject_channel(self, channel_id: int, reason: OpenFailureReason) -> None:
        channel = self._channel(channel_id, ChannelState.REQUESTED)
        del self.channels[channel_id]
        self._send(ChannelOpenFailure(channel.remote_id, reason))

    def send(self, channel_id: int, data: bytes) -> int:
        """Queue bytes on a channel (open, or still opening); returns the backlog the peer's window holds up."""
        channel = self._channel(channel_id, ChannelState.OPEN, ChannelState.OPENING)
        if channel.close_when_flushed:
            raise LocalProtocolError(f"channel {channel_id} is closing")
        channel.send_queue += data
        self._flush(channel)
        return len(channel.send_queue)

    def backlog(self, channel_id: int) -> int:
        channel = self.channels.get(channel_id)
        return len(channel.send_queue) if channel is not None else 0

    def acknowledge(self, channel_id: int, n: int) -> None:
        """The caller consumed ``n`` received bytes: reopen the peer's window once over half is used up."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.state is not ChannelState.OPEN:
            return
        channel.unacknowledged += n
        if channel.unacknowledged > channel.window // 2:
            channel.receive_credit += channel.unacknowledged
            self._send(ChannelWindowAdjust(channel.remote_id, channel.unacknowledged))
            channel.unacknowledged = 0

    def close_channel(self, channel_id: int, *, discard: bool = False) -> None:
        """Close once queued data is out (``discard`` drops it); closing a closed channel does nothing."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.state is ChannelState.CLOSING or self.closed:
            return
        if channel.state is ChannelState.REQUESTED:
            self.reject_channel(channel_id, OpenFailureReason.CONNECT_FAILED)
            return
        if discard:
            channel.send_queue.clear()
        channel.close_when_flushed = True
        if channel.state is ChannelState.OPEN:
            self._flush(channel)

    def _flush(self, channel: Channel) -> None:
        if channel.state is not ChannelState.OPEN:
            return
        while channel.send_queue and channel.send_credit > 0:
            n = min(len(channel.send_queue), channel.send_credit, MAX_SEND_CHUNK)
            self._send(ChannelData(channel.remote_id, bytes(channel.send_queue[:n])))
            del channel.send_queue[:n]
            channel.send_credit -= n
        if channel.close_when_flushed and not channel.send_queue:
            channel.state = ChannelState.CLOSING
            self._send(ChannelClose(channel.remote_id))

    def _on_channel_open_confirmation(self, message: ChannelOpenConfirmation) -> None:
        channel = self.channels.get(message.recipient_channel)
        if channel is None or channel.state is not ChannelState.OPENING:
            raise ProtocolError(f"confirmation for channel {message.recipient_channel}, which we are not opening")
        channel.remote_id = message.sender_channel
        channel.send_credit = message.initial_window
        channel.state = ChannelState.OPEN
        self._events.append(ChannelOpened(channel.local_id))
        self._flush(channel)

    def _on_channel_open_failure(self, message: ChannelOpenFailure) -> None:
        channel = self.channels.get(message.recipient_channel)
        if channel is None or channel.state is not ChannelState.OPENING:
            raise ProtocolError(f"open failure for channel {message.recipient_channel}, which we are not opening")
        del self.channels[channel.local_id]
        self._events.append(ChannelOpenFailed(channel.local_id, ChannelOpenError(message.reason, message.description)))

    def _on_window_adjust(self, message: ChannelWindowAdjust) -> None:
        channel = self.channels.get(message.recipient_channel)
        if channel is None or channel.state is ChannelState.CLOSING:
            return
        if channel.state is not ChannelState.OPEN:
            raise ProtocolError(f"window adjust for channel {channel.local_id}, which is {channel.state.value}")
        if channel.send_credit + message.bytes_to_add > MAX_WINDOW:
            raise ProtocolError(f"window of channel {channel.local_id} would exceed 2**32-1 bytes")
        channel.send_credit += message.bytes_to_add
        self._flush(channel)
        self._events.append(WindowAdjusted(channel.local_id, len(channel.send_queue)))

    def _on_channel_data(self, message: ChannelData) -> None:
        channel = self.channels.get(message.recipient_channel)
        if channel is None or channel.state is ChannelState.CLOSING:
            return
        if channel.state is not ChannelState.OPEN:
            raise ProtocolError(f"data for channel {channel.local_id}, which is {channel.state.value}")
        if len(message.data) > channel.receive_credit:
            raise ProtocolError(f"{len(message.data)} bytes on channel {channel.local_id} exceed the "
                                f"{channel.receive_credit} its window allows")
        channel.receive_credit -= len(message.data)
        self._events.append(DataReceived(channel.local_id, message.data))

    def _on_channel_close(self, message: ChannelClose) -> None:
        channel = self.channels.pop(message.recipient_channel, None)
        if channel is None:
            return
        if channel.state is ChannelState.OPEN:
            self._send(ChannelClose(channel.remote_id))  # answer the peer's close
        self._events.append(ChannelClosed(channel.local_id))


def transitions(*rows: tuple[tuple[enum.Enum, ...], MessageType, Callable[..., None]]
                ) -> dict[tuple[enum.Enum, MessageType], Callable[..., None]]:
    """Expand ``(states, message type, handler)`` rows into the ``(state, type) -> handler`` table."""
    table: dict[tuple[enum.Enum, MessageType], Callable[..., None]] = {}
    for states, kind, handler in rows:
        for state in states:
            if (state, kind) in table:
                raise ValueError(f"two handlers for {kind.name} in {state}")
            table[(state, kind)] = handler
    return table


CHANNEL_MESSAGES: Final = (
    (MessageType.CHANNEL_OPEN_CONFIRMATION, ApfConnection._on_channel_open_confirmation),
    (MessageType.CHANNEL_OPEN_FAILURE, ApfConnection._on_channel_open_failure),
    (MessageType.CHANNEL_WINDOW_ADJUST, ApfConnection._on_window_adjust),
    (MessageType.CHANNEL_DATA, ApfConnection._on_channel_data),
    (MessageType.CHANNEL_CLOSE, ApfConnection._on_channel_close),
)
"""The channel messages every role handles the same way once channels may exist."""
