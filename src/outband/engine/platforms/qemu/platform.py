"""``qemu``: a QEMU virtual machine as the engine's platform (the Platform protocol of ``base.py``).

Theory of operation.  The machine is either *launched* (the engine runs QEMU itself from a VM file: a VM that
is off has no QEMU process, each power-on starts one -- ``process.py``) or *attached* (``--qmp SOCKET``: a QEMU
someone else runs, started with ``-S``; off means paused at the reset vector).  Either way the running QEMU is
a :class:`_Vm`: its monitor, its bootable devices, and a supervisor task that turns QMP events and the end of
the monitor connection into platform events.  Power actions run one at a time (``_power_lock``)::

    OFF   --ON / any cycle-->  start QEMU (launched) or reset (attached); POWER_ON; boot; BOOT
    ON    --OFF_HARD-->        quit QEMU (launched) or stop + reset (attached); POWER_OFF
          --OFF_SOFT, the two graceful offs-->  ACPI power button; the guest shuts down (SHUTDOWN event:
                               POWER_OFF) or, after ``acpi_timeout`` seconds, the power is cut as OFF_HARD
                               (OFF_SOFT cuts at once when the VM file says ``soft_off = "immediate"``)
          --RESET-->           RESET; boot; BOOT (a launched VM is restarted instead when its next boot names a
                               device or needs other firmware options -- SOL console, boot menu: fw_cfg is
                               fixed per process, and a fresh firmware makes no echo reset, below)
          --a cycle-->         OFF_HARD then ON
          --NMI-->             an NMI is injected (the guest decides what it means)
    SLEEP --ON-->              system_wakeup (only the guest can suspend itself: SUSPEND event -> SLEEP)

A *boot* applies the one-time boot request (``set_next_boot``): the requested device is moved to the head of
the firmware's boot order over QMP (``bootindex`` properties; QEMU rebuilds the firmware's ``bootorder`` file at
each reset), the machine is reset and resumed, and the default order is put back at once -- the running
firmware already read the old file, so the request is used exactly once, as AMT's are.  (A reset of a running
SeaBIOS is echoed by a reset of its own, which rebuilds that file: an attached VM, which cannot be restarted,
gets its default order back only once the echo is over, :data:`RESET_ECHO` seconds at most.)  IDE-R media are the
console's drives, served to QEMU over NBD by ``nbd.py`` and inserted into the ``ider-cd``/``ider-fd`` drives
whenever an IDE-R session has them enabled (``QemuStorage``), as AMT's IDE-R devices appear to the host.

From the guest's side: a guest reboot (RESET event) is RESET + BOOT; a guest power-off (SHUTDOWN) is POWER_OFF;
a guest panic (GUEST_PANICKED, through the pvpanic device) is CRASH, the machine staying on as a crashed PC
does.  SeaBIOS on QEMU answers a reset of a machine whose firmware has run with one or two resets of its own
(it restores its ROM image and resets through port 0xCF9, within a few hundred milliseconds), so guest RESET
events less than :data:`RESET_ECHO` seconds after such a reset (or after one of those echoes) are the same
reset.  A freshly started QEMU's first reset has no echo: a guest may reboot at once after a power-on.

A QEMU that ends without being asked to (killed, crashed) is reported as CRASH then POWER_OFF, with its exit
status and last stderr lines; the engine keeps serving and the next power-on starts a new QEMU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ....proto.redir.ider import StartMode
from ..base import BootDevice, BootRequest, EventKind, Listener, PlatformEvent, PowerAction, PowerState
from ..bootmedia import AtapiPort, StorageRedirection
from .nbd import NbdServer
from .process import IDER_CD, IDER_FLOPPY, Bootable, FirmwareOptions, QemuProcess, QemuStartError, RuntimeDir
from .qmp import Monitor, QmpError, QmpEvent, QmpGone, power_state_of
from .serial import SerialConsole
from .vm import VmSpec
from .vnc import VncDisplay

log = logging.getLogger(__name__)

P = PowerState
A = PowerAction
E = EventKind

RESET_ECHO: Final = 3.0
"""Seconds after a reset within which a guest reset is the firmware's own (measured: 40-250 ms under TCG)."""
MAX_ECHOES: Final = 2
"""Resets SeaBIOS makes of its own after one (one or two, seen)."""
_OFF: Final = frozenset({P.OFF_SOFT, P.OFF_HARD})
_GRACEFUL_OFF: Final = frozenset({A.OFF_SOFT_GRACEFUL, A.OFF_HARD_GRACEFUL})
_CYCLES: Final = frozenset({A.CYCLE_SOFT, A.CYCLE_HARD, A.CYCLE_SOFT_GRACEFUL, A.CYCLE_HARD_GRACEFUL})
_RESETS: Final = frozenset({A.RESET, A.RESET_GRACEFUL})
_WHEN_ON: Final = frozenset({A.OFF_HARD, A.OFF_SOFT, *_GRACEFUL_OFF, *_CYCLES, *_RESETS, A.NMI})
_WHEN_OFF: Final = frozenset({A.ON, *_CYCLES})
_WHEN_ASLEEP: Final = frozenset({A.ON, A.OFF_HARD, A.OFF_SOFT, A.CYCLE_SOFT})
_TARGETS: Final = {BootDevice.HDD: "disk", BootDevice.CD: "cdrom", BootDevice.PXE: "network",
                   BootDevice.IDER_CD: IDER_CD, BootDevice.IDER_FLOPPY: IDER_FLOPPY}
"""Boot devices that name a device; the others (default, BIOS setup, diagnostics) keep the default order."""
_QOM_TARGETS: Final = {"ide-hd": "disk", "virtio-blk-pci": "disk", "scsi-hd": "disk", "ide-cd": "cdrom",
                       "scsi-cd": "cdrom", "floppy": "floppy", "e1000": "network", "e1000e": "network",
                       "virtio-net-pci": "network", "rtl8139": "network"}
"""QOM types of an attached VM's devices, as boot targets."""


class QemuStorage(StorageRedirection):
    """The IDE-R attachment point, telling the machine when a console's drives come and go (so their media
    can be inserted into the VM's IDE-R drives, or ejected)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def attach(self, port: AtapiPort, start_mode: StartMode) -> None:
        super().attach(port, start_mode)
        self._on_change()

    def detach(self, port: AtapiPort) -> None:
        attached = self.port is port
        super().detach(port)
        if attached:
            self._on_change()


class QemuConsole(SerialConsole):
    """What the redirection listener finds at ``platform.console``: COM1 (SOL) and the IDE-R attachment point
    (``storage``).  The VM's screen for KVM is the machine's ``display``."""

    def __init__(self, storage: QemuStorage) -> None:
        super().__init__()
        self.storage = storage


class _Vm:
    """One running QEMU (launched or attached) and what the machine tracks about it."""

    def __init__(self, monitor: Monitor, process: QemuProcess | None, bootables: tuple[Bootable, ...]) -> None:
        self.monitor = monitor
        self.process = process
        self.bootables = bootables
        self.firmware = process.firmware if process is not None else FirmwareOptions()
        self.expected_end: str | None = None
        """Why QEMU is going away when we (or the guest) asked for it; None means a surprise."""
        self.quiet_end = False
        """The end is part of a restart-as-reset: no POWER_OFF."""
        self.started = False
        """The firmware has run (the CPUs were resumed since QEMU started)."""
        self.echo_until = 0.0
        """Until when a guest RESET is the firmware's echo of the previous reset."""
        self.boots = 0
        """Boots started in this QEMU (a later one makes pending work for an earlier one moot)."""
        self.supervisor: asyncio.Task[None] | None = None
        self.floppy_controller: str | None = None
        self.media: set[str] = set()


class QemuMachine:
    """A QEMU VM managed through AMT.  ``attach``: the QMP socket of a running QEMU instead of launching one."""

    def __init__(self, spec: VmSpec, *, attach: Path | None = None, runtime_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.profile = spec.profile()
        self.attach_socket = attach
        self.storage = QemuStorage(self._media_changed)
        self.display = VncDisplay(spec.name) if spec.vga else None
        """The VM's screen, keyboard and mouse for KVM (None for a VM without VGA)."""
        self.console = QemuConsole(self.storage)
        self.screen_messages: deque[str] = deque(maxlen=50)
        self.last_boot: BootRequest | None = None
        self.boot_count = 0
        self._clock = clock
        self._state = P.OFF_SOFT
        self._next_boot = BootRequest()
        self._listeners: list[Listener] = []
        self._vm: _Vm | None = None
        self._power_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._own_runtime = runtime_dir is None
        self.runtime = RuntimeDir(runtime_dir or Path(tempfile.mkdtemp(prefix="outband-qemu-")))
        self.nbd = NbdServer(self.storage)

    @classmethod
    def from_files(cls, vm_file: Path | None, qmp: Path | None = None) -> QemuMachine:
        """The machine of ``outband engine --vm FILE`` (launched) or ``--qmp SOCKET`` (attached; the VM file,
        if given, describes that VM); raises :class:`~.vm.VmFileError` (a ValueError) for a bad file."""
        spec = VmSpec.load(vm_file) if vm_file else VmSpec.from_dict({"name": "qemu-vm"}, base=Path.cwd())
        return cls(spec, attach=qmp)

    # ------------------------------------------------------------------------------------------ Platform

    @property
    def power_state(self) -> PowerState:
        return self._state

    def available_actions(self) -> frozenset[PowerAction]:
        if self._state is P.ON:
            return _WHEN_ON
        if self._state in _OFF:
            return _WHEN_OFF
        return _WHEN_ASLEEP

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_next_boot(self, request: BootRequest) -> None:
        self._next_boot = request

    @property
    def next_boot(self) -> BootRequest:
        return self._next_boot

    def notify_user(self, text: str) -> None:
        """A VM has no one at its console to show this to but whoever watches the engine's log."""
        self.screen_messages.append(text)
        log.warning("message for the user of VM %s: %s", self.spec.name, text)

    async def start(self) -> None:
        self.runtime.prepare(first=True)
        await self.nbd.start(self.runtime.nbd)
        if self.attach_socket is not None:
            await self._attach()

    async def stop(self) -> None:
        async with self._power_lock:
            vm = self._vm
            if vm is not None and vm.process is not None:
                log.info("engine stopping: powering off VM %s", self.spec.name)
                await self._end(vm, "the engine stopped")
            elif vm is not None:
                vm.expected_end = "the engine stopped"
                await vm.monitor.close()
                await self._wait_supervisor(vm)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.console.detach()
        if self.display is not None:
            await self.display.close()
        await self.nbd.stop()
        if self._own_runtime:
            shutil.rmtree(self.runtime.path, ignore_errors=True)

    async def request_power(self, action: PowerAction) -> bool:
        async with self._power_lock:
            if action not in self.available_actions():
                return False
            try:
                return await self._power(action)
            except (QmpError, QemuStartError, OSError) as exc:
                log.error("VM %s: %s failed: %s", self.spec.name, action.name, exc)
                return False

    # ------------------------------------------------------------------------------------------ power

    async def _power(self, action: PowerAction) -> bool:
        vm = self._vm
        if self._state in _OFF:
            return await self._power_on(PlatformEvent(E.POWER_ON))
        if self._state in (P.SLEEP_LIGHT, P.SLEEP_DEEP):
            assert vm is not None
            if action is A.ON:
                await vm.monitor.execute("system_wakeup")
                return True
            await self._power_off(vm, "power off requested")
            return True if action is not A.CYCLE_SOFT else await self._power_on(PlatformEvent(E.POWER_ON))
        assert vm is not None
        if action is A.OFF_HARD or (action is A.OFF_SOFT and self.spec.soft_off == "immediate"):
            await self._power_off(vm, "power off requested")
        elif action is A.OFF_SOFT or action in _GRACEFUL_OFF:
            await vm.monitor.execute("system_powerdown")
            self._spawn(self._cut_power_later(vm, vm.boots), "qemu-acpi-timeout")
        elif action in _CYCLES:
            await self._power_off(vm, "power cycle requested")
            return await self._power_on(PlatformEvent(E.POWER_ON))
        elif action in _RESETS:
            await self._reset(vm)
        elif action is A.NMI:
            await vm.monitor.execute("inject-nmi")
        return True

    async def _power_on(self, announce: PlatformEvent) -> bool:
        request = self._next_boot
        if self.attach_socket is not None:
            vm = self._vm or await self._attach()
            if vm is None:
                return False
            with contextlib.suppress(QmpError):
                await vm.monitor.execute("stop")
        else:
            vm = await self._launch(_firmware_for(request))
        self._state = P.ON
        self._emit(announce)
        await self._boot(vm, request)
        return True

    async def _launch(self, firmware: FirmwareOptions) -> _Vm:
        process = QemuProcess(self.spec, self.runtime, firmware)
        await process.start()
        assert process.serial is not None
        await self.console.attach(*process.serial)
        if self.display is not None:
            self.display.set_source(self.runtime.vnc)
        vm = _Vm(process.monitor, process, process.layout.boot_devices)
        self._watch(vm)
        await self._refresh_profile(vm)
        return vm

    async def _reset(self, vm: _Vm) -> None:
        request = self._next_boot
        if vm.process is not None and (_firmware_for(request) != vm.firmware or request.device in _TARGETS):
            vm.quiet_end = True  # a fresh QEMU: its firmware options, and no echo reset to undo the boot order
            await self._end(vm, "restarting for a one-time boot")
            new = await self._launch(_firmware_for(request))
            self._state = P.ON
            self._emit(PlatformEvent(E.RESET))
            await self._boot(new, request)
            return
        self._emit(PlatformEvent(E.RESET))
        await self._boot(vm, request)

    async def _power_off(self, vm: _Vm, reason: str) -> None:
        if vm.process is not None:
            await self._end(vm, reason)
            return
        await vm.monitor.execute("stop")
        await vm.monitor.execute("system_reset")
        self._powered_off(vm)

    async def _end(self, vm: _Vm, reason: str) -> None:
        """Quit a launched QEMU and wait until the supervisor has reported it."""
        vm.expected_end = reason
        assert vm.process is not None
        await vm.process.quit()
        await self._wait_supervisor(vm)

    async def _wait_supervisor(self, vm: _Vm) -> None:
        if vm.supervisor is not None and vm.supervisor is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await vm.supervisor

    async def _cut_power_later(self, vm: _Vm, boot: int) -> None:
        """The graceful power-off's deadline: cut the power if the OS has not shut down by then (and the
        machine has not been booted again since)."""
        await asyncio.sleep(self.spec.acpi_timeout)
        async with self._power_lock:
            if self._vm is vm and vm.boots == boot and self._state is not P.OFF_SOFT:
                log.info("VM %s did not shut down within %g s: cutting the power", self.spec.name,
                         self.spec.acpi_timeout)
                await self._power_off(vm, f"the OS did not shut down within {self.spec.acpi_timeout:g} s")

    def _powered_off(self, vm: _Vm) -> None:
        if self._state in _OFF:
            return
        self._state = P.OFF_SOFT
        self._emit(PlatformEvent(E.POWER_OFF))

    # ------------------------------------------------------------------------------------------ boot

    async def _boot(self, vm: _Vm, request: BootRequest) -> None:
        """Boot ``request`` once (module docstring): media, boot order, reset, run, default order back."""
        self._next_boot = BootRequest()
        await self._insert_media(vm)
        first = self._first_device(vm, request)
        vm.boots += 1
        await self._set_boot_order(vm, first)
        echoes = vm.started and self.spec.firmware is None
        self._reset_done(vm)  # armed before the reset too: its echo may be handled before this task resumes
        await vm.monitor.execute("system_reset")
        self._reset_done(vm)
        if await vm.monitor.status() != "running":
            await vm.monitor.execute("cont")
        vm.started = True
        if first is not None and echoes:  # SeaBIOS's own resets rebuild the boot order file: outlast them
            self._spawn(self._default_order_later(vm, vm.boots), "qemu-boot-order")
        elif first is not None:
            await self._set_boot_order(vm, None)
        self.last_boot = request
        self.boot_count += 1
        where = first.qom_id if first is not None else "the default boot order"
        self._emit(PlatformEvent(E.BOOT, f"booting from {where}",
                                 {"device": request.device.value, "sol": request.use_sol}))

    async def _default_order_later(self, vm: _Vm, boot: int) -> None:
        """Put the default boot order back once the firmware's echo resets are over (unless another boot has
        set an order since)."""
        for _ in range(MAX_ECHOES + 1):  # each echo extends the window once
            left = vm.echo_until - self._clock()
            if left <= 0:
                break
            await asyncio.sleep(left)
        async with self._power_lock:
            if self._vm is vm and vm.boots == boot:
                await self._set_boot_order(vm, None)

    def _first_device(self, vm: _Vm, request: BootRequest) -> Bootable | None:
        target = _TARGETS.get(request.device)
        if target is None:
            return None
        found = next((b for b in vm.bootables if b.target == target), None)
        if found is None:
            log.warning("VM %s has no %s device to boot from: using the default order", self.spec.name, target)
        return found

    async def _set_boot_order(self, vm: _Vm, first: Bootable | None) -> None:
        order = [first] if first is not None else []
        for target in self.spec.boot_order:
            order += [b for b in vm.bootables if b.target == target and b is not first]
        for bootable in vm.bootables:  # clear every index first: QEMU refuses a duplicate
            await self._set_boot_index(vm, bootable, -1)
        for index, bootable in enumerate(order):
            await self._set_boot_index(vm, bootable, index)

    async def _set_boot_index(self, vm: _Vm, bootable: Bootable, index: int) -> None:
        path, prop = f"/machine/peripheral/{bootable.qom_id}", "bootindex"
        if bootable.floppy_unit is not None:  # floppies boot through their controller
            if vm.floppy_controller is None:
                bus = await vm.monitor.execute("qom-get", {"path": path, "property": "parent_bus"})
                vm.floppy_controller = str(bus).rsplit("/", 1)[0]
            path, prop = vm.floppy_controller, "bootindexA" if bootable.floppy_unit == 0 else "bootindexB"
        await vm.monitor.execute("qom-set", {"path": path, "property": prop, "value": index})

    # ------------------------------------------------------------------------------------------ IDE-R media

    def _media_changed(self) -> None:
        if self._vm is not None:
            self._spawn(self._follow_media(self._vm), "qemu-ider-media")

    async def _follow_media(self, vm: _Vm) -> None:
        """An IDE-R session came or went: a running VM sees its media now (an off one at its next boot)."""
        async with self._power_lock:
            if self._vm is vm and self._state is P.ON:
                await self._insert_media(vm)

    async def _insert_media(self, vm: _Vm) -> None:
        """Put the IDE-R session's media in the VM's IDE-R drives, or take them out when it has none."""
        present = {b.qom_id for b in vm.bootables if b.target in (IDER_CD, IDER_FLOPPY)}
        for drive in sorted(present):
            wanted = self.storage.port is not None
            if wanted == (drive in vm.media):
                continue
            try:
                if wanted:
                    await vm.monitor.execute("blockdev-change-medium", {
                        "id": drive, "filename": self._nbd_url(drive), "format": "raw",
                        "read-only-mode": "read-only"})
                    vm.media.add(drive)
                else:
                    vm.media.discard(drive)
                    await vm.monitor.execute("eject", {"id": drive, "force": True})
            except QmpGone:
                raise
            except QmpError as exc:  # the console has no such drive, or its medium cannot be read
                log.info("VM %s: IDE-R medium for %s not %s: %s", self.spec.name, drive,
                         "inserted" if wanted else "ejected", exc)

    def _nbd_url(self, export: str) -> str:
        return f"nbd+unix:///{export}?socket={urllib.parse.quote(str(self.runtime.nbd))}"

    # ------------------------------------------------------------------------------------------ supervision

    def _watch(self, vm: _Vm) -> None:
        self._vm = vm
        vm.supervisor = self._spawn(self._supervise(vm), "qemu-supervisor")

    async def _supervise(self, vm: _Vm) -> None:
        events = self._spawn(self._pump_events(vm), "qemu-events")
        try:
            if vm.process is not None:
                status = await vm.process.wait()
                detail = f"QEMU {status.describe()}" + (f": {status.stderr}" if status.stderr else "")
            else:
                await vm.monitor.wait_closed()
                detail = "the QMP connection to QEMU ended"
        finally:
            events.cancel()
        if self._vm is vm:
            self._vm = None
            if self.display is not None:
                self.display.set_source(None)
        await self.console.detach()
        if vm.expected_end is None:
            log.error("VM %s stopped unexpectedly: %s", self.spec.name, detail)
            self._emit(PlatformEvent(E.CRASH, detail, {"qemu": True}))
        if vm.quiet_end:
            self._state = P.OFF_SOFT
        else:
            self._powered_off(vm)

    async def _pump_events(self, vm: _Vm) -> None:
        while True:
            event = await vm.monitor.next_event()
            log.debug("VM %s: QMP event %s %s", self.spec.name, event.name, dict(event.data))
            self._on_event(vm, event)

    def _on_event(self, vm: _Vm, event: QmpEvent) -> None:
        if self._vm is not vm:
            return
        guest = bool(event.data.get("guest"))
        if event.name == "SHUTDOWN" and guest:
            vm.expected_end = "the guest powered off"
            self._powered_off(vm)
        elif event.name == "RESET" and guest and self._state is P.ON:
            echo = self._clock() < vm.echo_until
            self._reset_done(vm)
            if echo:
                return
            self._emit(PlatformEvent(E.RESET, "the guest reset the machine"))
            self._guest_boot()
        elif event.name == "GUEST_PANICKED":
            info = event.data.get("info")
            self._emit(PlatformEvent(E.CRASH, f"guest panic: {info or event.data.get('action', '')}"))
        elif event.name == "SUSPEND" and self._state is P.ON:
            self._state = P.SLEEP_LIGHT
            self._emit(PlatformEvent(E.SLEEP))
        elif event.name == "WAKEUP" and self._state in (P.SLEEP_LIGHT, P.SLEEP_DEEP):
            self._state = P.ON
            self._emit(PlatformEvent(E.POWER_ON, "woken up"))

    def _reset_done(self, vm: _Vm) -> None:
        """A reset happened: SeaBIOS (the default firmware) will echo it if it had run."""
        if vm.started and self.spec.firmware is None:
            vm.echo_until = self._clock() + RESET_ECHO

    def _guest_boot(self) -> None:
        """A reboot the guest made: the firmware boots in the default order (a one-time request waits for a
        boot AMT starts, as AMT's boot options apply to the next boot it controls)."""
        request = BootRequest()
        self.last_boot = request
        self.boot_count += 1
        self._emit(PlatformEvent(E.BOOT, "booting from the default boot order",
                                 {"device": request.device.value, "sol": False}))

    # ------------------------------------------------------------------------------------------ attach mode

    async def _attach(self) -> _Vm | None:
        """Connect to the running QEMU of ``--qmp``; None (and off) when it is not there."""
        assert self.attach_socket is not None
        monitor = Monitor(f"outband-{self.spec.name}")
        try:
            await monitor.connect(self.attach_socket)
            status = await monitor.status()
            bootables = await _discover_bootables(monitor)
            serial = await _serial_socket(monitor)
            vnc = await monitor.execute("query-vnc")
        except QmpError as exc:
            log.error("VM %s: cannot attach to QEMU at %s: %s", self.spec.name, self.attach_socket, exc)
            await monitor.close()
            return None
        vm = _Vm(monitor, None, bootables)
        vm.started = status != "prelaunch"
        if serial is not None:
            with contextlib.suppress(OSError):
                await self.console.attach(*await asyncio.open_unix_connection(str(serial)))
        if self.display is not None and vnc.get("enabled") and vnc.get("family") == "unix":
            self.display.set_source(Path(str(vnc["service"])))
        self._watch(vm)
        self._state = power_state_of(status)
        await self._refresh_profile(vm)
        return vm

    async def _refresh_profile(self, vm: _Vm) -> None:
        """Disk sizes as QEMU sees them (a qcow2 file's size is not its disk's)."""
        with contextlib.suppress(QmpError):
            blocks = await vm.monitor.execute("query-block")
            sizes = {}
            for block in blocks:
                qdev = str(block.get("qdev", ""))
                image = (block.get("inserted") or {}).get("image") or {}
                name = qdev.rsplit("/", 2)[-2] if qdev.endswith("/virtio-backend") else qdev.rsplit("/", 1)[-1]
                if name.startswith("disk") and name[4:].isdigit() and "virtual-size" in image:
                    sizes[int(name[4:])] = int(image["virtual-size"])
            self.profile = self.spec.profile(disk_sizes=sizes)

    # ------------------------------------------------------------------------------------------ plumbing

    def _spawn(self, work: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, QmpGone):
                log.info("VM %s: %s", self.spec.name, exc)
            else:
                log.error("VM %s: %s failed", self.spec.name, task.get_name(), exc_info=exc)

    def _emit(self, event: PlatformEvent) -> None:
        for listener in list(self._listeners):
            listener(event)


def _firmware_for(request: BootRequest) -> FirmwareOptions:
    return FirmwareOptions(sercon=request.use_sol,
                           boot_menu=request.bios_pause or request.device is BootDevice.BIOS_SETUP)


async def _discover_bootables(monitor: Monitor) -> tuple[Bootable, ...]:
    """An attached QEMU's bootable devices: those with an id, in id order, typed by their QOM class."""
    children = await monitor.execute("qom-list", {"path": "/machine/peripheral"})
    found = []
    for child in sorted(children, key=lambda c: str(c["name"])):
        kind = str(child["type"]).removeprefix("child<").removesuffix(">")
        target = _QOM_TARGETS.get(kind)
        if target is None:
            continue
        name = str(child["name"])
        if name in (IDER_CD, IDER_FLOPPY):
            target = name
        unit = None
        if kind == "floppy":
            unit = int(await monitor.execute("qom-get", {"path": f"/machine/peripheral/{name}", "property": "unit"}))
        found.append(Bootable(name, target, unit))
    return tuple(found)


async def _serial_socket(monitor: Monitor) -> Path | None:
    """The unix socket of an attached QEMU's first serial port, if its chardev listens on one."""
    serials = []
    for child in await monitor.execute("qom-list", {"path": "/machine/unattached"}):
        if str(child["type"]) == "child<isa-serial>":
            serials.append(f"/machine/unattached/{child['name']}")
    for path in sorted(serials, key=lambda p: int("".join(c for c in p if c.isdigit()) or 0)):
        label = await monitor.execute("qom-get", {"path": path, "property": "chardev"})
        for chardev in await monitor.execute("query-chardev"):
            if chardev["label"] != label:
                continue
            filename = str(chardev["filename"]).removeprefix("disconnected:")
            if filename.startswith("unix:") and ",server" in filename:
                return Path(filename.removeprefix("unix:").split(",", 1)[0])
        return None
    return None


__all__ = ["RESET_ECHO", "QemuConsole", "QemuMachine", "QemuStorage"]
