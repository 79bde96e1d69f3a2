"""The IDE-R session's drives as NBD exports, so QEMU reads the console's image block by block.

The engine listens on a unix socket in the VM's runtime directory and serves two read-only exports,
``ider-cd`` and ``ider-fd``; QEMU opens them as the media of its IDE-R CD-ROM and floppy drives
(``blockdev-change-medium`` with ``nbd+unix:///ider-cd?socket=...``).  Every read goes over the IDE-R session
as ATAPI packet commands (:class:`AtapiReader`), through the same :class:`~..bootmedia.AtapiPort` the engine's
IDE-R bridge gives the simulated firmware: opening an export asks the drive to be ready (TEST UNIT READY, where
a fresh medium first reports UNIT ATTENTION) and for its capacity (READ CAPACITY); a read becomes READ(10)
commands of at most :data:`MAX_BLOCKS_PER_COMMAND` blocks, covering the byte range QEMU asked for.  A read the
console cannot serve (session gone, sense error, timeout) is an I/O error for the guest, as a failing drive's
would be.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from ....proto.nbd import (
    Disconnected,
    Errno,
    Export,
    ExportRequested,
    NbdProtocolError,
    NbdServerConnection,
    ReadRequested,
)
from ....proto.redir.scsi import (
    MEDIUM_CHANGED,
    DriveKind,
    Sense,
    cdb_read_10,
    cdb_read_capacity,
    cdb_test_unit_ready,
    parse_capacity,
)
from ..bootmedia import StorageRedirection
from .process import IDER_CD, IDER_FLOPPY

log = logging.getLogger(__name__)

EXPORTS: Final = {IDER_CD: DriveKind.CDROM, IDER_FLOPPY: DriveKind.FLOPPY}
MAX_BLOCKS_PER_COMMAND: Final = 32
"""Blocks per READ(10): 64 KiB of CD, what a BIOS or OS typically asks of an ATAPI drive at once."""
MAX_NBD_READ: Final = 1024 * 1024
"""The longest read an NBD client may ask for (advertised as the export's maximum block size)."""
READY_ATTEMPTS: Final = 4
COMMAND_TIMEOUT: Final = 30.0
READ_SIZE: Final = 65536


class MediumError(Exception):
    """The console's drive could not answer (the message says how)."""


class AtapiReader:
    """Blocks of one IDE-R drive, read through whatever session has its drives attached right now."""

    def __init__(self, storage: StorageRedirection, drive: DriveKind, *, timeout: float = COMMAND_TIMEOUT) -> None:
        self.storage = storage
        self.drive = drive
        self.timeout = timeout

    async def _command(self, packet: bytes, expect: int) -> tuple[Sense, bytes]:
        port = self.storage.port
        if port is None:
            raise MediumError("no IDE-R session has drives attached")
        try:
            reply = await asyncio.wait_for(port.execute(self.drive, packet, expect), self.timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise MediumError(f"the IDE-R session did not answer: {exc or 'timeout'}") from None
        return reply.sense, reply.data

    async def capacity(self) -> tuple[int, int]:
        """Wait for the drive to be ready; (block count, block size)."""
        for _ in range(READY_ATTEMPTS):
            sense, _ = await self._command(cdb_test_unit_ready(), 0)
            if sense.ok:
                break
            if sense != MEDIUM_CHANGED:
                raise MediumError(f"the drive is not ready (sense {sense})")
        else:
            raise MediumError("the drive did not become ready")
        sense, data = await self._command(cdb_read_capacity(), 8)
        if not sense.ok:
            raise MediumError(f"READ CAPACITY failed (sense {sense})")
        try:
            blocks, size = parse_capacity(data)
        except ValueError as exc:
            raise MediumError(str(exc)) from None
        if size != self.drive.block_size:
            raise MediumError(f"the drive reports {size}-byte blocks, expected {self.drive.block_size}")
        return blocks, size

    async def read(self, lba: int, count: int) -> bytes:
        """``count`` blocks from ``lba`` (one command; a medium change reported first is retried once)."""
        expect = count * self.drive.block_size
        for _ in range(2):
            sense, data = await self._command(cdb_read_10(lba, count), expect)
            if sense != MEDIUM_CHANGED:
                break
        if not sense.ok:
            raise MediumError(f"READ(10) of block {lba} failed (sense {sense})")
        if len(data) != expect:
            raise MediumError(f"READ(10) of block {lba} returned {len(data)} bytes, not {expect}")
        return data


async def read_range(reader: AtapiReader, offset: int, length: int) -> bytes:
    """Bytes ``offset``..``offset+length`` of the medium, read in whole blocks."""
    size = reader.drive.block_size
    first, last = offset // size, (offset + length - 1) // size
    chunks = []
    for lba in range(first, last + 1, MAX_BLOCKS_PER_COMMAND):
        chunks.append(await reader.read(lba, min(MAX_BLOCKS_PER_COMMAND, last + 1 - lba)))
    data = b"".join(chunks)
    start = offset - first * size
    return data[start : start + length]


class NbdServer:
    """The NBD listener for one VM's IDE-R drives."""

    def __init__(self, storage: StorageRedirection) -> None:
        self.storage = storage
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, path: Path) -> None:
        """Listen on ``path`` (in the VM's private runtime directory; a stale socket is gone already)."""
        self._server = await asyncio.start_unix_server(self._serve, str(path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Session(self.storage, reader, writer).run()
        except (OSError, NbdProtocolError) as exc:
            log.info("NBD connection ended: %s", exc)
        finally:
            self._connections.discard(task)
            writer.close()


class _Session:
    """One NBD client: the protocol machine, and the drive it opened."""

    def __init__(self, storage: StorageRedirection, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.storage = storage
        self.reader = reader
        self.writer = writer
        self.nbd = NbdServerConnection(tuple(EXPORTS))
        self.drive: AtapiReader | None = None

    async def run(self) -> None:
        self.nbd.start()
        await self._flush()
        while data := await self.reader.read(READ_SIZE):
            self.nbd.receive_data(data)
            while events := self.nbd.events():
                for event in events:
                    if isinstance(event, Disconnected):
                        await self._flush()
                        return
                    await self._handle(event)
            await self._flush()

    async def _handle(self, event: ExportRequested | ReadRequested) -> None:
        if isinstance(event, ExportRequested):
            drive = EXPORTS.get(event.name)
            if drive is None:
                self.nbd.export_missing(f"no export {event.name!r} (exports: {', '.join(EXPORTS)})")
                return
            reader = AtapiReader(self.storage, drive)
            try:
                blocks, size = await reader.capacity()
            except MediumError as exc:
                self.nbd.export_missing(f"IDE-R {event.name}: {exc}")
                return
            self.drive = reader
            self.nbd.export_ready(Export(size=blocks * size, preferred_block=size, max_block=MAX_NBD_READ))
            return
        assert self.drive is not None
        try:
            self.nbd.reply_read(event.handle, await read_range(self.drive, event.offset, event.length))
        except MediumError as exc:
            log.info("IDE-R read of %d bytes at %d failed: %s", event.length, event.offset, exc)
            self.nbd.reply_error(event.handle, Errno.EIO)

    async def _flush(self) -> None:
        data = self.nbd.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()


__all__ = ["EXPORTS", "AtapiReader", "MediumError", "NbdServer", "read_range"]
