"""The database side of jobs: one ``jobs`` row per job, one ``job_devices`` row per device in it.

Theory of operation (a device's row)::

    pending --claim--> running --success--> succeeded
       ^                  |----refusal----> failed
       |                  |----cancelled before it ran: pending --> cancelled
       +---retry later----+     (a transport failure, attempts left, the operation may be repeated)

``claim`` is a compare-and-set (``WHERE status = 'pending'``) committed *before* the device is contacted, so
after a crash a ``running`` row means "the request may have reached the device": :func:`resume_interrupted`
runs it again only when the operation may be repeated, and otherwise reports it as ``failed`` with reason
``interrupted``.  Every row ends in exactly one final state, written once, together with whatever the operation
stores (snapshot, log records) and the device's learnt state, in one transaction.

A job is ``pending`` until a runner takes it, ``running`` while it has unfinished rows, and then ``succeeded``
(no device failed), ``failed`` (some did) or ``cancelled`` (a cancel was asked for and some rows never ran).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.base import utcnow
from ..db.models import ERROR_LENGTH, Device, Job, JobDevice, Status
from ..devices.connect import DeviceTarget
from ..devices.repository import chunks, record_state

PAGE: Final = 1_000
UNFINISHED: Final = (Status.PENDING, Status.RUNNING)
INTERRUPTED: Final = "interrupted"


@dataclass(slots=True)
class Unit:
    """One device's part in a job, as a runner carries it."""

    row_id: int
    device_id: int | None
    device_name: str
    attempts: int
    target: DeviceTarget | None = field(default=None, repr=False)
    started: bool = False
    """Claimed: from here on its outcome must be recorded (it is not cancelled any more)."""
    problem: str | None = None
    """Why there is no target (the device was deleted, its credential does not decrypt)."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: int
    operation: str
    params: dict[str, Any]
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt on one device came to: final (succeeded/failed) or pending again (a retry)."""

    status: Status
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    retry_at: dt.datetime | None = None
    state: Mapping[str, Any] = field(default_factory=dict)
    """Device state learnt on the way (power_state, amt_version, uuid)."""
    reachable: bool | None = None
    """Whether the device answered (None: this attempt says nothing about it)."""


async def create_job(session: AsyncSession, *, operation: str, params: Mapping[str, Any], device_ids: Sequence[int],
                     created_by: str | None = None, created_by_id: int | None = None,
                     schedule_id: int | None = None) -> int:
    """A pending job with one pending row per device (devices deleted meanwhile are left out)."""
    names: dict[int, str] = {}
    for part in chunks(sorted(set(device_ids))):
        for device_id, name in await session.execute(select(Device.id, Device.name).where(Device.id.in_(part))):
            names[device_id] = name
    job = Job(operation=operation, params=dict(params), status=Status.PENDING, created_by=created_by,
              created_by_id=created_by_id, schedule_id=schedule_id, total=len(names))
    session.add(job)
    await session.flush()
    ids = sorted(names)
    for part in chunks(ids):
        await session.execute(insert(JobDevice), [
            {"job_id": job.id, "device_id": device_id, "device_name": names[device_id], "status": Status.PENDING,
             "attempts": 0} for device_id in part])
    return job.id


async def begin(session: AsyncSession, job_id: int) -> JobSpec | None:
    """Mark a job running (keeping its first start time); None when it is finished or gone."""
    job = await session.get(Job, job_id)
    if job is None or job.status.finished:
        return None
    job.status = Status.RUNNING
    job.started_at = job.started_at or utcnow()
    return JobSpec(job.id, job.operation, dict(job.params), job.cancel_requested)


async def resume_interrupted(session: AsyncSession, job_id: int, *, repeatable: bool, first: int = 0,
                             last: int = 2**31 - 1, devices: Sequence[int] | None = None) -> int:
    """Rows left ``running`` by a process that died (those of rows ``first``..``last``, and of ``devices`` when
    given): back to pending when the operation may be repeated, else failed as interrupted.  Returns how many
    were failed."""
    query = update(JobDevice).where(JobDevice.job_id == job_id, JobDevice.status == Status.RUNNING,
                                    JobDevice.id.between(first, last))
    if devices is not None:
        query = query.where(JobDevice.device_id.in_(list(devices)))
    if repeatable:
        await session.execute(query.values(status=Status.PENDING))
        return 0
    result = await session.execute(query.values(
        status=Status.FAILED, finished_at=utcnow(), result={"reason": INTERRUPTED},
        error="the console stopped while this device was being asked; its outcome is unknown, and the operation "
              "is not safe to repeat"))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_units(session: AsyncSession, job_id: int, *, after: int = 0, last: int = 2**31 - 1,
                        limit: int = PAGE) -> list[Unit]:
    rows = await session.execute(
        select(JobDevice.id, JobDevice.device_id, JobDevice.device_name, JobDevice.attempts)
        .where(JobDevice.job_id == job_id, JobDevice.status == Status.PENDING, JobDevice.id > after,
               JobDevice.id <= last)
        .order_by(JobDevice.id).limit(limit))
    return [Unit(row_id, device_id, name, attempts) for row_id, device_id, name, attempts in rows]


async def claim(session: AsyncSession, row_id: int) -> bool:
    """Take a pending row (this process is about to contact the device); False when it is not pending any more
    (cancelled, or taken by another worker)."""
    now = utcnow()
    result = await session.execute(
        update(JobDevice).where(JobDevice.id == row_id, JobDevice.status == Status.PENDING)
        .values(status=Status.RUNNING, attempts=JobDevice.attempts + 1,
                started_at=func.coalesce(JobDevice.started_at, now), next_attempt_at=None)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record(session: AsyncSession, unit: Unit, outcome: Outcome) -> None:
    """Store one attempt's outcome (and the device's learnt state) in the caller's transaction."""
    now = utcnow()
    values: dict[str, Any] = {"status": outcome.status, "error": _short(outcome.error)}
    if outcome.status is Status.PENDING:
        values.update(next_attempt_at=outcome.retry_at, result={"reason": outcome.reason} if outcome.reason else None)
    else:
        result = dict(outcome.result or {})
        if outcome.reason:
            result["reason"] = outcome.reason
        values.update(finished_at=now, result=result or None, next_attempt_at=None)
    await session.execute(update(JobDevice).where(JobDevice.id == unit.row_id).values(**values)
                          .execution_options(synchronize_session=False))
    if unit.device_id is not None and outcome.reachable is not None:
        await record_state(session, unit.device_id, reachable=outcome.reachable, error=outcome.error, now=now,
                           **outcome.state)


async def fail_unfinished(session: AsyncSession, job_id: int, *, reason: str, error: str) -> None:
    """Fail every row of a job that cannot run at all (its parameters no longer make sense)."""
    await session.execute(update(JobDevice).where(JobDevice.job_id == job_id, JobDevice.status.in_(UNFINISHED))
                          .values(status=Status.FAILED, finished_at=utcnow(), result={"reason": reason},
                                  error=_short(error)))


async def counts(session: AsyncSession, job_id: int) -> dict[str, int]:
    rows = await session.execute(select(JobDevice.status, func.count()).where(JobDevice.job_id == job_id)
                                 .group_by(JobDevice.status))
    found = {status.value: 0 for status in Status}
    for status, count in rows:
        found[Status(status).value] = count
    return found


async def finish(session: AsyncSession, job_id: int) -> Status:
    """Close a job whose runner has nothing left to do: rows never run become cancelled (after a cancel), and
    the job's status follows from its rows."""
    job = await session.get(Job, job_id)
    if job is None:
        return Status.CANCELLED
    now = utcnow()
    if job.cancel_requested:
        await session.execute(update(JobDevice).where(JobDevice.job_id == job_id, JobDevice.status.in_(UNFINISHED))
                              .values(status=Status.CANCELLED, finished_at=now, error="cancelled before it ran"))
    tally = await counts(session, job_id)
    if tally[Status.PENDING] or tally[Status.RUNNING]:
        return job.status  # not done: another worker still has rows of it
    if job.cancel_requested and tally[Status.CANCELLED]:
        job.status = Status.CANCELLED
    elif tally[Status.FAILED]:
        job.status = Status.FAILED
    else:
        job.status = Status.SUCCEEDED
    job.finished_at = now
    return job.status


async def request_cancel(session: AsyncSession, job_id: int) -> Status | None:
    """Record a cancel request; returns the job's status (None: no such job)."""
    job = await session.get(Job, job_id)
    if job is None:
        return None
    if not job.status.finished:
        job.cancel_requested = True
    return job.status


async def unfinished_jobs(session: AsyncSession) -> list[int]:
    rows = await session.execute(select(Job.id).where(Job.status.in_(UNFINISHED)).order_by(Job.id))
    return list(rows.scalars())


def _short(text: str | None) -> str | None:
    return None if text is None else text[:ERROR_LENGTH]
