"""QEMU's monitor (QMP) through ``qemu.qmp``: commands, events, and what QEMU's run states mean for AMT.

:class:`Monitor` is the only place the engine touches ``qemu.qmp``: it listens for the QMP connection of a
QEMU we launch (``-qmp unix:PATH``: QEMU connects to us, so nothing races QEMU's socket creation) or connects
to the monitor socket of one already running, runs commands, and hands out events.  Every failure becomes a
:class:`QmpError` (:class:`QmpGone` when the monitor connection is lost) so callers handle one family.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from qemu.qmp import EventListener, ExecInterruptedError, ExecuteError, QMPClient, QMPError, Runstate

from ..base import PowerState

log = logging.getLogger(__name__)

RUN_STATE_POWER: Final[dict[str, PowerState]] = {
    "running": PowerState.ON,
    "guest-panicked": PowerState.ON,
    "internal-error": PowerState.ON,
    "io-error": PowerState.ON,
    "watchdog": PowerState.ON,
    "debug": PowerState.ON,
    "suspended": PowerState.SLEEP_LIGHT,
    "prelaunch": PowerState.OFF_SOFT,
    "paused": PowerState.OFF_SOFT,
    "shutdown": PowerState.OFF_SOFT,
}
"""QMP ``query-status`` states as AMT power states.  A crashed or stuck guest still has power (AMT shows a
hung PC as on); a paused one is off as far as anyone at the machine can tell, which is how a QEMU started
with ``-S`` (or stopped by us) looks."""


class QmpError(Exception):
    """A QMP command failed (QEMU's own message is kept)."""


class QmpGone(QmpError):
    """The monitor connection is closed (QEMU exited or the socket went away)."""


@dataclass(frozen=True, slots=True)
class QmpEvent:
    name: str
    data: Mapping[str, Any]


def power_state_of(status: str) -> PowerState:
    """The AMT power state of a QMP run state (unknown future states count as on: the VM exists and runs)."""
    return RUN_STATE_POWER.get(status, PowerState.ON)


class Monitor:
    """One QMP connection."""

    def __init__(self, name: str) -> None:
        self._client = QMPClient(name)
        self._events = EventListener()
        self._client.register_listener(self._events)
        self._closing: asyncio.Task[None] | None = None

    async def listen(self, path: Path) -> None:
        """Listen on ``path`` for the QEMU we are about to launch."""
        try:
            await self._client.start_server(str(path))
        except QMPError as exc:
            raise QmpError(f"cannot listen for QMP on {path}: {exc}") from None

    async def accept(self) -> None:
        try:
            await self._client.accept()
        except QMPError as exc:
            raise QmpGone(f"QEMU did not open its monitor: {exc}") from None

    async def connect(self, path: Path) -> None:
        try:
            await self._client.connect(str(path))
        except QMPError as exc:
            raise QmpGone(f"cannot reach the QMP socket {path}: {exc}") from None

    @property
    def connected(self) -> bool:
        return self._client.runstate is Runstate.RUNNING

    async def execute(self, command: str, arguments: Mapping[str, object] | None = None) -> Any:
        if not self.connected:
            raise QmpGone(f"{command}: the monitor is not connected")
        try:
            return await self._client.execute(command, arguments)
        except ExecuteError as exc:
            raise QmpError(f"{command}: {exc}") from None
        except (ExecInterruptedError, QMPError, OSError, EOFError) as exc:
            raise QmpGone(f"{command}: the monitor connection ended ({exc or type(exc).__name__})") from None

    async def status(self) -> str:
        reply = await self.execute("query-status")
        return str(reply["status"])

    async def next_event(self) -> QmpEvent:
        """The next event QEMU sent (waits; cancel to stop)."""
        message = await self._events.get()
        data = message.get("data")
        return QmpEvent(str(message["event"]), data if isinstance(data, dict) else {})

    async def wait_closed(self) -> None:
        """Return once the connection has ended (QEMU hung up or :meth:`close` was called)."""
        while self._client.runstate is Runstate.RUNNING:
            await self._client.runstate_changed()

    async def close(self) -> None:
        """Hang up (idempotent, and safe to call from several tasks at once)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._disconnect(), name="qmp-close")
        await asyncio.shield(self._closing)

    async def _disconnect(self) -> None:
        if self._client.runstate is Runstate.IDLE:
            return
        try:
            await self._client.disconnect()
        except (QMPError, OSError, EOFError):
            pass  # what ended the connection: already reported as QmpGone or by the process's exit
        except asyncio.CancelledError:
            pass  # a reader task cancelled by the disconnect itself; this task is never cancelled


__all__ = ["RUN_STATE_POWER", "Monitor", "QmpError", "QmpEvent", "QmpGone", "power_state_of"]
