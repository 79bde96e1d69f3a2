"""The alarm clock over real HTTP, and its scheduler on a hand-moved clock: alarms really wake the host."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
from lxml import etree
from tests.engine._remote_control import (
    event_records,
    exchange,
    get,
    invoke,
    output,
    untyped_input,
    user_transport,
)
from tests.engine._shape import assert_same_shape, load

from outband.engine.platforms.base import EventKind, PowerAction, PowerState
from outband.engine.platforms.sim import SimMachine
from outband.engine.services import alarms
from outband.proto.amt import Realm
from outband.proto.cim.model import CimDateTime, CimObject
from outband.proto.wsman import EndpointReference, EnumerateResponse, PullResponse, SelectorSet
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import CIM_COMMON
from outband.testing.engine import RunningEngine, running_engine

SERVICE = "AMT_AlarmClockService"
OCCURRENCE = "IPS_AlarmClockOccurrence"
NOW = dt.datetime(2024, 1, 7, 10, 30, 15, tzinfo=dt.UTC)
START = dt.datetime(2024, 1, 8, 6, 0, tzinfo=dt.UTC)
HOUR = 3600


class Clock:
    """A wall clock the test sets by hand; once ``running``, it also moves on with real time."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now.timestamp()
        self.running_since: float | None = None

    def __call__(self) -> float:
        if self.running_since is None:
            return self.now
        return self.now + time.monotonic() - self.running_since

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def run_from(self, when: dt.datetime) -> None:
        self.set(when)
        self.running_since = time.monotonic()


def template(name: str | None = "nightly", *, start: dt.datetime | str = START, interval: str | None = None,
             delete: bool | None = None, instance_id: str | None = None) -> CimObject:
    """An IPS_AlarmClockOccurrence as consoles embed it in AddAlarm (unwrapped, no class element)."""
    alarm = CimObject.new(OCCURRENCE)
    alarm.wrapped = False
    if instance_id is not None:
        alarm["InstanceID"] = instance_id
    if name is not None:
        alarm["ElementName"] = name
    alarm["StartTime"] = CimDateTime("Datetime", start) if isinstance(start, str) else start
    if interval is not None:
        alarm["Interval"] = CimDateTime("Interval", interval)
    if delete is not None:
        alarm["DeleteOnCompletion"] = delete
    return alarm


def add_request(alarm: CimObject) -> msg.Envelope:
    return msg.invoke(CimObject.method_input(SERVICE, "AddAlarm", AlarmTemplate=alarm))


async def add(env: RunningEngine, alarm: CimObject) -> CimObject:
    return output(await env.transport().send(add_request(alarm)))


async def occurrences(env: RunningEngine) -> list[CimObject]:
    t = env.transport()
    reply = await t.send(msg.enumerate_(OCCURRENCE))
    assert isinstance(reply.body, EnumerateResponse)
    assert reply.body.context is not None
    pulled = await t.send(msg.pull(OCCURRENCE, reply.body.context, max_elements=10))
    assert isinstance(pulled.body, PullResponse)
    return [item for item in pulled.body.items if isinstance(item, CimObject)]


@pytest.fixture
async def env() -> RunningEngine:  # type: ignore[misc]
    async with running_engine(clock=Clock()) as running:
        yield running
        alarms.detach(running.engine)


# ---------------------------------------------------------------------------------------------- shapes


async def test_alarm_clock_answers_in_the_captured_shapes(env: RunningEngine, conformance_dir: Path) -> None:
    t = env.transport()
    captures = conformance_dir / "amt/alarmclock"
    raw, _ = await exchange(t, msg.get(SERVICE))
    assert_same_shape(raw, captures / "get.xml")
    raw, reply = await exchange(t, msg.enumerate_(SERVICE))
    assert_same_shape(raw, captures / "enumerate.xml")
    assert isinstance(reply.body, EnumerateResponse)
    assert reply.body.context is not None
    raw, _ = await exchange(t, msg.pull(SERVICE, reply.body.context))
    assert_same_shape(raw, captures / "pull.xml")
    raw, reply = await exchange(t, add_request(template(interval="PT5M", delete=True)))
    assert_same_shape(raw, captures / "addalarm.xml")
    assert output(reply)["AlarmClock"] == EndpointReference("", SelectorSet(), "default")  # as AMT sends it

    captures = conformance_dir / "ips/alarmclock"
    raw, reply = await exchange(t, msg.enumerate_(OCCURRENCE))
    assert_same_shape(raw, captures / "enumerate.xml")
    raw, _ = await exchange(t, msg.get(OCCURRENCE, {"InstanceID": "nightly"}))
    assert_same_shape(raw, _with_real_datetimes(load(captures / "get.xml")))
    raw, _ = await exchange(t, msg.delete(OCCURRENCE, {"InstanceID": "nightly"}))
    assert_same_shape(raw, captures / "delete.xml")


def _with_real_datetimes(capture: etree._Element) -> etree._Element:
    """The occurrence captures are hand-made ("testdatetime", Interval "0"): real AMT wraps StartTime and
    Interval in cim:Datetime / cim:Interval, as MeshCommander reads them (``StartTime.Datetime``)."""
    for element in capture.iter():
        local = etree.QName(element).localname if isinstance(element.tag, str) else ""
        if local in ("StartTime", "Interval"):
            element.text = None
            kind = "Datetime" if local == "StartTime" else "Interval"
            etree.SubElement(element, f"{{{CIM_COMMON}}}{kind}").text = "x"
    return capture


async def test_an_added_alarm_reads_back_as_consoles_expect(env: RunningEngine) -> None:
    await add(env, template("nightly", interval="P1DT0H0M", delete=False))
    (alarm,) = await occurrences(env)
    assert alarm.names() == ["ElementName", "InstanceID", "StartTime", "Interval", "DeleteOnCompletion"]
    assert (alarm["ElementName"], alarm["InstanceID"]) == ("nightly", "nightly")
    assert alarm["StartTime"] == CimDateTime("Datetime", "2024-01-08T06:00:00Z")
    assert alarm["Interval"] == CimDateTime("Interval", "P1DT0H0M")
    assert alarm["DeleteOnCompletion"] is False


async def test_meshcommander_template_has_only_an_instance_id_and_a_zero_interval(env: RunningEngine) -> None:
    await add(env, template(None, instance_id="wake", interval="P0DT0H0M", delete=True))
    alarm = await get(env.transport(), OCCURRENCE, {"InstanceID": "wake"})
    assert alarm["ElementName"] == "wake"
    assert "Interval" not in alarm  # a one-shot alarm, as MeshCommander tells them apart


# ---------------------------------------------------------------------------------------------- refusals


async def test_a_sixth_alarm_hits_the_quota(env: RunningEngine) -> None:
    for i in range(alarms.MAX_ALARMS):
        await add(env, template(f"alarm{i}"))
    reply = await env.transport().send(add_request(template("one too many")))
    assert isinstance(reply.fault, F.QuotaLimit)
    assert len(await occurrences(env)) == alarms.MAX_ALARMS


@pytest.mark.parametrize("alarm", [
    template("nightly"),  # same name as the existing alarm
    template("other", instance_id="nightly"),  # same InstanceID
    template("past", start=dt.datetime(2024, 1, 7, 10, 30, tzinfo=dt.UTC)),
    template("seconds", start="2024-01-08T06:00:30Z"),
    template("local", start="2024-01-08T06:00:00+01:00"),
    template("bad day", start="2024-02-30T06:00:00Z"),
    template("hours", interval="PT24H"),
    template("minutes", interval="PT60M"),
    template("years", interval="P1Y"),
    template("x" * 33),
    template(None),
], ids=["duplicate name", "duplicate id", "past", "seconds", "not UTC", "no such day", "24 hours", "60 minutes",
        "years", "long name", "nameless"])
async def test_unusable_templates_are_missing_values(env: RunningEngine, alarm: CimObject) -> None:
    await add(env, template("nightly"))
    reply = await env.transport().send(add_request(alarm))
    assert isinstance(reply.fault, F.InvalidRepresentation)
    assert reply.fault.detail == F.detail_uri("MissingValues")
    assert len(await occurrences(env)) == 1


async def test_a_template_that_is_not_an_occurrence_is_refused(env: RunningEngine) -> None:
    reply = await env.transport().send(msg.invoke(untyped_input(SERVICE, "AddAlarm", AlarmTemplate="tomorrow")))
    assert isinstance(reply.fault, F.InvalidRepresentation)
    reply = await env.transport().send(msg.invoke(untyped_input(SERVICE, "AddAlarm")))
    assert isinstance(reply.fault, F.InvalidRepresentation)


async def test_deleting_needs_a_name_and_an_existing_alarm(env: RunningEngine) -> None:
    await add(env, template("nightly"))
    t = env.transport()
    assert isinstance((await t.send(msg.delete(OCCURRENCE, {"InstanceID": "weekly"}))).fault,
                      F.DestinationUnreachable)
    assert isinstance((await t.send(msg.delete(OCCURRENCE))).fault, F.InvalidSelectors)
    assert (await t.send(msg.delete(OCCURRENCE, {"InstanceID": "nightly"}))).fault is None
    assert await occurrences(env) == []


async def test_meshcommander_edits_an_alarm_with_put(env: RunningEngine) -> None:
    await add(env, template("nightly"))
    t = env.transport()
    alarm = await get(t, OCCURRENCE, {"InstanceID": "nightly"})
    alarm["StartTime"] = CimDateTime("Datetime", "2024-01-09T07:15:00Z")
    alarm["Interval"] = CimDateTime("Interval", "PT12H")
    edited = output(await t.send(msg.put(alarm, {"InstanceID": "nightly"})))
    assert edited["StartTime"] == CimDateTime("Datetime", "2024-01-09T07:15:00Z")
    assert (await get(t, OCCURRENCE, {"InstanceID": "nightly"}))["Interval"] == CimDateTime("Interval", "PT12H")
    alarm["StartTime"] = CimDateTime("Datetime", "2020-01-01T00:00:00Z")
    assert isinstance((await t.send(msg.put(alarm, {"InstanceID": "nightly"}))).fault, F.InvalidRepresentation)


async def test_alarms_need_the_remote_control_realm(env: RunningEngine) -> None:
    viewer = user_transport(env, [Realm.GENERAL_INFO], "viewer")
    for request in (msg.get(SERVICE), add_request(template()), msg.enumerate_(OCCURRENCE)):
        assert isinstance((await viewer.send(request)).fault, F.AccessDenied)
    operator = user_transport(env, [Realm.REMOTE_CONTROL])
    out = await invoke(operator, SERVICE, "AddAlarm", AlarmTemplate=template())
    assert out["ReturnValue"] == 0


# ---------------------------------------------------------------------------------------------- waking


async def test_a_due_alarm_wakes_the_host_and_is_logged() -> None:
    clock = Clock()
    async with running_engine(clock=clock) as env:
        await add(env, template("once", delete=True))
        await add(env, template("kept", start=START + dt.timedelta(hours=1), delete=False))
        clock.set(START)
        assert await alarms.run_due(env.engine) == 1
        assert env.machine.power_state is PowerState.ON
        wake = event_records(env.engine)[-1]
        assert (wake.sensor_type, wake.event_offset, wake.data[:2]) == (0x1D, 0x07, bytes([0xC7, 0x0B]))
        assert [a["InstanceID"] for a in await occurrences(env)] == ["kept"]  # deleted on completion

        assert await env.machine.request_power(PowerAction.OFF_SOFT)
        clock.set(START + dt.timedelta(hours=2))
        assert await alarms.run_due(env.engine) == 1
        assert env.machine.power_state is PowerState.ON
        assert [a["InstanceID"] for a in await occurrences(env)] == ["kept"]  # spent but kept
        assert await alarms.run_due(env.engine) == 0  # a spent alarm never fires again
        alarms.detach(env.engine)


async def test_a_repeating_alarm_moves_to_its_next_occurrence_and_leaves_a_running_host_alone() -> None:
    clock = Clock()
    async with running_engine(clock=clock, machine=SimMachine(power_state=PowerState.ON)) as env:
        await add(env, template("hourly", interval="PT1H"))
        clock.set(START + dt.timedelta(hours=2, minutes=30))  # slept through three occurrences
        boots = env.machine.boot_count
        assert await alarms.run_due(env.engine) == 1
        assert env.machine.boot_count == boots  # the host was on: nothing to do
        (alarm,) = await occurrences(env)
        assert alarm["StartTime"] == CimDateTime("Datetime", "2024-01-08T09:00:00Z")
        alarms.detach(env.engine)


async def test_the_timer_fires_on_its_own() -> None:
    clock = Clock()
    async with running_engine(clock=clock) as env:
        woke = asyncio.Event()
        env.engine.add_event_listener(lambda e: woke.set() if e.kind is EventKind.POWER_ON else None)
        await add(env, template("soon", delete=True))  # armed for the next day
        clock.run_from(START - dt.timedelta(seconds=0.2))
        alarms.reschedule(env.engine)  # the clock jumped a day (a real clock never does)
        await asyncio.wait_for(woke.wait(), timeout=10)
        assert env.machine.power_state is PowerState.ON
        assert await occurrences(env) == []  # settled before the host was woken


async def test_setting_amt_time_past_an_alarm_makes_it_fire() -> None:
    clock = Clock()
    async with running_engine(clock=clock) as env:
        woke = asyncio.Event()
        env.engine.add_event_listener(lambda e: woke.set() if e.kind is EventKind.POWER_ON else None)
        await add(env, template("soon"))
        late = int(START.timestamp()) + 60
        await invoke(env.transport(), "AMT_TimeSynchronizationService", "SetHighAccuracyTimeSynch",
                     Ta0=int(clock.now), Tm1=late, Tm2=late)
        await asyncio.wait_for(woke.wait(), timeout=10)
        assert env.machine.power_state is PowerState.ON
        alarms.detach(env.engine)


async def test_alarms_survive_a_restart_and_are_scheduled_again(tmp_path: Path) -> None:
    state, clock = tmp_path / "s.db", Clock()
    async with running_engine(state=state, clock=clock) as env:
        await add(env, template("nightly", interval="P1D"))
        alarms.detach(env.engine)
    clock.run_from(START - dt.timedelta(seconds=0.2))
    async with running_engine(state=state, clock=clock) as env:
        woke = asyncio.Event()
        env.engine.add_event_listener(lambda e: woke.set() if e.kind is EventKind.POWER_ON else None)
        alarms.attach(env.engine)  # what the engine's start hook does
        await asyncio.wait_for(woke.wait(), timeout=10)
        (alarm,) = await occurrences(env)
        assert alarm["StartTime"] == CimDateTime("Datetime", "2024-01-09T06:00:00Z")
        alarms.detach(env.engine)


async def test_until_the_engine_attaches_services_a_console_status_refresh_arms_the_alarms(tmp_path: Path) -> None:
    state, clock = tmp_path / "s.db", Clock()
    async with running_engine(state=state, clock=clock) as env:
        await add(env, template("nightly", delete=True))
        alarms.detach(env.engine)
    clock.run_from(START - dt.timedelta(seconds=0.2))
    async with running_engine(state=state, clock=clock) as env:
        woke = asyncio.Event()
        env.engine.add_event_listener(lambda e: woke.set() if e.kind is EventKind.POWER_ON else None)
        await env.transport().send(msg.enumerate_("CIM_ServiceAvailableToElement"))  # MeshCommander, every refresh
        await asyncio.wait_for(woke.wait(), timeout=10)
        alarms.detach(env.engine)

