"""Out-of-band power control over real HTTP: the shapes consoles parse, every return code, realms, the logs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.engine._remote_control import (
    audit_records,
    event_records,
    exchange,
    get,
    invoke,
    output,
    untyped_input,
    user_transport,
)
from tests.engine._shape import assert_same_shape

from outband.engine.platforms.base import PowerState
from outband.engine.platforms.sim import SimMachine
from outband.engine.services.boot import host_epr
from outband.proto.amt import Realm
from outband.proto.amtlog import SENSOR_FIRMWARE_PROGRESS
from outband.proto.cim.model import CimDateTime, CimObject, Value, XmlFragment
from outband.proto.wsman import EndpointReference, EnumerateResponse, PullResponse
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.engine import RunningEngine, running_engine

PMS = "CIM_PowerManagementService"
IPS = "IPS_PowerManagementService"
PULL_ALL = 20


def rpsc(state: object, element: object = None) -> msg.Envelope:
    params: dict[str, object] = {"PowerState": state, "ManagedElement": host_epr() if element is None else element}
    return msg.invoke(CimObject.method_input(PMS, "RequestPowerStateChange", params))


async def power(env: RunningEngine, state: int, **extra: object) -> int:
    out = await invoke(env.transport(), PMS, "RequestPowerStateChange", PowerState=state,
                       ManagedElement=host_epr(), **extra)
    return int(out["ReturnValue"])  # type: ignore[arg-type]


async def enumerate_all(env: RunningEngine, class_name: str) -> tuple[bytes, bytes, list[object]]:
    t = env.transport()
    enum_bytes, reply = await exchange(t, msg.enumerate_(class_name))
    assert isinstance(reply.body, EnumerateResponse)
    assert reply.body.context
    pull_bytes, pulled = await exchange(t, msg.pull(class_name, reply.body.context, max_elements=PULL_ALL))
    assert isinstance(pulled.body, PullResponse)
    return enum_bytes, pull_bytes, list(pulled.body.items)


@pytest.fixture
async def powered_on() -> RunningEngine:  # type: ignore[misc]
    async with running_engine(machine=SimMachine(power_state=PowerState.ON)) as env:
        yield env


# ---------------------------------------------------------------------------------------------- shapes


async def test_power_service_answers_in_the_captured_shapes(engine_env: RunningEngine, conformance_dir: Path) -> None:
    captures = conformance_dir / "cim/power/managementservice"
    raw, _ = await exchange(engine_env.transport(), msg.get(PMS))
    assert_same_shape(raw, captures / "get.xml")
    enum_raw, pull_raw, items = await enumerate_all(engine_env, PMS)
    assert_same_shape(enum_raw, captures / "enumerate.xml")
    assert_same_shape(pull_raw, captures / "pull.xml")
    assert len(items) == 1
    raw, reply = await exchange(engine_env.transport(), rpsc(2))
    assert_same_shape(raw, captures / "requestpowerstatechange.xml")
    assert output(reply)["ReturnValue"] == 0


async def test_service_available_to_element_lists_what_the_running_host_accepts(
    powered_on: RunningEngine, conformance_dir: Path
) -> None:
    captures = conformance_dir / "cim/service/availabletoelement"
    enum_raw, pull_raw, items = await enumerate_all(powered_on, "CIM_ServiceAvailableToElement")
    assert_same_shape(enum_raw, captures / "enumerate.xml")
    assert_same_shape(pull_raw, captures / "pull.xml")
    (item,) = items
    assert isinstance(item, CimObject)
    assert item.element == "CIM_AssociatedPowerManagementService"
    assert item["AvailableRequestedPowerStates"] == [10, 8, 5, 11, 4, 7, 14, 12]  # as real firmware lists them
    assert item["PowerState"] == 2
    provided = item["ServiceProvided"]
    assert isinstance(provided, EndpointReference)
    assert provided.selector_dict == {"CreationClassName": PMS, "Name": "Intel(r) AMT Power Management Service",
                                      "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "Intel(r) AMT"}
    assert item["UserOfService"] == host_epr()


async def test_meshcommander_gets_the_association_by_its_own_uri(engine_env: RunningEngine) -> None:
    association = await get(engine_env.transport(), "CIM_AssociatedPowerManagementService")
    assert association["PowerState"] == int(PowerState.OFF_SOFT)
    assert association["AvailableRequestedPowerStates"] == [2, 5]
    _, _, items = await enumerate_all(engine_env, "CIM_AssociatedPowerManagementService")
    assert len(items) == 1


async def test_a_sleeping_host_offers_what_mps_saw_real_firmware_offer() -> None:
    async with running_engine(machine=SimMachine(power_state=PowerState.SLEEP_DEEP)) as env:
        association = await get(env.transport(), "CIM_AssociatedPowerManagementService")
        assert association["PowerState"] == 4
        assert association["AvailableRequestedPowerStates"] == [8, 2, 5]
        assert await power(env, 5) == 0
        assert env.machine.power_state is PowerState.ON


async def test_ips_power_service_shapes_and_os_power_saving(powered_on: RunningEngine, conformance_dir: Path) -> None:
    captures = conformance_dir / "ips/power/managementservice"
    t = powered_on.transport()
    raw, reply = await exchange(t, msg.get(IPS))
    assert_same_shape(raw, captures / "get.xml")
    assert output(reply)["OSPowerSavingState"] == 2
    enum_raw, pull_raw, _ = await enumerate_all(powered_on, IPS)
    assert_same_shape(enum_raw, captures / "enumerate.xml")
    assert_same_shape(pull_raw, captures / "pull.xml")
    request = msg.invoke(CimObject.method_input(IPS, "RequestOSPowerSavingStateChange", OSPowerSavingState=3,
                                                ManagedElement=host_epr()))
    raw, reply = await exchange(t, request)
    assert_same_shape(raw, captures / "requestospowersavingstatechange.xml")
    assert output(reply)["ReturnValue"] == 0
    assert (await get(t, IPS))["OSPowerSavingState"] == 3
    assert powered_on.machine.os_power_saving
    assert await power(powered_on, 8) == 0
    assert "OSPowerSavingState" not in await get(t, IPS)  # AMT leaves it out while no OS runs


@pytest.mark.parametrize(("state", "element", "expected"), [
    (3, None, 2),  # a running OS is needed: the host is off
    (9, None, 5),  # neither full power nor power saving
    (2, EndpointReference.to(resource_uri("CIM_ComputerSystem"), {"Name": "Intel(r) AMT"}), 5),  # not the host
])
async def test_os_power_saving_refusals(engine_env: RunningEngine, state: int, element: object, expected: int) -> None:
    out = await invoke(engine_env.transport(), IPS, "RequestOSPowerSavingStateChange", OSPowerSavingState=state,
                       ManagedElement=element or host_epr())
    assert out["ReturnValue"] == expected


# ---------------------------------------------------------------------------------------------- actions


@pytest.mark.parametrize(("start", "requested", "end", "audit_id"), [
    (PowerState.OFF_SOFT, 2, PowerState.ON, 1700),
    (PowerState.ON, 8, PowerState.OFF_SOFT, 1701),
    (PowerState.ON, 12, PowerState.OFF_SOFT, 1701),
    (PowerState.ON, 4, PowerState.SLEEP_DEEP, 1701),
    (PowerState.ON, 7, PowerState.HIBERNATE, 1701),
    (PowerState.ON, 5, PowerState.ON, 1702),
    (PowerState.OFF_SOFT, 5, PowerState.ON, 1702),
    (PowerState.ON, 10, PowerState.ON, 1703),
    (PowerState.ON, 14, PowerState.ON, 1703),
    (PowerState.ON, 11, PowerState.ON, 1703),
])
async def test_each_offered_action_is_taken_and_audited(
    start: PowerState, requested: int, end: PowerState, audit_id: int
) -> None:
    async with running_engine(machine=SimMachine(power_state=start)) as env:
        assert await power(env, requested) == 0
        assert env.machine.power_state is end
        record = audit_records(env.engine)[-1]
        assert (record.full_id, record.initiator, record.address) == (audit_id, "admin", "127.0.0.1")


async def test_what_the_host_does_after_a_power_action_reaches_the_event_log(engine_env: RunningEngine) -> None:
    assert await power(engine_env, 2) == 0
    assert engine_env.machine.boot_count == 1
    progress = [r.data[1] for r in event_records(engine_env.engine) if r.sensor_type == SENSOR_FIRMWARE_PROGRESS]
    assert progress.count(0x13) == 1  # one "Starting operating system boot process", written once
    assert progress[-1] == 0x13


@pytest.mark.parametrize(("start", "requested"), [
    (PowerState.ON, 2),  # power on while on
    (PowerState.OFF_SOFT, 10),  # reset while off (sdague/amt issue 16)
    (PowerState.OFF_SOFT, 8),  # off while off
    (PowerState.SLEEP_DEEP, 10),
])
async def test_known_action_from_the_wrong_state_returns_2_and_changes_nothing(
    start: PowerState, requested: int
) -> None:
    async with running_engine(machine=SimMachine(power_state=start)) as env:
        assert await power(env, requested) == 2
        assert env.machine.power_state is start
        assert audit_records(env.engine) == []


@pytest.mark.parametrize("requested", [0, 1, 3, 6, 9, 13, 15, 16, 17, 65535])
async def test_values_amt_never_performs_are_not_supported(powered_on: RunningEngine, requested: int) -> None:
    assert await power(powered_on, requested) == 1
    assert powered_on.machine.power_state is PowerState.ON


@pytest.mark.parametrize("element", [
    EndpointReference.to(resource_uri("CIM_ComputerSystem"), {"CreationClassName": "CIM_ComputerSystem",
                                                             "Name": "Intel(r) AMT"}),
    EndpointReference.to(resource_uri("CIM_Chassis"), {"CreationClassName": "CIM_ComputerSystem",
                                                      "Name": "ManagedSystem"}),
    EndpointReference.to(resource_uri("CIM_ComputerSystem"), {"Name": "ManagedSystem", "Extra": "x"}),
    XmlFragment("ManagedSystem"),  # a bare name, not a reference
])
async def test_a_managed_element_other_than_the_host_is_an_invalid_parameter(
    engine_env: RunningEngine, element: object
) -> None:
    reply = await engine_env.transport().send(rpsc(2, element))
    assert output(reply)["ReturnValue"] == 5
    assert engine_env.machine.power_state is PowerState.OFF_SOFT


async def test_missing_managed_element_is_an_invalid_parameter(engine_env: RunningEngine) -> None:
    out = await invoke(engine_env.transport(), PMS, "RequestPowerStateChange", PowerState=2)
    assert out["ReturnValue"] == 5


async def test_time_parameters_are_accepted_when_they_are_datetimes(engine_env: RunningEngine) -> None:
    later = CimDateTime.of(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert await power(engine_env, 2, Time=later, TimeoutPeriod=CimDateTime.interval(dt.timedelta(minutes=1))) == 0
    assert await power(engine_env, 8, Time=XmlFragment("tomorrow")) == 5
    assert engine_env.machine.power_state is PowerState.ON


@pytest.mark.parametrize(("params", "detail"), [
    ({}, "MissingValues"),
    ({"PowerState": "on"}, "InvalidValues"),
    ({"PowerState": "-1"}, "InvalidValues"),
])
async def test_malformed_power_requests_fault(engine_env: RunningEngine, params: dict[str, Value],
                                              detail: str) -> None:
    reply = await engine_env.transport().send(
        msg.invoke(untyped_input(PMS, "RequestPowerStateChange", ManagedElement=host_epr(), **params)))
    assert isinstance(reply.fault, F.InvalidRepresentation)
    assert reply.fault.detail == F.detail_uri(detail)


# ---------------------------------------------------------------------------------------------- realms


async def test_power_control_needs_the_remote_control_realm(engine_env: RunningEngine) -> None:
    outsider = user_transport(engine_env, [Realm.GENERAL_INFO], "viewer")
    for request in (rpsc(2), msg.get(PMS), msg.enumerate_("CIM_ServiceAvailableToElement"), msg.get(IPS)):
        reply = await outsider.send(request)
        assert isinstance(reply.fault, F.AccessDenied), request.header.resource_uri
    assert engine_env.machine.power_state is PowerState.OFF_SOFT

    operator = user_transport(engine_env, [Realm.REMOTE_CONTROL])
    out = await invoke(operator, PMS, "RequestPowerStateChange", PowerState=2, ManagedElement=host_epr())
    assert out["ReturnValue"] == 0
    assert audit_records(engine_env.engine)[-1].initiator == "operator"
