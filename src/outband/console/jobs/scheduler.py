"""Recurring operations: a schedule starts its operation on its target whenever its cron expression says.

Theory of operation: one timer for the whole console.  The scheduler sleeps until the earliest
``next_run_at`` of the enabled schedules (at most :data:`MAX_SLEEP`, so a changed system clock is noticed),
or until a schedule is created, changed or deleted (:meth:`Scheduler.wake`).  Then every due schedule is
*claimed* by moving its ``next_run_at`` from the value read to the next run after now (a compare-and-set:
with several consoles on one PostgreSQL database exactly one of them wins), and in the same transaction its
job is created, so a claimed run always has its job and a job never exists without its claim.  The job is
handed to the runner after the commit.

A run missed while the console was down (or asleep) is made up **once** at start: its ``next_run_at`` lies in
the past, so it is due at once, and the next run is computed from now -- ten missed days of ``0 7 * * *`` make
one job, not ten.

Each run acts with the permissions its creator has *now*: a schedule whose creator was deleted, disabled or
lost the operation's permission is skipped (and audited as denied).  The target is resolved at run time, so
``{"tags": ["lab"]}`` means the devices tagged ``lab`` at 07:00 that day.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import DENIED, FAILED, OK, record_entry
from ..db.base import utcnow
from ..db.models import Schedule, User
from ..devices.repository import SelectionError, resolve_selection
from ..permissions import allows
from ..runtime import Runtime
from ..schemas import Selection
from . import store
from .cron import CronError, CronExpression, zone
from .operations import OPERATIONS
from .runner import JobRunner

log = logging.getLogger("outband.console.schedules")

MAX_SLEEP: Final = 60.0


def next_run(schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
    """When the schedule runs next after ``after`` (None: its expression or zone is unusable)."""
    try:
        return CronExpression.parse(schedule.cron).next_after(after, zone(schedule.timezone))
    except CronError:
        return None


class Scheduler:
    name = "schedules"

    def __init__(self, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the scheduler is not started")
        return self._runtime

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._task = asyncio.create_task(self._loop(), name="schedules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Look at the schedules again now (one was created, changed or deleted)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                upcoming = await self.tick()
            except Exception:
                log.exception("running due schedules failed; trying again shortly")
                upcoming = None
            delay = MAX_SLEEP if upcoming is None else (upcoming - self.clock()).total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(delay, 0.0), MAX_SLEEP)):
                    await self._wake.wait()

    async def tick(self) -> dt.datetime | None:
        """Run every due schedule once; returns when the next one is due (None: none is)."""
        now = self.clock()
        async with self.runtime.db.read() as session:
            schedules = list((await session.execute(
                select(Schedule).where(Schedule.enabled.is_(True)).order_by(Schedule.id))).scalars())
        for schedule in schedules:
            if schedule.next_run_at is None or schedule.next_run_at <= now:
                await self._run(schedule, now)
        async with self.runtime.db.read() as session:
            upcoming = (await session.execute(select(Schedule.next_run_at).where(
                Schedule.enabled.is_(True), Schedule.next_run_at.is_not(None))
                .order_by(Schedule.next_run_at).limit(1))).scalar_one_or_none()
        return upcoming

    async def _run(self, schedule: Schedule, now: dt.datetime) -> None:
        following = next_run(schedule, now)
        due = schedule.next_run_at is not None  # None: a schedule never planned (just made): only plan it
        detail: dict[str, Any] = {"schedule_id": schedule.id, "schedule": schedule.name,
                                  "operation": schedule.operation}
        outcome, devices, job_id = OK, [], None
        async with self.runtime.db.write() as session:
            claimed = await session.execute(
                update(Schedule).where(Schedule.id == schedule.id, _same(Schedule.next_run_at, schedule.next_run_at))
                .values(next_run_at=following, **({"last_run_at": now} if due else {}))
                .execution_options(synchronize_session=False))
            if not claimed.rowcount or not due:  # type: ignore[attr-defined]
                return
            refusal = await self._refusal(session, schedule)
            if refusal is not None:
                outcome, detail["reason"] = refusal
            else:
                try:
                    devices = await resolve_selection(session, Selection.model_validate(schedule.target))
                except (SelectionError, ValidationError) as exc:
                    outcome, detail["reason"] = FAILED, str(exc)
                if outcome == OK and not devices:
                    outcome, detail["reason"] = FAILED, "the target names no devices"
                if outcome == OK:
                    creator = await session.get(User, schedule.created_by_id) if schedule.created_by_id else None
                    job_id = await store.create_job(
                        session, operation=schedule.operation, params=schedule.params, device_ids=devices,
                        created_by=creator.username if creator else None, created_by_id=schedule.created_by_id,
                        schedule_id=schedule.id)
        if following is None:
            detail["warning"] = "the schedule's expression has no next run"
        if job_id is not None:
            detail["job_id"] = job_id
            self.runtime.metrics.jobs_submitted.labels(operation=schedule.operation).inc()
            runner = self.runtime.service("jobs")
            if isinstance(runner, JobRunner):
                await runner.enqueue(job_id)
        log.info("schedule %s: %s", schedule.name, outcome, extra=detail)
        await record_entry(self.runtime.db, action="schedule_run", outcome=outcome, devices=devices, detail=detail)

    async def _refusal(self, session: AsyncSession, schedule: Schedule) -> tuple[str, str] | None:
        operation = OPERATIONS.get(schedule.operation)
        if operation is None:
            return FAILED, f"no operation {schedule.operation!r}"
        creator = await session.get(User, schedule.created_by_id) if schedule.created_by_id is not None else None
        if creator is None or creator.disabled:
            return DENIED, "the schedule's creator no longer exists or is disabled"
        if not allows(creator.role, operation.permission):
            return DENIED, f"the creator's role {creator.role.value} no longer allows {operation.permission.value}"
        try:
            operation.parse(schedule.params)
        except ValidationError as exc:
            return FAILED, f"parameters not valid for {operation.name}: {exc.errors()[0]['msg']}"
        return None


def _same(column: Any, value: dt.datetime | None) -> Any:
    return column.is_(None) if value is None else column == value
