"""Request and response shapes of operations, jobs and schedules (the API, the CLI and the web UI share them)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ..db.models import LABEL_LENGTH, Job, JobDevice, Status
from ..permissions import Permission
from ..schemas import Name, Selection
from .cron import CronError, CronExpression, zone
from .operations import OPERATIONS


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
    waiting_offline: int = Field(0, description="Pending devices that are CIRA devices away: the job waits for "
                                                "them to dial in (OUTBAND_JOB_OFFLINE_WAIT).")

    @classmethod
    def of(cls, job: Job, counts: dict[str, int], waiting_offline: int = 0) -> JobPublic:
        return cls(id=job.id, operation=job.operation, params=job.params, status=job.status,
                   created_by=job.created_by, schedule_id=job.schedule_id, created_at=job.created_at,
                   started_at=job.started_at, finished_at=job.finished_at, cancel_requested=job.cancel_requested,
                   total=job.total, counts=JobCounts(**counts), waiting_offline=waiting_offline)


class JobDevicePublic(BaseModel):
    """One device's part in a job.  ``reason`` classifies a failure (or the last transient one of a device
    waiting for a retry): offline (a CIRA device without a tunnel: it waits for the device to dial in, without
    spending attempts), unreachable, timeout, connection_lost, auth_refused, refused, bad_response, interrupted,
    no_device, bad_params, error."""

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


# ------------------------------------------------------------------------------------------ schedules

def _known_operation(name: str) -> str:
    if name not in OPERATIONS:
        raise ValueError(f"no operation {name!r} (one of {', '.join(OPERATIONS)})")
    return name


OperationName = Annotated[str, AfterValidator(_known_operation), Field(json_schema_extra={"enum": list(OPERATIONS)})]
CronText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_LENGTH),
                     Field(description="Five-field cron: minute hour day-of-month month day-of-week "
                                       "('0 7 * * 1-5': 07:00 on weekdays), or @daily, @hourly, ...",
                           examples=["0 7 * * 1-5"])]
ZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_LENGTH),
                     Field(description="IANA time zone the cron times are in.", examples=["Europe/Berlin"])]


def check_schedule(operation: str, params: dict[str, Any], cron_text: str, zone_name: str) -> dict[str, Any]:
    """Validate a schedule's parts together; returns the params as stored (JSON-ready)."""
    try:
        CronExpression.parse(cron_text)
        zone(zone_name)
    except CronError as exc:
        raise ValueError(str(exc)) from None
    try:
        parsed = OPERATIONS[operation].params.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"params for {operation}: {where + ': ' if where else ''}{first['msg']}") from None
    stored: dict[str, Any] = parsed.model_dump(mode="json")
    return stored


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    operation: OperationName
    params: dict[str, Any] = Field(default_factory=dict, description="As for POST /api/operations/{operation}.")
    target: Selection
    cron: CronText
    timezone: ZoneName = "UTC"
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleCreate:
        self.params = check_schedule(self.operation, self.params, self.cron, self.timezone)
        return self


class ScheduleUpdate(BaseModel):
    """Fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    params: dict[str, Any] | None = None
    target: Selection | None = None
    cron: CronText | None = None
    timezone: ZoneName | None = None
    enabled: bool | None = None


class SchedulePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    operation: str
    params: dict[str, Any]
    target: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    created_by_id: int | None
    created_at: dt.datetime
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None
