"""The database side of jobs: one ``jobs`` row per job, one ``job_devices`` row per device in it.

Theory of operation (a device's row)::

    pending --claim--> running --success--> succeeded
       ^                  |----refusal----> failed
       |                  |----cancelled before it ran: pending --> cancelled
       +---retry later----+     (a transport failure, attempts left, the operation may be repeated;
                                or a CIRA device offline: the attempt is given back, nothing was sent)

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
from typing import Any, Final, cast

from sqlalchemy import Boolean, Integer, String, Table, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.base import utcnow
from ..db.models import ERROR_LENGTH, Device, Job, JobDevice, Status
from ..devices.connect import DeviceTarget
from ..devices.repository import chunks

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
    first_try: dt.datetime | None = None
    """When the job first claimed this device (the offline wait runs from there)."""
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
    counted: bool = True
    """Whether this attempt counts against the device's attempts (not when the device was offline)."""


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
        select(JobDevice.id, JobDevice.device_id, JobDevice.device_name, JobDevice.attempts, JobDevice.started_at)
        .where(JobDevice.job_id == job_id, JobDevice.status == Status.PENDING, JobDevice.id > after,
               JobDevice.id <= last)
        .order_by(JobDevice.id).limit(limit))
    return [Unit(row_id, device_id, name, attempts, started) for row_id, device_id, name, attempts, started in rows]


async def claim(session: AsyncSession, row_ids: list[int]) -> list[bool]:
    """Take pending rows (this process is about to contact their devices), one statement for all; for each row,
    False when it is not pending any more (cancelled, or taken by another worker)."""
    now = utcnow()
    taken: set[int] = set()
    for part in chunks(sorted(set(row_ids))):
        result = await session.execute(
            update(JobDevice).where(JobDevice.id.in_(part), JobDevice.status == Status.PENDING)
            .values(status=Status.RUNNING, attempts=JobDevice.attempts + 1,
                    started_at=func.coalesce(JobDevice.started_at, now), next_attempt_at=None)
            .returning(JobDevice.id).execution_options(synchronize_session=False))
        taken.update(result.scalars())
    return [row_id in taken for row_id in row_ids]


_ROWS = cast(Table, JobDevice.__table__)
_DEVICES = cast(Table, Device.__table__)
_ROW_UPDATE = (update(_ROWS).where(_ROWS.c.id == bindparam("row"))
               .values(status=bindparam("status"), error=bindparam("error"), result=bindparam("result"),
                       finished_at=bindparam("finished"), next_attempt_at=bindparam("next_attempt"),
                       attempts=_ROWS.c.attempts - bindparam("given_back", type_=Integer)))
_DEVICE_UPDATE = (update(_DEVICES).where(_DEVICES.c.id == bindparam("device")).values(
    reachable=bindparam("reachable"),
    last_checked_at=bindparam("now"),
    last_seen_at=case((bindparam("reachable", type_=Boolean), bindparam("now")), else_=_DEVICES.c.last_seen_at),
    last_error=bindparam("last_error"),
    power_state=func.coalesce(bindparam("power_state", type_=Integer), _DEVICES.c.power_state),
    amt_version=func.coalesce(bindparam("amt_version", type_=String), _DEVICES.c.amt_version),
    uuid=func.coalesce(bindparam("uuid", type_=String), _DEVICES.c.uuid),
))
"""One statement each for all outcomes of a transaction (executemany): the row, then what the device taught."""


async def record(session: AsyncSession, outcomes: list[tuple[Unit, Outcome]]) -> None:
    """Store attempts' outcomes (and the devices' learnt state) in the caller's transaction."""
    now = utcnow()
    rows, devices = [], []
    for unit, outcome in outcomes:
        final = outcome.status is not Status.PENDING
        result = dict(outcome.result or {}) if final else {}
        if outcome.reason:
            result["reason"] = outcome.reason
        rows.append({"row": unit.row_id, "status": outcome.status, "error": _short(outcome.error),
                     "result": result or None, "finished": now if final else None,
                     "next_attempt": None if final else outcome.retry_at,
                     "given_back": 0 if outcome.counted else 1})
        if unit.device_id is not None and outcome.reachable is not None:
            state = {key: outcome.state.get(key) for key in ("power_state", "amt_version", "uuid")}
            devices.append({"device": unit.device_id, "reachable": outcome.reachable, "now": now,
                            "last_error": None if outcome.reachable else _short(outcome.error or "unreachable"),
                            **state})
    if rows:
        await session.execute(_ROW_UPDATE, rows)
    if devices:
        await session.execute(_DEVICE_UPDATE, devices)


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


async def waiting_offline(session: AsyncSession, job_id: int) -> int:
    """Pending rows whose device was offline at its last try (a CIRA device the job waits for)."""
    query = select(func.count()).where(JobDevice.job_id == job_id, JobDevice.status == Status.PENDING,
                                       JobDevice.result["reason"].as_string() == "offline")
    return int((await session.execute(query)).scalar_one())


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
