"""The simulated firmware's boot from IDE-R: ATAPI commands over the redirected drive, and what they find.

When the boot settings ask for IDE-R (``BootDevice.IDER_CD`` / ``IDER_FLOPPY``), the machine's firmware talks
to the drive the console attached through the engine's IDE-R session (:class:`AtapiPort`), as a BIOS does
over its ATAPI channel:

1. TEST UNIT READY until the drive is ready (a freshly attached medium answers UNIT ATTENTION / MEDIUM
   CHANGED first; NOT READY / MEDIUM NOT PRESENT ends the attempt);
2. READ CAPACITY: block count and size;
3. a CD: READ(10) of the volume descriptors from block 16 -- the primary volume descriptor names the volume,
   the El Torito boot record points at the boot catalog -- then of the catalog (validation entry with its
   checksum and 55 AA key, initial entry marked bootable) and of the boot image it names;
   a floppy: READ(10) of block 0, the boot sector (55 AA signature, BIOS parameter block and volume label);
4. START STOP UNIT with eject: the firmware is done with the medium (the console may stop serving it).

What the boot found is reported on the machine's console: ``Booted from IDE-R CD-ROM: <volume label>`` and,
as if the boot code ran and printed it, the boot image's message -- its first NUL- or line-terminated run of
printable text at least 8 characters long.  Any failure is reported and the caller falls back to the disk.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from ...proto.redir.ider import CommandCompleted, StartMode
from ...proto.redir.scsi import (
    MEDIUM_CHANGED,
    SENSE_NAMES,
    DriveKind,
    Op,
    Sense,
    build_cdb,
    cdb_read_10,
    cdb_read_capacity,
    cdb_test_unit_ready,
    parse_capacity,
)
from .base import BootDevice

ISO_BLOCK: Final = 2048
VOLUME_DESCRIPTORS_AT: Final = 16
MAX_VOLUME_DESCRIPTORS: Final = 32
"""Descriptors read before giving up on finding the terminator (real discs have a handful)."""
EL_TORITO: Final = b"EL TORITO SPECIFICATION"
MAX_BOOT_IMAGE_BLOCKS: Final = 32
"""Boot image blocks read to look for its message (64 KiB; a no-emulation image is often smaller)."""
READY_ATTEMPTS: Final = 4
MIN_MESSAGE: Final = 8
COMMAND_TIMEOUT: Final = 30.0
"""Seconds the firmware waits for one command: AMT's own receive timeout of an IDE-R console."""

DRIVE_OF: Final = {BootDevice.IDER_CD: DriveKind.CDROM, BootDevice.IDER_FLOPPY: DriveKind.FLOPPY}
DRIVE_NAME: Final = {DriveKind.CDROM: "IDE-R CD-ROM", DriveKind.FLOPPY: "IDE-R floppy"}


class AtapiPort(Protocol):
    """A redirected ATAPI channel: the engine's IDE-R session carries each packet command to the console."""

    async def execute(self, drive: DriveKind, packet: bytes, expect: int) -> CommandCompleted:
        """Run one packet command; ``expect`` is the most data it may return.  Raises :class:`ConnectionError`
        when the session ends first."""
        ...


class BootFailed(Exception):
    """The medium cannot be booted; the message is what the firmware prints."""


@dataclass(frozen=True, slots=True)
class BootOutcome:
    drive: DriveKind
    label: str
    message: str | None
    blocks: int
    block_size: int


class StorageRedirection:
    """Where the engine plugs a console's IDE-R drives into the machine, and the firmware finds them."""

    def __init__(self, *, timeout: float = COMMAND_TIMEOUT) -> None:
        self.port: AtapiPort | None = None
        self.start_mode: StartMode | None = None
        self.timeout = timeout

    def attach(self, port: AtapiPort, start_mode: StartMode) -> None:
        self.port, self.start_mode = port, start_mode

    def detach(self, port: AtapiPort) -> None:
        if self.port is port:
            self.port, self.start_mode = None, None

    async def boot(self, device: BootDevice, say: Callable[[str], None]) -> BootOutcome | None:
        """Boot from the redirected drive ``device`` names, telling the console as it goes; None when it
        could not (the firmware then tries the next device)."""
        drive = DRIVE_OF[device]
        port = self.port
        if port is None:
            say("IDE-R: no medium attached.")
            return None
        try:
            outcome = await _Boot(port, drive, self.timeout).run()
        except BootFailed as exc:
            say(f"IDE-R: {exc}")
            return None
        except (ConnectionError, TimeoutError):
            say("IDE-R: the redirection session ended during the boot.")
            return None
        say(f"Booted from {DRIVE_NAME[drive]}: {outcome.label or '(no label)'}")
        if outcome.message:
            say(outcome.message)
        return outcome


class _Boot:
    """One boot attempt: the command sequence of the module docstring."""

    def __init__(self, port: AtapiPort, drive: DriveKind, timeout: float) -> None:
        self.port = port
        self.drive = drive
        self.timeout = timeout

    async def command(self, packet: bytes, expect: int = 0) -> CommandCompleted:
        return await asyncio.wait_for(self.port.execute(self.drive, packet, expect), self.timeout)

    async def run(self) -> BootOutcome:
        await self._until_ready()
        reply = await self.command(cdb_read_capacity(), 8)
        _check(reply.sense, "READ CAPACITY")
        blocks, size = parse_capacity(reply.data)
        if size != self.drive.block_size:
            raise BootFailed(f"the drive reports {size}-byte blocks, expected {self.drive.block_size}")
        if self.drive is DriveKind.CDROM:
            label, message = await self._cd(blocks)
        else:
            label, message = await self._floppy()
        eject = await self.command(build_cdb(Op.START_STOP_UNIT, (4, 1, 0x02)))
        _check(eject.sense, "START STOP UNIT")
        return BootOutcome(self.drive, label, message, blocks, size)

    async def _until_ready(self) -> None:
        for _ in range(READY_ATTEMPTS):
            reply = await self.command(cdb_test_unit_ready())
            if reply.sense.ok:
                return
            if reply.sense != MEDIUM_CHANGED:
                _check(reply.sense, "TEST UNIT READY")
        raise BootFailed("the drive did not become ready")

    async def _read(self, lba: int, count: int) -> bytes:
        size = self.drive.block_size
        reply = await self.command(cdb_read_10(lba, count), count * size)
        _check(reply.sense, f"READ(10) of block {lba}")
        if len(reply.data) != count * size:
            raise BootFailed(f"READ(10) of block {lba} returned {len(reply.data)} bytes, not {count * size}")
        return reply.data

    # ------------------------------------------------------------------------------------------ CD

    async def _cd(self, blocks: int) -> tuple[str, str | None]:
        label: str | None = None
        catalog: int | None = None
        for lba in range(VOLUME_DESCRIPTORS_AT, min(VOLUME_DESCRIPTORS_AT + MAX_VOLUME_DESCRIPTORS, blocks)):
            descriptor = await self._read(lba, 1)
            kind, ident = descriptor[0], descriptor[1:6]
            if ident != b"CD001":
                break
            if kind == 1 and label is None:
                label = _text(descriptor[40:72])
            elif kind == 0 and descriptor[7:39].rstrip(b"\0") == EL_TORITO:
                catalog = struct.unpack_from("<I", descriptor, 71)[0]
            elif kind == 255:
                break
        if label is None:
            raise BootFailed("no ISO 9660 volume on the CD")
        if catalog is None:
            raise BootFailed(f"the CD '{label}' is not bootable (no El Torito boot record)")
        if catalog >= blocks:
            raise BootFailed(f"the boot catalog at block {catalog} is beyond the disc")
        entry = _initial_entry(await self._read(catalog, 1))
        count = min(MAX_BOOT_IMAGE_BLOCKS, max(1, -(-entry.sectors * 512 // ISO_BLOCK)), blocks - entry.rba)
        if entry.rba >= blocks or count <= 0:
            raise BootFailed(f"the boot image at block {entry.rba} is beyond the disc")
        image = await self._read(entry.rba, count)
        return label, _message(image)

    # ------------------------------------------------------------------------------------------ floppy

    async def _floppy(self) -> tuple[str, str | None]:
        sector = await self._read(0, 1)
        if sector[510:512] != b"\x55\xaa":
            raise BootFailed("Non-system disk or disk error (no boot signature)")
        label = _text(sector[43:54]) if sector[38] == 0x29 else ""  # extended BPB: volume label
        if label == "NO NAME":
            label = ""
        return label, _message(sector[62:510])


@dataclass(frozen=True, slots=True)
class _CatalogEntry:
    sectors: int
    """Length of the boot image in 512-byte virtual sectors."""
    rba: int
    """Its first 2048-byte block."""


def _initial_entry(catalog: bytes) -> _CatalogEntry:
    validation = catalog[:32]
    if validation[0] != 0x01 or validation[30:32] != b"\x55\xaa":
        raise BootFailed("the El Torito boot catalog has no validation entry")
    if sum(struct.unpack("<16H", validation)) & 0xFFFF:
        raise BootFailed("the El Torito validation entry's checksum is wrong")
    entry = catalog[32:64]
    if entry[0] != 0x88:
        raise BootFailed("the El Torito initial entry is not bootable")
    return _CatalogEntry(struct.unpack_from("<H", entry, 6)[0], struct.unpack_from("<I", entry, 8)[0])


def _message(image: bytes) -> str | None:
    """The first run of at least 8 printable characters that ends at a NUL, CR or LF."""
    start = None
    for at, byte in enumerate(image):
        if 0x20 <= byte <= 0x7E:
            if start is None:
                start = at
            continue
        if start is not None and byte in (0, 0x0A, 0x0D) and at - start >= MIN_MESSAGE:
            return image[start:at].decode("ascii").strip()
        start = None
    return None


def _text(field: bytes) -> str:
    return field.decode("ascii", "replace").rstrip(" \0")


def _check(sense: Sense, what: str) -> None:
    if not sense.ok:
        raise BootFailed(f"{what} failed: {SENSE_NAMES.get(sense, 'error')} (sense {sense})")


__all__ = ["DRIVE_NAME", "DRIVE_OF", "AtapiPort", "BootFailed", "BootOutcome", "StorageRedirection"]
