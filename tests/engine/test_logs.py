"""AMT_AuditLog and AMT_MessageLog over HTTP: capture shapes, paging in each log's order, clearing and freezing
with their audit records, platform events and failed logins turned into the records AMT writes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.engine._shape_inventory import add_user, assert_same_shape, enumerate_raw, get_object, invoke

from outband.engine.core import AUDIT_CAPACITY
from outband.engine.platforms.base import BootDevice, BootRequest, EventKind, PlatformEvent, PowerAction
from outband.engine.services import logs
from outband.proto.amt import PTStatus, Realm
from outband.proto.amtlog import AuditApp, AuditRecord, EventRecord
from outband.proto.cim.model import CimDateTime, CimObject
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

AUDIT = "AMT_AuditLog"
EVENTS = "AMT_MessageLog"
T0 = 1_704_000_000


@dataclass
class Clock:
    """Wall time that only moves when a test moves it."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def env(clock: Clock) -> AsyncIterator[RunningEngine]:
    async with running_engine(clock=clock) as running:
        yield running


def audit_ids(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]


def fill_audit_log(env: RunningEngine, count: int) -> None:
    """``count`` remote-control records (1700-1703 in turn), one second apart when the clock is a :class:`Clock`."""
    for i in range(count):
        env.engine.audit(AuditApp.REMOTE_CONTROL, i % 4, user="admin", address="10.0.0.9")
        if isinstance(env.engine.clock, Clock):
            env.engine.clock.now += 1


def fill_event_log(env: RunningEngine, count: int) -> list[EventRecord]:
    records = [EventRecord(T0 + i, 15, event_offset=2, entity=34, data=bytes([0x40, i])) for i in range(count)]
    for record in records:
        env.engine.log_event(record)
    return [EventRecord.decode(r.encode()) for r in records]  # as read back: data padded to 8 bytes


async def read_records(env: RunningEngine, start: int) -> CimObject:
    return await invoke(env.transport(), AUDIT, "ReadRecords", StartIndex=start)


async def get_records(env: RunningEngine, identifier: str, wanted: int) -> CimObject:
    return await invoke(env.transport(), EVENTS, "GetRecords", IterationIdentifier=identifier, MaxReadRecords=wanted)


def decoded(out: CimObject, name: str = "RecordArray") -> list[EventRecord]:
    return [EventRecord.decode(r) for r in out.getlist(name) if isinstance(r, bytes)]


# ---------------------------------------------------------------------------------------------- shapes


async def test_audit_log_replies_have_the_capture_shapes(env: RunningEngine, conformance_dir: Path) -> None:
    fill_audit_log(env, 2)
    t = env.transport()
    status, body = await t.post(msg.get(AUDIT).to_bytes())
    assert status == 200
    assert_same_shape(body, conformance_dir / "amt/auditlog/get.xml")
    assert_same_shape(await enumerate_raw(t, AUDIT), conformance_dir / "amt/auditlog/pull.xml")
    status, body = await t.post(msg.enumerate_(AUDIT).to_bytes())
    assert_same_shape(body, conformance_dir / "amt/auditlog/enumerate.xml")
    request = msg.invoke(CimObject.method_input(AUDIT, "ReadRecords", StartIndex=1))
    status, body = await t.post(request.to_bytes())
    assert status == 200
    assert_same_shape(body, conformance_dir / "amt/auditlog/readrecords.xml")


async def test_event_log_replies_have_the_capture_shapes(env: RunningEngine, conformance_dir: Path) -> None:
    fill_event_log(env, 3)
    t = env.transport()
    status, body = await t.post(msg.get(EVENTS).to_bytes())
    assert_same_shape(body, conformance_dir / "amt/messagelog/get.xml")
    assert_same_shape(await enumerate_raw(t, EVENTS), conformance_dir / "amt/messagelog/pull.xml")
    status, body = await t.post(msg.enumerate_(EVENTS).to_bytes())
    assert_same_shape(body, conformance_dir / "amt/messagelog/enumerate.xml")
    for method, params, capture in (
        ("PositionToFirstRecord", {}, "positiontofirstrecord.xml"),
        ("GetRecords", {"IterationIdentifier": "1", "MaxReadRecords": 390}, "getrecords.xml"),
    ):
        status, body = await t.post(msg.invoke(CimObject.method_input(EVENTS, method, **params)).to_bytes())
        assert status == 200
        assert_same_shape(body, conformance_dir / "amt/messagelog" / capture)


def test_records_are_byte_for_byte_what_amt_writes() -> None:
    # Failed logins: the capture's record, "authentication failed 10 times".
    assert failed_login_bytes(1704511587, 10) == base64.b64decode("Y8iYZf8GbwVoEP8mYaoKAAAAAAAA")
    # A boot's progress records: the capture's "PCI resource configuration" and, from MPS's recorded event log,
    # "Starting operating system boot process" (flagged non-critical by the firmware).
    boot = [r.encode() for r in logs.boot_records(1694565922, "default")]
    assert boot[0] == base64.b64decode("IgYBZf8PbwJoAf8iAEAHAAAAAAAA")
    assert [r.encode() for r in logs.boot_records(0x61B0C1FA, "hdd")][-1] == base64.b64decode(
        "+sGwYf8PbwJoCP8iAEATAAAAAAAA")
    assert logs.wake_record(0x61B12762).encode() == base64.b64decode("YiexYf8PbwJoAf8AAEASAAAAAAAA")


def failed_login_bytes(timestamp: int, count: int) -> bytes:
    return logs.failed_login_record(timestamp, count).encode()


# ---------------------------------------------------------------------------------------------- audit log


async def test_read_records_pages_oldest_first_ten_at_a_time(env: RunningEngine) -> None:
    fill_audit_log(env, 25)
    pages = []
    for start in (1, 11, 21):
        out = await read_records(env, start)
        assert (out["ReturnValue"], out["TotalRecordCount"]) == (0, 25)
        pages.append([AuditRecord.decode(r) for r in out.getlist("EventRecords") if isinstance(r, bytes)])
    assert [len(p) for p in pages] == [10, 10, 5]
    records = [r for page in pages for r in page]
    assert [r.timestamp for r in records] == list(range(T0, T0 + 25))
    assert [r.full_id for r in records[:4]] == [1700, 1701, 1702, 1703]
    assert (records[0].initiator, records[0].address) == ("admin", "10.0.0.9")
    for bad in (0, 26):
        assert (await read_records(env, bad))["ReturnValue"] == PTStatus.INVALID_INDEX


async def test_meshcommander_reading_loop_collects_the_whole_log(env: RunningEngine) -> None:
    fill_audit_log(env, 23)
    collected: list[bytes] = []
    while True:  # MCMD amt-0.2.0.js _GetAuditLog0: StartIndex = records so far + 1 while Total > so far
        out = await read_records(env, len(collected) + 1)
        collected += [r for r in out.getlist("EventRecords") if isinstance(r, bytes)]
        if int(str(out["TotalRecordCount"])) <= len(collected):
            break
    assert collected == env.engine.store.read_log("audit")


async def test_empty_audit_log_reads_as_no_records(env: RunningEngine) -> None:
    out = await read_records(env, 1)
    assert (out["ReturnValue"], out["TotalRecordCount"], out["RecordsReturned"]) == (0, 0, 0)
    assert "EventRecords" not in out
    log = await get_object(env.transport(), AUDIT)
    assert (log["CurrentNumberOfRecords"], log["PercentageFree"]) == (0, 100)
    assert "TimeOfLastRecord" not in log


async def test_audit_log_state_follows_its_records(env: RunningEngine) -> None:
    fill_audit_log(env, 3)
    log = await get_object(env.transport(), AUDIT)
    assert (log["CurrentNumberOfRecords"], log["AuditState"], log["OverwritePolicy"]) == (3, 16, 2)
    assert log["TimeOfLastRecord"] == CimDateTime("Datetime", "2023-12-31T05:20:02Z")  # T0 + 2
    fill_audit_log(env, AUDIT_CAPACITY)
    log = await get_object(env.transport(), AUDIT)
    assert (log["CurrentNumberOfRecords"], log["PercentageFree"], log["AuditState"]) == (AUDIT_CAPACITY, 0, 16 | 8)


async def test_clearing_the_audit_log_leaves_who_cleared_it(env: RunningEngine) -> None:
    fill_audit_log(env, 5)
    out = await invoke(env.transport(), AUDIT, "ClearLog")
    assert out["ReturnValue"] == 0
    [record] = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]
    assert (record.full_id, record.initiator, record.address) == (2000, "admin", "127.0.0.1")


async def test_audit_log_needs_the_audit_log_realm(env: RunningEngine) -> None:
    fill_audit_log(env, 2)
    admin_of_other_things = add_user(env, "netadmin", "Passw0rd!n", [Realm.EVENT_MANAGER, Realm.REMOTE_CONTROL])
    for request in (msg.get(AUDIT), msg.invoke(CimObject.method_input(AUDIT, "ClearLog"))):
        assert isinstance((await admin_of_other_things.send(request)).fault, F.AccessDenied)
    auditor = add_user(env, "auditor", "Passw0rd!a", [Realm.AUDIT_LOG])
    out = await invoke(auditor, AUDIT, "ReadRecords", StartIndex=1)
    assert out["RecordsReturned"] == 2
    assert audit_ids(env)[:2] == [1700, 1701]


# ---------------------------------------------------------------------------------------------- event log


async def test_event_log_iterates_newest_first_in_pages(env: RunningEngine) -> None:
    records = fill_event_log(env, 25)
    newest_first = records[::-1]
    first = await invoke(env.transport(), EVENTS, "PositionToFirstRecord")
    assert (first["IterationIdentifier"], first["ReturnValue"]) == ("1", 0)
    seen, identifier = [], "1"
    for expected_last, more in (("10", False), ("20", False), ("25", True)):
        out = await get_records(env, identifier, 10)
        assert (out["IterationIdentifier"], out["NoMoreRecords"], out["ReturnValue"]) == (expected_last, more, 0)
        seen += decoded(out)
        identifier = str(int(expected_last) + 1)
    assert seen == newest_first
    everything = await get_records(env, "1", 390)  # MeshCommander's single read
    assert decoded(everything) == newest_first
    assert (everything["IterationIdentifier"], everything["NoMoreRecords"]) == ("25", True)
    for identifier, wanted in (("27", 10), ("0", 10), ("abc", 10), ("1", 0)):
        assert (await get_records(env, identifier, wanted))["ReturnValue"] == PTStatus.INVALID_PARAMETER


async def test_single_record_access_and_positioning(env: RunningEngine) -> None:
    records = fill_event_log(env, 5)
    t = env.transport()
    out = await invoke(t, EVENTS, "GetRecord", IterationIdentifier="1", PositionToNext=True)
    assert (out["IterationIdentifier"], out["RecordNumber"]) == ("2", 1)
    assert bytes(int(str(b)) for b in out.getlist("RecordData")) == records[-1].encode()
    out = await invoke(t, EVENTS, "GetRecord", IterationIdentifier="5", PositionToNext=False)
    assert (out["IterationIdentifier"], out["RecordNumber"]) == ("5", 5)
    assert (await invoke(t, EVENTS, "GetRecord", IterationIdentifier="6", PositionToNext=True))["ReturnValue"] \
        == PTStatus.INVALID_PARAMETER
    out = await invoke(t, EVENTS, "PositionAtRecord", IterationIdentifier="2", MoveAbsolute=False, RecordNumber=2)
    assert (out["IterationIdentifier"], out["RecordNumber"]) == ("4", 4)
    out = await invoke(t, EVENTS, "PositionAtRecord", IterationIdentifier="4", MoveAbsolute=True, RecordNumber=1)
    assert out["IterationIdentifier"] == "1"
    out = await invoke(t, EVENTS, "PositionAtRecord", IterationIdentifier="1", MoveAbsolute=True, RecordNumber=9)
    assert out["ReturnValue"] == PTStatus.INVALID_INDEX
    assert (await invoke(t, EVENTS, "CancelIteration", IterationIdentifier="3"))["ReturnValue"] == 0
    assert (await invoke(t, EVENTS, "CancelIteration", IterationIdentifier="x"))["ReturnValue"] \
        == PTStatus.INVALID_PARAMETER


async def test_boots_write_the_bios_progress_records(env: RunningEngine) -> None:
    logs.attach(env.engine)
    logs.attach(env.engine)  # once per engine, however often it is called
    await env.machine.request_power(PowerAction.ON)
    out = await get_records(env, "1", 390)
    boot = decoded(out)
    assert [r.data[1] for r in boot] == [0x13, 0x02, 0x17, 0x0C, 0x06, 0x09, 0x07]  # newest first
    assert all((r.sensor_type, r.event_offset, r.data[0]) == (15, 2, 0x40) for r in boot)
    assert boot[0].severity == 0x08
    assert all(r.timestamp == T0 for r in boot)

    env.machine.set_next_boot(BootRequest(device=BootDevice.BIOS_SETUP))
    await env.machine.request_power(PowerAction.RESET)
    newest = decoded(await get_records(env, "1", 1))[0]
    assert newest.data[1] == 0x05  # "Entering BIOS setup"

    await env.machine.request_power(PowerAction.SLEEP_DEEP)
    await env.machine.request_power(PowerAction.ON)
    assert any(r.data[1] == 0x12 and r.entity == 0 for r in decoded(await get_records(env, "1", 10)))

    await env.machine.request_power(PowerAction.NMI)
    crash = decoded(await get_records(env, "1", 1))[0]
    assert (crash.sensor_type, crash.entity, crash.severity) == (32, 35, 0x10)


async def test_reading_any_log_starts_recording_platform_events(env: RunningEngine) -> None:
    await get_object(env.transport(), EVENTS)
    await env.machine.request_power(PowerAction.ON)
    assert env.engine.store.count_log("event") == 7


@pytest.mark.parametrize(("event", "sensor", "data"), [
    (PlatformEvent(EventKind.BOOT_FAILED, data={"reason": "no-bootable-media"}), 30, b""),
    (PlatformEvent(EventKind.BOOT_FAILED, data={"reason": "post-watchdog"}), 35, b"\x40"),
    (PlatformEvent(EventKind.BOOT_FAILED, data={"reason": "firmware-error", "code": 1}), 15, b"\x40\x01"),
    (PlatformEvent(EventKind.BOOT_FAILED), 35, b""),
    (PlatformEvent(EventKind.WATCHDOG, data={"agent": "00112233-4455-6677-8899-aabbccddeeff", "state": 8}), 18,
     bytes([0xAA, 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 8])),
    (PlatformEvent(EventKind.WATCHDOG), 35, b"\x40"),
])
def test_failures_and_watchdogs_become_the_records_consoles_decode(
    event: PlatformEvent, sensor: int, data: bytes
) -> None:
    [record] = logs.event_records(event, T0)
    decoded_record = EventRecord.decode(record.encode())
    assert decoded_record.sensor_type == sensor
    assert decoded_record.data == data.ljust(8, b"\0")
    assert decoded_record.severity == 0x10


def test_power_transitions_other_than_boots_and_wakes_leave_no_record() -> None:
    for kind in (EventKind.POWER_OFF, EventKind.SLEEP, EventKind.HIBERNATE, EventKind.RESET, EventKind.POWER_ON):
        assert logs.event_records(PlatformEvent(kind), T0) == []
    [wake] = logs.event_records(PlatformEvent(EventKind.POWER_ON), T0, previous=EventKind.SLEEP)
    assert wake.data[1] == 0x12


async def test_failed_logins_are_counted_in_the_event_log(env: RunningEngine) -> None:
    logs.record_failed_login(env.engine)
    logs.record_failed_login(env.engine)
    newest, older = decoded(await get_records(env, "1", 2))
    assert (newest.sensor_type, newest.event_offset, newest.entity) == (6, 5, 38)
    # MeshCommander: "Authentication failed " + (data[1] + (data[2] << 8)) + " times"
    assert (newest.data[1] + (newest.data[2] << 8), older.data[1] + (older.data[2] << 8)) == (2, 1)


async def test_freezing_stops_recording_and_clearing(env: RunningEngine) -> None:
    fill_event_log(env, 2)
    t = env.transport()
    assert (await invoke(t, EVENTS, "FreezeLog", Freeze=True))["ReturnValue"] == 0
    assert (await get_object(t, EVENTS))["IsFrozen"] is True
    logs.attach(env.engine)
    await env.machine.request_power(PowerAction.ON)
    logs.record_failed_login(env.engine)
    assert env.engine.store.count_log("event") == 2
    assert (await invoke(t, EVENTS, "ClearLog"))["ReturnValue"] == PTStatus.EVENTLOG_FROZEN
    assert (await invoke(t, EVENTS, "FreezeLog", Freeze=False))["ReturnValue"] == 0
    assert (await invoke(t, EVENTS, "ClearLog"))["ReturnValue"] == 0
    assert env.engine.store.count_log("event") == 0
    frozen_records = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]
    assert [(r.full_id, r.extended) for r in frozen_records] == [(2403, b"\x01"), (2403, b"\x00"), (2402, b"")]


async def test_event_log_realms(env: RunningEngine) -> None:
    fill_event_log(env, 1)
    reader = add_user(env, "reader", "Passw0rd!r", [Realm.EVENT_LOG_READER])
    out = await invoke(reader, EVENTS, "GetRecords", IterationIdentifier="1", MaxReadRecords=10)
    assert len(decoded(out)) == 1
    refused = await reader.send(msg.invoke(CimObject.method_input(EVENTS, "ClearLog")))
    assert isinstance(refused.fault, F.AccessDenied)
    outsider = add_user(env, "outsider", "Passw0rd!o", [Realm.AUDIT_LOG])
    assert isinstance((await outsider.send(msg.get(EVENTS))).fault, F.AccessDenied)


async def test_logs_and_the_freeze_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        logs.attach(env.engine)
        await env.machine.request_power(PowerAction.ON)
        env.engine.audit(AuditApp.REMOTE_CONTROL, 0, user="admin", address="10.0.0.9")
        assert (await invoke(env.transport(), EVENTS, "FreezeLog", Freeze=True))["ReturnValue"] == 0
        before = env.engine.store.read_log("event")
    async with running_engine(state=state) as env:
        t = env.transport()
        assert decoded(await get_records(env, "1", 390)) == [EventRecord.decode(r) for r in before[::-1]]
        assert (await get_object(t, EVENTS))["IsFrozen"] is True
        out = await invoke(t, AUDIT, "ReadRecords", StartIndex=1)
        assert [AuditRecord.decode(r).full_id for r in out.getlist("EventRecords") if isinstance(r, bytes)] \
            == [1700, 2403]
