"""``outband ider HOST --cd FILE | --floppy FILE [--boot]``: serve a local image as the device's CD-ROM or
floppy over IDE-R, optionally boot the device from it, and show the progress until the machine is done."""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Annotated

import typer

from ..client.ider import IderSession, Progress, StartMode, boot_from_ider
from ..proto.redir.scsi import DriveKind
from .cimtext import CliValueError
from .redirect import RedirPortOption, redirection_stream, with_password
from .wsman import Device, device_command

EXAMPLES = """Examples:

  export AMT_PASSWORD='...'
  outband ider 10.0.0.5 --cd rescue.iso --boot
  outband ider 10.0.0.5 --floppy bios-update.img --start reboot --idle 600

IDE-R must be enabled on the device (AMT_RedirectionService). The images
are served read-only. Serving ends when the machine ejects the medium,
after --idle seconds without a command, or on Ctrl-C."""


class Start(enum.StrEnum):
    NOW = "now"
    GRACEFUL = "graceful"
    REBOOT = "reboot"


_MODES = {Start.NOW: StartMode.NOW, Start.GRACEFUL: StartMode.GRACEFUL, Start.REBOOT: StartMode.ON_REBOOT}
def _amount(count: float) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


def describe(progress: Progress) -> str:
    return f"{_amount(progress.bytes_sent)} sent, {progress.commands} commands, {_amount(progress.throughput)}/s"


class _Ticker:
    """Rewrites one status line on stderr, at most every ``every`` seconds."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            typer.echo(f"\r{describe(progress)}   ", nl=False, err=True)


@device_command
async def ider(
    device: Device,
    cd: Annotated[Path | None, typer.Option("--cd", metavar="FILE", help="Serve FILE as the CD-ROM.")] = None,
    floppy: Annotated[Path | None, typer.Option("--floppy", metavar="FILE", help="Serve FILE as the floppy.")] = None,
    boot: Annotated[bool, typer.Option(
        "--boot", help="Boot the device from the image (power on, or reset if it is on).")] = False,
    start: Annotated[Start, typer.Option("--start", help="When the drives appear to the host.")] = Start.NOW,
    idle: Annotated[float, typer.Option(
        "--idle", help="Stop after this many seconds without a command from the host.")] = 60.0,
    redir_port: RedirPortOption = None,
) -> None:
    """Serve an image to a device over IDE-R (storage redirection)."""
    if cd is None and floppy is None:
        raise CliValueError("give an image: --cd FILE or --floppy FILE")
    for path in (cd, floppy):
        if path is not None and not path.is_file():
            raise CliValueError(f"{path}: no such file")
    device = with_password(device)
    try:
        session = IderSession(device.host, device.user, device.password or "", cd=cd, floppy=floppy,
                              start_mode=_MODES[start], stream_factory=redirection_stream(device, redir_port),
                              timeout=device.timeout, on_progress=_Ticker())
    except ValueError as exc:
        raise CliValueError(str(exc)) from None
    async with session:
        served = ", ".join(f"{name} {path.name}" for name, path in (("CD", cd), ("floppy", floppy)) if path)
        typer.echo(f"serving {served} to {device.host}", err=True)
        if boot:
            async with device.client() as amt:
                status = await boot_from_ider(amt, DriveKind.CDROM if cd is not None else DriveKind.FLOPPY)
            if status != 0:
                raise CliValueError(f"the device refused the power request (ReturnValue {status})")
            typer.echo("boot from IDE-R requested", err=True)
        reason = await session.wait_done(idle=idle)
        typer.echo(f"\r{describe(session.progress)}; {reason}", err=True)

__all__ = ["EXAMPLES", "ider"]
