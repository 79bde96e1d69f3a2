"""IDE-R for the device SDK: :class:`IderSession` serves local image files as the device's CD-ROM and floppy.

Theory of operation: opening logs in (an ``IDER`` redirection session), starts IDE-R and asks AMT to attach
the drives with the chosen start mode (now, gracefully, or at the next reboot).  From then on a pump task
answers every packet command the host sends (:class:`~outband.proto.redir.ider.IderConsole` over
:class:`~outband.proto.redir.scsi.ScsiDrive`), streaming reads straight from the files in chunks of AMT's
buffer size, and keeps :attr:`IderSession.progress` (commands, bytes, throughput).  The images are opened
read-only and never written: write commands fail with WRITE PROTECTED.  :meth:`IderSession.wait_done`
returns when the host has ejected the medium (it is done with it), when the session ends, or after a quiet
period; :meth:`close` ends IDE-R and the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..aio.errors import BadResponse, TransportError
from ..aio.redirection import RedirectionClient, SessionRefused
from ..proto.redir.console import DEFAULT_PREFERENCE
from ..proto.redir.frames import Frame, ProtocolError, RawData, SessionKind
from ..proto.redir.ider import (
    Closed,
    CommandServed,
    ConsoleState,
    Enabled,
    IderConsole,
    IderEvent,
    Refused,
    StartMode,
)
from ..proto.redir.scsi import DriveKind, Medium, ScsiDrive
from ..proto.redir.session import AuthType
from ..proto.wsman import EndpointReference
from ..proto.wsman.namespaces import resource_uri
from .amt import AmtClient
from .redirection import DeviceSession
from .services import power_state, request_power
from .streams import StreamFactory

BOOT_CONFIG: Final = EndpointReference.to(resource_uri("CIM_BootConfigSetting"),
                                          {"InstanceID": "Intel(r) AMT: Boot Configuration 0"})
"""The one boot configuration AMT has (CIM_BootConfigSetting)."""
ROLE_NEXT_BOOT: Final = 1
POWER_ON: Final = 2
RESET: Final = 10
SEND_BUDGET: Final = 256 * 1024
"""Bytes of a read streamed per write: large writes, but other messages still get a turn in between."""
END_TIMEOUT: Final = 2.0


class ImageFile:
    """A read-only image file as a :class:`~outband.proto.redir.scsi.Medium` (positional reads, no seeking)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise
        if size == 0 or size % 512:
            os.close(self._fd)
            raise ValueError(f"{self.path}: an image is a non-empty whole number of 512-byte sectors "
                             f"({size} bytes)")
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        return data + bytes(length - len(data))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass(frozen=True, slots=True)
class Progress:
    commands: int
    reads: int
    bytes_sent: int
    errors: int
    resets: int
    """ATA channel resets the host made (each power-on or reset of the machine)."""
    elapsed: float
    last: CommandServed | None

    @property
    def throughput(self) -> float:
        """Bytes per second sent to the host since the drives were attached."""
        return self.bytes_sent / self.elapsed if self.elapsed > 0 else 0.0


class IderSession(DeviceSession):
    """Serve ``cd`` and/or ``floppy`` (paths or :class:`Medium` objects) to one device over IDE-R.

    >>> async with IderSession("10.0.0.5", password=secret, cd="install.iso") as ider:   # doctest: +SKIP
    ...     await ider.wait_done()
    """

    KIND = SessionKind.IDER

    def __init__(
        self,
        host: str,
        username: str = "admin",
        password: str = "",
        *,
        cd: str | os.PathLike[str] | Medium | None = None,
        floppy: str | os.PathLike[str] | Medium | None = None,
        start_mode: StartMode = StartMode.NOW,
        port: int | None = None,
        tls: bool = False,
        fingerprint: str | None = None,
        verify: bool = True,
        preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
        stream_factory: StreamFactory | None = None,
        timeout: float = 30.0,
        heartbeat: float = 10.0,
        on_progress: Callable[[Progress], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cd is None and floppy is None:
            raise ValueError("IDE-R needs an image to serve: a CD, a floppy or both")
        super().__init__(host, username, password, port=port, tls=tls, fingerprint=fingerprint, verify=verify,
                         preference=preference, stream_factory=stream_factory, timeout=timeout, clock=clock)
        self.heartbeat = heartbeat
        self.on_progress = on_progress
        self._files: list[ImageFile] = []
        drives = {kind: ScsiDrive(kind, self._medium(source)) if source is not None else None
                  for kind, source in ((DriveKind.CDROM, cd), (DriveKind.FLOPPY, floppy))}
        self.console = IderConsole(cdrom=drives[DriveKind.CDROM], floppy=drives[DriveKind.FLOPPY],
                                   start_mode=start_mode)
        self._changed = asyncio.Event()
        self._started_at: float | None = None
        self._last_command: CommandServed | None = None
        self._last_activity = clock()

    def _medium(self, source: str | os.PathLike[str] | Medium) -> Medium:
        if isinstance(source, str | os.PathLike):
            image = ImageFile(source)
            self._files.append(image)
            return image
        return source

    # ------------------------------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, log in, start IDE-R and attach the drives; raises a
        :class:`~outband.aio.errors.TransportError` subclass when a step fails (SessionRefused when AMT will
        not attach them)."""
        self._client = client = await self._login()
        try:
            await asyncio.wait_for(self._start(client), self.timeout)
        except TimeoutError:
            await self._abort()
            raise BadResponse(f"IDE-R did not start within {self.timeout:g} s", host=self.host) from None
        except BaseException:
            await self._abort()
            raise
        self._started_at = self._last_activity = self._clock()
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(client), name=f"ider-{self.host}")

    async def _start(self, client: RedirectionClient) -> None:
        self.console.start()
        await self._send(client)
        while True:
            item = await client.receive()
            if item is None:
                raise BadResponse(f"the device closed the connection before IDE-R started ({client.end_reason})",
                                  host=self.host)
            for event in self._feed(item):
                if isinstance(event, Enabled):
                    await self._send(client)
                    return
                if isinstance(event, Refused):
                    raise SessionRefused(f"IDE-R refused: {event.reason}", host=self.host)
            await self._send(client)

    async def _abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        self._close_files()

    async def close(self) -> None:
        """End IDE-R and the session (idempotent); the image files are closed."""
        client, self._client = self._client, None
        if client is None:
            return
        if self.console.state is not ConsoleState.CLOSED:
            self.console.end()
            with contextlib.suppress(TransportError, ConnectionError):
                await self._send(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(lambda: self.end_reason is not None), END_TIMEOUT)
        await self._stop_pump()
        await client.aclose()
        self._finish("closed by us")
        self._close_files()

    def _close_files(self) -> None:
        for image in self._files:
            image.close()

    # ------------------------------------------------------------------------------------------ state

    @property
    def progress(self) -> Progress:
        counters = self.console.counters
        elapsed = self._clock() - self._started_at if self._started_at is not None else 0.0
        return Progress(counters.commands, counters.reads, counters.bytes_to_host, counters.errors,
                        counters.resets, elapsed, self._last_command)

    @property
    def ejected(self) -> bool:
        """The host ejected a medium we serve: it is done with it."""
        return any(drive.ejected is not None for drive in self.console.drives.values())

    async def wait_done(self, *, idle: float | None = None) -> str:
        """Until the host ejects the medium, the session ends, or no command came for ``idle`` seconds (since
        the last one, or since the drives were attached); returns which."""
        def done() -> bool:
            quiet = idle is not None and self._clock() - self._last_activity >= idle
            return self.ejected or self.end_reason is not None or quiet

        while not done():
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), idle if idle is not None else None)
        if self.ejected:
            return "the host ejected the medium"
        if self.end_reason is not None:
            return f"the session ended: {self.end_reason}"
        return f"no command for {idle:g} s"

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    # ------------------------------------------------------------------------------------------ pump

    def _feed(self, item: Frame | RawData) -> list[IderEvent]:
        if isinstance(item, RawData):
            raise BadResponse("unframed data in an IDE-R session", host=self.host)
        try:
            self.console.receive(item)
        except ProtocolError as exc:
            raise BadResponse(f"IDE-R protocol error: {exc}", host=self.host) from None
        events = self.console.events()
        for event in events:
            if isinstance(event, CommandServed):
                self._last_command = event
                self._last_activity = self._clock()
                if self.on_progress is not None:
                    self.on_progress(self.progress)
            elif isinstance(event, Closed):
                self._finish(event.reason)
        self._changed.set()
        return events

    async def _send(self, client: RedirectionClient) -> None:
        """Everything the console has queued, reads streamed in batches of :data:`SEND_BUDGET` bytes."""
        while True:
            batch = self.console.data_to_send(SEND_BUDGET)
            if not batch:
                return
            await client.send(b"".join(batch))

    async def _pump(self, client: RedirectionClient) -> None:
        receiving = asyncio.ensure_future(client.receive())
        try:
            while True:
                await asyncio.wait({receiving}, timeout=self.heartbeat)
                if not receiving.done():
                    self.console.heartbeat()
                    await self._send(client)
                    continue
                item = receiving.result()
                if item is None:
                    self._finish(client.end_reason or "connection closed by the device")
                    return
                self._feed(item)
                await self._send(client)
                if self.console.state is ConsoleState.CLOSED:
                    return
                receiving = asyncio.ensure_future(client.receive())
        except (TransportError, ConnectionError) as exc:
            self._finish(f"{type(exc).__name__}: {exc}")
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, TransportError, ConnectionError):
                await receiving

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._changed.set()


async def boot_from_ider(amt: AmtClient, drive: DriveKind) -> int:
    """Arm a one-time boot from the redirected ``drive`` (AMT_BootSettingData UseIDER and IDERBootDevice, then
    SetBootConfigRole for the next boot) and power the host on, or reset it if it is on -- what MeshCommander
    does for an IDE-R boot.  Returns the power request's ReturnValue (0: accepted)."""
    settings = await amt.get("AMT_BootSettingData")
    settings["UseIDER"] = True
    settings["IDERBootDevice"] = 1 if drive is DriveKind.CDROM else 0
    await amt.put(settings)
    output = await amt.invoke("CIM_BootService", "SetBootConfigRole", {"BootConfigSetting": BOOT_CONFIG,
                                                                       "Role": ROLE_NEXT_BOOT})
    if output.get("ReturnValue") != 0:
        raise BadResponse(f"SetBootConfigRole refused (ReturnValue {output.get('ReturnValue')!r})", host=amt.host)
    return await request_power(amt, RESET if await power_state(amt) == POWER_ON else POWER_ON)


__all__ = ["IderSession", "ImageFile", "Progress", "StartMode", "boot_from_ider"]
