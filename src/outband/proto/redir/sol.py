"""Serial-over-LAN (session tag ``SOL ``): message codecs and the two state machines, host (AMT) and console.

Messages (AMT-PROTOCOLS.md §4.3; all little-endian, u32 sequence number at offset 4)::

    0x20 start (C->A, 24)      seq, six u16 settings (ms), u32 0
    0x21 start reply (A->C, 23) status at byte 1
    0x22/0x23 end / reply (8)  0x24/0x25 keep-alive ping / pong (8)    0x2B heartbeat (8, both ways)
    0x27 controls to host (C->A, 14)  our reading: byte 8 = RTS/DTR/BREAK (see MessageType.SOL_CONTROLS_TO_HOST)
    0x28 data to host (C->A)   0x2A data from host (A->C): u16 length at offset 8, then the data
    0x29 controls from host (A->C, 10): byte 8 = RTS/DTR/BREAK, byte 9 = status bits

Theory of operation, host side (:class:`SolHost`, runs once the session manager authenticated the console)::

    AWAIT_START --0x20-->              DECIDING (StartRequested event; the engine calls accept()/refuse())
    DECIDING    --accept()-->          ACTIVE: 0x21 status 0, then 0x29 with the power state, each alone
                --refuse(status)-->    CLOSED after a 0x21 with that status
    ACTIVE      --0x28-->              KeysToHost event          --0x27--> ControlsToHost event
                --0x24-->              0x25 pong                 --0x2B--> (the console is alive)
                --0x22-->              ENDED after a 0x23 (alone); SolEnded event
    ENDED       --0x28/0x27/0x2B/0x24--> ignored (amtterm sends the escape key right after its 0x22)

The console side (:class:`SolConsole`) mirrors it: IDLE --start()--> AWAIT_START_REPLY --0x21 ok--> ACTIVE
--end()--> AWAIT_END_REPLY --0x23--> ENDED.  In both, a (state, message) pair missing from the table is a
protocol error that closes the session.

Time is passed in (``now``, seconds on any monotonic clock) and :meth:`poll` returns the next deadline, so the
I/O layer owns the only timer and tests can drive hours in microseconds.  Timers: a heartbeat (0x2B) goes out
whenever nothing was sent for the heartbeat interval (at most what the console asked for: amtterm quits after
four silent intervals); a peer that sends nothing for the idle timeout is dropped.  Heartbeats count as
traffic, so a session that is only kept alive never idles out.  The host never echoes a heartbeat (amtterm
echoes ours: echoing back would ping-pong forever).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .frames import MAX_DATA, Frame, MessageType, Outgoing, ProtocolError
from .session import StartStatus

T = MessageType


class Control(enum.IntFlag):
    """Serial control lines (byte 8 of 0x29 and, in our reading, of 0x27)."""

    NONE = 0
    RTS = 1
    DTR = 2
    BREAK = 4


class HostStatus(enum.IntFlag):
    """Status bits of 0x29 (AMTT ``RedirectionConstants.h``)."""

    NONE = 0
    TX_OVERFLOW = 1
    LOOPBACK = 2
    POWERED_ON = 4
    RX_FLUSH_TIMEOUT = 8
    TEST_MODE = 16


@dataclass(frozen=True, slots=True)
class SolSettings:
    """The six u16 timing fields of 0x20, in the units AMT uses (bytes and milliseconds).

    ``heartbeat_interval`` is how often the console wants a heartbeat (0: no wish); ``host_session_rx_timeout``
    how long the session may stay silent.  Our defaults are amtterm's, with a larger transmit buffer.
    """

    max_tx_buffer: int = 10000
    tx_buffer_timeout: int = 100
    tx_overflow_timeout: int = 0
    host_session_rx_timeout: int = 10000
    host_fifo_rx_flush_timeout: int = 0
    heartbeat_interval: int = 5000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} is a u16")

    def encode(self) -> bytes:
        return struct.pack("<6H", self.max_tx_buffer, self.tx_buffer_timeout, self.tx_overflow_timeout,
                           self.host_session_rx_timeout, self.host_fifo_rx_flush_timeout, self.heartbeat_interval)

    @classmethod
    def decode(cls, raw: bytes) -> SolSettings:
        return cls(*struct.unpack("<6H", raw))


DEFAULT_SETTINGS: Final = SolSettings()
AMTTERM_SETTINGS: Final = SolSettings(1000, 100, 0, 10000, 0, 5000)
"""What amtterm sends (AMTT ``RedirectionConstants.h``)."""
MESHCOMMANDER_SETTINGS: Final = SolSettings(10000, 100, 0, 10000, 100, 0)
"""What MeshCommander sends (it keeps the session alive with its own heartbeats every 2 s)."""

# ---------------------------------------------------------------------------------------------- codec


def _header(mtype: MessageType, seq: int, status: int = 0) -> bytes:
    return bytes([mtype, status, 0, 0]) + struct.pack("<I", seq & 0xFFFFFFFF)


def encode_start(seq: int, settings: SolSettings) -> bytes:
    return _header(T.SOL_START, seq) + settings.encode() + bytes(4)


def decode_start(frame: Frame) -> SolSettings:
    return SolSettings.decode(frame.data[8:20])


def encode_start_reply(status: StartStatus, seq: int, settings: SolSettings) -> bytes:
    """23 bytes exactly (amtterm checks).  No client reads past byte 1; we echo the sequence number and the
    settings the session runs with, and leave the three OEM bytes zero."""
    return _header(T.SOL_START_REPLY, seq, status) + settings.encode() + bytes(3)


def encode_end(seq: int) -> bytes:
    return _header(T.SOL_END, seq)


def encode_end_reply(seq: int) -> bytes:
    return _header(T.SOL_END_REPLY, seq)


def encode_heartbeat(seq: int) -> bytes:
    return _header(T.SOL_HEARTBEAT, seq)


def encode_keepalive_ping(seq: int) -> bytes:
    return _header(T.SOL_KEEPALIVE_PING, seq)


def encode_keepalive_pong(seq: int) -> bytes:
    return _header(T.SOL_KEEPALIVE_PONG, seq)


def _encode_data(mtype: MessageType, seq: int, data: bytes) -> bytes:
    if len(data) > MAX_DATA:
        raise ValueError(f"one SOL data message carries at most {MAX_DATA} bytes")
    return _header(mtype, seq) + struct.pack("<H", len(data)) + data


def encode_data_to_host(seq: int, data: bytes) -> bytes:
    return _encode_data(T.SOL_DATA_TO_HOST, seq, data)


def encode_data_from_host(seq: int, data: bytes) -> bytes:
    return _encode_data(T.SOL_DATA_FROM_HOST, seq, data)


def decode_data(frame: Frame) -> bytes:
    """The payload of 0x28/0x2A (the decoder already sized the frame from the length field)."""
    return frame.data[10:]


def encode_controls_from_host(seq: int, control: Control, status: HostStatus) -> bytes:
    return _header(T.SOL_CONTROLS_FROM_HOST, seq) + bytes([control, status])


def decode_controls_from_host(frame: Frame) -> tuple[Control, HostStatus]:
    return Control(frame.data[8] & 0x07), HostStatus(frame.data[9] & 0x1F)


def encode_controls_to_host(seq: int, control: Control) -> bytes:
    """MeshCommander's 0x27 with our control byte: ``control=NONE`` is exactly what MeshCommander sends."""
    return _header(T.SOL_CONTROLS_TO_HOST, seq) + bytes([control, 0, 0x1B, 0, 0, 0])


def decode_controls_to_host(frame: Frame) -> Control:
    return Control(frame.data[8] & 0x07)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True, slots=True)
class SolTiming:
    """How the host turns the console's wishes into timers (seconds).

    ``time_scale`` multiplies every duration: a test sets it small to watch minutes of keep-alive in a second.
    """

    default_heartbeat: float = 5.0
    """Heartbeat interval when the console asks for none (MeshCommander sends 0)."""
    max_heartbeat: float = 5.0
    """Never slower than this, whatever the console asks."""
    default_idle_timeout: float = 60.0
    """Idle timeout when the console gives no HostSessionRxTimeout."""
    min_idle_timeout: float = 10.0
    time_scale: float = 1.0

    def heartbeat(self, settings: SolSettings) -> float:
        wanted = settings.heartbeat_interval / 1000 or self.default_heartbeat
        return min(wanted, self.max_heartbeat) * self.time_scale

    def idle_timeout(self, settings: SolSettings | None) -> float:
        if settings is None:
            return self.default_idle_timeout * self.time_scale
        rx = settings.host_session_rx_timeout / 1000 or self.default_idle_timeout
        # Room for at least two heartbeat round trips: amtterm's only traffic may be echoes of ours.
        floor = max(self.min_idle_timeout, 2 * self.heartbeat(settings) / self.time_scale)
        return max(rx, floor) * self.time_scale


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class StartRequested:
    settings: SolSettings


@dataclass(frozen=True, slots=True)
class KeysToHost:
    data: bytes


@dataclass(frozen=True, slots=True)
class ControlsToHost:
    control: Control


@dataclass(frozen=True, slots=True)
class Started:
    pass


@dataclass(frozen=True, slots=True)
class HostOutput:
    data: bytes


@dataclass(frozen=True, slots=True)
class HostControls:
    control: Control
    status: HostStatus


@dataclass(frozen=True, slots=True)
class SolRefused:
    status: int


@dataclass(frozen=True, slots=True)
class SolEnded:
    reason: str


HostEvent = StartRequested | KeysToHost | ControlsToHost | SolEnded
ConsoleSolEvent = Started | HostOutput | HostControls | SolRefused | SolEnded


class SolState(enum.Enum):
    IDLE = "idle"
    AWAIT_START = "await-start"
    AWAIT_START_REPLY = "await-start-reply"
    DECIDING = "deciding"
    ACTIVE = "active"
    AWAIT_END_REPLY = "await-end-reply"
    ENDED = "ended"
    CLOSED = "closed"


E = TypeVar("E", HostEvent, ConsoleSolEvent)


class _Machine(Generic[E]):
    """What both ends share: queues, sequence numbers, the heartbeat and idle timers, the table lookup."""

    _table: dict[tuple[SolState, MessageType], Callable[..., None]]

    def __init__(self, state: SolState, now: float, idle_timeout: float) -> None:
        self.state = state
        self.close_reason: str | None = None
        self._out: list[Outgoing] = []
        self._events: list[E] = []
        self._seq = 0
        self._last_sent = now
        self._last_received = now
        self._heartbeat: float | None = None
        self._idle_timeout = idle_timeout

    @property
    def closed(self) -> bool:
        return self.state is SolState.CLOSED

    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[E]:
        out, self._events = self._events, []
        return out

    def close(self, reason: str) -> None:
        if self.state is not SolState.CLOSED:
            self.state = SolState.CLOSED
            self.close_reason = reason

    def receive(self, frame: Frame, now: float) -> None:
        """Handle one message of the SOL kind; a protocol error closes the session instead of raising."""
        if self.closed:
            return
        self._last_received = now
        handler = self._table.get((self.state, frame.type))
        try:
            if handler is None:
                raise ProtocolError(f"{frame.type.name} not expected in SOL state {self.state.value}")
            handler(self, frame, now)
        except ProtocolError as exc:
            self.close(f"protocol error: {exc}")

    def poll(self, now: float) -> float | None:
        """Run the timers due at ``now``; the next deadline (None when closed)."""
        if self.closed:
            return None
        idle_deadline = self._last_received + self._idle_timeout
        if now >= idle_deadline:
            self.close(f"no traffic from the peer for {self._idle_timeout:g} s")
            return None
        deadline = idle_deadline
        if self._heartbeat is not None and self.state is SolState.ACTIVE:
            if now >= self._last_sent + self._heartbeat:
                self._queue(encode_heartbeat(self._next_seq()), now)
            deadline = min(deadline, self._last_sent + self._heartbeat)
        return deadline

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return seq

    def _queue(self, data: bytes, now: float, *, alone: bool = False) -> None:
        self._out.append(Outgoing(data, alone))
        self._last_sent = now

    def _ignore(self, frame: Frame, now: float) -> None:
        """A heartbeat, or a message that arrives after the end was agreed: nothing to do."""


class SolHost(_Machine[HostEvent]):
    """The host (AMT) side of one SOL session.  Read :meth:`events`; answer StartRequested with
    :meth:`accept` or :meth:`refuse`; feed the machine's serial output to :meth:`host_output`."""

    def __init__(self, now: float, timing: SolTiming = SolTiming(), *, max_pending: int = 256 * 1024) -> None:
        super().__init__(SolState.AWAIT_START, now, timing.idle_timeout(None))
        self.timing = timing
        self.settings: SolSettings | None = None
        self.status = HostStatus.NONE
        self.control = Control.DTR | Control.RTS
        self._max_pending = max_pending
        self._pending = 0
        self._start_seq = 0

    def outgoing(self) -> list[Outgoing]:
        self._pending = 0
        return super().outgoing()

    def accept(self, now: float, *, powered: bool) -> None:
        if self.state is not SolState.DECIDING or self.settings is None:
            raise RuntimeError(f"cannot accept in state {self.state.value}")
        self.state = SolState.ACTIVE
        self._heartbeat = self.timing.heartbeat(self.settings)
        self._idle_timeout = self.timing.idle_timeout(self.settings)
        self.status = HostStatus.POWERED_ON if powered else HostStatus.NONE
        self._queue(encode_start_reply(StartStatus.SUCCESS, self._start_seq, self.settings), now, alone=True)
        self._send_controls(now)

    def refuse(self, status: StartStatus, now: float, reason: str) -> None:
        if self.state is not SolState.DECIDING or self.settings is None:
            raise RuntimeError(f"cannot refuse in state {self.state.value}")
        self._queue(encode_start_reply(status, self._start_seq, self.settings), now, alone=True)
        self.close(reason)

    def host_output(self, data: bytes, now: float) -> None:
        """Bytes the machine wrote to its serial port.  Dropped unless the session is active (AMT does not
        buffer for a console that is not there); beyond ``max_pending`` unsent bytes the surplus is dropped and
        the console told of a transmit overflow."""
        if self.state is not SolState.ACTIVE or self.settings is None or not data:
            return
        room = self._max_pending - self._pending
        if len(data) > room:
            data = data[: max(room, 0)]
            if not self.status & HostStatus.TX_OVERFLOW:
                self.status |= HostStatus.TX_OVERFLOW
                self._send_controls(now)
        size = min(self.settings.max_tx_buffer or MAX_DATA, MAX_DATA)
        self._pending += len(data)
        if self._out and not self._out[-1].alone and self._out[-1].data[0] == T.SOL_DATA_FROM_HOST:
            # Top up the last unsent data message (the shell echoes byte by byte), as AMT's transmit buffer
            # collects bytes for up to TxBufferTimeout instead of sending one message per byte.
            last = self._out.pop()
            seq, queued = int.from_bytes(last.data[4:8], "little"), last.data[10:]
            room = size - len(queued)
            self._out.append(Outgoing(encode_data_from_host(seq, queued + data[:room])))
            data = data[room:]
        for chunk in chunks(data, size):
            self._queue(encode_data_from_host(self._next_seq(), chunk), now)

    def set_powered(self, powered: bool, now: float) -> None:
        """Tell the console the machine's power changed (amtterm prints it)."""
        status = (self.status | HostStatus.POWERED_ON) if powered else (self.status & ~HostStatus.POWERED_ON)
        if status != self.status:
            self.status = status
            if self.state is SolState.ACTIVE:
                self._send_controls(now)

    def _send_controls(self, now: float) -> None:
        self._queue(encode_controls_from_host(self._next_seq(), self.control, self.status), now, alone=True)
        self.status &= ~HostStatus.TX_OVERFLOW  # reported once per episode

    def _on_start(self, frame: Frame, now: float) -> None:
        self.settings = decode_start(frame)
        self._start_seq = frame.seq
        self.state = SolState.DECIDING
        self._events.append(StartRequested(self.settings))

    def _on_data(self, frame: Frame, now: float) -> None:
        data = decode_data(frame)
        if data:
            self._events.append(KeysToHost(data))

    def _on_controls(self, frame: Frame, now: float) -> None:
        self._events.append(ControlsToHost(decode_controls_to_host(frame)))

    def _on_ping(self, frame: Frame, now: float) -> None:
        self._queue(encode_keepalive_pong(frame.seq), now)

    def _on_end(self, frame: Frame, now: float) -> None:
        self._queue(encode_end_reply(frame.seq), now, alone=True)
        self.state = SolState.ENDED
        self._events.append(SolEnded("ended by the console"))

    _table = {
        (SolState.AWAIT_START, T.SOL_START): _on_start,
        (SolState.AWAIT_START, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.DECIDING, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.ACTIVE, T.SOL_DATA_TO_HOST): _on_data,
        (SolState.ACTIVE, T.SOL_CONTROLS_TO_HOST): _on_controls,
        (SolState.ACTIVE, T.SOL_KEEPALIVE_PING): _on_ping,
        (SolState.ACTIVE, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.ACTIVE, T.SOL_END): _on_end,
        (SolState.ENDED, T.SOL_DATA_TO_HOST): _Machine._ignore,
        (SolState.ENDED, T.SOL_CONTROLS_TO_HOST): _Machine._ignore,
        (SolState.ENDED, T.SOL_KEEPALIVE_PING): _Machine._ignore,
        (SolState.ENDED, T.SOL_HEARTBEAT): _Machine._ignore,
    }


class SolConsole(_Machine[ConsoleSolEvent]):
    """The console side of one SOL session (sans-I/O): :meth:`start`, then :meth:`write`, :meth:`send_break`,
    :meth:`end`; host output arrives as HostOutput events.

    ``peer_timeout`` drops a device that has sent nothing for that long (amtterm gives up after four
    heartbeat intervals, 20 s with its settings)."""

    def __init__(self, now: float, settings: SolSettings = DEFAULT_SETTINGS, *, peer_timeout: float | None = None
                 ) -> None:
        heartbeat = settings.heartbeat_interval / 1000
        super().__init__(SolState.IDLE, now, peer_timeout if peer_timeout is not None else max(4 * heartbeat, 20.0))
        self.settings = settings
        self._heartbeat = heartbeat or None
        self._seq = 1  # MeshCommander counts from 1

    def start(self, now: float) -> None:
        self._expect(SolState.IDLE)
        self._queue(encode_start(self._next_seq(), self.settings), now)
        self._last_received = now
        self.state = SolState.AWAIT_START_REPLY

    def write(self, data: bytes, now: float) -> None:
        self._expect(SolState.ACTIVE)
        for chunk in chunks(data, min(self.settings.max_tx_buffer or MAX_DATA, MAX_DATA)):
            self._queue(encode_data_to_host(self._next_seq(), chunk), now)

    def send_break(self, now: float) -> None:
        self._expect(SolState.ACTIVE)
        self._queue(encode_controls_to_host(self._next_seq(), Control.BREAK), now)

    def end(self, now: float) -> None:
        """Ask the device to end SOL (0x22); the session manager's 0x12 follows the 0x23."""
        if self.state is SolState.ACTIVE:
            self._queue(encode_end(self._next_seq()), now)
            self.state = SolState.AWAIT_END_REPLY
        elif self.state is not SolState.CLOSED:
            self.close("ended by the console")

    def _expect(self, state: SolState) -> None:
        if self.state is not state:
            raise RuntimeError(f"SOL is {self.state.value}, not {state.value}")

    def _on_start_reply(self, frame: Frame, now: float) -> None:
        status = frame.data[1]
        if status != StartStatus.SUCCESS:
            self._events.append(SolRefused(status))
            self.close(f"the device refused SOL (status {status})")
            return
        self.state = SolState.ACTIVE
        self._events.append(Started())

    def _on_data(self, frame: Frame, now: float) -> None:
        data = decode_data(frame)
        if data:
            self._events.append(HostOutput(data))

    def _on_controls(self, frame: Frame, now: float) -> None:
        self._events.append(HostControls(*decode_controls_from_host(frame)))

    def _on_end_reply(self, frame: Frame, now: float) -> None:
        self.state = SolState.ENDED
        self._events.append(SolEnded("ended by the console"))

    _table = {
        (SolState.AWAIT_START_REPLY, T.SOL_START_REPLY): _on_start_reply,
        (SolState.AWAIT_START_REPLY, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.ACTIVE, T.SOL_DATA_FROM_HOST): _on_data,
        (SolState.ACTIVE, T.SOL_CONTROLS_FROM_HOST): _on_controls,
        (SolState.ACTIVE, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.ACTIVE, T.SOL_KEEPALIVE_PONG): _Machine._ignore,
        (SolState.AWAIT_END_REPLY, T.SOL_END_REPLY): _on_end_reply,
        (SolState.AWAIT_END_REPLY, T.SOL_DATA_FROM_HOST): _Machine._ignore,
        (SolState.AWAIT_END_REPLY, T.SOL_CONTROLS_FROM_HOST): _Machine._ignore,
        (SolState.AWAIT_END_REPLY, T.SOL_HEARTBEAT): _Machine._ignore,
        (SolState.AWAIT_END_REPLY, T.SOL_KEEPALIVE_PONG): _Machine._ignore,
    }
