"""Schedules: recurring operations (``0 7 * * 1-5`` power-on of a group, a nightly inventory, ...).

Creating or changing a schedule needs ``schedule.write`` *and* the permission of its operation (an operator
cannot schedule what it could not do by hand); each run is checked again against its creator's role then.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from ...auth import Principal
from ...db.base import utcnow
from ...db.models import Schedule
from ...jobs.operations import OPERATIONS
from ...jobs.scheduler import next_run
from ...jobs.schemas import ScheduleCreate, SchedulePublic, ScheduleUpdate, check_schedule
from ...runtime import Runtime
from ..common import CONFLICT, NOT_FOUND, IdPath, conflict, not_found, unprocessable
from ..deps import PrincipalDep, RequiresScheduleRead, RequiresScheduleWrite, RuntimeDep

router = APIRouter(prefix="/schedules", tags=["schedules"])


def _may_run(principal: Principal, operation: str) -> None:
    permission = OPERATIONS[operation].permission
    if not principal.can(permission):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"the role {principal.role.value} does not allow {permission.value}, so it cannot "
                            "schedule it either")


def _wake(runtime: Runtime) -> None:
    scheduler = runtime.service("schedules")
    wake = getattr(scheduler, "wake", None)
    if callable(wake):
        wake()


async def _name_taken(runtime: Runtime, name: str, *, except_id: int | None = None) -> bool:
    async with runtime.db.read() as session:
        query = select(Schedule.id).where(Schedule.name == name)
        if except_id is not None:
            query = query.where(Schedule.id != except_id)
        return (await session.execute(query.limit(1))).first() is not None


@router.get("")
async def list_schedules(runtime: RuntimeDep, audit: RequiresScheduleRead) -> list[SchedulePublic]:
    async with runtime.db.read() as session:
        rows = await session.execute(select(Schedule).order_by(Schedule.name))
        return [SchedulePublic.model_validate(s) for s in rows.scalars()]


@router.post("", status_code=status.HTTP_201_CREATED, responses={**CONFLICT, 403: {}})
async def create_schedule(body: ScheduleCreate, runtime: RuntimeDep, audit: RequiresScheduleWrite,
                          principal: PrincipalDep) -> SchedulePublic:
    audit.detail = {"name": body.name, "operation": body.operation, "cron": body.cron, "timezone": body.timezone}
    _may_run(principal, body.operation)
    if await _name_taken(runtime, body.name):
        raise conflict(f"a schedule named {body.name!r} exists")
    schedule = Schedule(name=body.name, operation=body.operation, params=body.params,
                        target=body.target.model_dump(mode="json"), cron=body.cron, timezone=body.timezone,
                        enabled=body.enabled, created_by_id=principal.user_id)
    schedule.next_run_at = next_run(schedule, utcnow()) if body.enabled else None
    async with runtime.db.write() as session:
        session.add(schedule)
        await session.flush()
        audit.detail["schedule_id"] = schedule.id
        public = SchedulePublic.model_validate(schedule)
    _wake(runtime)
    return public


@router.get("/{schedule_id}", responses=NOT_FOUND)
async def get_schedule(schedule_id: IdPath, runtime: RuntimeDep, audit: RequiresScheduleRead) -> SchedulePublic:
    async with runtime.db.read() as session:
        schedule = await session.get(Schedule, schedule_id)
        if schedule is None:
            raise not_found("schedule")
        return SchedulePublic.model_validate(schedule)


@router.patch("/{schedule_id}", responses={**NOT_FOUND, **CONFLICT, 403: {}})
async def update_schedule(schedule_id: IdPath, change: ScheduleUpdate, runtime: RuntimeDep,
                          audit: RequiresScheduleWrite, principal: PrincipalDep) -> SchedulePublic:
    """Change a schedule; the next run is planned again from now.  The schedule then acts as whoever changed
    it last."""
    audit.detail = {"schedule_id": schedule_id, "changed": sorted(change.model_fields_set)}
    if change.name is not None and await _name_taken(runtime, change.name, except_id=schedule_id):
        raise conflict(f"a schedule named {change.name!r} exists")
    async with runtime.db.write() as session:
        schedule = await session.get(Schedule, schedule_id)
        if schedule is None:
            raise not_found("schedule")
        _may_run(principal, schedule.operation)
        given = change.model_dump(exclude_unset=True)
        for field in ("name", "cron", "timezone", "enabled"):
            if field in given:
                if given[field] is None:
                    raise unprocessable(f"{field} cannot be null")
                setattr(schedule, field, given[field])
        if change.target is not None:
            schedule.target = change.target.model_dump(mode="json")
        elif "target" in given:
            raise unprocessable("target cannot be null")
        params = change.params if change.params is not None else schedule.params
        try:
            schedule.params = check_schedule(schedule.operation, params, schedule.cron, schedule.timezone)
        except ValueError as exc:
            raise unprocessable(str(exc)) from None
        schedule.created_by_id = principal.user_id
        schedule.next_run_at = next_run(schedule, utcnow()) if schedule.enabled else None
        await session.flush()
        public = SchedulePublic.model_validate(schedule)
    _wake(runtime)
    return public


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_schedule(schedule_id: IdPath, runtime: RuntimeDep, audit: RequiresScheduleWrite) -> None:
    """Delete a schedule; the jobs it started stay."""
    audit.detail = {"schedule_id": schedule_id}
    async with runtime.db.write() as session:
        schedule = await session.get(Schedule, schedule_id)
        if schedule is None:
            raise not_found("schedule")
        audit.detail["name"] = schedule.name
        await session.delete(schedule)
    _wake(runtime)

