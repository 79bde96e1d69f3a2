"""Request and response shapes of operations, jobs and schedules (the API, the CLI and the web UI share them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..db.models import Job, JobDevice, Status
from ..permissions import Permission


class JobCounts(BaseModel):
    """Devices of a job by status."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class JobPublic(BaseModel):
    id: int
    operation: str
    params: dict[str, Any]
    status: Status
    created_by: str | None
    schedule_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    cancel_requested: bool
    total: int = Field(description="Devices in the job.")
    counts: JobCounts

    @classmethod
    def of(cls, job: Job, counts: dict[str, int]) -> JobPublic:
        return cls(id=job.id, operation=job.operation, params=job.params, status=job.status,
                   created_by=job.created_by, schedule_id=job.schedule_id, created_at=job.created_at,
                   started_at=job.started_at, finished_at=job.finished_at, cancel_requested=job.cancel_requested,
                   total=job.total, counts=JobCounts(**counts))


class JobDevicePublic(BaseModel):
    """One device's part in a job.  ``reason`` classifies a failure (or the last transient one of a device
    waiting for a retry): unreachable, timeout, connection_lost, auth_refused, refused, bad_response,
    interrupted, no_device, bad_params, error."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int | None = Field(description="None once the device has been deleted.")
    device_name: str
    status: Status
    attempts: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    result: dict[str, Any] | None
    error: str | None
    reason: str | None

    @classmethod
    def of(cls, row: JobDevice) -> JobDevicePublic:
        result = dict(row.result) if row.result else None
        reason = result.pop("reason", None) if result is not None else None
        return cls(id=row.id, device_id=row.device_id, device_name=row.device_name, status=row.status,
                   attempts=row.attempts, started_at=row.started_at, finished_at=row.finished_at,
                   next_attempt_at=row.next_attempt_at, result=result or None, error=row.error,
                   reason=reason if isinstance(reason, str) else None)


class JobDetail(JobPublic):
    devices: list[JobDevicePublic] = Field(description="A page of the job's devices, in the order they were added.")
    next_after: int | None = Field(description="Pass as after= for the next page of devices (None: no more).")


class JobPage(BaseModel):
    items: list[JobPublic]
    next_before: int | None = Field(description="Pass as before= for the next (older) page.")


class OperationInfo(BaseModel):
    name: str
    permission: Permission
    summary: str
    params: dict[str, Any] = Field(description="JSON schema of the operation's params.")
