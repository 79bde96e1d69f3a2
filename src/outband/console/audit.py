"""The console's own audit trail: every action, who took it, on which devices, and how it ended.

API routes do not call this directly: the permission check (``api.deps.require``) opens an
:class:`AuditScope` for each unsafe request and writes it when the route returns or fails, so no route can
forget.  Routes add what only they know (the devices, a detail, a finer outcome).  Work the console does on
its own (schedules, restarts) records with ``via="system"``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db.database import Database
from .db.models import AuditEntry, audit_devices
from .devices.repository import chunks
from .logs import scrub

log = logging.getLogger("outband.console.audit")

OK: Final = "ok"
DENIED: Final = "denied"
FAILED: Final = "failed"
ERROR: Final = "error"


@dataclass(slots=True)
class AuditScope:
    """What one action records; a route fills in ``devices``, ``detail`` and, when it knows better than the
    HTTP status, ``outcome``."""

    action: str
    actor: str | None
    actor_id: int | None
    via: str
    client: str | None
    devices: list[int] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None


async def record(db: Database, scope: AuditScope, *, outcome: str, status_code: int | None = None) -> int:
    return await record_entry(
        db, action=scope.action, actor=scope.actor, actor_id=scope.actor_id, via=scope.via, client=scope.client,
        outcome=scope.outcome or outcome, status_code=status_code, devices=scope.devices, detail=scope.detail,
    )


async def record_entry(db: Database, *, action: str, outcome: str, actor: str | None = None,
                       actor_id: int | None = None, via: str = "system", client: str | None = None,
                       status_code: int | None = None, devices: Sequence[int] = (),
                       detail: Mapping[str, Any] | None = None) -> int:
    clean = scrub(dict(detail or {}))
    device_ids = sorted(set(devices))
    async with db.write() as session:
        entry = AuditEntry(actor=actor, actor_id=actor_id, via=via, client=client[:64] if client else None,
                           action=action, outcome=outcome, status_code=status_code, detail=clean,
                           device_count=len(device_ids))
        session.add(entry)
        await session.flush()
        for part in chunks(device_ids):
            await session.execute(audit_devices.insert(), [{"audit_id": entry.id, "device_id": d} for d in part])
    log.info("%s %s by %s", action, outcome, actor or "console", extra={
        "audit_id": entry.id, "actor": actor, "via": via, "client": client, "action": action, "outcome": outcome,
        "status": status_code, "devices": len(device_ids), "detail": clean,
    })
    return entry.id


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    device_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def list_entries(session: AsyncSession, filters: AuditFilter, *, limit: int, before: int | None
                       ) -> list[tuple[AuditEntry, list[int]]]:
    """Newest first, ``limit`` entries with ids below ``before`` (keyset paging: stable while entries arrive)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if filters.actor is not None:
        query = query.where(AuditEntry.actor == filters.actor)
    if filters.action is not None:
        query = query.where(AuditEntry.action == filters.action)
    if filters.outcome is not None:
        query = query.where(AuditEntry.outcome == filters.outcome)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    if filters.device_id is not None:
        query = query.where(AuditEntry.id.in_(
            select(audit_devices.c.audit_id).where(audit_devices.c.device_id == filters.device_id)))
    entries = list((await session.execute(query)).scalars())
    devices: dict[int, list[int]] = {e.id: [] for e in entries}
    if entries:
        rows = await session.execute(select(audit_devices.c.audit_id, audit_devices.c.device_id)
                                     .where(audit_devices.c.audit_id.in_(list(devices)))
                                     .order_by(audit_devices.c.device_id))
        for audit_id, device_id in rows:
            devices[audit_id].append(device_id)
    return [(e, devices[e.id]) for e in entries]
