"""Serial-over-LAN on the engine side: the SOL state machine wired to the platform's serial port.

The bridge is a :class:`~outband.aio.redirection.HostedSession`: console keystrokes (0x28) go into the serial
port, a serial break (0x27 with BREAK) becomes a break on the port, every byte the machine writes comes back
as 0x2A, and power changes are reported with 0x29 (amtterm prints "The system is powered off").  The serial
port is subscribed to only while SOL runs: AMT does not replay what the machine wrote before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ...proto.redir.frames import Frame, Outgoing, RawData, SessionKind
from ...proto.redir.sol import Control, ControlsToHost, KeysToHost, SolEnded, SolHost, StartRequested
from ..platforms.base import EventKind, PlatformEvent, PowerState
from ..services.optin import Purpose
from ..services.redirection import RedirectionState
from .kinds import SessionContext


@runtime_checkable
class SerialPort(Protocol):
    """What SOL needs of a platform's serial console (the sim's ``SimConsole``; a VM's serial later)."""

    def add_serial_listener(self, listener: Callable[[bytes], None]) -> Callable[[], None]: ...

    def input(self, data: bytes) -> None: ...

    def send_break(self) -> None: ...


def serial_port_of(platform: object) -> SerialPort | None:
    console = getattr(platform, "console", None)
    return console if isinstance(console, SerialPort) else None


_POWER_EVENTS = frozenset({EventKind.POWER_ON, EventKind.POWER_OFF, EventKind.SLEEP, EventKind.HIBERNATE})


class SolBridge:
    """One SOL session between a console and the machine's serial port."""

    def __init__(self, ctx: SessionContext, port: SerialPort) -> None:
        self.ctx = ctx
        self.port = port
        self.sol = SolHost(ctx.clock(), ctx.config.sol)
        self._detach: list[Callable[[], None]] = []

    # HostedSession

    def receive(self, item: Frame | RawData, now: float) -> None:
        if isinstance(item, RawData):
            self.sol.close("raw data in a SOL session")
            return
        self.sol.receive(item, now)
        for event in self.sol.events():
            if isinstance(event, StartRequested):
                self._start(now)
            elif isinstance(event, KeysToHost):
                self.port.input(event.data)
            elif isinstance(event, ControlsToHost):
                if event.control & Control.BREAK:
                    self.port.send_break()
            elif isinstance(event, SolEnded):
                self._unsubscribe()

    def poll(self, now: float) -> float | None:
        return self.sol.poll(now)

    def outgoing(self) -> list[Outgoing]:
        return self.sol.outgoing()

    @property
    def finished(self) -> str | None:
        return self.sol.close_reason

    def close(self, reason: str) -> None:
        self._unsubscribe()
        self.sol.close(reason)

    # the machine's side

    def _start(self, now: float) -> None:
        self._detach = [self.port.add_serial_listener(self._on_serial), self.ctx.subscribe(self._on_platform)]
        self.sol.accept(now, powered=self._powered())

    def _powered(self) -> bool:
        return self.ctx.engine.platform.power_state is PowerState.ON

    def _on_serial(self, data: bytes) -> None:
        self.sol.host_output(data, self.ctx.clock())
        self.ctx.wake()

    def _on_platform(self, event: PlatformEvent) -> None:
        if event.kind in _POWER_EVENTS:
            self.sol.set_powered(self._powered(), self.ctx.clock())
            self.ctx.wake()

    def _unsubscribe(self) -> None:
        for detach in self._detach:
            detach()
        self._detach = []


class SolHandler:
    """The SOL kind: enabled by AMT_RedirectionService's SOL bit; no user consent (IRG ``userconsent1.htm``:
    opening an SOL session needs none; SOL during a remote boot is consented with the boot options)."""

    kind = SessionKind.SOL
    audit_events = (4, 5)
    consent: Purpose | None = None

    def enabled(self, state: RedirectionState) -> bool:
        return state.sol

    def open(self, ctx: SessionContext) -> SolBridge | str:
        port = serial_port_of(ctx.engine.platform)
        if port is None:
            return "the platform has no serial port"
        return SolBridge(ctx, port)


__all__ = ["SerialPort", "SolBridge", "SolHandler", "serial_port_of"]
