"""AMT's two logs: the security audit log (AMT_AuditLog) and the platform event log (AMT_MessageLog).

Both hold binary records (AMT-PROTOCOLS.md §3.5, :mod:`outband.proto.amtlog`) in the engine's state store:
``engine.audit()`` appends audit records, ``engine.log_event()`` event records, each rolling off the oldest
record once the log is full (AMT's OverwritePolicy 2, "wraps when full").

Reading order differs between the two, as on AMT:

* ``AMT_AuditLog.ReadRecords(StartIndex)`` returns records oldest first from a 1-based index, at most
  :data:`RECORDS_PER_READ` per call; consoles page with ``StartIndex = records so far + 1`` while
  ``TotalRecordCount`` is larger (IRG ``readauditlogrecord.htm``: "in time order (oldest first)"; MCMD
  ``amt-0.2.0.js`` ``GetAuditLog``; the capture's two records have rising timestamps).
* ``AMT_MessageLog`` is read newest first (IRG ``AMT_MessageLog``: "the newest record is the first record";
  the capture's GetRecords lists a January 2024 record before two of September 2023).  MeshCommander numbers
  the rows in the order received, so its row 1 is the newest event.

Theory of operation of event-log iteration: an ``IterationIdentifier`` is a 1-based, newest-first record
index written as decimal text.  ``PositionToFirstRecord`` gives ``1``; ``GetRecords(IterationIdentifier=n)``
returns up to ``MaxReadRecords`` records starting at record ``n`` and answers with the index of the last record
it returned, setting ``NoMoreRecords`` once that is the oldest; the next page starts one further.  That is
what AMT answers (``3`` after three records in the capture, ``28`` after 28 in MPS's recorded reply) and how
GWM's ``messagelog/log.go`` pages.  MeshCommander and MPS read the whole log in one call (390 records, the
log's size), so they never page.  ``PositionAtRecord`` moves an identifier, ``GetRecord`` reads one record,
``CancelIteration`` only checks the identifier: identifiers are stateless (nothing to leak or expire per
console).  A record logged mid-iteration shifts the indices by one, which is why AMT offers ``FreezeLog``:
while frozen, no record is added and the log cannot be cleared (``PT_STATUS_EVENTLOG_FROZEN``).

Platform events become event-log records the way AMT's PET sensors report them (:func:`event_records`), and
failed logins become "authentication failed N times" records (:func:`record_failed_login`).  An engine's
platform events reach this module once :func:`attach` has registered its listener; every log request does
that lazily, and the engine should call it at start (see ``core.py``).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import (
    SENSOR_AUTHENTICATION,
    SENSOR_BOOT_FAILURE,
    SENSOR_FIRMWARE_PROGRESS,
    SENSOR_NO_BOOTABLE_MEDIA,
    SENSOR_OS_LOCKUP,
    SENSOR_WATCHDOG,
    AuditApp,
    AuditRecord,
    EventRecord,
    EventSeverity,
    LogRecordError,
)
from ...proto.cim.model import CimDateTime, CimObject
from ...proto.wsman.namespaces import resource_uri
from ..core import AUDIT_CAPACITY, EVENT_CAPACITY, EVENTLOG_FROZEN_KEY, Engine
from ..platforms.base import EventKind, PlatformEvent
from ..registry import Context, Service

service = Service("logs")

AUDIT_LOG: Final = "AMT_AuditLog"
MESSAGE_LOG: Final = "AMT_MessageLog"
AUDIT_LOG_NAME: Final = "Intel(r) AMT:Audit Log"
MESSAGE_LOG_NAME: Final = "Intel(r) AMT:MessageLog 1"
AUDIT_KIND: Final = "audit"
EVENT_KIND: Final = "event"
"""Log names in the state store (as ``Engine.audit``/``Engine.log_event`` write them)."""

RECORDS_PER_READ: Final = 10
"""Audit records per ReadRecords reply."""

FROZEN_KEY: Final = EVENTLOG_FROZEN_KEY
"""State-store flag: the event log is frozen (FreezeLog); Engine.log_event honours it for every writer."""

# AuditState bits (MCMD index.html processAuditLog0; 0x01 disabled and 0x02 locked are never set here).
AUDIT_ALMOST_FULL: Final = 0x04
AUDIT_FULL: Final = 0x08
AUDIT_NO_SIGNING_KEY: Final = 0x10
ALMOST_FULL_PERCENT: Final = 10

EVENT_LOG_CLEARED: Final = 2
EVENT_LOG_FROZEN: Final = 3
"""Event Manager audit events 2402 and 2403."""
AUDIT_LOG_CLEARED: Final = 0
"""Security Audit Log event 2000."""


def method_output(class_name: str, method: str, /, **values: Any) -> CimObject:
    """A ``<Method>_OUTPUT`` message, its parameters in the catalog's order whatever order they are given in."""
    out = CimObject(f"{method}_OUTPUT", resource_uri(class_name))
    for name, value in values.items():
        out[name] = value
    return out


def _status(class_name: str, method: str, status: PTStatus) -> CimObject:
    return method_output(class_name, method, ReturnValue=int(status))


def _int_param(message: CimObject, name: str) -> int | None:
    value = message.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------- audit log


def _time_of_last_audit(engine: Engine, count: int) -> CimDateTime | None:
    if count == 0:
        return None
    try:
        newest = AuditRecord.decode(engine.store.read_log(AUDIT_KIND, start=count - 1, limit=1)[0])
    except LogRecordError:
        return None
    return CimDateTime.of(newest.time)


def audit_log(engine: Engine) -> CimObject:
    """The audit log's state in the capture's shape: enabled, wrapping, no signing key set."""
    count = engine.store.count_log(AUDIT_KIND)
    free = 100 * max(AUDIT_CAPACITY - count, 0) // AUDIT_CAPACITY
    state = AUDIT_NO_SIGNING_KEY
    if count >= AUDIT_CAPACITY:
        state |= AUDIT_FULL
    elif free < ALMOST_FULL_PERCENT:
        state |= AUDIT_ALMOST_FULL
    log = CimObject.new(
        AUDIT_LOG,
        AuditState=state,
        CurrentNumberOfRecords=count,
        ElementName="Intel(r) AMT Audit Log",
        EnabledState=2,
        MaxAllowedAuditors=1,
        MaxNumberOfRecords=0,  # AMT sizes the log in bytes and reports 0 here; PercentageFree tells the fill
        Name=AUDIT_LOG_NAME,
        OverwritePolicy=2,
        PercentageFree=free,
        RequestedState=2,
        StoragePolicy=1,
    )
    last = _time_of_last_audit(engine, count)
    if last is not None:
        log["TimeOfLastRecord"] = last
    return log


@service.instances(AUDIT_LOG, realm=Realm.AUDIT_LOG)
def audit_logs(engine: Engine) -> Iterable[CimObject]:
    return [audit_log(engine)]


@service.method(AUDIT_LOG, "ReadRecords", realm=Realm.AUDIT_LOG)
async def read_audit_records(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    total = engine.store.count_log(AUDIT_KIND)
    start = _int_param(message, "StartIndex")
    if start is None:
        return _status(AUDIT_LOG, "ReadRecords", PTStatus.INVALID_PARAMETER)
    if start < 1 or start > max(total, 1):
        return _status(AUDIT_LOG, "ReadRecords", PTStatus.INVALID_INDEX)
    records = engine.store.read_log(AUDIT_KIND, start=start - 1, limit=RECORDS_PER_READ)
    return method_output(
        AUDIT_LOG, "ReadRecords",
        TotalRecordCount=total, RecordsReturned=len(records), EventRecords=records, ReturnValue=0,
    )


@service.method(AUDIT_LOG, "ClearLog", realm=Realm.AUDIT_LOG)
async def clear_audit_log(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    """Empty the log; the first record of the new log says who cleared it (2000), as on AMT."""
    engine = ctx.engine
    with engine.store.transaction():
        engine.store.clear_log(AUDIT_KIND)
        engine.audit(AuditApp.SECURITY_AUDIT_LOG, AUDIT_LOG_CLEARED, account=ctx.account, address=ctx.peer)
    return _status(AUDIT_LOG, "ClearLog", PTStatus.SUCCESS)


# ---------------------------------------------------------------------------------------------- event log


def is_frozen(engine: Engine) -> bool:
    return bool(engine.store.get(FROZEN_KEY, False))


def message_log(engine: Engine) -> CimObject:
    return CimObject.new(
        MESSAGE_LOG,
        Capabilities=[5, 6, 8, 7],  # freeze, clear, variable-length records, ordinal access: AMT's order
        CharacterSet=10,
        CreationClassName=MESSAGE_LOG,
        CurrentNumberOfRecords=engine.store.count_log(EVENT_KIND),
        ElementName=MESSAGE_LOG_NAME,
        EnabledDefault=2,
        EnabledState=2,
        HealthState=5,
        IsFrozen=is_frozen(engine),
        LastChange=0,
        LogState=4,
        MaxLogSize=0,
        MaxNumberOfRecords=EVENT_CAPACITY,
        MaxRecordSize=EventRecord.SIZE,
        Name=MESSAGE_LOG_NAME,
        OperationalStatus=[2],
        OverwritePolicy=2,
        PercentageNearFull=100,
        RequestedState=12,
        SizeOfHeader=0,
        SizeOfRecordHeader=0,
        Status="OK",
    )


@service.instances(MESSAGE_LOG, realm=Realm.EVENT_LOG_READER)
def message_logs(engine: Engine) -> Iterable[CimObject]:
    return [message_log(engine)]


def newest_first(engine: Engine, first: int, count: int) -> list[bytes]:
    """Up to ``count`` event records from 1-based newest-first index ``first``."""
    total = engine.store.count_log(EVENT_KIND)
    last = min(total, first + count - 1)
    if first < 1 or first > last:
        return []
    return engine.store.read_log(EVENT_KIND, start=total - last, limit=last - first + 1)[::-1]


def _position(engine: Engine, message: CimObject) -> int | None:
    """The iteration position a message names, or None when it names none of this log's positions."""
    text = message.get("IterationIdentifier")
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    position = int(text)
    return position if 1 <= position <= engine.store.count_log(EVENT_KIND) + 1 else None


@service.method(MESSAGE_LOG, "PositionToFirstRecord", realm=Realm.EVENT_LOG_READER)
async def position_to_first(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    return method_output(MESSAGE_LOG, "PositionToFirstRecord", IterationIdentifier="1", ReturnValue=0)


@service.method(MESSAGE_LOG, "GetRecords", realm=Realm.EVENT_LOG_READER)
async def get_records(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    position = _position(engine, message)
    wanted = _int_param(message, "MaxReadRecords")
    if position is None or wanted is None or wanted < 1:
        return _status(MESSAGE_LOG, "GetRecords", PTStatus.INVALID_PARAMETER)
    records = newest_first(engine, position, min(wanted, EVENT_CAPACITY))
    last = position + len(records) - 1 if records else position
    return method_output(
        MESSAGE_LOG, "GetRecords",
        IterationIdentifier=str(last),
        NoMoreRecords=last >= engine.store.count_log(EVENT_KIND),
        RecordArray=records,
        ReturnValue=0,
    )


@service.method(MESSAGE_LOG, "GetRecord", realm=Realm.EVENT_LOG_READER)
async def get_record(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    position = _position(engine, message)
    records = newest_first(engine, position, 1) if position is not None else []
    if position is None or not records:
        return _status(MESSAGE_LOG, "GetRecord", PTStatus.INVALID_PARAMETER)
    advance = message.get("PositionToNext") is True
    return method_output(
        MESSAGE_LOG, "GetRecord",
        IterationIdentifier=str(position + 1 if advance else position),
        RecordNumber=position,
        RecordData=list(records[0]),
        ReturnValue=0,
    )


@service.method(MESSAGE_LOG, "PositionAtRecord", realm=Realm.EVENT_LOG_READER)
async def position_at_record(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    position = _position(engine, message)
    move = _int_param(message, "RecordNumber")
    absolute = message.get("MoveAbsolute")
    if position is None or move is None or not isinstance(absolute, bool):
        return _status(MESSAGE_LOG, "PositionAtRecord", PTStatus.INVALID_PARAMETER)
    target_position = move if absolute else position + move
    if not 1 <= target_position <= engine.store.count_log(EVENT_KIND) + 1:
        return _status(MESSAGE_LOG, "PositionAtRecord", PTStatus.INVALID_INDEX)
    return method_output(
        MESSAGE_LOG, "PositionAtRecord",
        IterationIdentifier=str(target_position), RecordNumber=target_position, ReturnValue=0,
    )


@service.method(MESSAGE_LOG, "CancelIteration", realm=Realm.EVENT_LOG_READER)
async def cancel_iteration(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    valid = _position(ctx.engine, message) is not None
    return _status(MESSAGE_LOG, "CancelIteration", PTStatus.SUCCESS if valid else PTStatus.INVALID_PARAMETER)


@service.method(MESSAGE_LOG, "ClearLog", realm=Realm.EVENT_MANAGER)
async def clear_event_log(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    if is_frozen(engine):
        return _status(MESSAGE_LOG, "ClearLog", PTStatus.EVENTLOG_FROZEN)
    with engine.store.transaction():
        engine.store.clear_log(EVENT_KIND)
        engine.audit(AuditApp.EVENT_MANAGER, EVENT_LOG_CLEARED, account=ctx.account, address=ctx.peer)
    return _status(MESSAGE_LOG, "ClearLog", PTStatus.SUCCESS)


@service.method(MESSAGE_LOG, "FreezeLog", realm=Realm.EVENT_MANAGER)
async def freeze_event_log(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    """Freeze (stop recording) or thaw the event log; audited as 2403 with one byte, 1 frozen / 0 thawed."""
    freeze = message.get("Freeze")
    if not isinstance(freeze, bool):
        return _status(MESSAGE_LOG, "FreezeLog", PTStatus.INVALID_PARAMETER)
    engine = ctx.engine
    if freeze != is_frozen(engine):
        with engine.store.transaction():
            engine.store.set(FROZEN_KEY, freeze)
            engine.audit(AuditApp.EVENT_MANAGER, EVENT_LOG_FROZEN, account=ctx.account, address=ctx.peer,
                         extended=bytes([int(freeze)]))
    return _status(MESSAGE_LOG, "FreezeLog", PTStatus.SUCCESS)


# ---------------------------------------------------------------------------------------------- recording

ENTITY_BIOS: Final = 34
ENTITY_OS: Final = 35
ENTITY_ME: Final = 38
LAN_PORT_INSTANCE: Final = 0x61
"""Entity instance AMT gives its LAN port (capture: failed-login record)."""
INTEL_DATA: Final = 0xAA
"""First event-data byte of AMT-generated records (capture; MCMD decodes watchdog and session records by it)."""
OEM_CODE: Final = 0x40
"""First event-data byte of BIOS progress/error records: event data 2 holds the code (capture: 40 07)."""

OFFSET_FIRMWARE_ERROR: Final = 0
OFFSET_FIRMWARE_PROGRESS: Final = 2
OFFSET_RUNTIME_STOP: Final = 1
OFFSET_OUT_OF_BAND_PASSWORD: Final = 5

# System firmware progress codes (IPMI sensor type 0Fh, offset 02h, event data 2), as MCMD names them.
PROGRESS_HARD_DISK: Final = 0x02
PROGRESS_BIOS_SETUP: Final = 0x05
PROGRESS_USB: Final = 0x06
PROGRESS_PCI: Final = 0x07
PROGRESS_VIDEO: Final = 0x09
PROGRESS_KEYBOARD_CONTROLLER: Final = 0x0C
PROGRESS_WAKE_VECTOR: Final = 0x12
PROGRESS_OS_BOOT: Final = 0x13
PROGRESS_KEYBOARD_TEST: Final = 0x17
ENTITY_UNSPECIFIED: Final = 0
ENTITY_DISK: Final = 4
ENTITY_SYSTEM_BOARD: Final = 7
BOOT_PROGRESS: Final = (
    (ENTITY_BIOS, PROGRESS_PCI),
    (ENTITY_SYSTEM_BOARD, PROGRESS_VIDEO),
    (ENTITY_BIOS, PROGRESS_USB),
    (ENTITY_SYSTEM_BOARD, PROGRESS_KEYBOARD_CONTROLLER),
    (ENTITY_SYSTEM_BOARD, PROGRESS_KEYBOARD_TEST),
    (ENTITY_DISK, PROGRESS_HARD_DISK),
)
"""What a BIOS reports on every boot before handing over, oldest first: the sequence of a real AMT event log
(MPS ``src/test/helper/wsmanResponses.ts`` ``amtMessageLog``, 2021-12-08 14:32:20-26), less its repeats."""
POST_WATCHDOG: Final = 0x40
"""Event data 1 of a boot-failure record that MCMD shows as "BIOS POST Watchdog Timeout"."""


def _record(timestamp: int, sensor: int, offset: int, severity: int, entity: int, data: Iterable[int],
            instance: int = 0) -> EventRecord:
    return EventRecord(timestamp, sensor, event_offset=offset, severity=severity, entity=entity,
                       entity_instance=instance, data=bytes(data))


def _progress(timestamp: int, entity: int, code: int, severity: int = EventSeverity.MONITOR) -> EventRecord:
    return _record(timestamp, SENSOR_FIRMWARE_PROGRESS, OFFSET_FIRMWARE_PROGRESS, severity, entity, (OEM_CODE, code))


def boot_records(timestamp: int, device: str) -> list[EventRecord]:
    """A boot's progress records, ending in "Entering BIOS setup" or in "Starting operating system boot
    process" (which real firmware flags non-critical, 0x08)."""
    if device == "bios-setup":
        final = _progress(timestamp, ENTITY_BIOS, PROGRESS_BIOS_SETUP)
    else:
        final = _progress(timestamp, ENTITY_BIOS, PROGRESS_OS_BOOT, EventSeverity.NON_CRITICAL)
    return [*(_progress(timestamp, entity, code) for entity, code in BOOT_PROGRESS), final]


def wake_record(timestamp: int) -> EventRecord:
    """Resuming from sleep: the BIOS calls the OS's wake-up vector instead of booting (same MPS log)."""
    return _progress(timestamp, ENTITY_UNSPECIFIED, PROGRESS_WAKE_VECTOR)


def boot_failure_record(timestamp: int, data: dict[str, object]) -> EventRecord:
    """A failed boot.  ``data["reason"]``: ``no-bootable-media``, ``post-watchdog`` or ``firmware-error``
    (with ``data["code"]``, an IPMI system firmware error code such as 1 "no system memory"); anything
    else is a plain "system boot failure"."""
    reason, critical = data.get("reason"), EventSeverity.CRITICAL
    if reason == "no-bootable-media":
        return _record(timestamp, SENSOR_NO_BOOTABLE_MEDIA, 0, critical, ENTITY_BIOS, ())
    if reason == "post-watchdog":
        return _record(timestamp, SENSOR_BOOT_FAILURE, 0, critical, ENTITY_BIOS, (POST_WATCHDOG,))
    code = data.get("code")
    if reason == "firmware-error" and isinstance(code, int) and 0 <= code <= 0xFF:
        return _record(timestamp, SENSOR_FIRMWARE_PROGRESS, OFFSET_FIRMWARE_ERROR, critical, ENTITY_BIOS,
                       (OEM_CODE, code))
    return _record(timestamp, SENSOR_BOOT_FAILURE, 0, critical, ENTITY_BIOS, ())


def watchdog_record(timestamp: int, data: dict[str, object]) -> EventRecord:
    """An agent-presence watchdog changing state (``data["agent"]``: its GUID, 16 bytes in GUID order or
    text; ``data["state"]``: the new CurrentState, 8 = expired), or, without an agent, the BIOS watchdog."""
    agent, state = data.get("agent"), data.get("state")
    if isinstance(agent, str):
        try:
            agent = uuid.UUID(agent).bytes_le
        except ValueError:
            agent = None
    if isinstance(agent, bytes) and len(agent) == 16 and isinstance(state, int) and 0 <= state <= 0xFF:
        severity = EventSeverity.CRITICAL if state == 8 else EventSeverity.INFORMATION
        return _record(timestamp, SENSOR_WATCHDOG, 0, severity, ENTITY_ME, (INTEL_DATA, *agent[:6], state))
    return _record(timestamp, SENSOR_BOOT_FAILURE, 0, EventSeverity.CRITICAL, ENTITY_BIOS, (POST_WATCHDOG,))


def event_records(event: PlatformEvent, timestamp: int, previous: EventKind | None = None) -> list[EventRecord]:
    """The event-log records AMT writes for a platform event (``previous``: the event before it).

    Boots produce the BIOS's firmware-progress records (sensor 15) ending in "Starting operating system boot
    process" or "Entering BIOS setup", and waking from sleep "Calling operating system wake-up vector";
    failures produce sensor 30 (no bootable media), 35 (boot failure or POST watchdog) or 15/offset 0
    (firmware error); an OS crash sensor 32; a watchdog sensor 18 (agent) or 35.  Other power transitions
    leave no event-log record: no ACPI power-state sensor appears in real AMT event logs or in AMT's event
    types (IRG ``eventtypessummary.htm``), and remote power actions are audited (1700-1703) instead.
    """
    if event.kind is EventKind.POWER_ON and previous is EventKind.SLEEP:
        return [wake_record(timestamp)]
    if event.kind is EventKind.BOOT:
        return boot_records(timestamp, str(event.data.get("device", "default")))
    if event.kind is EventKind.BOOT_FAILED:
        return [boot_failure_record(timestamp, event.data)]
    if event.kind is EventKind.WATCHDOG:
        return [watchdog_record(timestamp, event.data)]
    if event.kind is EventKind.CRASH:
        return [_record(timestamp, SENSOR_OS_LOCKUP, OFFSET_RUNTIME_STOP, EventSeverity.CRITICAL, ENTITY_OS, ())]
    return []


def failed_login_record(timestamp: int, failures: int) -> EventRecord:
    """"Authentication failed N times", laid out as the capture's record (count little-endian in data[1..2])."""
    count = min(failures, 0xFFFF)
    return _record(timestamp, SENSOR_AUTHENTICATION, OFFSET_OUT_OF_BAND_PASSWORD, EventSeverity.CRITICAL,
                   ENTITY_ME, (INTEL_DATA, count & 0xFF, count >> 8), instance=LAN_PORT_INSTANCE)


def write_events(engine: Engine, records: Iterable[EventRecord]) -> None:
    """Log records unless the log is frozen (a frozen log takes no new records)."""
    if is_frozen(engine):
        return
    with engine.store.transaction():
        for record in records:
            engine.log_event(record)


@dataclass(slots=True)
class _Runtime:
    """What this module keeps per running engine (not persisted: a restart is a new ME boot)."""

    attached: bool = False
    failed_logins: int = 0
    last_event: EventKind | None = None


_RUNTIME: weakref.WeakKeyDictionary[Engine, _Runtime] = weakref.WeakKeyDictionary()


def _runtime(engine: Engine) -> _Runtime:
    state = _RUNTIME.get(engine)
    if state is None:
        state = _RUNTIME[engine] = _Runtime()
    return state


@service.on_attach
def attach(engine: Engine) -> None:
    """Turn ``engine``'s platform events and failed logins into event-log records (once per engine)."""
    state = _runtime(engine)
    if state.attached:
        return
    state.attached = True
    engine_ref = weakref.ref(engine)

    def on_event(event: PlatformEvent) -> None:
        target = engine_ref()
        if target is not None:
            previous, state.last_event = state.last_event, event.kind
            write_events(target, event_records(event, int(target.clock()), previous))

    engine.add_event_listener(on_event)
    engine.add_login_failure_listener(lambda result, peer: record_failed_login(engine))


def record_failed_login(engine: Engine) -> None:
    """Count a failed login and log "authentication failed N times" (N = failures since the ME started)."""
    state = _runtime(engine)
    state.failed_logins += 1
    write_events(engine, [failed_login_record(int(engine.clock()), state.failed_logins)])
