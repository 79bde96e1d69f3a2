"""Agent presence watchdogs over real HTTP, with a hand-moved clock: creation as consoles do it, the agent's
register/heartbeat/shutdown protocol, lazy expiry, actions that write the event log, limits and realms."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.engine.fakeclock import FakeMonotonic

from outband.engine.acl import Account
from outband.engine.platforms.base import PowerAction, PowerState
from outband.engine.platforms.sim import SimMachine
from outband.engine.services.watchdog import MAX_AGENTS, WatchdogState
from outband.proto.amt import PTStatus, Realm
from outband.proto.amtlog import AuditRecord, EventRecord
from outband.proto.cim.model import CimDateTime, CimObject, Field
from outband.proto.digest import ha1
from outband.proto.wsman import EndpointReference, Envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.envelope import ResourceCreated
from outband.testing.engine import RunningEngine, running_engine

WATCHDOG = "AMT_AgentPresenceWatchdog"
GUID = bytes(range(3, 19))
DEVICE_ID = base64.b64encode(GUID).decode()
WALL_OFFSET = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def env(clock: FakeMonotonic) -> AsyncIterator[RunningEngine]:
    machine = SimMachine(power_state=PowerState.ON)  # agent timers count only while the host is on
    async with running_engine(monotonic=clock, clock=lambda: WALL_OFFSET + clock.now, machine=machine) as running:
        yield running


def watchdog_body(device_id: str = DEVICE_ID, startup: int = 3600, heartbeat: int = 60) -> CimObject:
    # MeshCommander's AddWatchdogOk: key placeholders of 0 that AMT overrides.
    return CimObject.new(WATCHDOG, {
        "CreationClassName": "0", "DeviceID": device_id, "MonitoredEntityDescription": "backup agent",
        "StartupInterval": startup, "SystemCreationClassName": "0", "SystemName": "0", "TimeoutInterval": heartbeat,
    })


def with_text(obj: CimObject, name: str, text: str) -> CimObject:
    """``obj`` with the raw text a careless or hostile client might send in place of a typed value."""
    obj.fields = [Field(f.name, text, f.ns) if f.name == name else f for f in obj.fields]
    return obj


async def create(env: RunningEngine, body: CimObject | None = None) -> Envelope:
    return await env.transport().send(msg.create(body or watchdog_body()))


async def created(env: RunningEngine, device_id: str = DEVICE_ID, startup: int = 3600) -> None:
    reply = await create(env, watchdog_body(device_id, startup))
    assert reply.fault is None, reply.fault


async def call(env: RunningEngine, method: str, device_id: str = DEVICE_ID, **params: object) -> CimObject:
    reply = await env.transport().send(
        msg.invoke(CimObject.method_input(WATCHDOG, method, **params), {"DeviceID": device_id}))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def state(env: RunningEngine, device_id: str = DEVICE_ID) -> CimObject:
    reply = await env.transport().send(msg.get(WATCHDOG, {"DeviceID": device_id}))
    assert isinstance(reply.body, CimObject), reply.fault
    return reply.body


def presence_events(env: RunningEngine) -> list[EventRecord]:
    records = [EventRecord.decode(r) for r in env.engine.store.read_log("event")]
    return [r for r in records if r.sensor_type == 0x12]


async def test_create_as_meshcommander_does(env: RunningEngine) -> None:
    reply = await create(env)
    assert isinstance(reply.body, ResourceCreated)
    epr = reply.body.epr
    assert isinstance(epr, EndpointReference)
    assert epr.selector_dict == {"CreationClassName": WATCHDOG, "DeviceID": DEVICE_ID,
                                 "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "Intel(r) AMT"}
    body = await state(env)
    assert body["CurrentState"] == WatchdogState.NOT_STARTED
    assert (body["StartupInterval"], body["TimeoutInterval"]) == (3600, 60)
    assert body["MonitoredEntityDescription"] == "backup agent"
    assert "TimeOfLastExpiration" not in body
    audit = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")][-1]
    assert (audit.full_id, audit.extended, audit.initiator) == (2600, GUID, "admin")

    listed = await env.transport().send(msg.enumerate_(WATCHDOG))
    pulled = await env.transport().send(msg.pull(WATCHDOG, listed.body.context))  # type: ignore[union-attr]
    assert [i["DeviceID"] for i in pulled.body.items] == [DEVICE_ID]  # type: ignore[union-attr,index]


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (watchdog_body("not base64!"), F.InvalidRepresentation),
        (watchdog_body(base64.b64encode(bytes(15)).decode()), F.InvalidRepresentation),
        (watchdog_body(base64.b64encode(bytes(16)).decode()), F.InvalidRepresentation),  # a zero GUID
        (watchdog_body(startup=0), F.InvalidRepresentation),
        (with_text(watchdog_body(), "TimeoutInterval", "soon"), F.InvalidRepresentation),
        (with_text(watchdog_body(), "TimeoutInterval", "70000"), F.InvalidRepresentation),
    ],
)
async def test_create_refuses_bad_watchdogs(env: RunningEngine, body: CimObject, fault: type[F.WsmanFault]) -> None:
    assert isinstance((await create(env, body)).fault, fault)
    assert env.engine.store.keys("watchdog/") == []


async def test_duplicates_and_the_sixteen_agent_limit(env: RunningEngine) -> None:
    await created(env)
    assert isinstance((await create(env)).fault, F.AlreadyExists)
    for i in range(1, MAX_AGENTS):
        await created(env, base64.b64encode(bytes([i]) * 16).decode())
    assert isinstance((await create(env, watchdog_body(base64.b64encode(b"\xee" * 16).decode()))).fault,
                      F.QuotaLimit)


async def test_agent_protocol_register_heartbeat_expire_recover_shutdown(
    env: RunningEngine, clock: FakeMonotonic
) -> None:
    await created(env)
    registered = await call(env, "RegisterAgent")
    assert (registered["ReturnValue"], registered["TimeoutInterval"]) == (0, 60)
    sequence = registered["SessionSequenceNumber"]
    assert isinstance(sequence, int)
    assert (await state(env))["CurrentState"] == WatchdogState.RUNNING

    for _ in range(3):  # heartbeats keep it running far past one timeout
        clock.advance(50)
        sequence += 1
        assert (await call(env, "AssertPresence", SequenceNumber=sequence))["ReturnValue"] == 0
    assert (await state(env))["CurrentState"] == WatchdogState.RUNNING
    replay = await call(env, "AssertPresence", SequenceNumber=sequence)
    assert replay["ReturnValue"] == PTStatus.INVALID_PARAMETER

    clock.advance(61)
    expired = await state(env)
    assert expired["CurrentState"] == WatchdogState.EXPIRED
    expected = dt.datetime.fromtimestamp(int(WALL_OFFSET + clock.now - 1), dt.UTC)
    assert expired["TimeOfLastExpiration"] == CimDateTime.of(expected)  # when it ran out, not when read

    sequence += 1
    assert (await call(env, "AssertPresence", SequenceNumber=sequence))["ReturnValue"] == 0
    assert (await state(env))["CurrentState"] == WatchdogState.RUNNING
    sequence += 1
    assert (await call(env, "AssertShutdown", SequenceNumber=sequence))["ReturnValue"] == 0
    clock.advance(3600)
    assert (await state(env))["CurrentState"] == WatchdogState.STOPPED
    late = await call(env, "AssertPresence", SequenceNumber=sequence + 1)
    assert late["ReturnValue"] == 0x1E  # REQUEST_UNEXPECTED: register first


async def test_an_agent_that_never_starts_expires_after_the_startup_interval(
    env: RunningEngine, clock: FakeMonotonic
) -> None:
    await created(env, startup=300)
    clock.advance(299)
    assert (await state(env))["CurrentState"] == WatchdogState.NOT_STARTED
    clock.advance(1)
    assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED
    assert (await call(env, "AssertPresence", SequenceNumber=1))["ReturnValue"] == 0x1E


async def test_actions_write_the_agent_presence_event(env: RunningEngine, clock: FakeMonotonic) -> None:
    await created(env)
    any_state = 0x1F
    add = await call(env, "AddAction", OldState=int(WatchdogState.RUNNING), NewState=int(WatchdogState.EXPIRED),
                     EventOnTransition=True)
    assert add["ReturnValue"] == 0
    sequence = (await call(env, "RegisterAgent"))["SessionSequenceNumber"]
    clock.advance(61)
    assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED
    (event,) = presence_events(env)
    assert event.data == b"\xaa" + GUID[:6] + bytes([WatchdogState.EXPIRED])
    assert event.timestamp == int(WALL_OFFSET + clock.now - 1)
    assert (event.event_type, event.source_type, event.entity) == (0x0A, 0x58, 0x26)

    assert isinstance(sequence, int)
    await call(env, "AssertPresence", SequenceNumber=sequence + 1)  # expired -> running: no action for it
    assert len(presence_events(env)) == 1
    assert (await call(env, "DeleteAllActions"))["ReturnValue"] == 0
    clock.advance(61)
    assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED
    assert len(presence_events(env)) == 1

    for params, status in (({"OldState": 0, "NewState": 8}, PTStatus.INVALID_PARAMETER),
                           ({"OldState": 32, "NewState": 8}, PTStatus.INVALID_PARAMETER),
                           ({"OldState": any_state, "NewState": 8, "ActionEac": True}, PTStatus.UNSUPPORTED),
                           ({"OldState": any_state, "NewState": 8, "ActionSd": 3}, PTStatus.UNSUPPORTED)):
        refused = await call(env, "AddAction", EventOnTransition=True, **params)
        assert refused["ReturnValue"] == status, params
    audits = [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]
    assert audits.count(2602) == 2


async def test_sixty_four_actions_in_total(env: RunningEngine) -> None:
    agents = [base64.b64encode(bytes([i + 1]) * 16).decode() for i in range(MAX_AGENTS)]
    for device_id in agents:
        await created(env, device_id)
    for i in range(64):
        out = await call(env, "AddAction", agents[i % MAX_AGENTS], OldState=4, NewState=8, EventOnTransition=True)
        assert out["ReturnValue"] == 0
    refused = await call(env, "AddAction", agents[0], OldState=4, NewState=8, EventOnTransition=True)
    assert refused["ReturnValue"] == 0x17  # PT_STATUS_MAX_LIMIT_REACHED


async def test_delete(env: RunningEngine) -> None:
    await created(env)
    reply = await env.transport().send(msg.delete(WATCHDOG, {"DeviceID": DEVICE_ID}))
    assert reply.fault is None
    missing = await env.transport().send(msg.get(WATCHDOG, {"DeviceID": DEVICE_ID}))
    assert isinstance(missing.fault, F.DestinationUnreachable)
    audit = [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")][-1]
    assert (audit.full_id, audit.extended) == (2601, GUID)


async def test_service_and_capabilities(env: RunningEngine) -> None:
    caps = (await env.transport().send(msg.get("AMT_AgentPresenceCapabilities"))).body
    assert isinstance(caps, CimObject)
    assert (caps["MaxTotalAgents"], caps["MaxTotalActions"], caps["MinGuaranteedActionListSize"]) == (16, 64, 3)
    service = (await env.transport().send(msg.get("AMT_AgentPresenceService"))).body
    assert isinstance(service, CimObject)
    assert service["SystemName"] == "Intel(r) AMT"


async def test_local_agents_heartbeat_remote_consoles_manage(env: RunningEngine) -> None:
    engine = env.engine
    await created(env)
    engine.accounts.save(Account(4, "agent", ha1("agent", engine.realm, "Ag3nt!pw"),
                                 frozenset({Realm.AGENT_PRESENCE_LOCAL})))
    engine.accounts.save(Account(5, "console", ha1("console", engine.realm, "C0nsole!"),
                                 frozenset({Realm.AGENT_PRESENCE_REMOTE})))
    agent, console = env.transport("agent", "Ag3nt!pw"), env.transport("console", "C0nsole!")
    register = msg.invoke(CimObject.method_input(WATCHDOG, "RegisterAgent"), {"DeviceID": DEVICE_ID})
    assert (await agent.send(register)).fault is None
    assert isinstance((await agent.send(msg.create(watchdog_body(base64.b64encode(b"\x01" * 16).decode())))).fault,
                      F.AccessDenied)
    assert isinstance((await console.send(register)).fault, F.AccessDenied)
    assert (await console.send(msg.get(WATCHDOG, {"DeviceID": DEVICE_ID}))).fault is None


async def test_watchdogs_start_over_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    async with running_engine(state=path, password="Adm1n!pass") as env:
        await created(env)
        await call(env, "RegisterAgent")
        assert (await state(env))["CurrentState"] == WatchdogState.RUNNING
    async with running_engine(state=path, password="Adm1n!pass") as env:
        body = await state(env)
        assert body["CurrentState"] == WatchdogState.NOT_STARTED
        assert body["MonitoredEntityDescription"] == "backup agent"


async def test_timers_wait_for_the_host_to_be_on(clock: FakeMonotonic) -> None:
    async with running_engine(monotonic=clock) as env:  # the simulated host starts powered off
        await created(env, startup=300)
        clock.advance(3600)
        assert (await state(env))["CurrentState"] == WatchdogState.NOT_STARTED
        assert await env.machine.request_power(PowerAction.ON)
        clock.advance(299)
        assert (await state(env))["CurrentState"] == WatchdogState.NOT_STARTED
        clock.advance(1)
        assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED


async def test_sleep_suspends_and_waking_resumes_the_timer(env: RunningEngine, clock: FakeMonotonic) -> None:
    await created(env)
    await call(env, "AddAction", OldState=0x1F, NewState=int(WatchdogState.SUSPENDED), EventOnTransition=True)
    sequence = (await call(env, "RegisterAgent"))["SessionSequenceNumber"]
    clock.advance(40)
    assert await env.machine.request_power(PowerAction.SLEEP_DEEP)
    assert (await state(env))["CurrentState"] == WatchdogState.SUSPENDED
    assert [e.data[-1] for e in presence_events(env)] == [WatchdogState.SUSPENDED]
    assert isinstance(sequence, int)
    assert (await call(env, "AssertPresence", SequenceNumber=sequence + 1))["ReturnValue"] == 0x1E
    clock.advance(3600)  # asleep: the heartbeat timer does not run
    assert await env.machine.request_power(PowerAction.ON)
    assert (await state(env))["CurrentState"] == WatchdogState.RUNNING
    clock.advance(19)
    assert (await state(env))["CurrentState"] == WatchdogState.RUNNING
    clock.advance(2)  # the 20 s left before the sleep have run out
    assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED


@pytest.mark.parametrize("action", [PowerAction.OFF_SOFT, PowerAction.RESET])
async def test_power_off_or_restart_starts_agents_over(
    env: RunningEngine, clock: FakeMonotonic, action: PowerAction
) -> None:
    await created(env, startup=600)
    sequence = (await call(env, "RegisterAgent"))["SessionSequenceNumber"]
    assert await env.machine.request_power(action)
    if action is PowerAction.OFF_SOFT:
        assert (await state(env))["CurrentState"] == WatchdogState.SUSPENDED
        assert await env.machine.request_power(PowerAction.ON)
    assert (await state(env))["CurrentState"] == WatchdogState.NOT_STARTED
    assert isinstance(sequence, int)
    assert (await call(env, "AssertPresence", SequenceNumber=sequence + 1))["ReturnValue"] == 0x1E  # re-register
    clock.advance(600)
    assert (await state(env))["CurrentState"] == WatchdogState.EXPIRED
