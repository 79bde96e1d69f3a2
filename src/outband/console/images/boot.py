"""Booting a device from a library image: the console serves the image over IDE-R and watches the boot.

Theory of operation (:class:`BootRun`, one per request, run as a console background task)::

    connecting --IDE-R session open, drives attached--> serving
               --refused (busy, switched off, consent, unreachable)--> failed
    serving    --boot requested: AMT_BootSettingData UseIDER + next-boot role + power on/reset--> booting
               (without a boot request the run waits for the machine to read the medium by itself)
    booting    --the host ejects the medium, or no command for idle seconds, or the session ends--> done
    any        --cancelled by a user--> cancelled;  --an error--> failed

While it runs, the device's serial console is read over SOL (when no one else holds the device's SOL
session) so the page can show what the machine printed while booting -- the boot loader's own report of what
it found on the medium included.  Progress (commands served, bytes sent) is read from the live IDE-R session
whenever it is asked for.  Runs are kept in memory (the newest :data:`KEEP_RUNS`); the audit trail records
each one's start and end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import secrets
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

from ...aio.errors import TransportError
from ...client.ider import IderSession, Progress, boot_from_ider
from ...client.redirection import SolSession
from ...proto.redir.scsi import DriveKind
from ...proto.wsman import WsmanError
from ..audit import FAILED, OK, record_entry
from ..auth import Principal
from ..devices.connect import DeviceTarget
from ..relay.device import explain, redirection_streams
from ..runtime import Runtime
from .library import Image, ImageLibrary

RunState = Literal["connecting", "serving", "booting", "done", "failed", "cancelled"]
FINISHED: Final = frozenset({"done", "failed", "cancelled"})
KEEP_RUNS: Final = 100
CONSOLE_LINES: Final = 200
MAX_LINE: Final = 200
SETTLE_SECONDS: Final = 2.0
"""After the medium is ejected, how long the serial console must stay quiet before the run ends (the boot
loader reports what it found just after the eject)."""
SETTLE_LIMIT: Final = 15.0
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


@dataclass(eq=False)
class BootRun:
    id: str
    device_id: int
    device_name: str
    image: Image
    boot: bool
    started_by: str
    started_at: dt.datetime
    state: RunState = "connecting"
    finished_at: dt.datetime | None = None
    outcome: str | None = None
    """How serving ended (the host ejected the medium, idle, ...)."""
    error_code: str | None = None
    error: str | None = None
    console: deque[str] = field(default_factory=lambda: deque(maxlen=CONSOLE_LINES))
    """The device's serial output during the run, line by line (escape sequences removed)."""
    console_note: str | None = None
    """Why there is no console output, when there is none."""
    session: IderSession | None = field(default=None, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    _last: Progress | None = field(default=None, repr=False)

    @property
    def progress(self) -> Progress | None:
        """The IDE-R counters (live while the session is open, the last ones after)."""
        return self.session.progress if self.session is not None else self._last

    def detach(self) -> None:
        """The session is over: keep its last counters, let it go."""
        if self.session is not None:
            self._last, self.session = self.session.progress, None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class _ConsoleTap:
    """Reads the device's serial console into ``run.console`` while the boot runs."""

    def __init__(self, run: BootRun, sol: SolSession) -> None:
        self.run = run
        self.sol = sol
        self.last_output = time.monotonic()
        self._partial = ""
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while chunk := await self.sol.read():
            self.last_output = time.monotonic()
            text = self._partial + _ESCAPES.sub("", chunk.decode("latin-1"))
            *lines, self._partial = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.run.console.extend(line[:MAX_LINE] for line in lines)
            self._partial = self._partial[-MAX_LINE:]

    async def settle(self) -> None:
        """Until the console has been quiet for :data:`SETTLE_SECONDS` (at most :data:`SETTLE_LIMIT`)."""
        deadline = time.monotonic() + SETTLE_LIMIT
        while time.monotonic() < deadline and not self._task.done():
            quiet_for = time.monotonic() - self.last_output
            if quiet_for >= SETTLE_SECONDS:
                return
            await asyncio.sleep(SETTLE_SECONDS - quiet_for)

    async def close(self) -> None:
        if self._partial:
            self.run.console.append(self._partial)
            self._partial = ""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TransportError, ConnectionError):
            await self._task
        await self.sol.close()


class BootRuns:
    """The IDE-R boot runs of one console."""

    def __init__(self, runtime: Runtime, library: ImageLibrary) -> None:
        self.runtime = runtime
        self.library = library
        self._runs: dict[str, BootRun] = {}

    def list(self) -> list[BootRun]:
        return sorted(self._runs.values(), key=lambda r: r.started_at, reverse=True)

    def get(self, run_id: str) -> BootRun | None:
        return self._runs.get(run_id)

    def active_on(self, device_id: int) -> BootRun | None:
        return next((r for r in self._runs.values() if r.device_id == device_id and not r.finished), None)

    def start(self, principal: Principal, target: DeviceTarget, image: Image, *, boot: bool, idle: float,
              client: str | None) -> BootRun:
        assert target.device_id is not None
        run = BootRun(secrets.token_hex(8), target.device_id, target.name, image, boot, principal.username,
                      dt.datetime.now(dt.UTC))
        self._forget_old()
        self._runs[run.id] = run
        run.task = self.runtime.spawn(self._run(run, principal, target, idle, client), name=f"ider-boot-{run.id}")
        return run

    async def cancel(self, run: BootRun) -> None:
        if run.task is not None and not run.task.done():
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task

    def _forget_old(self) -> None:
        finished = [r for r in self.list() if r.finished]
        for run in finished[KEEP_RUNS - 1:]:
            del self._runs[run.id]

    async def _run(self, run: BootRun, principal: Principal, target: DeviceTarget, idle: float,
                   client: str | None) -> None:
        try:
            with self.library.using(run.image) as path:
                await self._serve(run, target, str(path), idle)
        except asyncio.CancelledError:
            run.state, run.outcome = "cancelled", "cancelled by a user"
        except TransportError as exc:
            refusal = await explain(self.runtime, target, "ider", exc)
            run.state, run.error_code, run.error = "failed", refusal.code, refusal.message
        except WsmanError as exc:
            run.state, run.error_code, run.error = "failed", "fault", f"the device refused the boot settings: {exc}"
        except Exception as exc:  # a console fault: the run reports it instead of vanishing
            run.state, run.error_code, run.error = "failed", "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            run.finished_at = dt.datetime.now(dt.UTC)
            await record_entry(
                self.runtime.db, action="ider.boot", outcome=OK if run.state == "done" else FAILED,
                actor=principal.username, actor_id=principal.user_id, via=principal.via, client=client,
                devices=[run.device_id],
                detail={"run": run.id, "image": run.image.name, "sha256": run.image.sha256, "boot": run.boot,
                        "state": run.state, "outcome": run.outcome, "error": run.error,
                        "bytes_sent": run.progress.bytes_sent if run.progress else 0},
            )

    async def _serve(self, run: BootRun, target: DeviceTarget, path: str, idle: float) -> None:
        timeout = self.runtime.settings.device_timeout
        drive = DriveKind.CDROM if run.image.kind == "cd" else DriveKind.FLOPPY
        cd = path if drive is DriveKind.CDROM else None
        session = IderSession(target.host, target.username, target.password, timeout=timeout, cd=cd,
                              floppy=None if cd else path,
                              stream_factory=redirection_streams(self.runtime, target, timeout))
        await session.open()
        run.session = session
        tap: _ConsoleTap | None = None
        try:
            run.state = "serving"
            tap = await self._tap(run, target)
            if run.boot:
                amt = self.runtime.connector.client(target, operation="ider_boot")
                try:
                    status = await boot_from_ider(amt, drive)
                finally:
                    await amt.close()
                if status != 0:
                    run.state, run.error_code = "failed", "refused"
                    run.error = f"the device refused to power on or reset (ReturnValue {status})"
                    return
                run.state = "booting"
            run.outcome = await session.wait_done(idle=idle)
            if tap is not None and session.ejected:
                await tap.settle()
            run.state = "done"
        finally:
            if tap is not None:
                await tap.close()
            await session.close()
            run.detach()

    async def _tap(self, run: BootRun, target: DeviceTarget) -> _ConsoleTap | None:
        timeout = self.runtime.settings.device_timeout
        sol = SolSession(target.host, target.username, target.password, timeout=timeout,
                         stream_factory=redirection_streams(self.runtime, target, timeout))
        try:
            await sol.open()
        except TransportError as exc:
            refusal = await explain(self.runtime, target, "sol", exc)
            run.console_note = f"the serial console cannot be shown: {refusal.message}"
            return None
        return _ConsoleTap(run, sol)


_runs: weakref.WeakKeyDictionary[Runtime, BootRuns] = weakref.WeakKeyDictionary()


def boot_runs(runtime: Runtime, library: ImageLibrary) -> BootRuns:
    runs = _runs.get(runtime)
    if runs is None:
        runs = _runs[runtime] = BootRuns(runtime, library)
    return runs
