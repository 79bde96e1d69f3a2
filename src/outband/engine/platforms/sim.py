"""``sim``: a pure-Python machine, the engine's default platform.

Theory of operation: the machine is a power state machine whose transitions are the table ``_TRANSITIONS``:
(current state, requested action) -> (new state, events).  A pair missing from the table is an action the
machine cannot take from that state (e.g. sleep while off), which AMT reports as a failed request.  Powering
on (or resetting) runs a boot: the one-shot boot request chosen through AMT's boot services is consumed, and
the machine reports what it booted from.  Events go to listeners (the engine's event and audit logs).

The machine has a console (``console.py``): each boot runs POST, the boot loader and a shell on its serial
port and text screen; powering off (or sleeping, or a reset) stops it, and the shell's poweroff and reboot
commands come back here as power requests.  The text screen, drawn as VGA text mode, is the machine's display
for KVM (``display``, a ``framebuffer.TextDisplay``).

The simulated OS can enter its own power-saving mode (modern standby: the display is off, the machine stays in
S0), which AMT asks for with IPS_PowerManagementService; any power transition leaves it.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .base import BootDevice, BootRequest, EventKind, Listener, PlatformEvent, PowerAction, PowerState
from .console import SimConsole
from .framebuffer import TextDisplay
from .profile import HardwareProfile

P = PowerState
A = PowerAction
E = EventKind

_OFF_STATES: Final = (P.OFF_SOFT, P.OFF_HARD, P.HIBERNATE)
_ASLEEP: Final = (P.SLEEP_LIGHT, P.SLEEP_DEEP)

# (state, action) -> (new state, events in order).  BOOT is added by _boot() whenever the machine comes up.
_TRANSITIONS: Final[dict[tuple[PowerState, PowerAction], tuple[PowerState, tuple[EventKind, ...]]]] = {}
for _off in _OFF_STATES:
    _TRANSITIONS[(_off, A.ON)] = (P.ON, (E.POWER_ON,))
for _sleep in _ASLEEP:
    _TRANSITIONS[(_sleep, A.ON)] = (P.ON, (E.POWER_ON,))
    _TRANSITIONS[(_sleep, A.OFF_HARD)] = (P.OFF_SOFT, (E.POWER_OFF,))
    _TRANSITIONS[(_sleep, A.OFF_SOFT)] = (P.OFF_SOFT, (E.POWER_OFF,))
    _TRANSITIONS[(_sleep, A.CYCLE_SOFT)] = (P.ON, (E.POWER_OFF, E.POWER_ON))
for _act in (A.OFF_HARD, A.OFF_SOFT, A.OFF_SOFT_GRACEFUL, A.OFF_HARD_GRACEFUL):
    _TRANSITIONS[(P.ON, _act)] = (P.OFF_SOFT, (E.POWER_OFF,))
for _act in (A.CYCLE_SOFT, A.CYCLE_HARD, A.CYCLE_SOFT_GRACEFUL, A.CYCLE_HARD_GRACEFUL):
    _TRANSITIONS[(P.ON, _act)] = (P.ON, (E.POWER_OFF, E.POWER_ON))
    for _off in _OFF_STATES:
        _TRANSITIONS[(_off, _act)] = (P.ON, (E.POWER_ON,))
for _act in (A.RESET, A.RESET_GRACEFUL):
    _TRANSITIONS[(P.ON, _act)] = (P.ON, (E.RESET,))
_TRANSITIONS[(P.ON, A.SLEEP_LIGHT)] = (P.SLEEP_LIGHT, (E.SLEEP,))
_TRANSITIONS[(P.ON, A.SLEEP_DEEP)] = (P.SLEEP_DEEP, (E.SLEEP,))
_TRANSITIONS[(P.ON, A.HIBERNATE)] = (P.HIBERNATE, (E.HIBERNATE,))
_TRANSITIONS[(P.ON, A.NMI)] = (P.ON, (E.CRASH,))

_BOOTS_AFTER: Final = frozenset({E.POWER_ON, E.RESET})
_CONSOLE_STOPS: Final = frozenset({E.POWER_OFF, E.RESET, E.SLEEP, E.HIBERNATE})

_BOOT_TARGETS: Final = {
    BootDevice.DEFAULT: "hard disk",
    BootDevice.HDD: "hard disk",
    BootDevice.PXE: "network (PXE)",
    BootDevice.CD: "CD/DVD",
    BootDevice.IDER_CD: "IDE-R CD-ROM",
    BootDevice.IDER_FLOPPY: "IDE-R floppy",
    BootDevice.BIOS_SETUP: "BIOS setup",
    BootDevice.DIAGNOSTIC: "diagnostics",
}


class SimMachine:
    """A simulated PC.  ``power_state`` starts as given (a freshly plugged-in PC is soft-off)."""

    def __init__(self, profile: HardwareProfile | None = None, *, power_state: PowerState = P.OFF_SOFT,
                 console: SimConsole | None = None) -> None:
        self.profile = profile or HardwareProfile()
        self._state = power_state
        self._next_boot = BootRequest()
        self._listeners: list[Listener] = [self._drive_console]
        self.console = console or SimConsole(self.profile)
        self.console.power = self.request_power
        self.display = TextDisplay(self.console)
        if power_state is P.ON:
            self.console.running()
        self._os_power_saving = False
        self.last_boot: BootRequest | None = None
        self.boot_count = 0
        self.screen_messages: deque[str] = deque(maxlen=50)
        """What the machine showed its user (consent codes...); the console of the redirection issue
        will render these on the simulated screen and serial port."""

    @property
    def power_state(self) -> PowerState:
        return self._state

    def available_actions(self) -> frozenset[PowerAction]:
        """The power actions the machine can take from its current state."""
        return frozenset(action for state, action in _TRANSITIONS if state is self._state)

    @property
    def os_power_saving(self) -> bool:
        """Whether the running OS has put itself in its power-saving mode (always False unless on)."""
        return self._os_power_saving

    def set_os_power_saving(self, saving: bool) -> bool:
        """Ask the OS to enter or leave power saving; False when no OS is running to ask."""
        if self._state is not P.ON:
            return False
        self._os_power_saving = saving
        return True

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_next_boot(self, request: BootRequest) -> None:
        self._next_boot = request

    @property
    def next_boot(self) -> BootRequest:
        return self._next_boot

    async def request_power(self, action: PowerAction) -> bool:
        transition = _TRANSITIONS.get((self._state, action))
        if transition is None:
            return False
        self._state, events = transition
        self._os_power_saving = False
        for kind in events:
            self._emit(PlatformEvent(kind))
            if kind in _BOOTS_AFTER:
                self._boot()
        return True

    def _boot(self) -> None:
        request, self._next_boot = self._next_boot, BootRequest()
        self.last_boot = request
        self.boot_count += 1
        self._emit(PlatformEvent(E.BOOT, f"booting from {_BOOT_TARGETS[request.device]}",
                                 {"device": request.device.value, "sol": request.use_sol}))

    def notify_user(self, text: str) -> None:
        self.screen_messages.append(text)
        self.console.announce(text)

    def _drive_console(self, event: PlatformEvent) -> None:
        if event.kind in _CONSOLE_STOPS:
            self.console.power_off()
        elif event.kind is E.BOOT and self.last_boot is not None:
            self.console.boot(self.last_boot)
        elif event.kind is E.CRASH:
            self.console.crash()

    def _emit(self, event: PlatformEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.console.stop()
