"""The Platform protocol: what the engine manages, whether a simulated machine or a QEMU VM.

The engine speaks AMT; a platform only knows machines: it powers them, boots them from a device, reports
their hardware, and tells the engine what happened (power transitions, boots, watchdog expiry) through
listeners.  Keeping this seam small (as sushy-tools' systems drivers do) lets ``sim`` and ``qemu`` share
every AMT service above it.

A machine with a screen offers it as ``platform.display``, a :class:`Display`: pixels (palette indices, as our
RFB server encodes them) that a KVM session follows, and the session's keyboard and mouse.  The sim draws its
text console into such pixels (``framebuffer.TextDisplay``), the QEMU platform reads the VM's own display over
VNC (``qemu/vnc.py``); the engine's one KVM kind (``redirection/kvm.py``) serves either.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ...proto.rfb.server import IndexedSurface
from .profile import HardwareProfile


class PowerState(enum.IntEnum):
    """Power states as AMT reports them in CIM_AssociatedPowerManagementService.PowerState (DSP1027)."""

    ON = 2
    SLEEP_LIGHT = 3
    SLEEP_DEEP = 4
    HIBERNATE = 7
    OFF_SOFT = 8
    OFF_HARD = 6


class PowerAction(enum.IntEnum):
    """Requested power changes: the RequestPowerStateChange values AMT acts on out of band (§3.3)."""

    ON = 2
    SLEEP_LIGHT = 3
    SLEEP_DEEP = 4
    CYCLE_SOFT = 5
    OFF_HARD = 6
    HIBERNATE = 7
    OFF_SOFT = 8
    CYCLE_HARD = 9
    RESET = 10
    NMI = 11
    OFF_SOFT_GRACEFUL = 12
    OFF_HARD_GRACEFUL = 13
    RESET_GRACEFUL = 14
    CYCLE_SOFT_GRACEFUL = 15
    CYCLE_HARD_GRACEFUL = 16


class BootDevice(enum.Enum):
    DEFAULT = "default"
    PXE = "pxe"
    HDD = "hdd"
    CD = "cd"
    IDER_CD = "ider-cd"
    IDER_FLOPPY = "ider-floppy"
    BIOS_SETUP = "bios-setup"
    DIAGNOSTIC = "diagnostic"


@dataclass(frozen=True, slots=True)
class BootRequest:
    """What the next boot should do, assembled by the boot service from AMT_BootSettingData and friends."""

    device: BootDevice = BootDevice.DEFAULT
    use_sol: bool = False
    bios_pause: bool = False
    lock_keyboard: bool = False
    verbosity: int = 0


class EventKind(enum.Enum):
    POWER_ON = "power-on"
    POWER_OFF = "power-off"
    RESET = "reset"
    SLEEP = "sleep"
    HIBERNATE = "hibernate"
    BOOT = "boot"
    BOOT_FAILED = "boot-failed"
    WATCHDOG = "watchdog"
    CRASH = "crash"


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    kind: EventKind
    detail: str = ""
    data: dict[str, object] = field(default_factory=dict)


Listener = Callable[[PlatformEvent], None]


class DisplayView(IndexedSurface, Protocol):
    """One KVM session's view of a :class:`Display`: its picture (size, palette, ``region``), which it follows
    between :meth:`attach` and :meth:`detach`, and its input.  A view per session keeps per-session state
    (the text display's modifier keys, the follower VNC counts) from outliving the session."""

    def attach(self, on_change: Callable[[], None] | None = None) -> None:
        """Follow the display; ``on_change`` is called after each change (the session wakes up to send it)."""
        ...

    def detach(self) -> None: ...

    def key(self, keysym: int, down: bool) -> None:
        """An X keysym pressed or released (an RFB KeyEvent)."""
        ...

    def pointer(self, buttons: int, x: int, y: int) -> None:
        """The mouse at (x, y) with its button mask (an RFB PointerEvent)."""
        ...


@runtime_checkable
class Display(Protocol):
    """A machine's screen, keyboard and mouse, as KVM serves them (``platform.display``)."""

    @property
    def hostname(self) -> str:
        """The desktop's name (RFB ServerInit)."""
        ...

    def view(self) -> DisplayView:
        """A view for one KVM session (it follows the display once attached)."""
        ...


class Platform(Protocol):
    """A managed machine."""

    profile: HardwareProfile

    @property
    def power_state(self) -> PowerState: ...

    async def request_power(self, action: PowerAction) -> bool:
        """Carry out a power action; False when the machine cannot do it from its current state."""
        ...

    def set_next_boot(self, request: BootRequest) -> None:
        """Remember how the next boot (one only) should go."""
        ...

    def add_listener(self, listener: Listener) -> None: ...

    def notify_user(self, text: str) -> None:
        """Show a message to whoever sits at the machine (AMT's user-consent code is shown this way)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
