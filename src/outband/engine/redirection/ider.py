"""IDE-R on the engine side: a console's drives plugged into the machine's ATAPI channel.

The bridge is a :class:`~outband.aio.redirection.HostedSession` around :class:`~outband.proto.redir.ider.IderHost`
(AMT's end of the protocol).  When the console enables its drives the bridge attaches itself to the machine's
:class:`~outband.engine.platforms.bootmedia.StorageRedirection` as the :class:`AtapiPort` the firmware boots
through; disabling, or the end of the session, detaches it.  A power-on or reset of the machine resets its IDE
channel, which AMT reports to the console (RESET_OCCURRED) before any new command goes out.  Heartbeats go to
the console at the interval it asked for in START_IDER.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ...proto.redir.frames import Frame, Outgoing, ProtocolError, RawData, SessionKind
from ...proto.redir.ider import (
    Closed,
    CommandCompleted,
    ConsoleOpened,
    DrivesEnabled,
    HostState,
    IderHost,
    ResetSeen,
)
from ...proto.redir.scsi import DriveKind
from ..platforms.base import EventKind, PlatformEvent
from ..platforms.bootmedia import StorageRedirection
from ..services.optin import Purpose
from ..services.redirection import RedirectionState
from .kinds import SessionContext

_CHANNEL_RESETS = frozenset({EventKind.POWER_ON, EventKind.RESET})


def storage_of(platform: object) -> StorageRedirection | None:
    """The machine's IDE-R attachment point (the sim console's ``storage``)."""
    storage = getattr(getattr(platform, "console", None), "storage", None)
    return storage if isinstance(storage, StorageRedirection) else None


class IderBridge:
    """One IDE-R session: the console's drives as the machine's ATAPI channel (an :class:`AtapiPort`)."""

    def __init__(self, ctx: SessionContext, storage: StorageRedirection) -> None:
        self.ctx = ctx
        self.storage = storage
        self.host = IderHost()
        self._finished: str | None = None
        self._pending: asyncio.Future[CommandCompleted] | None = None
        self._turn = asyncio.Lock()
        self._reset_done = asyncio.Event()
        self._reset_done.set()
        self._heartbeat: float | None = None
        self._next_beat: float | None = None
        self._detach: Callable[[], None] | None = ctx.subscribe(self._on_platform)

    # ------------------------------------------------------------------------------------------ HostedSession

    def receive(self, item: Frame | RawData, now: float) -> None:
        if isinstance(item, RawData):
            self._end("unframed data in an IDE-R session")
            return
        try:
            self.host.receive(item)
        except ProtocolError as exc:
            self._end(f"protocol error: {exc}")
            return
        self._dispatch(now)

    def poll(self, now: float) -> float | None:
        if self._next_beat is not None and now >= self._next_beat and self._heartbeat is not None:
            self.host.heartbeat()
            self._next_beat = now + self._heartbeat
        return self._next_beat

    def outgoing(self) -> list[Outgoing]:
        return [Outgoing(data) for data in self.host.data_to_send()]

    @property
    def finished(self) -> str | None:
        return self._finished

    def close(self, reason: str) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.host.state is not HostState.CLOSED:
            self.host.close(reason)
        self.storage.detach(self)
        self._fail_pending()
        self._reset_done.set()

    # ------------------------------------------------------------------------------------------ AtapiPort

    async def execute(self, drive: DriveKind, packet: bytes, expect: int) -> CommandCompleted:
        async with self._turn:
            await self._reset_done.wait()
            if self._finished is not None or not self.host.enabled:
                raise ConnectionError("the IDE-R session is over")
            if self.host.busy:  # a command given up on (timed out) never completed: the channel is stuck
                raise ConnectionError("the IDE-R console never completed the previous command")
            future: asyncio.Future[CommandCompleted] = asyncio.get_running_loop().create_future()
            self._pending = future
            self.host.submit(drive, packet, expect)
            self.ctx.wake()
            try:
                return await future
            finally:
                self._pending = None

    # ------------------------------------------------------------------------------------------ events

    def _dispatch(self, now: float) -> None:
        for event in self.host.events():
            if isinstance(event, ConsoleOpened):
                interval = event.request.heartbeat / 1000
                if interval > 0:
                    self._heartbeat, self._next_beat = interval, now + interval
            elif isinstance(event, DrivesEnabled):
                if event.enabled and event.start_mode is not None:
                    self.storage.attach(self, event.start_mode)
                else:
                    self.storage.detach(self)
                    self._fail_pending()
            elif isinstance(event, CommandCompleted):
                if self._pending is not None and not self._pending.done():
                    self._pending.set_result(event)
            elif isinstance(event, ResetSeen):
                self._reset_done.set()
            elif isinstance(event, Closed):
                self._end(event.reason)

    def _on_platform(self, event: PlatformEvent) -> None:
        if event.kind in _CHANNEL_RESETS and self.host.state is HostState.OPEN and not self.host.resetting:
            self.host.reset()
            self._reset_done.clear()
            self._fail_pending()
            self.ctx.wake()

    def _fail_pending(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.set_exception(ConnectionError("the IDE-R command was abandoned"))

    def _end(self, reason: str) -> None:
        self._finished = self._finished or reason
        self.storage.detach(self)
        self._fail_pending()


class IderHandler:
    """The IDE-R kind: enabled by AMT_RedirectionService's IDE-R bit; storage redirection needs user consent
    (``Purpose.REDIRECTION``) where the policy asks for it."""

    kind = SessionKind.IDER
    audit_events = (0, 1)
    consent: Purpose | None = Purpose.REDIRECTION

    def enabled(self, state: RedirectionState) -> bool:
        return state.ider

    def open(self, ctx: SessionContext) -> IderBridge | str:
        storage = storage_of(ctx.engine.platform)
        if storage is None:
            return "the platform cannot boot from redirected storage"
        return IderBridge(ctx, storage)


__all__ = ["IderBridge", "IderHandler", "storage_of"]
