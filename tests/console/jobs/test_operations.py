"""Every operation end to end: REST call -> job -> WS-MAN to simulated engines -> per-device results, what the
engines did, and what the console stored (device state, inventory snapshots, log records)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import by_name, run_op

from outband.console.db.models import AuditEntry, Device, DeviceLogRecord, InventorySnapshot, Job, LogKind
from outband.console.jobs.operations import OPERATIONS
from outband.console.permissions import Role, allows
from outband.engine.platforms.base import BootDevice, PowerState
from outband.engine.services import redirection
from outband.proto.amtlog import AuditApp

ALL = {"all": True}


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(3, tmp_path / "fleet") as running:
        for body in running.device_rows():
            reply = await api.post("/api/devices", json={**body, "tags": ["lab"]})
            assert reply.status_code == 201, reply.text
        yield running


def machines(fleet: Fleet):
    return [fleet.engine(a).platform for a in fleet.addresses]


async def test_power_on_state_off_and_the_engines_audit_trail(api, fleet, runtime):
    assert all(m.power_state is not PowerState.ON for m in machines(fleet))
    job = await run_op(api, "power", {"tags": ["lab"]}, {"action": "on"})
    assert job["status"] == "succeeded"
    assert job["counts"]["succeeded"] == 3
    assert job["created_by"] == "admin"
    assert all(d["result"]["changed"] is True for d in job["devices"])
    assert all(m.power_state is PowerState.ON for m in machines(fleet))
    assert [fleet.audit_events(a, AuditApp.REMOTE_CONTROL, 0) for a in fleet.addresses] == [1, 1, 1]

    again = await run_op(api, "power", ALL, {"action": "on"})  # already on: done, unchanged, not refused
    assert again["status"] == "succeeded"
    assert {d["result"]["changed"] for d in again["devices"]} == {False}
    assert [fleet.audit_events(a, AuditApp.REMOTE_CONTROL, 0) for a in fleet.addresses] == [1, 1, 1]

    state = await run_op(api, "power", ALL, {"action": "state"})
    assert {d["result"]["power"] for d in state["devices"]} == {"on"}
    devices = (await api.get("/api/devices")).json()["items"]
    assert {d["state"]["power_state"] for d in devices} == {2}  # written back to the device rows

    off = await run_op(api, "power", {"names": ["pc-0"]}, {"action": "off"})
    assert off["total"] == 1
    assert machines(fleet)[0].power_state is not PowerState.ON
    assert fleet.audit_events(fleet.addresses[0], AuditApp.REMOTE_CONTROL, 1) == 1


async def test_reset_and_cycle_and_a_refused_reset(api, fleet):
    await run_op(api, "power", ALL, {"action": "on"})
    reset = await run_op(api, "power", {"names": ["pc-0"]}, {"action": "reset"})
    assert reset["status"] == "succeeded"
    assert fleet.audit_events(fleet.addresses[0], AuditApp.REMOTE_CONTROL, 3) == 1
    cycle = await run_op(api, "power", {"names": ["pc-1"]}, {"action": "cycle"})
    assert cycle["status"] == "succeeded"
    assert fleet.audit_events(fleet.addresses[1], AuditApp.REMOTE_CONTROL, 2) == 1
    await run_op(api, "power", {"names": ["pc-2"]}, {"action": "off"})
    refused = await run_op(api, "power", {"names": ["pc-2"]}, {"action": "reset"})  # a host that is off
    assert refused["status"] == "failed"
    (device,) = refused["devices"]
    assert device["reason"] == "refused"
    assert device["attempts"] == 1  # a "no" is never retried
    assert "ReturnValue 2" in device["error"]


@pytest.mark.parametrize(("device", "expected"), [
    ("pxe", BootDevice.PXE), ("disk", BootDevice.HDD), ("cd", BootDevice.CD), ("ider_cd", BootDevice.IDER_CD),
    ("ider_floppy", BootDevice.IDER_FLOPPY), ("bios_setup", BootDevice.BIOS_SETUP),
])
async def test_next_boot(api, fleet, device, expected):
    job = await run_op(api, "boot", {"names": ["pc-1"]}, {"device": device, "sol": True})
    assert job["status"] == "succeeded", job
    request = machines(fleet)[1].next_boot
    assert request.device is expected
    assert request.use_sol


async def test_next_boot_then_power_on(api, fleet):
    job = await run_op(api, "boot", {"names": ["pc-2"]}, {"device": "pxe", "then": "auto"})
    assert job["devices"][0]["result"]["power"]["action"] == "on"
    machine = machines(fleet)[2]
    assert machine.power_state is PowerState.ON
    assert machine.last_boot is not None
    assert machine.last_boot.device is BootDevice.PXE


async def test_inventory_is_stored_as_a_snapshot_and_updates_the_device(api, fleet, runtime):
    job = await run_op(api, "inventory", {"groups": [], "tags": ["lab"]})
    assert job["status"] == "succeeded"
    results = by_name(job)
    profile = machines(fleet)[0].profile
    first = results["pc-0"]["result"]
    assert first["uuid"] == profile.system_uuid
    assert first["processors"] == len(profile.cpus)
    assert first["memory_bytes"] == sum(m.capacity_bytes for m in profile.memory)
    async with runtime.db.read() as session:
        snapshot = await session.get(InventorySnapshot, first["snapshot_id"])
        device = (await session.execute(select(Device).where(Device.name == "pc-0"))).scalar_one()
        count = (await session.execute(select(func.count()).select_from(InventorySnapshot))).scalar_one()
    assert snapshot is not None
    assert snapshot.device_id == device.id
    assert len(snapshot.data["CIM_Processor"]) == len(profile.cpus)
    assert snapshot.data["CIM_ComputerSystemPackage"][0]["PlatformGUID"]
    assert device.uuid == profile.system_uuid
    assert count == 3
    assert "snapshot" not in first  # the full snapshot lives in its table, not in the job row


async def test_log_pull_decodes_and_stores_each_record_once(api, fleet, runtime):
    await run_op(api, "power", {"names": ["pc-0"]}, {"action": "on"})
    first = await run_op(api, "logs", {"names": ["pc-0"]})
    result = first["devices"][0]["result"]
    assert result["audit"]["new"] == result["audit"]["pulled"] >= 1
    assert result["event"]["pulled"] >= 1  # the boot's progress events
    again = await run_op(api, "logs", {"names": ["pc-0"]})
    assert again["devices"][0]["result"]["audit"]["new"] == 0
    assert again["devices"][0]["result"]["event"]["new"] == 0
    await run_op(api, "power", {"names": ["pc-0"]}, {"action": "off"})
    third = await run_op(api, "logs", {"names": ["pc-0"]}, {"logs": ["audit"]})
    assert third["devices"][0]["result"] == {"audit": {"pulled": result["audit"]["pulled"] + 1, "new": 1}}
    async with runtime.db.read() as session:
        audit = (await session.execute(select(DeviceLogRecord).where(DeviceLogRecord.kind == LogKind.AUDIT)
                                       .order_by(DeviceLogRecord.seq))).scalars().all()
    assert [r.seq for r in audit] == list(range(1, len(audit) + 1))
    power = [r.data for r in audit if r.data.get("app_id") == AuditApp.REMOTE_CONTROL]
    assert [(p["description"], p["initiator"]) for p in power] == [
        ("Performed Power Up", "admin"), ("Performed Power Down", "admin")]
    assert all(r.recorded_at is not None for r in audit)


async def test_alarms_add_list_delete(api, fleet):
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    added = await run_op(api, "alarms", ALL, {"action": "add", "name": "morning", "start": start.isoformat(),
                                              "interval_minutes": 1440})
    assert added["status"] == "succeeded"
    listed = await run_op(api, "alarms", {"names": ["pc-1"]}, {"action": "list"})
    (alarm,) = listed["devices"][0]["result"]["alarms"]
    assert alarm["name"] == "morning"
    assert alarm["interval"] == "P1DT0H0M"
    assert alarm["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    duplicate = await run_op(api, "alarms", {"names": ["pc-1"]}, {"action": "add", "name": "morning",
                                                                   "start": start.isoformat()})
    assert duplicate["devices"][0]["reason"] == "refused"
    deleted = await run_op(api, "alarms", ALL, {"action": "delete", "name": "morning"})
    assert deleted["status"] == "succeeded"
    assert {d["result"]["alarms"] == [] for d in deleted["devices"]} == {True}
    missing = await run_op(api, "alarms", {"names": ["pc-1"]}, {"action": "delete", "name": "morning"})
    assert "no alarm named" in missing["devices"][0]["error"]


async def test_user_consent_start_submit_cancel(api, fleet):
    started = await run_op(api, "consent", {"names": ["pc-0"]}, {"action": "start"})
    assert started["devices"][0]["result"]["state"] == "displayed"
    message = machines(fleet)[0].screen_messages[-1]
    code = int(message.rsplit(" ", 1)[-1])
    wrong = await run_op(api, "consent", {"names": ["pc-0"]}, {"action": "submit", "code": (code + 1) % 1_000_000})
    assert wrong["devices"][0]["reason"] == "refused"
    assert "wrong code" in wrong["devices"][0]["error"]
    right = await run_op(api, "consent", {"names": ["pc-0"]}, {"action": "submit", "code": code})
    assert right["devices"][0]["result"]["state"] == "received"
    cancelled = await run_op(api, "consent", {"names": ["pc-0"]}, {"action": "cancel"})
    assert cancelled["devices"][0]["result"]["state"] == "not_started"


async def test_feature_switches(api, fleet):
    job = await run_op(api, "features", ALL, {"sol": True, "ider": True, "kvm": True, "listener": True})
    assert {tuple(sorted(d["result"].items())) for d in job["devices"]} == {
        (("ider", True), ("kvm", True), ("listener", True), ("sol", True))}
    engine = fleet.engine(fleet.addresses[0])
    assert redirection.redirection_state(engine).sol
    await run_op(api, "features", {"names": ["pc-0"]}, {"kvm": False, "sol": False})
    state = redirection.redirection_state(engine)
    assert (state.listener, state.sol, state.ider, state.kvm) == (True, False, True, False)


DENIED_PARAMS = {"power": {"action": "on"}, "boot": {"device": "pxe", "then": "on"}, "inventory": {}, "logs": {},
                 "alarms": {"action": "list"}, "consent": {"action": "start"}, "features": {"sol": True}}


async def test_a_role_without_the_permission_gets_403_and_nothing_happens(roles, runtime, fleet):
    assert set(DENIED_PARAMS) == set(OPERATIONS)
    expected_denials = []
    for name, params in DENIED_PARAMS.items():
        permission = OPERATIONS[name].permission
        denied = [role for role in Role if not allows(role, permission)]
        assert Role.VIEWER in denied
        for role in denied:
            reply = await roles[role].post(f"/api/operations/{name}", json={"target": ALL, "params": params})
            assert reply.status_code == 403, (name, role, reply.text)
            assert permission.value in reply.json()["detail"]
            expected_denials.append((role.value, f"operation_{name}"))
    async with runtime.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 0
        denials = (await session.execute(select(AuditEntry).where(AuditEntry.outcome == "denied")
                                         .order_by(AuditEntry.id))).scalars().all()
    assert [(d.actor, d.action) for d in denials] == expected_denials
    assert all(m.power_state is not PowerState.ON for m in machines(fleet))
    assert not any(m.screen_messages for m in machines(fleet))
    assert not any(redirection.redirection_state(fleet.engine(a)).sol for a in fleet.addresses)


async def test_bad_requests_start_nothing(api, fleet, runtime):
    cases = [
        ({"target": ALL, "params": {"action": "explode"}}, "power"),
        ({"target": {}, "params": {"action": "on"}}, "power"),
        ({"target": {"tags": ["no-such-tag"]}, "params": {"action": "on"}}, "power"),
        ({"target": {"devices": [999999]}, "params": {"action": "on"}}, "power"),
        ({"target": ALL, "params": {"action": "submit"}}, "consent"),
        ({"target": ALL, "params": {}}, "features"),
        ({"target": ALL, "params": {"action": "add", "name": "x", "start": "2030-01-01T07:00:00"}}, "alarms"),
        ({"target": ALL, "params": {"action": "on"}, "extra": 1}, "power"),
    ]
    for body, name in cases:
        reply = await api.post(f"/api/operations/{name}", json=body)
        assert reply.status_code == 422, (body, reply.text)
    async with runtime.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 0


async def test_operations_are_listed_with_their_permission_and_schema(roles):
    listed = (await roles[Role.VIEWER].get("/api/operations")).json()
    assert {op["name"]: op["permission"] for op in listed} == {
        name: op.permission.value for name, op in OPERATIONS.items()}
    power = next(op for op in listed if op["name"] == "power")
    assert "action" in power["params"]["properties"]
