"""IDE-R (storage redirection, tag ``IDER``): the message codec and both ends of the session.

The console serves images; AMT presents them to the host as an ATAPI floppy (master) and CD-ROM (slave) and
forwards every packet command the host writes (AMT-PROTOCOLS.md §4.4).  All messages start with the same
8-byte header: type, two zero bytes, attributes (bit 1 "command completed", bit 0 DMA) and a little-endian
u32 sequence number.  AMT numbers its messages 0, 1, 2... and consoles stop on a gap (MeshCommander does); the
console numbers its own from 0 too, and AMT does not check them.

Theory of operation, console side (:class:`IderConsole`, runs after the session manager logged in)::

    IDLE          --start()-->  AWAIT_OPEN     sends START_IDER (0x40: timeouts, heartbeat, version 1)
    AWAIT_OPEN    --0x41-->     AWAIT_ENABLE   checks the buffer sizes, sends 0x48 "set" (enable | start mode)
    AWAIT_ENABLE  --0x49 set, value 1--> RUNNING (Enabled event);  any other value --> CLOSED (Refused)
    RUNNING       --0x50--> the drive answers (scsi.ScsiDrive): 0x51, or 0x54 chunks of at most the read
                            buffer size, the last one marked completed and carrying the status
                  --0x46--> the rest of a transfer is dropped, 0x47 answers
                  --0x44--> 0x45       --0x4B/0x45/0x4A--> noted
    any state     --0x43 or end()--> CLOSED

Theory of operation, AMT side (:class:`IderHost`, what the host's ATAPI channel sees)::

    AWAIT_START   --0x40-->  OPEN   replies 0x41 (protocol 1.0, read/write buffer sizes)
    OPEN          --0x48-->  replies 0x49; "set" enables or disables the drives (DrivesEnabled event)
                  submit()   sends COMMAND_WRITTEN (0x50), one command at a time; 0x54 data is gathered (never
                             more than the command asked for) until a completed 0x54 or a 0x51 ends it
                             (CommandCompleted event); a 0x52 is answered with the command's write data (0x53)
                  reset()    drops the command in flight, sends 0x46; 0x47 ends the reset (ResetSeen)
                  heartbeat() a 0x4B at the interval the console asked for
                  --0x42-->  replies 0x43, CLOSED

Both machines are sans-I/O: frames in (from :class:`~.frames.FrameDecoder` via the session manager), bytes out
from :meth:`data_to_send`.  A message that breaks the protocol raises :class:`~.frames.ProtocolError`; the
session layer closes the session on it.  Streaming is lazy: :meth:`IderConsole.data_to_send` reads the medium
one chunk at a time up to a byte budget, so a 128 MB READ(10) never sits in memory.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .frames import MAX_DATA, Frame, MessageType, ProtocolError
from .scsi import GOOD, DriveKind, Outcome, ScsiDrive, Sense

T = MessageType
HEADER: Final = struct.Struct("<BBBBI")
ATTR_DMA: Final = 0x01
ATTR_COMPLETED: Final = 0x02

PROTOCOL_VERSION: Final = 1
"""START_IDER version field and the protocol major version of the reply."""
DEFAULT_BUFFER: Final = 8192
"""Read/write buffer size AMT advertises; MeshCommander refuses anything larger (§4.4)."""
MAX_CHUNK: Final = MAX_DATA - 1
"""The largest 0x54 payload a u16 length can carry, kept even (ATAPI transfers words)."""
INTEL_IANA: Final = 343
"""Intel's IANA enterprise number, the OEM IANA of the START_IDER reply."""

# ATA task-file conventions of the register blocks (AMTT RedirectionConstants.h, ider.c)
MASK_INTERRUPT: Final = 0x01
MASK_ERROR: Final = 0x02
MASK_SECTOR_COUNT: Final = 0x04
MASK_SECTOR_NUMBER: Final = 0x08
MASK_BYTE_COUNT_LSB: Final = 0x10
MASK_BYTE_COUNT_MSB: Final = 0x20
MASK_DRIVE_SELECT: Final = 0x40
MASK_STATUS: Final = 0x80
STATUS_ERR: Final = 0x01
STATUS_DRQ: Final = 0x08
STATUS_DSC: Final = 0x10
STATUS_DRDY: Final = 0x40
REASON_CD: Final = 0x01
REASON_IO: Final = 0x02
ATA_PACKET: Final = 0xA0
"""The only ATA command that reaches the console: PACKET, carrying a SCSI CDB."""


class FeatureRequest(enum.IntEnum):
    """Type byte of DISABLE_ENABLE_FEATURES (0x48) and its reply."""

    GET_SUPPORTED = 1
    GET_STATE = 2
    SET_STATE = 3


class StartMode(enum.IntEnum):
    """When the drives appear to the host, OR-ed with the enable bit 0x01 in a SET_STATE request."""

    ON_REBOOT = 0x08
    GRACEFUL = 0x10
    NOW = 0x18


FEATURE_ENABLE: Final = 0x01
START_MODE_MASK: Final = 0x18
STATE_ENABLED: Final = 0x02
"""Bit of the GET_STATE reply value: the drives are attached."""


_REGISTERS: Final = struct.Struct("<BBBBHBB")
_COMMAND: Final = struct.Struct("<BBBBHBB12s")


def header(mtype: MessageType, seq: int, attributes: int = 0) -> bytes:
    return HEADER.pack(mtype, 0, 0, attributes, seq & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Registers:
    """One ATA register block of a 0x51/0x54 message: which registers are valid (``mask``) and their values."""

    mask: int = 0
    error: int = 0
    sector_count: int = 0
    sector_number: int = 0
    byte_count: int = 0
    drive_select: int = 0
    status: int = 0

    def encode(self) -> bytes:
        return _REGISTERS.pack(self.mask, self.error, self.sector_count, self.sector_number, self.byte_count,
                                self.drive_select, self.status)

    @classmethod
    def decode(cls, data: bytes, offset: int) -> Registers:
        return cls(*_REGISTERS.unpack_from(data, offset))

    @classmethod
    def completion(cls, drive: DriveKind, sense: Sense) -> Registers:
        """The end-of-command block: interrupt reason "status phase" (C/D and I/O), DRDY|DSC, and on a check
        condition ERR with the sense key in the upper nibble of the error register."""
        mask = MASK_INTERRUPT | MASK_SECTOR_COUNT | MASK_DRIVE_SELECT | MASK_STATUS
        status = STATUS_DRDY | STATUS_DSC
        if sense.ok:
            return cls(mask, 0, REASON_CD | REASON_IO, 0, 0, drive.value, status)
        return cls(mask | MASK_ERROR, sense.key << 4, REASON_CD | REASON_IO, 0, 0, drive.value, status | STATUS_ERR)

    @classmethod
    def data_phase(cls, drive: DriveKind, length: int, dma: bool) -> Registers:
        """The data-in block of a 0x54: DRQ raised, interrupt reason I/O, byte count for PIO transfers."""
        mask = (MASK_INTERRUPT | MASK_SECTOR_COUNT | MASK_STATUS | MASK_DRIVE_SELECT
                | MASK_BYTE_COUNT_LSB | MASK_BYTE_COUNT_MSB)
        return cls(mask, 0, REASON_IO, 0, 0 if dma else length, drive.value, STATUS_DRDY | STATUS_DSC | STATUS_DRQ)


# ---------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class StartIder:
    """0x40 (18 bytes): the console's timeouts (ms) and the heartbeat interval it wants from AMT."""

    rx_timeout: int = 30000
    tx_timeout: int = 0
    heartbeat: int = 20000
    version: int = PROTOCOL_VERSION

    def encode(self, seq: int) -> bytes:
        return header(T.IDER_START, seq) + struct.pack("<HHHI", self.rx_timeout, self.tx_timeout, self.heartbeat,
                                                       self.version)

    @classmethod
    def decode(cls, data: bytes) -> StartIder:
        return cls(*struct.unpack_from("<HHHI", data, 8))


@dataclass(frozen=True, slots=True)
class StartIderReply:
    """0x41 (30 + OEM data): versions and the buffer sizes the console must respect."""

    read_buffer: int = DEFAULT_BUFFER
    write_buffer: int = DEFAULT_BUFFER
    protocol: tuple[int, int] = (PROTOCOL_VERSION, 0)
    firmware: tuple[int, int] = (1, 0)
    features: int = 0
    oem_iana: int = INTEL_IANA
    oem_data: bytes = b""

    def encode(self, seq: int) -> bytes:
        if len(self.oem_data) > 255:
            raise ValueError("OEM data is at most 255 bytes")
        body = bytearray(22)
        body[0:4] = bytes([*self.protocol, *self.firmware])
        struct.pack_into("<HH", body, 8, self.read_buffer, self.write_buffer)
        body[13] = self.features
        struct.pack_into("<I", body, 17, self.oem_iana)
        body[21] = len(self.oem_data)
        return header(T.IDER_START_REPLY, seq) + bytes(body) + self.oem_data

    @classmethod
    def decode(cls, data: bytes) -> StartIderReply:
        read_buffer, write_buffer = struct.unpack_from("<HH", data, 16)
        return cls(read_buffer, write_buffer, (data[8], data[9]), (data[10], data[11]), data[21],
                   struct.unpack_from("<I", data, 25)[0], bytes(data[30 : 30 + data[29]]))


def encode_features(mtype: MessageType, seq: int, request: FeatureRequest, value: int = 0) -> bytes:
    """0x48 (console asks) or 0x49 (AMT answers): 13 bytes, type + u32 value."""
    return header(mtype, seq) + struct.pack("<BI", request, value)


def decode_features(data: bytes) -> tuple[int, int]:
    kind, value = struct.unpack_from("<BI", data, 8)
    return kind, value


@dataclass(frozen=True, slots=True)
class CommandWritten:
    """0x50 (28 bytes): the task file the host wrote and the 12-byte packet of an ATA PACKET command."""

    drive: DriveKind
    packet: bytes
    dma: bool = True
    byte_count: int = 0xFFFE
    command: int = ATA_PACKET

    def encode(self, seq: int) -> bytes:
        return header(T.IDER_COMMAND_WRITTEN, seq) + _COMMAND.pack(
            0, 1 if self.dma else 0, 0, 0, self.byte_count, self.drive.value, self.command,
            bytes(self.packet[:12]).ljust(12, b"\0"))

    @classmethod
    def decode(cls, data: bytes) -> CommandWritten:
        _cable, feature, _count, _number, byte_count, drive_select, command, packet = _COMMAND.unpack_from(data, 8)
        return cls(DriveKind.from_drive_select(drive_select), packet, bool(feature & 1), byte_count, command)


def encode_command_end(seq: int, drive: DriveKind, sense: Sense) -> bytes:
    """0x51 (31 bytes): completion without data, or a check condition with its sense bytes."""
    return (header(T.IDER_COMMAND_END_RESPONSE, seq, ATTR_COMPLETED) + bytes(12)
            + Registers.completion(drive, sense).encode() + bytes([sense.key, sense.asc, sense.ascq]))


_DATA_HEADER: Final = struct.Struct("<BHB8s8sBBB3x")


def encode_data_to_host(seq: int, drive: DriveKind, data: bytes, *, dma: bool, completed: bool,
                        sense: Sense = GOOD) -> bytes:
    """0x54: a chunk of data for the host (34-byte header); the last chunk also carries the completion."""
    output = Registers.completion(drive, sense).encode() if completed else bytes(8)
    status = bytes([sense.key, sense.asc, sense.ascq]) if completed else bytes(3)
    attributes = (ATTR_COMPLETED if completed else 0) | (ATTR_DMA if dma else 0)
    return (header(T.IDER_DATA_TO_HOST, seq, attributes)
            + _DATA_HEADER.pack(0, len(data), 0, Registers.data_phase(drive, len(data), dma).encode(), output,
                                *status)
            + data)


def encode_get_data_from_host(seq: int, drive: DriveKind, length: int) -> bytes:
    """0x52 (31 bytes): the console asks for up to ``length`` bytes of write data."""
    regs = Registers(MASK_STATUS, 0, 0, 0, length, drive.value, STATUS_DRDY | STATUS_DSC | STATUS_DRQ)
    return header(T.IDER_GET_DATA_FROM_HOST, seq) + struct.pack("<BHB", 0, length, 0) + regs.encode() + bytes(11)


def encode_data_from_host(seq: int, data: bytes) -> bytes:
    """0x53 (14 + length): write data from the host."""
    return header(T.IDER_DATA_FROM_HOST, seq) + struct.pack("<BH3x", 0, len(data)) + data


def encode_plain(mtype: MessageType, seq: int) -> bytes:
    """The 8-byte messages: end and its reply, keep-alive ping/pong, heartbeat, reset response."""
    return header(mtype, seq)


def encode_reset_occurred(seq: int, mask: int = 0x01) -> bytes:
    return header(T.IDER_RESET_OCCURRED, seq) + bytes([mask])


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Opened:
    """Console side: AMT answered START_IDER."""

    reply: StartIderReply


@dataclass(frozen=True, slots=True)
class Enabled:
    """Console side: AMT accepted the drives with the requested start mode."""

    start_mode: StartMode


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class CommandServed:
    """Console side: one packet command answered (for progress reporting)."""

    drive: DriveKind
    cdb: bytes
    sense: Sense
    length: int


@dataclass(frozen=True, slots=True)
class ResetSeen:
    """Either side: an ATA reset happened (console: answered; host: the console acknowledged it)."""

    mask: int


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """Console side: AMT sent ERROR_OCCURRED (0x4A); byte 8 carries its code."""

    code: int


@dataclass(frozen=True, slots=True)
class Closed:
    reason: str


@dataclass(frozen=True, slots=True)
class ConsoleOpened:
    """AMT side: the console started IDE-R."""

    request: StartIder


@dataclass(frozen=True, slots=True)
class DrivesEnabled:
    """AMT side: the console attached (``enabled``) or detached its drives; ``start_mode`` says when."""

    enabled: bool
    start_mode: StartMode | None


@dataclass(frozen=True, slots=True)
class CommandCompleted:
    """AMT side: the command in flight ended: its sense (GOOD on success) and the data read."""

    drive: DriveKind
    cdb: bytes
    sense: Sense
    data: bytes
    aborted: bool = False


IderEvent = (Opened | Enabled | Refused | CommandServed | ResetSeen | ErrorReported | Closed | ConsoleOpened
             | DrivesEnabled | CommandCompleted)


class _Side:
    """What both ends share: outgoing sequence numbers, the output and event queues, the state."""

    def __init__(self) -> None:
        self._seq = 0
        self._out: list[bytes] = []
        self._events: list[IderEvent] = []
        self.closed = False

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _emit(self, event: IderEvent) -> None:
        self._events.append(event)

    def events(self) -> list[IderEvent]:
        out, self._events = self._events, []
        return out

    def _close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._emit(Closed(reason))


# ---------------------------------------------------------------------------------------------- console


class ConsoleState(enum.Enum):
    IDLE = "idle"
    AWAIT_OPEN = "await-open"
    AWAIT_ENABLE = "await-enable"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(slots=True)
class _Transfer:
    """A READ being streamed: where the rest of the medium range starts and how much of it is left."""

    drive: ScsiDrive
    offset: int
    remaining: int
    dma: bool


@dataclass(slots=True)
class Counters:
    commands: int = 0
    reads: int = 0
    bytes_to_host: int = 0
    errors: int = 0
    resets: int = 0


class IderConsole(_Side):
    """The console end: serves ``floppy`` and/or ``cdrom`` drives (:class:`~.scsi.ScsiDrive`) to AMT."""

    def __init__(self, *, floppy: ScsiDrive | None = None, cdrom: ScsiDrive | None = None,
                 start_mode: StartMode = StartMode.NOW, request: StartIder | None = None,
                 max_buffer: int = MAX_CHUNK) -> None:
        super().__init__()
        self.drives = {DriveKind.FLOPPY: floppy or ScsiDrive(DriveKind.FLOPPY),
                       DriveKind.CDROM: cdrom or ScsiDrive(DriveKind.CDROM)}
        self.start_mode = start_mode
        self.request = request or StartIder()
        self.max_buffer = max_buffer
        """The largest read buffer this console accepts from AMT (MeshCommander: 8192)."""
        self.state = ConsoleState.IDLE
        self.amt: StartIderReply | None = None
        self.counters = Counters()
        self._expected_seq = 0
        self._chunk = DEFAULT_BUFFER
        self._transfer: _Transfer | None = None

    def start(self) -> None:
        if self.state is not ConsoleState.IDLE:
            raise RuntimeError(f"cannot start in state {self.state.value}")
        self._out.append(self.request.encode(self._next_seq()))
        self.state = ConsoleState.AWAIT_OPEN

    def end(self) -> None:
        """Ask AMT to end IDE-R (0x42); its 0x43 closes the session."""
        if self.state not in (ConsoleState.IDLE, ConsoleState.CLOSED):
            self._transfer = None
            self._out.append(encode_plain(T.IDER_END, self._next_seq()))

    def heartbeat(self) -> None:
        """A 0x4B towards AMT, so its receive timeout does not expire while the host is idle."""
        if self.state is ConsoleState.RUNNING:
            self._out.append(encode_plain(T.IDER_HEARTBEAT, self._next_seq()))

    @property
    def streaming(self) -> bool:
        """A read is being sent: :meth:`data_to_send` has more to give."""
        return self._transfer is not None

    def data_to_send(self, budget: int = 256 * 1024) -> list[bytes]:
        """Queued messages, then chunks of the current read until about ``budget`` bytes are out."""
        out, self._out = self._out, []
        sent = sum(len(m) for m in out)
        while self._transfer is not None and sent < budget:
            chunk = self._next_chunk(self._transfer)
            out.append(chunk)
            sent += len(chunk)
        return out

    def _next_chunk(self, transfer: _Transfer) -> bytes:
        length = min(self._chunk, transfer.remaining)
        medium = transfer.drive.medium
        assert medium is not None  # a read was only planned with a medium present
        data = medium.read(transfer.offset, length)
        if len(data) != length:
            raise ProtocolError(f"the image gave {len(data)} bytes where {length} were asked")  # a shrunk file
        transfer.offset += length
        transfer.remaining -= length
        last = transfer.remaining == 0
        if last:
            self._transfer = None
        self.counters.bytes_to_host += length
        return encode_data_to_host(self._next_seq(), transfer.drive.kind, data, dma=transfer.dma, completed=last)

    # ------------------------------------------------------------------------------------------ input

    def receive(self, frame: Frame) -> None:
        """One IDE-R frame from AMT."""
        if self.state is ConsoleState.CLOSED:
            return
        if frame.seq != self._expected_seq:
            raise ProtocolError(f"AMT sequence number {frame.seq}, expected {self._expected_seq}")
        self._expected_seq += 1
        handler = _CONSOLE_HANDLERS.get((self.state, frame.type)) or _CONSOLE_ANY_STATE.get(frame.type)
        if handler is None:
            raise ProtocolError(f"{frame.type.name} not expected in IDE-R state {self.state.value}")
        handler(self, frame)

    def _on_open(self, frame: Frame) -> None:
        reply = StartIderReply.decode(frame.data)
        self.amt = reply
        if reply.features != 0:
            self._refuse(f"unknown IDE-R protocol variant {reply.features}")
            return
        if not 512 <= reply.read_buffer <= self.max_buffer:
            self._refuse(f"read buffer of {reply.read_buffer} bytes is outside 512..{self.max_buffer}")
            return
        self._chunk = reply.read_buffer & ~1
        self._emit(Opened(reply))
        self._request_enable()

    def _request_enable(self) -> None:
        self._out.append(encode_features(T.IDER_DISABLE_ENABLE_FEATURES, self._next_seq(), FeatureRequest.SET_STATE,
                                         FEATURE_ENABLE | self.start_mode))
        self.state = ConsoleState.AWAIT_ENABLE

    def _on_features(self, frame: Frame) -> None:
        kind, value = decode_features(frame.data)
        if kind == FeatureRequest.SET_STATE and self.state is ConsoleState.AWAIT_ENABLE:
            if value != 1:
                self._refuse(f"AMT refused to attach the drives (value {value})")
                return
            self.state = ConsoleState.RUNNING
            self._emit(Enabled(self.start_mode))
        elif kind == FeatureRequest.GET_SUPPORTED and value & 1 and self.state is ConsoleState.AWAIT_ENABLE:
            self._request_enable()

    def _refuse(self, reason: str) -> None:
        self._emit(Refused(reason))
        self._out.append(encode_plain(T.IDER_END, self._next_seq()))
        self.state = ConsoleState.CLOSED
        self._close(reason)

    def _on_command(self, frame: Frame) -> None:
        command = CommandWritten.decode(frame.data)
        if self._transfer is not None:
            raise ProtocolError("a packet command arrived while the previous one was still transferring data")
        if command.command != ATA_PACKET:
            raise ProtocolError(f"ATA command 0x{command.command:02X} is not PACKET")
        drive = self.drives[command.drive]
        outcome = drive.execute(command.packet)
        self.counters.commands += 1
        if not outcome.sense.ok:
            self.counters.errors += 1
        self._emit(CommandServed(command.drive, command.packet, outcome.sense, outcome.transfer_length))
        self._answer(drive, command, outcome)

    def _answer(self, drive: ScsiDrive, command: CommandWritten, outcome: Outcome) -> None:
        if outcome.read_length:
            self.counters.reads += 1
            self._transfer = _Transfer(drive, outcome.read_offset, outcome.read_length, command.dma)
        elif outcome.data:
            self.counters.bytes_to_host += len(outcome.data)
            self._out.append(encode_data_to_host(self._next_seq(), drive.kind, outcome.data, dma=command.dma,
                                                 completed=True))
        else:
            self._out.append(encode_command_end(self._next_seq(), drive.kind, outcome.sense))

    def _on_reset(self, frame: Frame) -> None:
        self._transfer = None  # the host reset its channel: the rest of the read is not wanted any more
        self.counters.resets += 1
        self._out.append(encode_plain(T.IDER_RESET_OCCURRED_RESPONSE, self._next_seq()))
        self._emit(ResetSeen(frame.data[8]))

    def _on_ping(self, frame: Frame) -> None:
        self._out.append(encode_plain(T.IDER_KEEPALIVE_PONG, self._next_seq()))

    def _on_error(self, frame: Frame) -> None:
        self._emit(ErrorReported(frame.data[8]))

    def _on_noted(self, frame: Frame) -> None:
        """Heartbeats and pongs only prove AMT is alive."""

    def _on_end_reply(self, frame: Frame) -> None:
        self._transfer = None
        self.state = ConsoleState.CLOSED
        self._close("ended")


_ConsoleHandler = Callable[[IderConsole, Frame], None]
_CONSOLE_HANDLERS: Final[dict[tuple[ConsoleState, MessageType], _ConsoleHandler]] = {
    (ConsoleState.AWAIT_OPEN, T.IDER_START_REPLY): IderConsole._on_open,
    (ConsoleState.AWAIT_ENABLE, T.IDER_DISABLE_ENABLE_FEATURES_REPLY): IderConsole._on_features,
    (ConsoleState.RUNNING, T.IDER_DISABLE_ENABLE_FEATURES_REPLY): IderConsole._on_features,
    (ConsoleState.RUNNING, T.IDER_COMMAND_WRITTEN): IderConsole._on_command,
    (ConsoleState.RUNNING, T.IDER_RESET_OCCURRED): IderConsole._on_reset,
    (ConsoleState.AWAIT_ENABLE, T.IDER_RESET_OCCURRED): IderConsole._on_reset,
}
_CONSOLE_ANY_STATE: Final[dict[MessageType, _ConsoleHandler]] = {
    T.IDER_KEEPALIVE_PING: IderConsole._on_ping,
    T.IDER_KEEPALIVE_PONG: IderConsole._on_noted,
    T.IDER_HEARTBEAT: IderConsole._on_noted,
    T.IDER_ERROR_OCCURRED: IderConsole._on_error,
    T.IDER_END_REPLY: IderConsole._on_end_reply,
}


# ---------------------------------------------------------------------------------------------- AMT side


class HostState(enum.Enum):
    AWAIT_START = "await-start"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(slots=True)
class _Command:
    written: CommandWritten
    expect: int
    write_data: bytes = b""
    received: bytearray = field(default_factory=bytearray)


class IderHost(_Side):
    """The AMT end: answers the console's session messages and carries the host's packet commands to it.

    ``read_buffer`` is advertised in the START_IDER reply; the default (8 KiB) is what MeshCommander accepts.
    """

    def __init__(self, *, read_buffer: int = DEFAULT_BUFFER, write_buffer: int = DEFAULT_BUFFER) -> None:
        super().__init__()
        self.reply = StartIderReply(read_buffer, write_buffer)
        self.state = HostState.AWAIT_START
        self.console: StartIder | None = None
        self.enabled = False
        self.start_mode: StartMode | None = None
        self.resetting = False
        self._command: _Command | None = None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    @property
    def busy(self) -> bool:
        """A command is in flight or a reset is being acknowledged: :meth:`submit` must wait."""
        return self._command is not None or self.resetting

    # ------------------------------------------------------------------------------------------ host actions

    def submit(self, drive: DriveKind, packet: bytes, expect: int, *, write_data: bytes = b"",
               dma: bool = True) -> None:
        """Send one packet command; ``expect`` is the most data the host accepts for it (allocation length
        or blocks x block size): more is a protocol error, so a console cannot make us buffer without end."""
        if self.state is not HostState.OPEN or not self.enabled:
            raise RuntimeError("the IDE-R drives are not attached")
        if self.busy:
            raise RuntimeError("one packet command at a time")
        written = CommandWritten(drive, packet, dma)
        self._command = _Command(written, expect, write_data)
        self._out.append(written.encode(self._next_seq()))

    def reset(self, mask: int = 0x01) -> CommandCompleted | None:
        """The host reset its ATA channel: the command in flight is dropped (returned, marked aborted)."""
        if self.state is not HostState.OPEN:
            raise RuntimeError("IDE-R is not open")
        dropped = self._finish(GOOD, aborted=True) if self._command is not None else None
        self.resetting = True
        self._out.append(encode_reset_occurred(self._next_seq(), mask))
        return dropped

    def heartbeat(self) -> None:
        if self.state is HostState.OPEN:
            self._out.append(encode_plain(T.IDER_HEARTBEAT, self._next_seq()))

    def close(self, reason: str = "closed") -> None:
        self.state = HostState.CLOSED
        if self._command is not None:
            self._finish(GOOD, aborted=True)
        self._close(reason)

    # ------------------------------------------------------------------------------------------ input

    def receive(self, frame: Frame) -> None:
        """One IDE-R frame from the console."""
        if self.state is HostState.CLOSED:
            return
        if self.state is HostState.AWAIT_START:
            if frame.type is not T.IDER_START:
                raise ProtocolError(f"{frame.type.name} before START_IDER")
            self._on_start(frame)
            return
        handler = _HOST_HANDLERS.get(frame.type)
        if handler is None:
            raise ProtocolError(f"{frame.type.name} not expected from an IDE-R console")
        handler(self, frame)

    def _on_start(self, frame: Frame) -> None:
        request = StartIder.decode(frame.data)
        if request.version != PROTOCOL_VERSION:
            raise ProtocolError(f"IDE-R protocol version {request.version} is not supported")
        self.console = request
        self.state = HostState.OPEN
        self._out.append(self.reply.encode(self._next_seq()))
        self._emit(ConsoleOpened(request))

    def _on_features(self, frame: Frame) -> None:
        kind, value = decode_features(frame.data)
        if kind == FeatureRequest.GET_SUPPORTED:
            answer = FEATURE_ENABLE
        elif kind == FeatureRequest.GET_STATE:
            answer = STATE_ENABLED if self.enabled else 0
        elif kind == FeatureRequest.SET_STATE:
            answer = self._set_state(value)
        else:
            raise ProtocolError(f"DISABLE_ENABLE_FEATURES type {kind} is unknown")
        self._out.append(encode_features(T.IDER_DISABLE_ENABLE_FEATURES_REPLY, self._next_seq(), FeatureRequest(kind),
                                         answer))

    def _set_state(self, value: int) -> int:
        if not value & FEATURE_ENABLE:
            if self._command is not None:
                self._finish(GOOD, aborted=True)
            self.enabled, self.start_mode = False, None
            self._emit(DrivesEnabled(False, None))
            return 1
        mode = value & START_MODE_MASK
        if mode not in StartMode._value2member_map_ or value & ~(FEATURE_ENABLE | START_MODE_MASK):
            return 0  # an unknown start mode or bit: refused, the drives stay as they were
        self.enabled, self.start_mode = True, StartMode(mode)
        self._emit(DrivesEnabled(True, self.start_mode))
        return 1

    def _on_data_to_host(self, frame: Frame) -> None:
        command = self._in_flight(frame)
        if command is None:
            return
        data = frame.data
        payload = memoryview(data)[34:]
        if len(command.received) + len(payload) > command.expect:
            raise ProtocolError(f"the console sent more than the {command.expect} bytes the command asked for")
        command.received += payload
        if data[3] & ATTR_COMPLETED:
            self._finish(self._sense(data, 8 + 4 + 8))

    def _on_command_end(self, frame: Frame) -> None:
        if self._in_flight(frame) is None:
            return
        self._finish(self._sense(frame.data, 8 + 4 + 8))

    @staticmethod
    def _sense(data: bytes, output_at: int) -> Sense:
        """The status of a completion: the sense bytes after the output registers; an ERR status without a
        sense key still fails (with the key from the error register)."""
        regs = Registers.decode(data, output_at)
        key, asc, ascq = data[output_at + 8 : output_at + 11]
        if regs.status & STATUS_ERR and not key:
            key = (regs.error >> 4) or 0x04  # no key given: call it a hardware error
        return Sense(key, asc, ascq) if key else GOOD

    def _on_get_data(self, frame: Frame) -> None:
        command = self._in_flight(frame)
        if command is None:
            return
        wanted = int.from_bytes(frame.data[9:11], "little")
        if not command.write_data:
            raise ProtocolError("the console asked for write data, but the command writes nothing")
        chunk, command.write_data = command.write_data[:wanted], command.write_data[wanted:]
        self._out.append(encode_data_from_host(self._next_seq(), chunk))

    def _in_flight(self, frame: Frame) -> _Command | None:
        """The command a data or completion message belongs to; None for a late one our reset made moot."""
        if self._command is None:
            if self.resetting:
                return None
            raise ProtocolError(f"{frame.type.name} without a command in flight")
        return self._command

    def _finish(self, sense: Sense, *, aborted: bool = False) -> CommandCompleted:
        command = self._command
        assert command is not None
        self._command = None
        done = CommandCompleted(command.written.drive, command.written.packet, sense, bytes(command.received),
                                aborted)
        if not aborted:
            self._emit(done)
        return done

    def _on_reset_response(self, frame: Frame) -> None:
        if not self.resetting:
            raise ProtocolError("RESET_OCCURRED_RESPONSE without a reset")
        self.resetting = False
        self._emit(ResetSeen(0))

    def _on_end(self, frame: Frame) -> None:
        self._out.append(encode_plain(T.IDER_END_REPLY, self._next_seq()))
        self.close("ended by the console")

    def _on_noted(self, frame: Frame) -> None:
        """Pongs and heartbeats only prove the console is alive."""


_HOST_HANDLERS: Final[dict[MessageType, Callable[[IderHost, Frame], None]]] = {
    T.IDER_DISABLE_ENABLE_FEATURES: IderHost._on_features,
    T.IDER_DATA_TO_HOST: IderHost._on_data_to_host,
    T.IDER_COMMAND_END_RESPONSE: IderHost._on_command_end,
    T.IDER_GET_DATA_FROM_HOST: IderHost._on_get_data,
    T.IDER_RESET_OCCURRED_RESPONSE: IderHost._on_reset_response,
    T.IDER_END: IderHost._on_end,
    T.IDER_KEEPALIVE_PONG: IderHost._on_noted,
    T.IDER_HEARTBEAT: IderHost._on_noted,
}

__all__ = [
    "ATTR_COMPLETED",
    "ATTR_DMA",
    "DEFAULT_BUFFER",
    "Closed",
    "CommandCompleted",
    "CommandServed",
    "CommandWritten",
    "ConsoleOpened",
    "ConsoleState",
    "Counters",
    "DrivesEnabled",
    "Enabled",
    "ErrorReported",
    "FeatureRequest",
    "HostState",
    "IderConsole",
    "IderEvent",
    "IderHost",
    "Opened",
    "Refused",
    "Registers",
    "ResetSeen",
    "StartIder",
    "StartIderReply",
    "StartMode",
    "decode_features",
    "encode_command_end",
    "encode_data_from_host",
    "encode_data_to_host",
    "encode_features",
    "encode_get_data_from_host",
    "encode_plain",
    "encode_reset_occurred",
    "header",
]
