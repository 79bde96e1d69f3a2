"""Pulling a device's audit and event logs, and storing each record once however often they are pulled.

Reading: the audit log oldest first with ``AMT_AuditLog.ReadRecords`` from a 1-based index while
``TotalRecordCount`` says there is more; the event log newest first with ``AMT_MessageLog.PositionToFirstRecord``
then ``GetRecords`` until ``NoMoreRecords`` (each page starts one after the last record of the previous page).
Both are capped (:data:`MAX_RECORDS`, :data:`MAX_READS`) so a confused device cannot keep a job reading forever.

Storing: a device log is a window that slides (records roll off when it is full) or restarts (cleared), and
records carry no sequence number of their own.  :func:`new_records` therefore finds where the records already
stored end within the records just pulled, by matching the last :data:`ANCHOR` stored records as a run of raw
bytes; what follows is new and is numbered on from the last stored ``seq``.  No match means the log was cleared
or rolled past everything stored, and all pulled records are new.  So ``seq`` is the record's position in the
device's log as long as the log is neither cleared nor full, and ``(device, kind, seq)`` is unique.  Records
that do not decode are stored too, with the error, never dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ...client import AmtClient, BadResponse
from ...proto.amtlog import ENTITY_NAMES, AuditRecord, EventRecord, LogRecordError
from ...proto.cim.model import CimObject
from ..db.models import DeviceLogRecord, LogKind

MAX_RECORDS: Final = 10_000
MAX_READS: Final = 1_000
EVENT_PAGE: Final = 390
"""Records per GetRecords, what MeshCommander asks for (the size of AMT's event log)."""
ANCHOR: Final = 32


def _records(output: CimObject, name: str) -> list[bytes]:
    records = []
    for value in output.getlist(name):
        if isinstance(value, bytes):
            records.append(value)
        elif isinstance(value, str):  # a device that sent text the model could not read as base64
            records.append(value.encode("utf-8", "replace"))
    return records


def _ok(output: CimObject, what: str, host: str) -> None:
    if output.get("ReturnValue") != 0:
        raise BadResponse(f"{what} answered ReturnValue {output.get('ReturnValue')!r}", host=host)


async def read_audit_log(client: AmtClient) -> list[str]:
    """Every audit record, oldest first, base64."""
    records: list[bytes] = []
    for _ in range(MAX_READS):
        output = await client.invoke("AMT_AuditLog", "ReadRecords", {"StartIndex": len(records) + 1})
        _ok(output, "ReadRecords", client.host)
        page = _records(output, "EventRecords")
        records += page
        total = output.get("TotalRecordCount")
        if not page or not isinstance(total, int) or len(records) >= min(total, MAX_RECORDS):
            break
    return [base64.b64encode(r).decode("ascii") for r in records[:MAX_RECORDS]]


async def read_event_log(client: AmtClient) -> list[str]:
    """Every event record, oldest first (the device hands them out newest first), base64."""
    output = await client.invoke("AMT_MessageLog", "PositionToFirstRecord", {})
    _ok(output, "PositionToFirstRecord", client.host)
    position = output.get("IterationIdentifier")
    records: list[bytes] = []
    for _ in range(MAX_READS):
        if not isinstance(position, str):
            raise BadResponse("GetRecords: no IterationIdentifier", host=client.host)
        output = await client.invoke("AMT_MessageLog", "GetRecords",
                                     {"IterationIdentifier": position, "MaxReadRecords": EVENT_PAGE})
        _ok(output, "GetRecords", client.host)
        page = _records(output, "RecordArray")
        records += page
        last = output.get("IterationIdentifier")
        if output.get("NoMoreRecords") is not False or not page or len(records) >= MAX_RECORDS:
            break
        if not isinstance(last, str) or not last.isdigit() or len(last) > 10:
            raise BadResponse(f"GetRecords: IterationIdentifier {last!r} is not a position", host=client.host)
        position = str(int(last) + 1)
    return [base64.b64encode(r).decode("ascii") for r in reversed(records[:MAX_RECORDS])]


def decode(kind: LogKind, raw: bytes) -> dict[str, Any]:
    """A record as JSON: its fields, its time, its raw bytes (base64), or the reason it does not decode."""
    data: dict[str, Any] = {"raw": base64.b64encode(raw).decode("ascii")}
    try:
        if kind is LogKind.AUDIT:
            audit = AuditRecord.decode(raw)
            data.update(
                app_id=audit.app_id, event_id=audit.event_id, id=audit.full_id, description=audit.description,
                initiator_type=audit.initiator_type.name.lower(), initiator=audit.initiator,
                time=audit.time.isoformat(), address=audit.address,
                extended=base64.b64encode(audit.extended).decode("ascii"),
            )
        else:
            event = EventRecord.decode(raw)
            data.update(
                time=event.time.isoformat(), sensor_type=event.sensor_type, event_type=event.event_type,
                event_offset=event.event_offset, source_type=event.source_type, severity=event.severity,
                sensor_number=event.sensor_number, entity=event.entity,
                entity_name=ENTITY_NAMES.get(event.entity, f"entity {event.entity}"),
                entity_instance=event.entity_instance, event_data=event.data.hex(),
            )
    except (LogRecordError, ValueError, OverflowError) as exc:
        data["error"] = str(exc)
    return data


def new_records(stored_tail: Sequence[bytes], pulled: Sequence[bytes]) -> int:
    """Index in ``pulled`` (oldest first) of the first record not already stored, given the last stored
    records (oldest first).  The earliest place where the whole stored tail matches wins; failing that, the
    longest part of the tail that the pulled records start with (the older part has rolled off the device)."""
    tail = list(stored_tail)
    size = len(tail)
    if not size:
        return 0
    for end in range(size - 1, len(pulled)):
        if list(pulled[end - size + 1:end + 1]) == tail:
            return end + 1
    for span in range(min(size - 1, len(pulled)), 0, -1):
        if list(pulled[:span]) == tail[-span:]:
            return span
    return 0


async def merge(session: AsyncSession, device_id: int, kind_name: str, pulled_b64: Sequence[str]) -> dict[str, int]:
    """Store the records not stored yet; returns how many were pulled and how many were new."""
    kind = LogKind(kind_name)
    pulled = [base64.b64decode(r) for r in pulled_b64]
    rows = (await session.execute(
        select(DeviceLogRecord.seq, DeviceLogRecord.data).where(
            DeviceLogRecord.device_id == device_id, DeviceLogRecord.kind == kind)
        .order_by(DeviceLogRecord.seq.desc()).limit(ANCHOR)
    )).all()
    tail = [base64.b64decode(data.get("raw", "")) for _, data in reversed(rows)]
    last_seq = rows[0][0] if rows else 0
    fresh = pulled[new_records(tail, pulled):]
    for offset, raw in enumerate(fresh, start=1):
        data = decode(kind, raw)
        recorded = data.get("time")
        session.add(DeviceLogRecord(device_id=device_id, kind=kind, seq=last_seq + offset, data=data,
                                    recorded_at=dt.datetime.fromisoformat(recorded) if recorded else None))
    await session.flush()
    return {"pulled": len(pulled), "new": len(fresh)}

