"""The console's audit trail, newest first."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from ...audit import AuditFilter, list_entries
from ...schemas import AuditPage, AuditPublic
from ..deps import RequiresAuditRead, RuntimeDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
async def list_audit(
    runtime: RuntimeDep,
    audit: RequiresAuditRead,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    device_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Entries older than this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    filters = AuditFilter(actor=actor, action=action, outcome=outcome, device_id=device_id,
                          since=_aware(since), until=_aware(until))
    async with runtime.db.read() as session:
        entries = await list_entries(session, filters, limit=limit, before=before)
    items = [AuditPublic.model_validate(entry).model_copy(update={"devices": devices}) for entry, devices in entries]
    return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """Times without a zone are taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)
