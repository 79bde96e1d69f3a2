"""The typed shortcuts of outband.client.services against an engine on loopback.

The engine's power service is written elsewhere; until it exists these tests give the engine a stand-in that
answers in AMT's shapes (the CIM_AssociatedPowerManagementService capture, RequestPowerStateChange), so what
is tested is the client's side of the exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from outband.client import AmtClient, services
from outband.engine.core import Engine, EngineConfig
from outband.engine.registry import Context, Service
from outband.engine.services import general
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference, resource_uri
from outband.testing.engine import RunningEngine, running_engine

POWER_EPR = EndpointReference.to(resource_uri("CIM_PowerManagementService"), {
    "CreationClassName": "CIM_PowerManagementService", "Name": "Intel(r) AMT Power Management Service",
    "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "Intel(r) AMT"})


def power_stand_in(requests: list[CimObject]) -> Service:
    service = Service("power-stand-in")
    state = {"power": 2}

    @service.instances("CIM_ServiceAvailableToElement", realm=None)
    def associations(engine: Engine) -> Iterable[CimObject]:
        return [CimObject.new("CIM_AssociatedPowerManagementService", AvailableRequestedPowerStates=[8, 10],
                              PowerState=state["power"], ServiceProvided=POWER_EPR,
                              UserOfService=services.MANAGED_SYSTEM)]

    @service.instances("CIM_PowerManagementService", realm=None)
    def power_service(engine: Engine) -> Iterable[CimObject]:
        return [CimObject.new("CIM_PowerManagementService", **POWER_EPR.selector_dict)]

    @service.method("CIM_PowerManagementService", "RequestPowerStateChange", realm=None)
    async def request(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
        requests.append(message)
        out = CimObject("RequestPowerStateChange_OUTPUT", resource_uri("CIM_PowerManagementService"))
        accepted = message["PowerState"] in (8, 10)
        if accepted:
            state["power"] = 8 if message["PowerState"] == 8 else 2
        out["ReturnValue"] = 0 if accepted else 1
        return out

    return service


@pytest.fixture
async def env_and_requests() -> AsyncIterator[tuple[RunningEngine, list[CimObject]]]:
    requests: list[CimObject] = []
    config = EngineConfig(services=(general.service, power_stand_in(requests)))
    async with running_engine(config=config) as env:
        yield env, requests


async def test_power_state_and_request(env_and_requests: tuple[RunningEngine, list[CimObject]]) -> None:
    env, requests = env_and_requests
    async with AmtClient(env.host, password=env.password, port=env.port) as client:
        assert await services.power_state(client) == 2
        assert await services.request_power(client, 8) == 0
        assert await services.power_state(client) == 8
        assert await services.request_power(client, 3) == 1
    sent = requests[0]
    assert sent["PowerState"] == 8
    assert sent["ManagedElement"] == services.MANAGED_SYSTEM


async def test_general_settings_and_version(env_and_requests: tuple[RunningEngine, list[CimObject]]) -> None:
    env, _ = env_and_requests
    async with AmtClient(env.host, password=env.password, port=env.port) as client:
        settings = await services.general_settings(client)
        version = await services.amt_version(client)
    assert settings["DigestRealm"] == env.engine.realm
    assert version == ".".join(env.engine.amt_version.split(".")[:3])


async def test_version_falls_back_to_identify() -> None:
    async with running_engine(config=EngineConfig(services=(power_stand_in([]),))) as env:
        client = AmtClient(env.host, password=env.password, port=env.port)
        async with client:
            assert await services.amt_version(client) == ".".join(env.engine.amt_version.split(".")[:2])
