"""IPS_ScreenConfigurationService over HTTP: MeshCommander's enable switch (persisted), the blanking session
and its prerequisites, what warm resets and power-offs do to it, and the realm."""

from __future__ import annotations

from pathlib import Path

from tests.engine._shape_inventory import add_user, get_object, invoke

from outband.engine.platforms.base import PowerAction, PowerState
from outband.engine.platforms.sim import SimMachine
from outband.engine.services import screen
from outband.engine.services.optin import OptInRequired
from outband.engine.services.provisioning import ControlMode, set_provisioning
from outband.proto.amt import PTStatus, Realm
from outband.proto.cim.model import CimObject
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

SCREEN = "IPS_ScreenConfigurationService"


async def enable(env: RunningEngine, state: int = 1) -> CimObject:
    """MeshCommander's showDesktopSettingsDlgOk: Clone the Get, set EnabledState, Put."""
    t = env.transport()
    current = await get_object(t, SCREEN)
    current["EnabledState"] = state
    reply = await t.send(msg.put(current))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def set_session(env: RunningEngine, state: int, reboots: int = 3) -> int:
    out = await invoke(env.transport(), SCREEN, "SetSessionState", SessionState=state, ConsecutiveRebootsNum=reboots)
    value = out["ReturnValue"]
    assert isinstance(value, int)
    return value


async def consent_off(env: RunningEngine) -> None:
    t = env.transport()
    policy = await get_object(t, "IPS_OptInService")
    policy["OptInRequired"] = int(OptInRequired.NONE)
    assert (await t.send(msg.put(policy))).fault is None


async def test_instance_is_an_me_service_with_blanking_off(engine_env: RunningEngine) -> None:
    got = await get_object(engine_env.transport(), SCREEN)
    assert (got["SystemName"], got["CreationClassName"], got["Name"]) == (
        "Intel(r) AMT", SCREEN, screen.SERVICE_NAME)
    assert (got["EnabledState"], got["CurrentState"], got["RemainingConsecutiveRebootsNum"]) == (0, 0, 0)


async def test_enabling_persists_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        assert (await enable(env))["EnabledState"] == 1
        t = env.transport()
        current = await get_object(t, SCREEN)
        current["EnabledState"] = 2
        assert isinstance((await t.send(msg.put(current))).fault, F.InvalidRepresentation)
    async with running_engine(state=state) as env:
        assert (await get_object(env.transport(), SCREEN))["EnabledState"] == 1


async def test_session_needs_blanking_enabled_acm_and_no_consent(engine_env: RunningEngine) -> None:
    env = engine_env
    assert await set_session(env, 1) == PTStatus.NOT_PERMITTED  # disabled
    await enable(env)
    assert await set_session(env, 1) == PTStatus.NOT_PERMITTED  # ACM's default policy asks consent for KVM
    await consent_off(env)
    assert await set_session(env, 1, reboots=2) == 0
    got = await get_object(env.transport(), SCREEN)
    assert (got["CurrentState"], got["RemainingConsecutiveRebootsNum"]) == (1, 2)
    assert screen.screen_blanked(env.engine)
    assert await set_session(env, 0) == 0
    assert not screen.screen_blanked(env.engine)
    assert await set_session(env, 5) == PTStatus.INVALID_PARAMETER


async def test_client_control_mode_cannot_blank(engine_env: RunningEngine) -> None:
    await enable(engine_env)
    set_provisioning(engine_env.engine, ControlMode.CLIENT)
    assert await set_session(engine_env, 1) == PTStatus.NOT_PERMITTED
    assert not screen.screen_blanked(engine_env.engine)


async def test_warm_resets_count_down_and_power_off_ends_the_session() -> None:
    machine = SimMachine(power_state=PowerState.ON)
    async with running_engine(machine=machine) as env:
        await enable(env)
        await consent_off(env)
        t = env.transport()
        assert await set_session(env, 1, reboots=1) == 0
        await machine.request_power(PowerAction.RESET)
        assert screen.screen_blanked(env.engine)
        assert (await get_object(t, SCREEN))["RemainingConsecutiveRebootsNum"] == 0
        await machine.request_power(PowerAction.RESET)
        assert not screen.screen_blanked(env.engine)
        assert await set_session(env, 1, reboots=3) == 0
        await machine.request_power(PowerAction.OFF_SOFT)
        assert not screen.screen_blanked(env.engine)


async def test_disabling_blanking_ends_the_session_and_realm_is_redirection(engine_env: RunningEngine) -> None:
    env = engine_env
    await enable(env)
    await consent_off(env)
    assert await set_session(env, 1) == 0
    await enable(env, 0)
    assert not screen.screen_blanked(env.engine)
    outsider = add_user(env, "hw", "Hardware!1", {Realm.HARDWARE_ASSET})
    assert isinstance((await outsider.send(msg.get(SCREEN))).fault, F.AccessDenied)
    redirector = add_user(env, "kvm", "Kvm!Pass12", {Realm.REDIRECTION})
    assert (await redirector.send(msg.get(SCREEN))).fault is None
