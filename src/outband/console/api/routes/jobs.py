"""Jobs: list, one job with its per-device results, cancel, and a live event stream (Server-Sent Events).

``GET /api/jobs/{id}/events`` streams ``text/event-stream``: each message's ``event:`` is the event type
(``job``, ``device``, ``retry``, ``lagged``) and its ``data:`` the JSON event (:mod:`outband.console.jobs.events`).
The first message is always a ``job`` snapshot; the stream ends after the ``job`` message with a final status.
A browser follows it with ``new EventSource("/api/jobs/7/events")`` (the session cookie authenticates it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ...db.models import Job, JobDevice, Status
from ...jobs import store
from ...jobs.runner import JobRunner, job_event
from ...jobs.schemas import JobDetail, JobDevicePublic, JobPage, JobPublic
from ...runtime import Runtime
from ..common import CONFLICT, NOT_FOUND, IdPath, conflict, not_found
from ..deps import RequiresJobCancel, RequiresJobRead, RuntimeDep

router = APIRouter(prefix="/jobs", tags=["jobs"])

SNAPSHOT_SECONDS: Final = 2.0
"""How often a stream re-reads the job when no event arrives (a job run by other processes sends none here)."""
KEEPALIVE_SECONDS: Final = 15.0


class _Silence:
    """A subscription that never delivers: every wait times out into a snapshot read."""

    async def get(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def _no_events() -> AsyncIterator[_Silence]:
    yield _Silence()


def job_runner(runtime: Runtime) -> JobRunner:
    service = runtime.service("jobs")
    if not isinstance(service, JobRunner):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job runner is not running")
    return service


async def _public(session: AsyncSession, job: Job) -> JobPublic:
    waiting = 0 if job.status.finished else await store.waiting_offline(session, job.id)
    return JobPublic.of(job, await store.counts(session, job.id), waiting)


async def job_public(runtime: Runtime, job_id: int) -> JobPublic:
    async with runtime.db.read() as session:
        job = await session.get(Job, job_id)
        if job is None:
            raise not_found("job")
        return await _public(session, job)


@router.get("")
async def list_jobs(
    runtime: RuntimeDep,
    audit: RequiresJobRead,
    job_status: Annotated[Status | None, Query(alias="status")] = None,
    operation: Annotated[str | None, Query(max_length=64)] = None,
    schedule_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Jobs with smaller ids (older).")] = None,
) -> JobPage:
    """Newest first."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if job_status is not None:
        query = query.where(Job.status == job_status)
    if operation is not None:
        query = query.where(Job.operation == operation)
    if schedule_id is not None:
        query = query.where(Job.schedule_id == schedule_id)
    if before is not None:
        query = query.where(Job.id < before)
    async with runtime.db.read() as session:
        jobs = list((await session.execute(query)).scalars())
        items = [await _public(session, job) for job in jobs]
    return JobPage(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get("/{job_id}", responses=NOT_FOUND)
async def get_job(
    job_id: IdPath,
    runtime: RuntimeDep,
    audit: RequiresJobRead,
    device_status: Annotated[Status | None, Query(alias="status", description="Only devices in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Devices after this row id (paging).")] = 0,
) -> JobDetail:
    """The job and a page of its devices with their results."""
    query = (select(JobDevice).where(JobDevice.job_id == job_id, JobDevice.id > after)
             .order_by(JobDevice.id).limit(limit))
    if device_status is not None:
        query = query.where(JobDevice.status == device_status)
    async with runtime.db.read() as session:
        job = await session.get(Job, job_id)
        if job is None:
            raise not_found("job")
        rows = list((await session.execute(query)).scalars())
        public = await _public(session, job)
    return JobDetail(**public.model_dump(), devices=[JobDevicePublic.of(r) for r in rows],
                     next_after=rows[-1].id if len(rows) == limit else None)


@router.post("/{job_id}/cancel", responses={**NOT_FOUND, **CONFLICT})
async def cancel_job(job_id: IdPath, runtime: RuntimeDep, audit: RequiresJobCancel) -> JobPublic:
    """Stop a job: devices not yet contacted are cancelled; devices being talked to finish their call."""
    audit.detail = {"job_id": job_id}
    runner = job_runner(runtime)
    found = await runner.cancel(job_id)
    if found is None:
        raise not_found("job")
    if found.finished:
        raise conflict(f"the job is {found.value}")
    return await job_public(runtime, job_id)


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, default=str, separators=(',', ':'))}\n\n"


@router.get("/{job_id}/events", response_class=StreamingResponse, responses={
    **NOT_FOUND, 200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events until the job ends."}})
async def job_events(job_id: IdPath, runtime: RuntimeDep, audit: RequiresJobRead) -> StreamingResponse:
    service = runtime.service("jobs")
    await job_public(runtime, job_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        # Without a runner in this process (an API-only node) the stream still works, from snapshots alone.
        subscribe = service.events.subscribe(job_id) if isinstance(service, JobRunner) else _no_events()
        async with subscribe as subscription:
            last = await job_public(runtime, job_id)  # read after subscribing: nothing falls in between
            yield _sse(job_event(job_id, last.status, last.counts.model_dump(), last.total, last.waiting_offline))
            quiet = 0.0
            while not last.status.finished:
                try:
                    async with asyncio.timeout(SNAPSHOT_SECONDS):
                        event = await subscription.get()
                except TimeoutError:
                    event = None
                if event is not None and event["type"] != "lagged":
                    quiet = 0.0
                    yield _sse(event)
                    if event["type"] == "job" and Status(event["status"]).finished:
                        return
                    continue
                current = await job_public(runtime, job_id)
                if event is not None or (current.counts, current.status, current.waiting_offline) != (
                        last.counts, last.status, last.waiting_offline):
                    quiet = 0.0
                    if event is not None:
                        yield _sse(event)
                    yield _sse(job_event(job_id, current.status, current.counts.model_dump(), current.total,
                                         current.waiting_offline))
                else:
                    quiet += SNAPSHOT_SECONDS
                    if quiet >= KEEPALIVE_SECONDS:
                        quiet = 0.0
                        yield ": keep-alive\n\n"
                last = current

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
