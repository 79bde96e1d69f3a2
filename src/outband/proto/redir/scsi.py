"""The ATAPI drives an IDE-R console presents: a read-only CD-ROM (2048-byte blocks) and floppy (512-byte blocks).

Theory of operation: AMT hands the console every ATAPI packet the host writes to the redirected drive (a 12-byte
SCSI CDB, AMT-PROTOCOLS.md §4.4); :meth:`ScsiDrive.execute` answers it the way a drive would: with a
:class:`Outcome` that carries the status (a :class:`Sense`: good, or a check condition with sense key, ASC and
ASCQ) and either a short reply (already cut to the CDB's allocation length) or, for READ(6)/READ(10), the byte
range of the medium to stream.  The drive never reads the medium itself and never allocates more than a few
hundred bytes: the IDE-R session streams the range in chunks.

Command set (the union of what amtterm and MeshCommander answer, §4.4): TEST UNIT READY, READ(6), READ(10), READ
CAPACITY, READ FORMAT CAPACITIES, MODE SENSE(6)/(10), START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, and on the
CD-ROM only the MMC commands READ TOC, GET CONFIGURATION, GET EVENT STATUS NOTIFICATION, READ DISC INFORMATION,
READ TRACK INFORMATION and GET PERFORMANCE.  Writes are refused with DATA PROTECT / WRITE PROTECTED (the media are
read-only), unknown opcodes with ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE, bad CDB fields with ILLEGAL
REQUEST / INVALID FIELD IN CDB.  INQUIRY and REQUEST SENSE are not forwarded by AMT (its firmware answers them
from the IDENTIFY data and the sense bytes of the last command end), so they are unknown here as they are to
MeshCommander.  After a medium is attached the first TEST UNIT READY reports UNIT ATTENTION / MEDIUM CHANGED once,
as MeshCommander does, so the host rereads the medium.  START STOP UNIT can eject the medium (unless the host
locked it with PREVENT ALLOW MEDIUM REMOVAL) and load it again; a host that ejects is done with it.

Mode pages are built from the drive's geometry rather than copied: a floppy of at most 2880 blocks is a 1.44 MB
diskette (80 cylinders, 2 heads, 18 sectors), a larger one an LS-120 cartridge, as §4.4 describes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol


class DriveKind(enum.Enum):
    """The two IDE-R drives, by the ATA drive-select value AMT puts in COMMAND_WRITTEN (§4.4)."""

    FLOPPY = 0xA0
    """The master device: bit 4 of drive select clear."""
    CDROM = 0xB0
    """The slave device: bit 4 of drive select set."""

    @property
    def block_size(self) -> int:
        return 2048 if self is DriveKind.CDROM else 512

    @classmethod
    def from_drive_select(cls, value: int) -> DriveKind:
        return cls.CDROM if value & 0x10 else cls.FLOPPY


@dataclass(frozen=True, slots=True)
class Sense:
    """SCSI sense key, additional sense code and qualifier; all zero means the command succeeded."""

    key: int
    asc: int = 0
    ascq: int = 0

    @property
    def ok(self) -> bool:
        return self.key == 0

    def __str__(self) -> str:
        return f"{self.key:02X}/{self.asc:02X}/{self.ascq:02X}"


GOOD: Final = Sense(0)
NOT_READY_NO_MEDIUM: Final = Sense(0x02, 0x3A, 0x00)
MEDIUM_CHANGED: Final = Sense(0x06, 0x28, 0x00)
INVALID_OPCODE: Final = Sense(0x05, 0x20, 0x00)
LBA_OUT_OF_RANGE: Final = Sense(0x05, 0x21, 0x00)
INVALID_FIELD: Final = Sense(0x05, 0x24, 0x00)
SAVING_NOT_SUPPORTED: Final = Sense(0x05, 0x39, 0x00)
WRITE_PROTECTED: Final = Sense(0x07, 0x27, 0x00)
REMOVAL_PREVENTED: Final = Sense(0x05, 0x53, 0x02)

SENSE_NAMES: Final = {
    GOOD: "good",
    NOT_READY_NO_MEDIUM: "medium not present",
    MEDIUM_CHANGED: "medium changed",
    INVALID_OPCODE: "invalid command operation code",
    LBA_OUT_OF_RANGE: "logical block address out of range",
    INVALID_FIELD: "invalid field in CDB",
    SAVING_NOT_SUPPORTED: "saving parameters not supported",
    WRITE_PROTECTED: "write protected",
    REMOVAL_PREVENTED: "medium removal prevented",
}


class Op(enum.IntEnum):
    """SCSI/ATAPI operation codes an IDE-R drive meets."""

    TEST_UNIT_READY = 0x00
    READ_6 = 0x08
    WRITE_6 = 0x0A
    MODE_SELECT_6 = 0x15
    MODE_SENSE_6 = 0x1A
    START_STOP_UNIT = 0x1B
    PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E
    READ_FORMAT_CAPACITIES = 0x23
    READ_CAPACITY = 0x25
    READ_10 = 0x28
    WRITE_10 = 0x2A
    WRITE_AND_VERIFY_10 = 0x2E
    READ_TOC = 0x43
    GET_CONFIGURATION = 0x46
    GET_EVENT_STATUS_NOTIFICATION = 0x4A
    READ_DISC_INFORMATION = 0x51
    READ_TRACK_INFORMATION = 0x52
    MODE_SELECT_10 = 0x55
    MODE_SENSE_10 = 0x5A
    GET_PERFORMANCE = 0xAC


CDB_LENGTH: Final = 12
"""ATAPI packets are 12 bytes; shorter SCSI CDBs are zero-padded."""
MAX_READ_BLOCKS: Final = 0xFFFF
"""READ(10) counts blocks in a u16; READ(6) in a byte (0 meaning 256)."""


class Medium(Protocol):
    """A read-only image: its size in bytes and a way to read a range of it (the I/O layer implements it)."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset``; a range past the end reads as zeros."""
        ...


class BytesMedium:
    """An image held in memory (tests, small floppies)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(bytes(data))

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, length: int) -> bytes:
        chunk = bytes(self._data[offset : offset + length])
        return chunk + bytes(length - len(chunk))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A drive's answer: status, plus a short reply or a byte range of the medium to send to the host."""

    sense: Sense = GOOD
    data: bytes = b""
    read_offset: int = 0
    read_length: int = 0

    @property
    def transfer_length(self) -> int:
        return self.read_length or len(self.data)


def _fail(sense: Sense) -> Outcome:
    return Outcome(sense)


def _reply(data: bytes, allocation: int) -> Outcome:
    return Outcome(GOOD, data[:allocation])


def _u16(cdb: bytes, offset: int) -> int:
    return int.from_bytes(cdb[offset : offset + 2], "big")


def _u32(cdb: bytes, offset: int) -> int:
    return int.from_bytes(cdb[offset : offset + 4], "big")


def _lba_to_msf(lba: int) -> bytes:
    """MSF address (minute, second, frame) of a block, counting the 150-frame pregap: 4 bytes, the first zero."""
    frames = lba + 150
    minute, rest = divmod(frames, 75 * 60)
    return bytes([0, min(minute, 0xFF), rest // 75, rest % 75])


# --------------------------------------------------------------------------------------------- mode pages


@dataclass(frozen=True, slots=True)
class _FloppyGeometry:
    medium_type: int
    heads: int
    sectors: int
    transfer_rate_kbit: int
    rotation_rpm: int


_DISKETTE_144: Final = _FloppyGeometry(medium_type=0x24, heads=2, sectors=18, transfer_rate_kbit=500, rotation_rpm=300)
"""A 1.44 MB 3.5" diskette; medium type 0x24 as MeshCommander reports it."""
_LS120: Final = _FloppyGeometry(medium_type=0x31, heads=8, sectors=32, transfer_rate_kbit=0x10A9, rotation_rpm=720)
"""An LS-120 cartridge (medium type 0x31), used for floppy images larger than 2880 blocks."""
DISKETTE_BLOCKS: Final = 2880
CD_MEDIUM_TYPE: Final = 0x01
"""120 mm CD-ROM, data only."""
WRITE_PROTECT: Final = 0x80
"""Device-specific parameter of the mode header: the medium is write-protected."""


def _page(code: int, body: bytes) -> bytes:
    return bytes([code, len(body)]) + body


class ScsiDrive:
    """One IDE-R drive with an optional medium.  ``execute`` answers a CDB; state kept between commands is
    the pending medium-changed attention, the pending media event and the removal lock."""

    def __init__(self, kind: DriveKind, medium: Medium | None = None) -> None:
        self.kind = kind
        self.medium: Medium | None = None
        self.ejected: Medium | None = None
        """The medium the host ejected (START STOP UNIT), kept so that a load brings it back."""
        self._attention = False
        self._media_event = False
        self.locked = False
        self.reads = 0
        """READ commands served (progress reporting)."""
        if medium is not None:
            self.insert(medium)

    # ------------------------------------------------------------------------------------------ medium

    def insert(self, medium: Medium) -> None:
        if medium.size <= 0:
            raise ValueError("an empty image cannot be presented as a medium")
        self.medium = medium
        self._attention = True
        self._media_event = True

    @property
    def blocks(self) -> int:
        """Blocks on the medium; a trailing partial block counts (it reads as zero-padded)."""
        if self.medium is None:
            return 0
        return -(-self.medium.size // self.kind.block_size)

    # ------------------------------------------------------------------------------------------ dispatch

    def execute(self, cdb: bytes) -> Outcome:
        """Answer one ATAPI packet (padded or cut to 12 bytes)."""
        cdb = bytes(cdb[:CDB_LENGTH]).ljust(CDB_LENGTH, b"\0")
        try:
            op = Op(cdb[0])
        except ValueError:
            return _fail(INVALID_OPCODE)
        handler = _HANDLERS.get(op)
        if handler is None or (op in _MMC_ONLY and self.kind is not DriveKind.CDROM):
            return _fail(INVALID_OPCODE)
        if op in _NEEDS_MEDIUM and self.medium is None:
            return _fail(NOT_READY_NO_MEDIUM)
        return handler(self, cdb)

    # ------------------------------------------------------------------------------------------ commands

    def _test_unit_ready(self, cdb: bytes) -> Outcome:
        if self.medium is None:
            return _fail(NOT_READY_NO_MEDIUM)
        if self._attention:
            self._attention = False
            return _fail(MEDIUM_CHANGED)
        return Outcome()

    def _read_6(self, cdb: bytes) -> Outcome:
        lba = ((cdb[1] & 0x1F) << 16) | _u16(cdb, 2)
        return self._read(lba, cdb[4] or 256)

    def _read_10(self, cdb: bytes) -> Outcome:
        return self._read(_u32(cdb, 2), _u16(cdb, 7))

    def _read(self, lba: int, count: int) -> Outcome:
        if lba + count > self.blocks:
            return _fail(LBA_OUT_OF_RANGE)
        self.reads += 1
        size = self.kind.block_size
        return Outcome(GOOD, read_offset=lba * size, read_length=count * size)

    def _write(self, cdb: bytes) -> Outcome:
        return _fail(WRITE_PROTECTED)

    def _refuse(self, cdb: bytes) -> Outcome:
        return _fail(INVALID_OPCODE)

    def _read_capacity(self, cdb: bytes) -> Outcome:
        return Outcome(GOOD, struct.pack(">II", self.blocks - 1, self.kind.block_size))

    def _read_format_capacities(self, cdb: bytes) -> Outcome:
        """Capacity list header + one current/maximum descriptor: type 2 (formatted medium) or 3 (no medium)."""
        if self.medium is None:
            blocks, descriptor_type = (DISKETTE_BLOCKS if self.kind is DriveKind.FLOPPY else 0), 3
        else:
            blocks, descriptor_type = self.blocks, 2
        descriptor = struct.pack(">IB", blocks, descriptor_type) + self.kind.block_size.to_bytes(3, "big")
        return _reply(bytes([0, 0, 0, len(descriptor)]) + descriptor, _u16(cdb, 7))

    def _start_stop_unit(self, cdb: bytes) -> Outcome:
        load_eject, start = bool(cdb[4] & 0x02), bool(cdb[4] & 0x01)
        if not load_eject:
            return Outcome()  # spin up or down: nothing to do for an image
        if start:
            if self.medium is None and self.ejected is not None:
                self.insert(self.ejected)
                self.ejected = None
            return Outcome()
        if self.medium is not None:
            if self.locked:
                return _fail(REMOVAL_PREVENTED)
            self.ejected, self.medium = self.medium, None
        return Outcome()

    def _prevent_allow(self, cdb: bytes) -> Outcome:
        self.locked = bool(cdb[4] & 0x01)
        return Outcome()

    # ------------------------------------------------------------------------------------------ mode sense

    def _mode_pages(self) -> dict[int, bytes]:
        if self.kind is DriveKind.CDROM:
            mechanism = 0x20 | 0x08 | 0x01 | (0x02 if self.locked else 0)  # tray, eject, lock (+ locked)
            capabilities = bytearray(24)
            capabilities[4] = mechanism
            capabilities[10:12] = (128).to_bytes(2, "big")  # buffer size, KB
            return {
                0x01: _page(0x01, bytes([0x00, 0xFF, 0, 0, 0, 0])),  # read retry count 255
                0x1A: _page(0x1A, bytes(10)),  # power condition: timers off
                0x1D: _page(0x1D, bytes(10)),  # timeout and protect: none
                0x2A: _page(0x2A, bytes(capabilities)),
            }
        geometry = self._geometry()
        cylinders = min(0xFFFF, -(-self.blocks // (geometry.heads * geometry.sectors)))
        flexible = bytearray(30)
        struct.pack_into(">HBBHH", flexible, 0, geometry.transfer_rate_kbit, geometry.heads, geometry.sectors,
                         512, cylinders)
        flexible[17] = 5  # page byte 19: motor-on delay, tenths of a second
        flexible[18] = 30  # page byte 20: motor-off delay, tenths of a second
        struct.pack_into(">H", flexible, 26, geometry.rotation_rpm)  # page bytes 28-29
        return {
            0x01: _page(0x01, bytes([0x00, 0x01, 0, 0, 0, 0, 0x02, 0, 0, 0])),  # read retries 1, write retries 2
            0x05: _page(0x05, bytes(flexible)),
        }

    def _geometry(self) -> _FloppyGeometry:
        return _DISKETTE_144 if self.blocks <= DISKETTE_BLOCKS else _LS120

    def _medium_type(self) -> int:
        return CD_MEDIUM_TYPE if self.kind is DriveKind.CDROM else self._geometry().medium_type

    def _selected_pages(self, cdb: bytes) -> bytes | Sense:
        control, code = cdb[2] >> 6, cdb[2] & 0x3F
        if control == 3:
            return SAVING_NOT_SUPPORTED
        pages = self._mode_pages()
        if code == 0x3F:
            chosen = [pages[c] for c in sorted(pages)]
        elif code in pages:
            chosen = [pages[code]]
        else:
            return INVALID_FIELD
        if control == 1:  # changeable values: nothing is
            chosen = [p[:2] + bytes(len(p) - 2) for p in chosen]
        return b"".join(chosen)

    def _mode_sense_6(self, cdb: bytes) -> Outcome:
        pages = self._selected_pages(cdb)
        if isinstance(pages, Sense):
            return _fail(pages)
        header = bytes([3 + len(pages), self._medium_type(), WRITE_PROTECT, 0])
        return _reply(header + pages, cdb[4])

    def _mode_sense_10(self, cdb: bytes) -> Outcome:
        pages = self._selected_pages(cdb)
        if isinstance(pages, Sense):
            return _fail(pages)
        header = struct.pack(">HBBHH", 6 + len(pages), self._medium_type(), WRITE_PROTECT, 0, 0)
        return _reply(header + pages, _u16(cdb, 7))

    # ------------------------------------------------------------------------------------------ MMC (CD only)

    def _read_toc(self, cdb: bytes) -> Outcome:
        msf = bool(cdb[1] & 0x02)
        fmt = cdb[2] & 0x0F or cdb[9] >> 6  # older hosts put the format in the control byte
        track = cdb[6]

        def address(lba: int) -> bytes:
            return _lba_to_msf(lba) if msf else lba.to_bytes(4, "big")

        if fmt == 0:
            descriptors = []
            if track <= 1:
                descriptors.append(bytes([0, 0x14, 1, 0]) + address(0))  # track 1: data, ADR 1
            elif track != 0xAA:
                return _fail(INVALID_FIELD)
            descriptors.append(bytes([0, 0x14, 0xAA, 0]) + address(self.blocks))  # lead-out
            body = bytes([1, 1]) + b"".join(descriptors)
        elif fmt == 1:  # session information: one complete session starting with track 1 at block 0
            body = bytes([1, 1, 0, 0x14, 1, 0]) + address(0)
        else:
            return _fail(INVALID_FIELD)
        return _reply(len(body).to_bytes(2, "big") + body, _u16(cdb, 7))

    def _features(self) -> list[tuple[int, bool, bytes]]:
        """(feature code, current, additional data) of the CD-ROM profile, in code order."""
        present = self.medium is not None
        return [
            (0x0000, True, struct.pack(">HBx", 0x0008, 0x01 if present else 0)),  # profile list: CD-ROM
            (0x0001, True, struct.pack(">I", 2)),  # core: physical interface ATAPI
            (0x0002, True, bytes(4)),  # morphing
            (0x0003, True, bytes([0x29, 0, 0, 0])),  # removable medium: tray, eject, lock
            (0x0010, present, struct.pack(">IHBx", 2048, 1, 0)),  # random readable
            (0x001E, present, b""),  # CD read
            (0x0100, True, b""),  # power management
            (0x0105, True, b""),  # timeout
        ]

    def _get_configuration(self, cdb: bytes) -> Outcome:
        request_type, start = cdb[1] & 0x03, _u16(cdb, 2)
        if request_type == 3:
            return _fail(INVALID_FIELD)
        chosen = b""
        for code, current, extra in self._features():
            wanted = code == start if request_type == 2 else code >= start and (current or request_type == 0)
            if wanted:
                persistent = 0x02 if code in (0x0000, 0x0001, 0x0002, 0x0003, 0x0100, 0x0105) else 0
                chosen += struct.pack(">HBB", code, persistent | (0x01 if current else 0), len(extra)) + extra
        profile = 0x0008 if self.medium is not None else 0
        header = struct.pack(">IHH", 4 + len(chosen), 0, profile)
        return _reply(header + chosen, _u16(cdb, 7))

    def _get_event_status(self, cdb: bytes) -> Outcome:
        """Polled media-class events only: 'new media' once after a medium is attached."""
        if not cdb[1] & 0x01:
            return _fail(INVALID_FIELD)  # asynchronous notification is not supported
        media_class = 0x10
        if not cdb[4] & media_class:
            return _reply(struct.pack(">HBB", 2, 0x80, media_class), _u16(cdb, 7))  # no event available
        event = 0
        if self._media_event and self.medium is not None:
            event, self._media_event = 2, False
        status = 0x02 if self.medium is not None else 0
        body = bytes([event, status, 0, 0])
        return _reply(struct.pack(">HBB", 2 + len(body), 0x04, media_class) + body, _u16(cdb, 7))

    def _read_disc_information(self, cdb: bytes) -> Outcome:
        if cdb[1] & 0x07:
            return _fail(INVALID_FIELD)  # only the standard disc information block
        info = bytearray(34)
        info[2] = 0x0E  # last session complete, disc complete, not erasable
        info[3:7] = bytes([1, 1, 1, 1])  # first track, sessions, first and last track of the last session
        info[7] = 0x20  # unrestricted use
        info[16:24] = b"\xff" * 8  # no lead-in / lead-out addresses (a pressed disc)
        return _reply(struct.pack(">H", len(info) - 2) + bytes(info[2:]), _u16(cdb, 7))

    def _read_track_information(self, cdb: bytes) -> Outcome:
        address_type, number = cdb[1] & 0x03, _u32(cdb, 2)
        valid = {0: number < self.blocks, 1: number == 1, 2: number == 1}.get(address_type, False)
        if not valid:
            return _fail(INVALID_FIELD)
        info = bytearray(36)
        info[2], info[3] = 1, 1  # track 1, session 1
        info[5], info[6] = 0x04, 0x01  # data track, data mode 1
        struct.pack_into(">I", info, 24, self.blocks)  # track size
        struct.pack_into(">I", info, 28, self.blocks - 1)  # last recorded address
        return _reply(struct.pack(">H", len(info) - 2) + bytes(info[2:]), _u16(cdb, 7))

    def _get_performance(self, cdb: bytes) -> Outcome:
        """Type 0 (read performance): one descriptor covering the disc at a nominal 24x (3600 KB/s)."""
        if cdb[10] != 0 or cdb[1] & 0x04:
            return _fail(INVALID_FIELD)  # only nominal read performance
        descriptor = struct.pack(">IIII", 0, 3600, max(self.blocks - 1, 0), 3600)
        header = struct.pack(">IBxxx", 4 + len(descriptor), 0)
        limit = _u16(cdb, 8)  # maximum number of descriptors
        return Outcome(GOOD, header + (descriptor if limit else b""))


_Handler = Callable[[ScsiDrive, bytes], Outcome]
_HANDLERS: Final[dict[Op, _Handler]] = {
    Op.TEST_UNIT_READY: ScsiDrive._test_unit_ready,
    Op.READ_6: ScsiDrive._read_6,
    Op.READ_10: ScsiDrive._read_10,
    Op.WRITE_6: ScsiDrive._write,
    Op.WRITE_10: ScsiDrive._write,
    Op.WRITE_AND_VERIFY_10: ScsiDrive._write,
    Op.MODE_SELECT_6: ScsiDrive._refuse,
    Op.MODE_SELECT_10: ScsiDrive._refuse,
    Op.MODE_SENSE_6: ScsiDrive._mode_sense_6,
    Op.MODE_SENSE_10: ScsiDrive._mode_sense_10,
    Op.START_STOP_UNIT: ScsiDrive._start_stop_unit,
    Op.PREVENT_ALLOW_MEDIUM_REMOVAL: ScsiDrive._prevent_allow,
    Op.READ_FORMAT_CAPACITIES: ScsiDrive._read_format_capacities,
    Op.READ_CAPACITY: ScsiDrive._read_capacity,
    Op.READ_TOC: ScsiDrive._read_toc,
    Op.GET_CONFIGURATION: ScsiDrive._get_configuration,
    Op.GET_EVENT_STATUS_NOTIFICATION: ScsiDrive._get_event_status,
    Op.READ_DISC_INFORMATION: ScsiDrive._read_disc_information,
    Op.READ_TRACK_INFORMATION: ScsiDrive._read_track_information,
    Op.GET_PERFORMANCE: ScsiDrive._get_performance,
}
_MMC_ONLY: Final = frozenset({Op.READ_TOC, Op.GET_CONFIGURATION, Op.GET_EVENT_STATUS_NOTIFICATION,
                              Op.READ_DISC_INFORMATION, Op.READ_TRACK_INFORMATION, Op.GET_PERFORMANCE})
"""Multimedia commands: a floppy drive does not know them."""
_NEEDS_MEDIUM: Final = frozenset({Op.READ_6, Op.READ_10, Op.WRITE_6, Op.WRITE_10, Op.WRITE_AND_VERIFY_10,
                                  Op.READ_CAPACITY, Op.MODE_SENSE_6, Op.MODE_SENSE_10, Op.PREVENT_ALLOW_MEDIUM_REMOVAL,
                                  Op.READ_TOC, Op.READ_DISC_INFORMATION, Op.READ_TRACK_INFORMATION,
                                  Op.GET_PERFORMANCE})
"""Commands that fail with NOT READY / MEDIUM NOT PRESENT on an empty drive (TEST UNIT READY checks by itself)."""


# --------------------------------------------------------------------------------------------- CDB builders


def build_cdb(op: Op, *fields: tuple[int, int, int]) -> bytes:
    """A 12-byte CDB: ``fields`` are (offset, width in bytes, big-endian value)."""
    out = bytearray(CDB_LENGTH)
    out[0] = op
    for offset, width, value in fields:
        out[offset : offset + width] = value.to_bytes(width, "big")
    return bytes(out)


def cdb_read_10(lba: int, blocks: int) -> bytes:
    return build_cdb(Op.READ_10, (2, 4, lba), (7, 2, blocks))


def cdb_read_capacity() -> bytes:
    return build_cdb(Op.READ_CAPACITY)


def cdb_test_unit_ready() -> bytes:
    return build_cdb(Op.TEST_UNIT_READY)


def parse_capacity(data: bytes) -> tuple[int, int]:
    """(block count, block size) from a READ CAPACITY reply."""
    if len(data) < 8:
        raise ValueError(f"READ CAPACITY reply of {len(data)} bytes, expected 8")
    last, size = struct.unpack_from(">II", data)
    return last + 1, size


__all__ = [
    "GOOD",
    "INVALID_FIELD",
    "INVALID_OPCODE",
    "LBA_OUT_OF_RANGE",
    "MEDIUM_CHANGED",
    "NOT_READY_NO_MEDIUM",
    "REMOVAL_PREVENTED",
    "SAVING_NOT_SUPPORTED",
    "SENSE_NAMES",
    "WRITE_PROTECTED",
    "BytesMedium",
    "DriveKind",
    "Medium",
    "Op",
    "Outcome",
    "ScsiDrive",
    "Sense",
    "build_cdb",
    "cdb_read_10",
    "cdb_read_capacity",
    "cdb_test_unit_ready",
    "parse_capacity",
]
