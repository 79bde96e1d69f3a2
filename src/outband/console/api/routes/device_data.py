"""What the console has stored about a device, for reading: its hardware inventory snapshots, the event and audit
log records pulled from it, and its reachability over the console's recent contacts (its job attempts).

Jobs write all of it (``inventory`` and ``logs`` operations store snapshots and records; every job records a
device's outcome); these routes only read, with ``device.read``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from ...db.models import CiraTunnel, Device, DeviceLogRecord, InventorySnapshot, Job, JobDevice, LogKind, Status
from ...runtime import Runtime
from ..common import NOT_FOUND, IdPath, not_found
from ..deps import RequiresDeviceRead, RuntimeDep

router = APIRouter(tags=["devices"])

UNREACHED: Final = frozenset({"unreachable", "timeout", "connection_lost", "offline"})
TUNNEL: Final = "cira"
"""The operation named by a CIRA tunnel's start and end in a device's history."""
"""Failure reasons that mean the device was not reached (any other outcome means it answered)."""


class InventoryPublic(BaseModel):
    taken_at: dt.datetime
    data: dict[str, list[dict[str, Any]]] = Field(description="Instances by CIM class, as read.")


class LogRecordPublic(BaseModel):
    seq: int = Field(description="Position in the device's log.")
    recorded_at: dt.datetime | None = Field(description="When the device says it happened.")
    pulled_at: dt.datetime
    data: dict[str, Any] = Field(description="The decoded record (its raw bytes in base64 under raw).")


class LogPage(BaseModel):
    items: list[LogRecordPublic]
    next_before: int | None = Field(description="Pass as before= for older records.")


class Contact(BaseModel):
    at: dt.datetime
    reachable: bool
    operation: str
    reason: str | None


class ContactPage(BaseModel):
    items: list[Contact] = Field(description="Newest first.")


async def _exists(runtime: Runtime, device_id: int) -> None:
    async with runtime.db.read() as session:
        if await session.get(Device, device_id) is None:
            raise not_found("device")


@router.get("/devices/{device_id}/inventory", responses=NOT_FOUND)
async def device_inventory(
    device_id: IdPath,
    runtime: RuntimeDep,
    audit: RequiresDeviceRead,
    limit: Annotated[int, Query(ge=1, le=50, description="How many snapshots, newest first.")] = 1,
) -> list[InventoryPublic]:
    """Inventory snapshots, newest first (none until an ``inventory`` job has read one)."""
    await _exists(runtime, device_id)
    async with runtime.db.read() as session:
        snapshots = (await session.execute(
            select(InventorySnapshot).where(InventorySnapshot.device_id == device_id)
            .order_by(InventorySnapshot.taken_at.desc(), InventorySnapshot.id.desc()).limit(limit)
        )).scalars()
        return [InventoryPublic(taken_at=s.taken_at, data=s.data) for s in snapshots]


@router.get("/devices/{device_id}/logs", responses=NOT_FOUND)
async def device_logs(
    device_id: IdPath,
    runtime: RuntimeDep,
    audit: RequiresDeviceRead,
    kind: Literal["event", "audit"] = "event",
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Records with a smaller seq (older).")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> LogPage:
    """Stored records of the device's event or audit log, newest first (``logs`` jobs pull them)."""
    await _exists(runtime, device_id)
    query = (select(DeviceLogRecord).where(DeviceLogRecord.device_id == device_id,
                                           DeviceLogRecord.kind == LogKind(kind))
             .order_by(DeviceLogRecord.seq.desc()).limit(limit))
    if before is not None:
        query = query.where(DeviceLogRecord.seq < before)
    async with runtime.db.read() as session:
        rows = list((await session.execute(query)).scalars())
    items = [LogRecordPublic(seq=r.seq, recorded_at=r.recorded_at, pulled_at=r.pulled_at, data=r.data) for r in rows]
    return LogPage(items=items, next_before=rows[-1].seq if len(rows) == limit else None)


@router.get("/devices/{device_id}/history", responses=NOT_FOUND)
async def device_history(
    device_id: IdPath,
    runtime: RuntimeDep,
    audit: RequiresDeviceRead,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ContactPage:
    """Whether the device answered, for each of the console's recent finished job attempts on it; for a CIRA
    device also when each of its tunnels came up (reachable) and ended (not, with why), operation ``cira``."""
    await _exists(runtime, device_id)
    async with runtime.db.read() as session:
        rows = (await session.execute(
            select(JobDevice.finished_at, JobDevice.status, JobDevice.result, Job.operation)
            .join(Job, Job.id == JobDevice.job_id)
            .where(JobDevice.device_id == device_id, JobDevice.finished_at.is_not(None),
                   JobDevice.status.in_([Status.SUCCEEDED, Status.FAILED]))
            .order_by(JobDevice.finished_at.desc(), JobDevice.id.desc()).limit(limit)
        )).all()
        tunnels = (await session.execute(
            select(CiraTunnel).where(CiraTunnel.device_id == device_id)
            .order_by(CiraTunnel.connected_at.desc(), CiraTunnel.id.desc()).limit(limit)
        )).scalars().all()
    contacts = []
    for finished_at, row_status, result, operation in rows:
        reason = result.get("reason") if isinstance(result, dict) and isinstance(result.get("reason"), str) else None
        reached = row_status is Status.SUCCEEDED or reason not in UNREACHED
        contacts.append(Contact(at=finished_at, reachable=reached, operation=operation, reason=reason))
    for tunnel in tunnels:
        contacts.append(Contact(at=tunnel.connected_at, reachable=True, operation=TUNNEL,
                                reason=f"tunnel up from {tunnel.peer or '?'} to MPS node {tunnel.mps_node}"))
        if tunnel.disconnected_at is not None:
            contacts.append(Contact(at=tunnel.disconnected_at, reachable=False, operation=TUNNEL,
                                    reason=f"tunnel ended: {tunnel.reason or 'no reason given'}"))
    contacts.sort(key=lambda contact: contact.at, reverse=True)
    return ContactPage(items=contacts[:limit])
