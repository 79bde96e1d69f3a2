"""The server end of the NBD protocol (fixed newstyle handshake, simple replies), sans-I/O, read-only.

NBD is how QEMU reads a remote block device; the engine serves the IDE-R session's media to its VM this way.
Theory of operation (:class:`NbdServerConnection`)::

    GREETING   sent on start(): NBDMAGIC IHAVEOPT + flags (FIXED_NEWSTYLE, NO_ZEROES)
    FLAGS      the client's 32-bit flags (it must speak fixed newstyle)
    OPTIONS    IHAVEOPT + option + length + data, answered with option replies:
               LIST -> the export names; INFO/GO -> ExportRequested (the caller looks the export up, which may
               take a while -- for IDE-R it asks the console -- and answers with export_ready() or
               export_missing()); EXPORT_NAME (old style) the same, without a reply header; ABORT ends;
               anything else (STARTTLS, STRUCTURED_REPLY, meta contexts) is "unsupported"
    WAITING    options paused until the caller answers ExportRequested
    TRANSMIT   requests: READ -> ReadRequested (answered with reply_read() or reply_error()); WRITE, TRIM,
               WRITE_ZEROES -> EPERM (the export is read-only; the payload is skipped); FLUSH, CACHE -> done;
               DISC -> Disconnected; others -> EINVAL
    CLOSED     after ABORT, DISC, a refused EXPORT_NAME or a protocol error

Hostile input: option data, write payloads and read lengths are capped before anything is buffered or
allocated; a violation raises :class:`NbdProtocolError` (the caller closes the connection).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from .buffer import ReceiveBuffer

NBDMAGIC: Final = b"NBDMAGIC"
IHAVEOPT: Final = b"IHAVEOPT"
OPTION_REPLY_MAGIC: Final = 0x3E889045565A9
REQUEST_MAGIC: Final = 0x25609513
SIMPLE_REPLY_MAGIC: Final = 0x67446698

FLAG_FIXED_NEWSTYLE: Final = 1
FLAG_NO_ZEROES: Final = 2
CLIENT_FLAG_FIXED_NEWSTYLE: Final = 1
CLIENT_FLAG_NO_ZEROES: Final = 2

TRANSMISSION_HAS_FLAGS: Final = 1 << 0
TRANSMISSION_READ_ONLY: Final = 1 << 1
TRANSMISSION_SEND_FLUSH: Final = 1 << 2

INFO_EXPORT: Final = 0
INFO_BLOCK_SIZE: Final = 3

MAX_OPTION_DATA: Final = 16 * 1024
"""Longest option payload accepted (export names are at most 4096 bytes)."""
MAX_WRITE_SKIP: Final = 32 * 1024 * 1024
"""Largest write payload skipped (NBD's own limit for a request); longer is a protocol error."""
REQUEST_SIZE: Final = 28
MAX_BUFFERED: Final = MAX_OPTION_DATA + 64 * REQUEST_SIZE
"""Unprocessed client bytes tolerated: an option, or pipelined requests while an export lookup runs."""
_OPTION_HEADER: Final = struct.Struct(">8sII")
_REQUEST: Final = struct.Struct(">IHHQQI")


class Option(enum.IntEnum):
    EXPORT_NAME = 1
    ABORT = 2
    LIST = 3
    STARTTLS = 5
    INFO = 6
    GO = 7
    STRUCTURED_REPLY = 8
    LIST_META_CONTEXT = 9
    SET_META_CONTEXT = 10


class Reply(enum.IntEnum):
    ACK = 1
    SERVER = 2
    INFO = 3
    ERR_UNSUP = (1 << 31) + 1
    ERR_POLICY = (1 << 31) + 2
    ERR_INVALID = (1 << 31) + 3
    ERR_UNKNOWN = (1 << 31) + 6


class Command(enum.IntEnum):
    READ = 0
    WRITE = 1
    DISC = 2
    FLUSH = 3
    TRIM = 4
    CACHE = 5
    WRITE_ZEROES = 6
    BLOCK_STATUS = 7


class Errno(enum.IntEnum):
    EPERM = 1
    EIO = 5
    ENOMEM = 12
    EINVAL = 22
    ENOSPC = 28
    EOVERFLOW = 75
    ENOTSUP = 95
    ESHUTDOWN = 108


class NbdProtocolError(Exception):
    """The client broke the protocol; the connection must be closed."""


class State(enum.Enum):
    FLAGS = "flags"
    OPTIONS = "options"
    WAITING = "waiting"
    TRANSMIT = "transmit"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Export:
    """What a client is told about an export."""

    size: int
    min_block: int = 1
    preferred_block: int = 4096
    max_block: int = 1024 * 1024
    """The longest read the server answers (longer ones get EINVAL)."""


@dataclass(frozen=True, slots=True)
class ExportRequested:
    name: str


@dataclass(frozen=True, slots=True)
class ReadRequested:
    handle: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


NbdEvent = ExportRequested | ReadRequested | Disconnected


@dataclass(slots=True)
class _PendingExport:
    option: Option
    name: str
    wants_block_size: bool


class NbdServerConnection:
    """One client connection; ``exports`` are the names NBD_OPT_LIST announces."""

    def __init__(self, exports: tuple[str, ...] = ()) -> None:
        self.exports = exports
        self.state = State.FLAGS
        self.export: Export | None = None
        self.export_name: str | None = None
        self._no_zeroes = False
        self._buf = ReceiveBuffer()
        self._out: list[bytes] = []
        self._events: list[NbdEvent] = []
        self._pending: _PendingExport | None = None
        self._skip = 0

    # ------------------------------------------------------------------------------------------ I/O

    def start(self) -> None:
        self._out.append(NBDMAGIC + IHAVEOPT + struct.pack(">H", FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))

    def receive_data(self, data: bytes) -> None:
        """Client bytes; raises :class:`NbdProtocolError`."""
        if self.state is State.CLOSED:
            return
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        self._buf += data
        while self._step():
            pass
        if len(self._buf) > MAX_BUFFERED:
            raise NbdProtocolError("the client sent more than the server lets wait unprocessed")

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def events(self) -> list[NbdEvent]:
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------------------------------ answers

    def export_ready(self, export: Export) -> None:
        """The export asked for exists: finish the option (GO and EXPORT_NAME enter transmission)."""
        pending = self._take_pending()
        flags = TRANSMISSION_HAS_FLAGS | TRANSMISSION_READ_ONLY | TRANSMISSION_SEND_FLUSH
        if pending.option is Option.EXPORT_NAME:
            self._out.append(struct.pack(">QH", export.size, flags) + (b"" if self._no_zeroes else bytes(124)))
        else:
            self._reply(pending.option, Reply.INFO, struct.pack(">HQH", INFO_EXPORT, export.size, flags))
            if pending.wants_block_size:
                self._reply(pending.option, Reply.INFO, struct.pack(
                    ">HIII", INFO_BLOCK_SIZE, export.min_block, export.preferred_block, export.max_block))
            self._reply(pending.option, Reply.ACK)
        if pending.option is Option.INFO:
            self.state = State.OPTIONS
        else:
            self.export, self.export_name, self.state = export, pending.name, State.TRANSMIT
        while self._step():
            pass

    def export_missing(self, message: str = "") -> None:
        pending = self._take_pending()
        if pending.option is Option.EXPORT_NAME:  # the old option has no way to say no but hanging up
            self._close(f"export {pending.name!r} refused: {message}")
            return
        self._reply(pending.option, Reply.ERR_UNKNOWN, message.encode("utf-8")[:1024])
        self.state = State.OPTIONS
        while self._step():
            pass

    def reply_read(self, handle: int, data: bytes) -> None:
        self._out.append(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, handle) + data)

    def reply_error(self, handle: int, error: Errno) -> None:
        self._out.append(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, int(error), handle))

    def _take_pending(self) -> _PendingExport:
        if self.state is not State.WAITING or self._pending is None:
            raise RuntimeError("no export request is waiting for an answer")
        pending, self._pending = self._pending, None
        return pending

    # ------------------------------------------------------------------------------------------ parsing

    def _step(self) -> bool:
        if self.state is State.FLAGS:
            return self._on_flags()
        if self.state is State.OPTIONS:
            return self._on_option()
        if self.state is State.TRANSMIT:
            return self._on_request()
        return False

    def _on_flags(self) -> bool:
        data = self._buf.take(4)
        if data is None:
            return False
        (flags,) = struct.unpack(">I", data)
        if not flags & CLIENT_FLAG_FIXED_NEWSTYLE:
            raise NbdProtocolError("the client does not speak the fixed newstyle handshake")
        if flags & ~(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES):
            raise NbdProtocolError(f"unknown client flags {flags:#x}")
        self._no_zeroes = bool(flags & CLIENT_FLAG_NO_ZEROES)
        self.state = State.OPTIONS
        return True

    def _on_option(self) -> bool:
        if len(self._buf) < _OPTION_HEADER.size:
            return False
        magic, option, length = _OPTION_HEADER.unpack_from(self._buf)
        if magic != IHAVEOPT:
            raise NbdProtocolError("option without the IHAVEOPT magic")
        if length > MAX_OPTION_DATA:
            raise NbdProtocolError(f"option data of {length} bytes exceeds {MAX_OPTION_DATA}")
        data = self._buf.take(_OPTION_HEADER.size + length)
        if data is None:
            return False
        self._option(option, data[_OPTION_HEADER.size :])
        return self.state is State.OPTIONS

    def _option(self, code: int, data: bytes) -> None:
        if code == Option.EXPORT_NAME:
            self._request_export(Option.EXPORT_NAME, data, wants_block_size=False)
        elif code == Option.ABORT:
            self._reply(Option.ABORT, Reply.ACK)
            self._close("the client aborted the handshake")
        elif code == Option.LIST:
            if data:
                self._reply(code, Reply.ERR_INVALID)
                return
            for name in self.exports:
                encoded = name.encode("utf-8")
                self._reply(code, Reply.SERVER, struct.pack(">I", len(encoded)) + encoded)
            self._reply(code, Reply.ACK)
        elif code in (Option.INFO, Option.GO):
            self._on_go(Option(code), data)
        else:
            self._reply(code, Reply.ERR_UNSUP)

    def _on_go(self, option: Option, data: bytes) -> None:
        if len(data) < 6:
            self._reply(option, Reply.ERR_INVALID)
            return
        (name_length,) = struct.unpack_from(">I", data)
        if 4 + name_length + 2 > len(data):
            self._reply(option, Reply.ERR_INVALID)
            return
        (count,) = struct.unpack_from(">H", data, 4 + name_length)
        if 4 + name_length + 2 + 2 * count != len(data):
            self._reply(option, Reply.ERR_INVALID)
            return
        infos = struct.unpack_from(f">{count}H", data, 6 + name_length)
        self._request_export(option, data[4 : 4 + name_length], wants_block_size=INFO_BLOCK_SIZE in infos)

    def _request_export(self, option: Option, raw_name: bytes, *, wants_block_size: bool) -> None:
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise NbdProtocolError("export name is not UTF-8") from None
        self._pending = _PendingExport(option, name, wants_block_size)
        self.state = State.WAITING
        self._events.append(ExportRequested(name))

    def _on_request(self) -> bool:
        data = self._buf.take(REQUEST_SIZE)
        if data is None:
            return False
        magic, _flags, kind, handle, offset, length = _REQUEST.unpack(data)
        if magic != REQUEST_MAGIC:
            raise NbdProtocolError(f"request magic {magic:#x}")
        assert self.export is not None
        if kind == Command.READ:
            if length == 0 or length > self.export.max_block or offset + length > self.export.size:
                self.reply_error(handle, Errno.EINVAL)
            else:
                self._events.append(ReadRequested(handle, offset, length))
        elif kind == Command.WRITE:
            if length > MAX_WRITE_SKIP:
                raise NbdProtocolError(f"write of {length} bytes exceeds {MAX_WRITE_SKIP}")
            skipped = min(length, len(self._buf))
            del self._buf[:skipped]
            self._skip = length - skipped
            self.reply_error(handle, Errno.EPERM)
        elif kind in (Command.TRIM, Command.WRITE_ZEROES):
            self.reply_error(handle, Errno.EPERM)
        elif kind in (Command.FLUSH, Command.CACHE):
            self._out.append(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, handle))
        elif kind == Command.DISC:
            self._close("the client disconnected")
        else:
            self.reply_error(handle, Errno.EINVAL)
        return self.state is State.TRANSMIT and not self._skip

    def _reply(self, option: int, reply: Reply, data: bytes = b"") -> None:
        self._out.append(struct.pack(">QIII", OPTION_REPLY_MAGIC, option, int(reply), len(data)) + data)

    def _close(self, reason: str) -> None:
        self.state = State.CLOSED
        self._events.append(Disconnected(reason))


__all__ = [
    "Command",
    "Disconnected",
    "Errno",
    "Export",
    "ExportRequested",
    "NbdEvent",
    "NbdProtocolError",
    "NbdServerConnection",
    "ReadRequested",
    "State",
]
