"""Launching and supervising ``qemu-system-x86_64`` for one VM.

Theory of operation: a powered-on VM is a QEMU process; a powered-off VM has none (as libvirt does it), so
each power-on starts a fresh QEMU with the firmware options of that boot.  :func:`qemu_command` turns the VM
file into QEMU's command line: ``-nodefaults`` (only the devices the file names), devices with stable ids
(``disk0``, ``net0``, ``ider-cd``...) so boot order and media can be changed over QMP later, and every channel
the engine needs as a unix socket in a private runtime directory:

* QMP (``-qmp unix:qmp.sock``): QEMU connects to *us*, to a socket we listen on before launching, so the
  engine never races QEMU's socket creation and a QEMU that fails early is seen as an exit, not a hang;
* COM1 (``-chardev socket,...,server=on,wait=off,telnet=on``): we connect once the monitor answers
  (``serial.py`` explains telnet);
* the display (``-vnc unix:vnc.sock``), which KVM reads (``vnc.py``).

:class:`QemuProcess` starts QEMU (``-S``: the CPUs wait until the platform has set the boot up), collects its
stderr (the last lines explain a failed start or a crash), and reports how it ended: :meth:`QemuProcess.wait`
gives the exit status, which the platform compares with what it asked for -- a ``quit`` it sent or a guest
shutdown is expected, anything else (a crash, a kill) is reported as a crash and the VM as off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .qmp import Monitor, QmpError, QmpGone
from .vm import MACHINES_WITH_IDE, DiskSpec, VmSpec

log = logging.getLogger(__name__)

IDER_CD: Final = "ider-cd"
IDER_FLOPPY: Final = "ider-fd"
SERCON_PORT: Final = (0x3F8).to_bytes(2, "little")
"""SeaBIOS's ``etc/sercon-port``: mirror the firmware's screen and keyboard on COM1 (AMT's "BIOS over SOL")."""
SETUP_WAIT_MS: Final = 60_000
"""How long SeaBIOS's boot menu prompt waits when a boot asks for the firmware's setup or a pause."""
STDERR_LINES: Final = 40
PR_SET_PDEATHSIG: Final = 1
STOP_GRACE: Final = 5.0
"""Seconds QEMU gets to exit after ``quit`` before it is killed."""


class QemuStartError(RuntimeError):
    """QEMU did not start; the message carries its own explanation (its last stderr lines)."""


@dataclass(frozen=True, slots=True)
class FirmwareOptions:
    """What one QEMU process's firmware is told at launch (fw_cfg cannot change while it runs)."""

    sercon: bool = False
    """SeaBIOS's console on COM1 too (the boot request's UseSOL)."""
    boot_menu: bool = False
    """SeaBIOS waits at its boot-menu prompt (BIOS setup or BIOS pause requested)."""


@dataclass(frozen=True, slots=True)
class RuntimeDir:
    """Where one VM's sockets live (private: mode 0700)."""

    path: Path

    @property
    def qmp(self) -> Path:
        return self.path / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.path / "serial.sock"

    @property
    def vnc(self) -> Path:
        return self.path / "vnc.sock"

    @property
    def nbd(self) -> Path:
        return self.path / "nbd.sock"

    @property
    def sercon(self) -> Path:
        return self.path / "sercon-port"

    def prepare(self, *, first: bool = False) -> None:
        """Before each launch: no stale QEMU sockets; ``first`` (the platform starting) clears the NBD one too."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        self.sercon.write_bytes(SERCON_PORT)
        for sock in (self.qmp, self.serial, self.vnc, *((self.nbd,) if first else ())):
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()


@dataclass(frozen=True, slots=True)
class Bootable:
    """A device the firmware can boot, addressed over QMP: ``qom_id`` is its id (``/machine/peripheral/ID``);
    floppy drives boot through their controller's ``bootindexA``/``bootindexB`` (``floppy_unit``)."""

    qom_id: str
    target: str
    """What the VM file's boot order calls it: disk, cdrom, floppy, network (IDE-R drives: ider-cd/ider-fd)."""
    floppy_unit: int | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """The command line and the bootable devices it creates, in the VM file's order."""

    argv: list[str]
    boot_devices: tuple[Bootable, ...] = field(default=())


Options = dict[str, str | int | None]


def qemu_option(values: Options, head: str = "") -> str:
    """``head,key=value,...`` with QEMU's escaping (a comma in a value is doubled); empty values are left out."""
    parts = [head] if head else []
    parts += [f"{key}={str(value).replace(',', ',,')}" for key, value in values.items()
              if value is not None and value != ""]
    return ",".join(parts)


def qemu_command(spec: VmSpec, runtime: RuntimeDir, firmware: FirmwareOptions) -> Layout:
    """QEMU's command line for ``spec`` (see the module docstring)."""
    argv = [spec.qemu, "-nodefaults", "-no-user-config", "-S", "-name", qemu_option({"guest": spec.name}),
            "-machine", spec.machine]
    for accel in spec.accel.split(":"):
        argv += ["-accel", accel]
    if spec.cpu_model:
        argv += ["-cpu", spec.cpu_model]
    argv += ["-smp", str(spec.cpus), "-m", str(spec.memory_mb)]
    if spec.firmware is not None:
        argv += ["-bios", str(spec.firmware)]
    argv += ["-qmp", f"unix:{runtime.qmp}",
             "-chardev", qemu_option({"id": "com1", "path": str(runtime.serial), "server": "on", "wait": "off",
                                      "telnet": "on"}, "socket"),
             "-serial", "chardev:com1",
             "-display", "none", "-device", "pvpanic", "-action", "panic=pause"]
    if spec.vga:
        argv += ["-device", "VGA,id=vga", "-vnc", f"unix:{runtime.vnc}"]
    argv += _smbios(spec)
    if firmware.sercon:
        argv += ["-fw_cfg", qemu_option({"name": "etc/sercon-port", "file": str(runtime.sercon)})]
    if firmware.boot_menu:
        argv += ["-boot", qemu_option({"menu": "on", "splash-time": SETUP_WAIT_MS})]
    devices, boot_devices = _devices(spec)
    argv += devices
    return Layout(argv + list(spec.extra_args), tuple(boot_devices))


def _smbios(spec: VmSpec) -> list[str]:
    s = spec.smbios
    tables: list[Options] = [
        {"type": 0, "vendor": s.bios_vendor, "version": s.bios_version, "date": s.bios_date},
        {"type": 1, "manufacturer": s.manufacturer, "product": s.product, "version": s.version, "serial": s.serial,
         "uuid": s.uuid, "sku": s.sku, "family": s.family},
        {"type": 2, "manufacturer": s.board_manufacturer or s.manufacturer, "product": s.board_product or s.product,
         "version": s.board_version or s.version, "serial": s.board_serial or s.serial},
        {"type": 3, "manufacturer": s.chassis_manufacturer or s.manufacturer, "version": s.chassis_version or s.version,
         "serial": s.chassis_serial or s.serial, "asset": s.chassis_asset},
    ]
    return [arg for table in tables for arg in ("-smbios", qemu_option(table))] + ["-uuid", s.uuid]


def _devices(spec: VmSpec) -> tuple[list[str], list[Bootable]]:
    argv: list[str] = []
    boot: list[Bootable] = []
    ide_slots = _ide_slots(spec.machine)
    floppy_units = iter(range(2))
    if spec.machine != "pc" and (spec.ider or any(d.media == "floppy" for d in spec.disks)):
        argv += ["-device", "isa-fdc,id=fdc"]  # i440FX has one built in; Q35 and others do not
    for index, disk in enumerate(spec.disks):
        qom_id, drive = f"disk{index}", f"drive-disk{index}"
        argv += ["-drive", _drive(disk, drive)]
        if disk.media == "floppy":
            unit = next(floppy_units)
            argv += ["-device", qemu_option({"drive": drive, "id": qom_id, "unit": unit}, "floppy")]
            boot.append(Bootable(qom_id, "floppy", unit))
            continue
        if disk.media == "disk" and disk.interface == "virtio":
            argv += ["-device", qemu_option({"drive": drive, "id": qom_id, "serial": disk.serial}, "virtio-blk-pci")]
        else:
            kind = "ide-hd" if disk.media == "disk" else "ide-cd"
            model = disk.model[:40] if disk.media == "disk" else None
            argv += ["-device", qemu_option({"drive": drive, "id": qom_id, "serial": disk.serial, "model": model,
                                             **_slot(ide_slots)}, kind)]
        boot.append(Bootable(qom_id, disk.media))
    for index, nic in enumerate(spec.nics):
        netdev = f"netdev{index}"
        if nic.network == "user":
            argv += ["-netdev", qemu_option({"id": netdev, "tftp": str(nic.tftp) if nic.tftp else None,
                                             "bootfile": nic.bootfile}, "user")]
        argv += ["-device", qemu_option({"id": f"net{index}", "mac": nic.mac,
                                         "netdev": netdev if nic.network == "user" else None}, nic.model)]
        boot.append(Bootable(f"net{index}", "network"))
    if spec.ider:
        argv += ["-device", qemu_option({"id": IDER_CD, **_slot(ide_slots)}, "ide-cd")]
        boot.append(Bootable(IDER_CD, IDER_CD))
        unit = next(floppy_units)
        argv += ["-device", qemu_option({"id": IDER_FLOPPY, "unit": unit}, "floppy")]
        boot.append(Bootable(IDER_FLOPPY, IDER_FLOPPY, unit))
    return argv, boot


def _drive(disk: DiskSpec, drive_id: str) -> str:
    return qemu_option({"file": str(disk.path), "if": "none", "id": drive_id, "format": disk.format,
                        "media": "cdrom" if disk.media == "cdrom" else None,
                        "readonly": "on" if disk.read_only else None, "snapshot": "on" if disk.snapshot else None})


def _ide_slots(machine: str) -> Iterator[tuple[int, int]] | None:
    slots = MACHINES_WITH_IDE.get(machine)
    return iter(slots) if slots is not None else None


def _slot(slots: Iterator[tuple[int, int]] | None) -> Options:
    """The next IDE bus and unit (a machine we have no table for places devices itself)."""
    if slots is None:
        return {}
    bus, unit = next(slots)  # VmSpec checked there are enough
    return {"bus": f"ide.{bus}", "unit": unit}


# ---------------------------------------------------------------------------------------------- the process


def _end_with_the_engine() -> None:
    """In QEMU's process before exec: a SIGTERM (QEMU's clean exit) when the engine dies without stopping it,
    so a killed engine leaves no VM running that nothing manages (Linux's parent-death signal)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class ExitStatus:
    returncode: int
    stderr: str
    """QEMU's last stderr lines."""

    def describe(self) -> str:
        if self.returncode < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-self.returncode).name}"
            return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


class QemuProcess:
    """One running QEMU: its monitor, and its COM1 connection once :meth:`start` returns."""

    def __init__(self, spec: VmSpec, runtime: RuntimeDir, firmware: FirmwareOptions) -> None:
        self.spec = spec
        self.runtime = runtime
        self.firmware = firmware
        self.layout = qemu_command(spec, runtime, firmware)
        self.monitor = Monitor(f"outband-{spec.name}")
        self.serial: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Task[ExitStatus] | None = None

    async def start(self) -> None:
        """Launch QEMU (CPUs stopped) and connect its monitor and COM1; raises :class:`QemuStartError`."""
        executable = shutil.which(self.spec.qemu)
        if executable is None:
            raise QemuStartError(f"QEMU ({self.spec.qemu}) is not installed or not on PATH; on Debian: "
                                 "apt install qemu-system-x86")
        self.runtime.prepare()
        await self.monitor.listen(self.runtime.qmp)
        log.info("starting %s", " ".join(self.layout.argv))
        self._process = await asyncio.create_subprocess_exec(
            executable, *self.layout.argv[1:], stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            preexec_fn=_end_with_the_engine)
        self._stderr_task = asyncio.get_running_loop().create_task(self._collect_stderr(), name="qemu-stderr")
        try:
            async with asyncio.timeout(self.spec.start_timeout):
                await self._first_of(self.monitor.accept())
                await self.monitor.status()  # the main loop runs: every chardev exists now
                self.serial = await asyncio.open_unix_connection(str(self.runtime.serial))
        except (QmpError, OSError, TimeoutError) as exc:
            await self.kill()
            status = await self.wait()
            reason = "did not start in time" if isinstance(exc, TimeoutError) else f"failed to start ({exc})"
            raise QemuStartError(f"QEMU {reason}, {status.describe()}: {status.stderr or 'no message'}") from None

    async def _first_of(self, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` unless QEMU exits first (then its monitor will never answer)."""
        assert self._process is not None
        work = asyncio.ensure_future(step)
        exited = asyncio.ensure_future(self._process.wait())
        try:
            await asyncio.wait({work, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, QmpError):
                await work
            raise QmpGone("QEMU exited during start-up")
        work.result()

    async def _collect_stderr(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        while line := await self._process.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._stderr.append(text)
            log.info("qemu[%s]: %s", self.spec.name, text)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def wait(self) -> ExitStatus:
        """Wait for QEMU to end (and its monitor connection to be cleaned up); any number of tasks may."""
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_task(self._reap(), name="qemu-reap")
        return await asyncio.shield(self._waiter)

    async def _reap(self) -> ExitStatus:
        assert self._process is not None
        returncode = await self._process.wait()
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task
        await self.monitor.close()
        if self.serial is not None:
            self.serial[1].close()
        return ExitStatus(returncode, "\n".join(self._stderr))

    async def quit(self) -> ExitStatus:
        """Power off: ask QEMU to exit, kill it if it does not within :data:`STOP_GRACE`."""
        if self.running:
            with contextlib.suppress(QmpError):
                await self.monitor.execute("quit")
            try:
                async with asyncio.timeout(STOP_GRACE):
                    return await self.wait()
            except TimeoutError:
                log.warning("QEMU %s did not quit; killing it", self.pid)
        await self.kill()
        return await self.wait()

    async def kill(self) -> None:
        if self.running:
            assert self._process is not None
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()


__all__ = [
    "IDER_CD",
    "IDER_FLOPPY",
    "Bootable",
    "ExitStatus",
    "FirmwareOptions",
    "Layout",
    "QemuProcess",
    "QemuStartError",
    "RuntimeDir",
    "qemu_command",
    "qemu_option",
]
